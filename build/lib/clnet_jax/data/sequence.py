"""The value every sequence generator returns: frames, boxes and a visibility flag."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Sequence(NamedTuple):
    frames: np.ndarray   # (T, H, W, 3) uint8 BGR
    boxes: np.ndarray    # (T, 4) float32 x, y, w, h
    valid: np.ndarray    # (T,) bool: target visible enough to be annotated
