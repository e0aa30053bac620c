"""One-pass evaluation metrics, equal to the got10k and pysot toolkits (pure NumPy).

Two conventions exist and both are kept:

* ``got10k`` (default): IoU of continuous boxes, 21 thresholds ``linspace(0, 1, 21)``,
  the first result box replaced by the ground truth, frames whose ground truth is missing
  (NaN) count as failures; centre = x + (w - 1) / 2.
* ``pysot``: thresholds ``arange(0, 1.05, 0.05)``; frames whose ground truth has no
  positive size get IoU -1 (a failure), frames whose ground-truth centre is not positive
  get centre error -1 (counted as precise); absent frames (NaN) count as neither, over
  the full sequence length.

Normalised precision (pysot's definition, both conventions): centres divided by the
ground-truth size, thresholds ``arange(0, 51) / 100``, reported at 0.2.
"""
from __future__ import annotations

import numpy as np

PREC_THRESHOLDS = np.arange(0, 51)


def overlap_ratio(a: np.ndarray, b: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """IoU of (x, y, w, h) rows (got10k adds float eps to the union, pysot adds nothing)."""
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + eps), 0.0, 1.0)


def iou_got10k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return overlap_ratio(a, b, np.finfo(float).eps)


def centers(b: np.ndarray) -> np.ndarray:
    return b[:, :2] + (b[:, 2:] - 1) / 2


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((centers(a) - centers(b)) ** 2, axis=1))


def _within(gt_c: np.ndarray, pred_c: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """pysot's success_error: distance -1 where the ground-truth centre is not positive.

    Absent frames (NaN ground truth, which pysot drops while keeping the full length as
    the denominator) never count as within.
    """
    m = np.sum(gt_c > 0, axis=1) == 2
    dist = -np.ones(len(gt_c))
    dist[m] = np.sqrt(np.sum((gt_c[m] - pred_c[m]) ** 2, axis=1))
    dist[~np.all(np.isfinite(gt_c), 1)] = np.inf
    return np.array([np.sum(dist <= t) for t in thresholds]) / float(len(gt_c))


def curves(gt: np.ndarray, pred: np.ndarray, toolkit: str = "got10k"):
    """(success curve, precision curve, normalised precision curve) of one sequence."""
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64).copy()
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} result boxes for {len(gt)} ground-truth frames")
    if toolkit == "got10k":
        pred[0] = gt[0]
        with np.errstate(invalid="ignore"):
            iou = iou_got10k(pred, gt)
            ce = center_error(pred, gt)
        succ = np.mean(iou[:, None] > np.linspace(0, 1, 21)[None], 0)
        prec = np.mean(ce[:, None] <= PREC_THRESHOLDS[None], 0)
    elif toolkit == "pysot":
        with np.errstate(invalid="ignore"):
            m = np.sum(gt[:, 2:] > 0, axis=1) == 2
            iou = -np.ones(len(gt))
            iou[m] = overlap_ratio(gt[m], pred[m])
            succ = np.array([np.sum(iou > t) for t in np.arange(0, 1.05, 0.05)]) / len(gt)
            prec = _within(centers(gt), centers(pred), PREC_THRESHOLDS)
    else:
        raise ValueError(f"unknown toolkit {toolkit!r} (expected 'got10k' or 'pysot')")
    size = gt[:, 2:] + 1e-16
    with np.errstate(invalid="ignore"):
        nprec = _within(centers(gt) / size, centers(pred) / size, np.arange(0, 51) / 100)
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


# ------------------------------------------------------------------- GOT-10k protocol
PROTOCOLS = {
    "otb": "one-pass OPE: success AUC, precision@20px, normalised precision@0.2, "
           "averaged over sequences",
    "got10k": "GOT-10k: AO, SR0.50, SR0.75 over frames 2.. where the target is visible "
              "(cover > 0), boxes clipped to the image, pooled over all frames (toolkit's "
              "ExperimentGOT10k.report)",
    "vot": "VOT supervised: accuracy, robustness, EAO",
}


def rect_iou_bounded(a: np.ndarray, b: np.ndarray, bound) -> np.ndarray:
    """got10k's ``rect_iou`` with ``bound``: both boxes clipped to the image first."""
    def clip(r):
        r = np.array(r, np.float64)
        r[:, 0] = np.clip(r[:, 0], 0, bound[0])
        r[:, 1] = np.clip(r[:, 1], 0, bound[1])
        r[:, 2] = np.clip(r[:, 2], 0, bound[0] - r[:, 0])
        r[:, 3] = np.clip(r[:, 3], 0, bound[1] - r[:, 1])
        return r
    return iou_got10k(clip(a), clip(b))


def got10k_ious(gt: np.ndarray, pred: np.ndarray, meta: dict) -> np.ndarray:
    """IoUs of frames 2.. where the target is visible, as the GOT-10k toolkit scores them."""
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} result boxes for {len(gt)} ground-truth frames")
    ious = rect_iou_bounded(pred[1:], gt[1:], meta["resolution"])
    return ious[np.asarray(meta["cover"])[1:] > 0]


def got10k_summary(per_sequence: dict[str, tuple[np.ndarray, np.ndarray, dict]]) -> dict:
    """AO, SR0.50, SR0.75 and the 101-point success curve over the pooled frames, plus the
    per-sequence AO / SR0.50 (the toolkit's ``seq_wise``)."""
    if not per_sequence:
        return {"ao": float("nan"), "sr50": float("nan"), "sr75": float("nan"), "sequences": 0}
    per = {n: got10k_ious(g, p, m) for n, (g, p, m) in per_sequence.items()}
    ious = np.concatenate(list(per.values()))
    curve = np.mean(ious[:, None] > np.linspace(0, 1, 101)[None], 0)
    return {"ao": float(np.mean(ious)), "sr50": float(np.mean(ious > 0.5)),
            "sr75": float(np.mean(ious > 0.75)), "sequences": len(per_sequence),
            "success_curve": curve.tolist(),
            "seq_wise": {n: {"ao": float(np.mean(v)), "sr50": float(np.mean(v > 0.5))}
                         for n, v in per.items()}}
