"""Host-side input checks: frames to BGR uint8, initial boxes validated with clear errors."""
from __future__ import annotations

import math
import os
from typing import Sequence

import cv2
import numpy as np


class FrameError(ValueError):
    """A frame that cannot be read or used."""


def to_bgr_uint8(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Grayscale, BGRA and 16-bit frames -> (H, W, 3) uint8 BGR, as the network expects."""
    a = np.asarray(frame)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise FrameError(f"{name}: unsupported pixel type {a.dtype} (expected uint8 or uint16)")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise FrameError(f"{name}: expected an (H, W[, C]) image, got shape {a.shape}")
    c = a.shape[2]
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    elif c == 4:
        a = a[..., :3]
    elif c != 3:
        raise FrameError(f"{name}: {c} channels (expected 1, 3 or 4)")
    return np.ascontiguousarray(a)


def next_frame(frame: np.ndarray, first_shape: tuple | None,
               error: type[ValueError] = ValueError) -> np.ndarray:
    """A later frame of a sequence as BGR uint8, refused (``error``) unless it has the first
    frame's shape; ``first_shape`` None means ``init`` was not called yet. Every tracker's
    ``update`` checks its frames with this."""
    if first_shape is None:
        raise RuntimeError("call init() before update()")
    frame = to_bgr_uint8(frame)
    if frame.shape != first_shape:
        raise error(f"frame size changed from {first_shape} to {frame.shape}")
    return frame


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as BGR uint8; an unreadable file raises FrameError naming it."""
    path = os.fspath(path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED) if os.path.isfile(path) else None
    if img is None:
        raise FrameError(f"{path}: missing or unreadable image")
    return to_bgr_uint8(img, path)


def load_frame(item, name: str = "frame") -> np.ndarray:
    """A frame given as a file path or as encoded image bytes, as BGR uint8."""
    if isinstance(item, (bytes, bytearray, np.bytes_)):
        img = cv2.imdecode(np.frombuffer(bytes(item), np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FrameError(f"{name}: undecodable image bytes")
        return to_bgr_uint8(img, name)
    return read_frame(item)


def validate_box(box: Sequence[float], frame_shape: Sequence[int]) -> np.ndarray:
    """(x, y, w, h) with positive finite size that overlaps the frame, else ValueError."""
    b = np.asarray(box, np.float64).reshape(-1)
    if b.size != 4:
        raise ValueError(f"initial box must have 4 numbers (x, y, w, h), got {b.size}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"initial box {b.tolist()} has NaN or infinite values")
    x, y, w, h = b
    if w <= 0 or h <= 0:
        raise ValueError(f"initial box {b.tolist()} has zero or negative size")
    fh, fw = frame_shape[:2]
    if x >= fw or y >= fh or x + w <= 0 or y + h <= 0:
        raise ValueError(f"initial box {b.tolist()} lies wholly outside the {fw}x{fh} frame")
    if not math.isfinite(w * h):
        raise ValueError(f"initial box {b.tolist()} is too large")
    return b.astype(np.float32)
