"""One-pass evaluation metrics, equal to the got10k and pysot toolkits (pure NumPy).

The toolkits differ in how they score frames whose target is absent, so each rule is kept
as its toolkit writes it (which benchmark uses which: :mod:`clnet_jax.evaluate.protocols`):

* ``otb`` (got10k's ``ExperimentOTB``, also its DTB70 and NfS experiments): the first result
  box replaced by the ground truth, IoU of continuous boxes over 21 thresholds
  ``linspace(0, 1, 21)``, centre = x + (w - 1) / 2; frames whose ground truth is NaN count
  as failures, over every frame.
* ``uav`` (got10k's ``ExperimentUAV123``): the same, but frames whose ground truth has a NaN
  are dropped from the sequence before scoring.
* ``pysot`` (pysot's ``OPEBenchmark``): thresholds ``arange(0, 1.05, 0.05)``, no first-frame
  replacement; where the benchmark has absence labels (``present``; pysot: LaSOT's
  ``absent``) absent frames are removed and the full length stays the denominator; a frame
  whose ground-truth size is not positive (NaN included) has IoU -1 (a failure) and one
  whose ground-truth centre is not positive has centre error -1 (counted as precise).

Normalised precision (pysot's definition): centres divided by the ground-truth size,
thresholds ``arange(0, 51) / 100``, reported at 0.2; under the got10k rules a frame without
ground truth is never within.
"""
from __future__ import annotations

import numpy as np

PREC_THRESHOLDS = np.arange(0, 51)
RULES = ("otb", "uav", "pysot")


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


def _distances(gt_c: np.ndarray, pred_c: np.ndarray) -> np.ndarray:
    """Centre distances as pysot's ``success_error`` takes them: -1 (within every threshold)
    where the ground-truth centre is not positive."""
    m = np.sum(gt_c > 0, axis=1) == 2
    dist = -np.ones(len(gt_c))
    dist[m] = np.sqrt(np.sum((gt_c[m] - pred_c[m]) ** 2, axis=1))
    return dist


def _within(gt_c: np.ndarray, pred_c: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Normalised precision under the got10k rules: pysot's distances, but a frame without
    ground truth (NaN) is never within."""
    dist = _distances(gt_c, pred_c)
    dist[~np.all(np.isfinite(gt_c), 1)] = np.inf
    return np.array([np.sum(dist <= t) for t in thresholds]) / float(len(gt_c))


def _success_error(gt_c: np.ndarray, pred_c: np.ndarray, thresholds: np.ndarray,
                   n_frame: int) -> np.ndarray:
    """pysot's ``success_error``: over ``n_frame`` frames (absent ones masked out before)."""
    dist = _distances(gt_c, pred_c)
    return np.array([np.sum(dist <= t) for t in thresholds]) / float(n_frame)


def _pysot_curves(gt: np.ndarray, pred: np.ndarray, present: np.ndarray | None):
    n = len(gt)
    if present is not None:
        gt, pred = gt[present], pred[present]
    m = np.sum(gt[:, 2:] > 0, axis=1) == 2
    iou = -np.ones(len(gt))
    iou[m] = overlap_ratio(gt[m], pred[m])
    succ = np.array([np.sum(iou > t) for t in np.arange(0, 1.05, 0.05)]) / float(n)
    prec = _success_error(centers(gt), centers(pred), PREC_THRESHOLDS, n)
    size = gt[:, 2:4] + 1e-16
    nprec = _success_error(centers(gt) / size, centers(pred) / size, np.arange(0, 51) / 100, n)
    return succ, prec, nprec


def curves(gt: np.ndarray, pred: np.ndarray, rule: str = "otb",
           present: np.ndarray | None = None):
    """(success curve, precision curve, normalised precision curve) of one sequence.

    ``present``: the benchmark's own absence labels (True = target present), where it has
    any; under the got10k rules an absent frame's ground truth counts as NaN.
    """
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64).copy()
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} result boxes for {len(gt)} ground-truth frames")
    present = None if present is None else np.asarray(present, bool)
    rule = "otb" if rule == "got10k" else rule
    with np.errstate(invalid="ignore"):
        if rule == "pysot":
            return _pysot_curves(gt, pred, present)
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r} (expected one of {RULES})")
        pred[0] = gt[0]
        if present is not None:
            gt = np.where(present[:, None], gt, np.nan)
        if rule == "uav":
            keep = ~np.any(np.isnan(gt), axis=1)
            gt, pred = gt[keep], pred[keep]
        iou = iou_got10k(pred, gt)
        ce = center_error(pred, gt)
        succ = np.mean(iou[:, None] > np.linspace(0, 1, 21)[None], 0)
        prec = np.mean(ce[:, None] <= PREC_THRESHOLDS[None], 0)
        size = gt[:, 2:] + 1e-16
        nprec = _within(centers(gt) / size, centers(pred) / size, np.arange(0, 51) / 100)
    return succ, prec, nprec


def summarize(per_sequence: dict[str, tuple], rule: str = "otb") -> dict:
    """Success AUC, precision@20 px and normalised precision@0.2, averaged over sequences.
    ``per_sequence``: name -> (gt, pred) or (gt, pred, present)."""
    if not per_sequence:
        return {"success_auc": float("nan"), "precision": float("nan"),
                "norm_precision": float("nan"), "sequences": 0}
    cs = [curves(v[0], v[1], rule, v[2] if len(v) > 2 else None) for v in per_sequence.values()]
    succ, prec, nprec = (np.mean([c[i] for c in cs], 0) for i in range(3))
    return {"success_auc": float(np.mean(succ)), "precision": float(prec[20]),
            "norm_precision": float(nprec[20]), "sequences": len(per_sequence),
            "success_curve": succ.tolist(), "precision_curve": prec.tolist()}


# ------------------------------------------------------------------- GOT-10k protocol
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
