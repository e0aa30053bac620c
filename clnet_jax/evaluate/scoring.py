"""The testbed's scoring, shared by the demo's table, the testbed report and the tuner.

Protocol (GOT-10k-like): frames 2.. where the target is present; frames where it is absent
(out of view, fully occluded) are not scored. Per sequence: success AUC (21 IoU
thresholds), precision at 20 px, and the IoU of the first tracked frame. Differences
between two trackers are paired per sequence (and seed), with a bootstrap 95 % CI.
"""
from __future__ import annotations

import numpy as np

from clnet_jax.evaluate import metrics

THRESHOLDS = np.linspace(0, 1, 21)


def sequence_scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    """Success curve, precision curve and first-tracked-frame IoU over the scored frames."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} result boxes for {len(gt)} ground-truth frames")
    scored = np.all(np.isfinite(gt), 1)
    scored[0] = False
    if not scored.any():
        return None
    g, p = gt[scored], pred[scored]
    with np.errstate(invalid="ignore"):
        iou = np.nan_to_num(metrics.iou_got10k(p, g), nan=0.0)
        ce = np.nan_to_num(metrics.center_error(p, g), nan=np.inf)
    return {"success": np.mean(iou[:, None] > THRESHOLDS[None], 0),
            "precision": np.mean(ce[:, None] <= metrics.PREC_THRESHOLDS[None], 0),
            "first_iou": float(iou[0]) if scored[1] else np.nan}


def paired_bootstrap(diff: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a (seeds, sequences) array of paired differences and its 95 % CI, resampling
    seeds and sequences (both with replacement)."""
    rng = np.random.default_rng(seed)
    s, n = diff.shape
    means = [diff[rng.integers(0, s, s)][:, rng.integers(0, n, n)].mean() for _ in range(reps)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def verdict(mean_lo_hi) -> str:
    _, lo, hi = mean_lo_hi
    return "better" if lo > 0 else "worse" if hi < 0 else "undecided (CI contains 0)"




def summary(scores: dict) -> dict:
    """name -> :func:`sequence_scores` (None where nothing is scored) -> the means over
    sequences and each sequence's success AUC."""
    kept = {n: c for n, c in scores.items() if c is not None}
    return {"success_auc": float(np.mean([np.mean(c["success"]) for c in kept.values()])),
            "precision": float(np.mean([c["precision"][20] for c in kept.values()])),
            "first_iou": float(np.nanmean([c["first_iou"] for c in kept.values()])),
            "sequences": len(kept),
            "per_sequence_auc": {n: float(np.mean(c["success"])) for n, c in kept.items()}}


def paired_difference(a: dict, b: dict) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the per-sequence success-AUC difference a - b (two
    :func:`summary` results) over the sequences both scored, with a bootstrap 95 % CI over
    sequences (one seed)."""
    names = sorted(set(a["per_sequence_auc"]) & set(b["per_sequence_auc"]))
    diff = np.array([[a["per_sequence_auc"][n] - b["per_sequence_auc"][n] for n in names]])
    return (*paired_bootstrap(diff), len(names))
