"""Anchor labels and regression targets on the search crop (training and first frame).

Anchors here are the training layout: (A, S, S) maps of corners/centres on the 255-pixel
crop (centre at 127), as pysot's ``AnchorTarget`` uses them.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.model import anchors as anchors_lib
from clnet_jax.model import ops


class Targets(NamedTuple):
    labels: jnp.ndarray       # (A, S, S) int32: 1 positive, 0 negative, -1 ignored
    loc: jnp.ndarray          # (4, A, S, S) encoded box per anchor
    loc_weight: jnp.ndarray   # (A, S, S) 1/npos on sampled positives


def crop_anchors(cfg) -> np.ndarray:
    """(A, S, S, 4) anchors (cx, cy, w, h) in crop pixels (origin at the crop corner)."""
    s = (cfg.track.instance_size - cfg.track.exemplar_size) // cfg.anchor.stride + 1 + cfg.track.base_size
    flat = anchors_lib.generate_anchors(cfg.anchor.stride, cfg.anchor.ratios, cfg.anchor.scales, s)
    a = len(cfg.anchor.ratios) * len(cfg.anchor.scales)
    flat = flat.reshape(a, s, s, 4).copy()
    flat[..., :2] += cfg.track.instance_size // 2
    return flat


def anchor_iou(anchors: jnp.ndarray, box: jnp.ndarray) -> jnp.ndarray:
    """IoU of every anchor (A, S, S, 4 centre form) with a corner box (4,)."""
    return anchors_lib.corner_iou(anchors_lib.center_to_corner(anchors), box)


def loc_targets(anchors: jnp.ndarray, box: jnp.ndarray) -> jnp.ndarray:
    """(4, A, S, S) regression targets of a corner box against every anchor."""
    center = jnp.stack([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                        box[2] - box[0], box[3] - box[1]])
    a = anchors
    d = jnp.stack([(center[0] - a[..., 0]) / a[..., 2], (center[1] - a[..., 1]) / a[..., 3],
                   jnp.log(center[2] / a[..., 2]), jnp.log(center[3] / a[..., 3])])
    return d


def _split(key):
    """``jax.random.split``; a constant key (the tracker's ``clnet.seed``) is split while
    tracing, so that its draws are constants of the program and an exported graph holds no
    random-number ops. A traced key (training) is split at run time as before."""
    with jax.ensure_compile_time_eval():
        keys = jax.random.split(key)
        return keys[0], keys[1]


def _random_subset(key, candidates: jnp.ndarray, k: int) -> jnp.ndarray:
    """Boolean mask of min(k, #candidates) candidates chosen uniformly at random."""
    flat = candidates.reshape(-1)
    with jax.ensure_compile_time_eval():  # as in _split
        draws = jax.random.uniform(key, flat.shape)
    prio = jnp.where(flat, draws, -1.0)
    _, idx = ops.top_k(prio, k)
    chosen = jnp.zeros_like(flat).at[idx].set(True) & flat
    return chosen.reshape(candidates.shape)


def sample_labels(key, iou: jnp.ndarray, thr_high: float = 0.6, thr_low: float = 0.3,
                  pos_num: int = 16, total_num: int = 64, negative_pair: bool = False
                  ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """jit-able label sampling: <= pos_num positives (IoU > high), the rest negatives (< low).

    Returns (labels int32, positive count). Anchors between the thresholds stay ignored.
    """
    kp, kn = _split(key)
    pos = _random_subset(kp, iou > thr_high, pos_num) & (not negative_pair)
    npos = jnp.sum(pos)
    neg = _random_subset(kn, iou < thr_low, total_num - pos_num)
    labels = jnp.where(pos, 1, jnp.where(neg, 0, -1)).astype(jnp.int32)
    return labels, npos


def negative_pair_labels(key, anchors: jnp.ndarray, box: jnp.ndarray, stride: int,
                         search_size: int, neg_num: int = 16) -> jnp.ndarray:
    """A negative pair: up to ``neg_num`` negatives within 3 cells of the (wrong) object."""
    a, s, _ = anchors.shape[:3]
    shift = lambda c: jnp.ceil((c - search_size // 2) / stride + 0.5).astype(jnp.int32)
    cx = s // 2 + shift((box[0] + box[2]) / 2)
    cy = s // 2 + shift((box[1] + box[3]) / 2)
    idx = jnp.arange(s)
    near_x = (idx >= jnp.maximum(cx - 3, 0)) & (idx < jnp.minimum(cx + 4, s))
    near_y = (idx >= jnp.maximum(cy - 3, 0)) & (idx < jnp.minimum(cy + 4, s))
    region = jnp.broadcast_to(near_y[:, None] & near_x[None, :], (a, s, s))
    return jnp.where(_random_subset(key, region, neg_num), 0, -1).astype(jnp.int32)


def anchor_targets(key, anchors: jnp.ndarray, box: jnp.ndarray, negative=False,
                   stride: int = 8, search_size: int = 255, **kw) -> Targets:
    """Labels, loc targets and loc weights for a corner box on the crop (jit-able).

    ``negative`` (may be traced): the search crop shows another object, so only negatives
    near it are labelled and nothing is regressed.
    """
    k_pos, k_neg = _split(key)
    iou = anchor_iou(anchors, box)
    labels, npos = sample_labels(k_pos, iou, **kw)
    neg_labels = negative_pair_labels(k_neg, anchors, box, stride, search_size)
    labels = jnp.where(negative, neg_labels, labels)
    weight = jnp.where((labels == 1) & ~negative, 1.0 / (npos + 1e-6), 0.0)
    return Targets(labels, loc_targets(anchors, box), weight.astype(jnp.float32))


def official_first_frame_labels(anchors: np.ndarray, box: np.ndarray, pos_num: int = 16,
                                total_num: int = 64, seed: int = 233) -> np.ndarray:
    """The official CLNet tracker's sampler, bit for bit (NumPy, not jit-able).

    NumPy is reseeded at every call; anchors with IoU >= 0.3 are first set to 0 (the code
    writes 0.5 into an integer array), then <= 16 positives and 48 negatives are shuffled out.
    """
    rng = np.random.RandomState(seed)
    corners = np.stack([anchors[..., 0] - anchors[..., 2] * 0.5, anchors[..., 1] - anchors[..., 3] * 0.5,
                        anchors[..., 0] + anchors[..., 2] * 0.5, anchors[..., 1] + anchors[..., 3] * 0.5])
    corners = corners.astype(np.float32)
    box = np.asarray(box, np.float64)
    xx1, yy1 = np.maximum(box[0], corners[0]), np.maximum(box[1], corners[1])
    xx2, yy2 = np.minimum(box[2], corners[2]), np.minimum(box[3], corners[3])
    inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
    area = (corners[2] - corners[0]) * (corners[3] - corners[1])
    overlap = inter / (area + (box[2] - box[0]) * (box[3] - box[1]) - inter)
    labels = -np.ones(overlap.shape, np.int64)

    def select(position, keep):
        num = position[0].shape[0]
        if num <= keep:
            return position
        order = np.arange(num)
        rng.shuffle(order)
        return tuple(p[order[:keep]] for p in position)

    pos = np.where(overlap > 0.6)
    neg = np.where(overlap < 0.3)
    labels[np.where(overlap >= 0.3)] = 0
    pos = select(pos, pos_num)
    neg = select(neg, total_num - pos_num)
    labels[pos] = 1
    labels[neg] = 0
    return labels
