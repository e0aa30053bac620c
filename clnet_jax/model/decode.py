"""The RPN head's maps read as per-anchor scores and box deltas, anchor-major
(anchor type, row, column), the order of :func:`clnet_jax.model.anchors.generate_anchors`."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def scores_from_cls(cls: jnp.ndarray, num_anchors: int) -> jnp.ndarray:
    """(H, W, 2A) -> (A*H*W,) foreground probability (softmax over background/foreground)."""
    h, w, _ = cls.shape
    logits = jnp.transpose(cls.reshape(h, w, 2, num_anchors), (2, 3, 0, 1)).reshape(2, -1)
    return jax.nn.softmax(logits, axis=0)[1]


def deltas_from_loc(loc: jnp.ndarray, num_anchors: int) -> jnp.ndarray:
    """(H, W, 4A) -> (A*H*W, 4) box deltas (dx, dy, dw, dh)."""
    h, w, _ = loc.shape
    return jnp.transpose(loc.reshape(h, w, 4, num_anchors), (3, 0, 1, 2)).reshape(-1, 4)
