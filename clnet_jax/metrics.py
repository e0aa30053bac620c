"""One-pass evaluation metrics as the pysot toolkit computes them (pure NumPy)."""
from __future__ import annotations

import numpy as np

OVERLAP_THRESHOLDS = np.arange(0, 1.05, 0.05)   # 21 thresholds
DISTANCE_THRESHOLDS = np.arange(0, 51, 1)


def overlap_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """pysot's IoU of (x, y, w, h) rows with the inclusive-pixel (+1) convention."""
    left = np.maximum(a[:, 0], b[:, 0])
    right = np.minimum(a[:, 0] + a[:, 2] - 1, b[:, 0] + b[:, 2] - 1)
    top = np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 1] + a[:, 3] - 1, b[:, 1] + b[:, 3] - 1)
    inter = np.maximum(0, right - left + 1) * np.maximum(0, bottom - top + 1)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / union, 0, 1)


def _valid(gt: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(gt), 1) & np.all(gt[:, 2:] > 0, 1)


def success_curve(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fraction of frames whose IoU exceeds each threshold (invalid ground truth fails)."""
    iou = -np.ones(len(gt))
    m = _valid(gt)
    iou[m] = overlap_ratio(gt[m], pred[m])
    return np.array([np.sum(iou > t) for t in OVERLAP_THRESHOLDS]) / float(len(gt))


def _centers(b: np.ndarray) -> np.ndarray:
    return np.stack([b[:, 0] + (b[:, 2] - 1) / 2, b[:, 1] + (b[:, 3] - 1) / 2], 1)


def precision_curve(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fraction of frames whose centre error is within each pixel threshold.

    As in pysot, frames without valid ground truth get distance -1 (counted as within).
    """
    dist = -np.ones(len(gt))
    m = _valid(gt)
    dist[m] = np.linalg.norm(_centers(gt[m]) - _centers(pred[m]), axis=1)
    return np.array([np.sum(dist <= t) for t in DISTANCE_THRESHOLDS]) / float(len(gt))


def summarize(per_sequence: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Success AUC and precision@20 px averaged over sequences."""
    succ = np.mean([success_curve(g, p) for g, p in per_sequence.values()], 0)
    prec = np.mean([precision_curve(g, p) for g, p in per_sequence.values()], 0)
    return {"success_auc": float(np.mean(succ)), "precision": float(prec[20]),
            "sequences": len(per_sequence)}
