"""The upstream RPN losses: class-balanced NLL and weighted L1 (not smooth L1)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jnp.ndarray


def _split_channels(x: Array, parts: int, num_anchors: int, order: tuple) -> Array:
    """(..., S, S, parts*A) -> axes permuted by ``order`` over (S_y, S_x, part, anchor)."""
    *lead, h, w, _ = x.shape
    x = x.reshape(*lead, h, w, parts, num_anchors)
    n = len(lead)
    return jnp.transpose(x, tuple(range(n)) + tuple(n + o for o in order))


def cls_log_probs(cls: Array, num_anchors: int) -> Array:
    """(..., S, S, 2A) logits -> (..., A, S, S, 2) log-probabilities (bg, fg)."""
    return jax.nn.log_softmax(_split_channels(cls, 2, num_anchors, (3, 0, 1, 2)), axis=-1)


def _global_sum(x: Array, axis_name: str | None) -> Array:
    """Sum over the mapped axis (the whole batch's count), or x outside a mapped function."""
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def select_cross_entropy(logp: Array, labels: Array, axis_name: str | None = None) -> Array:
    """0.5 * mean NLL over positives + 0.5 * mean NLL over negatives (0 for an empty set).

    With ``axis_name`` the means divide by the counts of the whole (sharded) batch, so the
    per-shard values sum to the loss of one device holding every pair.
    """
    pos = (labels == 1).astype(logp.dtype)
    neg = (labels == 0).astype(logp.dtype)
    npos, nneg = _global_sum(jnp.sum(pos), axis_name), _global_sum(jnp.sum(neg), axis_name)
    loss_pos = -jnp.sum(pos * logp[..., 1]) / jnp.maximum(npos, 1.0)
    loss_neg = -jnp.sum(neg * logp[..., 0]) / jnp.maximum(nneg, 1.0)
    return 0.5 * loss_pos + 0.5 * loss_neg


def loc_deltas(loc: Array, num_anchors: int) -> Array:
    """(..., S, S, 4A) -> (..., 4, A, S, S) as the targets are laid out."""
    return _split_channels(loc, 4, num_anchors, (2, 3, 0, 1))


def weighted_l1(loc: Array, target: Array, weight: Array, axis_name: str | None = None
                ) -> Array:
    """sum |pred - target| over coordinates, times weight, summed, / batch size.

    loc/target (B, 4, A, S, S), weight (B, A, S, S); ``axis_name``: see
    :func:`select_cross_entropy`.
    """
    diff = jnp.sum(jnp.abs(loc - target), axis=1)
    return jnp.sum(diff * weight) / _global_sum(jnp.asarray(loc.shape[0], diff.dtype), axis_name)


def rpn_loss(cls: Array, loc: Array, labels: Array, loc_target: Array, loc_weight: Array,
             num_anchors: int, loc_weight_factor: float = 1.2, axis_name: str | None = None
             ) -> tuple[Array, Array, Array]:
    """(total, cls, loc) losses for fused maps cls (B, S, S, 2A), loc (B, S, S, 4A)."""
    c = select_cross_entropy(cls_log_probs(cls, num_anchors), labels, axis_name)
    l = weighted_l1(loc_deltas(loc, num_anchors), loc_target, loc_weight, axis_name)
    return c + loc_weight_factor * l, c, l
