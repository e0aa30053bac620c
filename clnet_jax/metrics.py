"""One-pass evaluation metrics, equal to the got10k and pysot toolkits (pure NumPy).

Two conventions exist and both are kept:

* ``got10k`` (default): IoU of continuous boxes, 21 thresholds ``linspace(0, 1, 21)``,
  the first result box replaced by the ground truth, frames whose ground truth is missing
  (NaN) count as failures; centre = x + (w - 1) / 2.
* ``pysot``: inclusive-pixel IoU (+1), thresholds ``arange(0, 1.05, 0.05)``, frames with
  invalid ground truth get IoU -1 (a failure) and centre error -1 (counted as precise),
  normalised precision at 0.2 of the box size.
"""
from __future__ import annotations

import numpy as np

PREC_THRESHOLDS = np.arange(0, 51)


def iou_got10k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def iou_pysot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    left = np.maximum(a[:, 0], b[:, 0])
    right = np.minimum(a[:, 0] + a[:, 2] - 1, b[:, 0] + b[:, 2] - 1)
    top = np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 1] + a[:, 3] - 1, b[:, 1] + b[:, 3] - 1)
    inter = np.maximum(0, right - left + 1) * np.maximum(0, bottom - top + 1)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / union, 0, 1)


def centers(b: np.ndarray) -> np.ndarray:
    return b[:, :2] + (b[:, 2:] - 1) / 2


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((centers(a) - centers(b)) ** 2, axis=1))


def valid_gt(gt: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(gt), 1) & np.all(gt[:, 2:] > 0, 1)


def curves(gt: np.ndarray, pred: np.ndarray, toolkit: str = "got10k"):
    """(success curve, precision curve, normalised precision curve) of one sequence."""
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64).copy()
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} result boxes for {len(gt)} ground-truth frames")
    m = valid_gt(gt)
    if toolkit == "got10k":
        pred[0] = gt[0]
        with np.errstate(invalid="ignore"):
            iou = iou_got10k(pred, gt)
            ce = center_error(pred, gt)
        succ = np.mean(iou[:, None] > np.linspace(0, 1, 21)[None], 0)
        prec = np.mean(ce[:, None] <= PREC_THRESHOLDS[None], 0)
    elif toolkit == "pysot":
        iou = -np.ones(len(gt))
        iou[m] = iou_pysot(gt[m], pred[m])
        ce = -np.ones(len(gt))
        ce[m] = center_error(gt[m], pred[m])
        succ = np.array([np.sum(iou > t) for t in np.arange(0, 1.05, 0.05)]) / len(gt)
        prec = np.array([np.sum(ce <= t) for t in PREC_THRESHOLDS]) / len(gt)
    else:
        raise ValueError(f"unknown toolkit {toolkit!r} (expected 'got10k' or 'pysot')")
    norm = -np.ones(len(gt))
    norm[m] = np.sqrt(np.sum(((centers(gt[m]) - centers(pred[m])) / gt[m, 2:]) ** 2, 1))
    nprec = np.array([np.sum(norm <= t) for t in np.arange(0, 51) / 100]) / len(gt)
    return succ, prec, nprec


def summarize(per_sequence: dict[str, tuple[np.ndarray, np.ndarray]],
              toolkit: str = "got10k") -> dict:
    """Success AUC, precision@20 px and normalised precision@0.2, averaged over sequences."""
    if not per_sequence:
        return {"success_auc": float("nan"), "precision": float("nan"),
                "norm_precision": float("nan"), "sequences": 0}
    cs = [curves(g, p, toolkit) for g, p in per_sequence.values()]
    succ, prec, nprec = (np.mean([c[i] for c in cs], 0) for i in range(3))
    return {"success_auc": float(np.mean(succ)), "precision": float(prec[20]),
            "norm_precision": float(nprec[20]), "sequences": len(per_sequence),
            "success_curve": succ.tolist(), "precision_curve": prec.tolist()}
