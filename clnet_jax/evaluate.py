"""One-pass evaluation of trackers on a TFDS split (the synthetic test split by default)."""
from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from clnet_jax import metrics, runner


def decode_sequence(rec: dict) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    frames = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in rec["frames"]]
    return frames, np.asarray(rec["boxes"], np.float64), np.asarray(rec["valid"], bool)


def evaluate_split(cfg, params: dict, source, desc: str = "eval") -> dict:
    """Tracks every sequence from its first annotated box; returns summary + per-sequence."""
    tracker = runner.SequenceTracker(cfg, params)
    per_seq = {}
    for i in tqdm(range(len(source)), desc=desc, unit="seq"):
        rec = source[i]
        frames, boxes, valid = decode_sequence(rec)
        first = int(np.argmax(valid))
        if not valid.any() or any(f is None for f in frames):
            continue
        pred, _ = tracker.track(frames[first:], boxes[first])
        gt = np.where(valid[first:, None], boxes[first:], np.nan)
        name = rec["name"].decode() if isinstance(rec["name"], bytes) else str(rec["name"])
        per_seq[name] = (gt, pred)
    return metrics.summarize(per_seq)
