"""Anchors, box coding, IoU, cosine window and the scale/ratio penalty (pure functions).

Everything follows the upstream layout: anchors are (cx, cy, w, h) relative to the search
crop centre, flattened anchor-major (index = a * S * S + y * S + x).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from clnet_jax.data import geometry


def anchor_shapes(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """(A, 2) anchor widths and heights, with upstream's integer truncation."""
    size = stride * stride
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(size * 1.0 / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((ws * s, hs * s))
    return np.asarray(shapes, np.float32)


def generate_anchors(stride: int, ratios: Sequence[float], scales: Sequence[float],
                     score_size: int) -> np.ndarray:
    """(A * S * S, 4) anchors (cx, cy, w, h) in crop pixels relative to the crop centre."""
    wh = anchor_shapes(stride, ratios, scales)
    a = len(wh)
    origin = -(score_size // 2) * stride
    grid = origin + stride * np.arange(score_size, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    cx = np.broadcast_to(xx.reshape(1, -1), (a, score_size * score_size))
    cy = np.broadcast_to(yy.reshape(1, -1), (a, score_size * score_size))
    w = np.broadcast_to(wh[:, :1], cx.shape)
    h = np.broadcast_to(wh[:, 1:], cx.shape)
    return np.stack([cx, cy, w, h], -1).reshape(-1, 4).astype(np.float32)


def cosine_window(score_size: int, num_anchors: int) -> np.ndarray:
    """Outer product of Hann windows, tiled over anchors (float64 as upstream)."""
    hann = np.hanning(score_size)
    return np.tile(np.outer(hann, hann).ravel(), num_anchors)


def decode_boxes(deltas: jnp.ndarray, anchors: jnp.ndarray) -> jnp.ndarray:
    """(..., N, 4) regression deltas (dx, dy, dw, dh) -> boxes (cx, cy, w, h)."""
    cx = deltas[..., 0] * anchors[:, 2] + anchors[:, 0]
    cy = deltas[..., 1] * anchors[:, 3] + anchors[:, 1]
    w = jnp.exp(deltas[..., 2]) * anchors[:, 2]
    h = jnp.exp(deltas[..., 3]) * anchors[:, 3]
    return jnp.stack([cx, cy, w, h], -1)


def encode_boxes(boxes: jnp.ndarray, anchors: jnp.ndarray) -> jnp.ndarray:
    """Inverse of :func:`decode_boxes`: (cx, cy, w, h) targets -> deltas per anchor."""
    dx = (boxes[..., 0] - anchors[:, 0]) / anchors[:, 2]
    dy = (boxes[..., 1] - anchors[:, 1]) / anchors[:, 3]
    dw = jnp.log(boxes[..., 2] / anchors[:, 2])
    dh = jnp.log(boxes[..., 3] / anchors[:, 3])
    return jnp.stack([dx, dy, dw, dh], -1)


def corner_iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """IoU of (x1, y1, x2, y2) boxes, broadcasting; upstream's continuous-area convention."""
    iw = jnp.maximum(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    ih = jnp.maximum(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / jnp.maximum(area_a + area_b - inter, 1e-12)


def center_to_corner(boxes: jnp.ndarray) -> jnp.ndarray:
    cx, cy, w, h = (boxes[..., i] for i in range(4))
    return jnp.stack([cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5], -1)


def xywh_iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """IoU of (x, y, w, h) boxes, broadcasting."""
    to_corner = lambda r: jnp.concatenate([r[..., :2], r[..., :2] + r[..., 2:]], -1)
    return corner_iou(to_corner(a), to_corner(b))


def scale_ratio_penalty(pred_wh: jnp.ndarray, target_wh: jnp.ndarray, penalty_k: float
                        ) -> jnp.ndarray:
    """exp(-(r_c * s_c - 1) k): penalises size and aspect changes against the last target.

    ``pred_wh`` (N, 2) predicted sizes and ``target_wh`` (2,) the previous size, both in crop
    pixels.
    """
    def change(r):
        return jnp.maximum(r, 1.0 / r)

    def sz(w, h):  # the sizes with context, pysot's sz(w, h)
        return geometry.context_side(w, h, 0.5)

    s_c = change(sz(pred_wh[:, 0], pred_wh[:, 1]) / sz(target_wh[0], target_wh[1]))
    r_c = change((target_wh[0] / target_wh[1]) / (pred_wh[:, 0] / pred_wh[:, 1]))
    return jnp.exp(-(r_c * s_c - 1.0) * penalty_k)
