"""CLNet: a compact latent network that adjusts the head parameters on the first frame.

Pure functions on explicit pytrees, named after the paper:

* :func:`first_frame_labels` and :func:`mine_negatives` (diverse sample mining),
* :func:`sample_masks` (positive / negative positions, corrected or official layout),
* :func:`feature_adjust` (g_a), :func:`latent_statistics`, :func:`predict_delta` (g_delta),
* :func:`adjust_head_params` (theta_a = theta_0 + delta).

Generator params (``params['clnet']``): {'params': {'rpn2': {'cls': {'encoder':
{'block1': {'conv': {'kernel'}, 'bn': {'scale', 'bias'}}, ...}, 'decoder': {'fc1', 'fc2',
'fc3'}}, 'loc': ...}, ...}, 'batch_stats': same tree with BN 'mean'/'var'}.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.model import ops
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import targets as targets_lib

Array = jnp.ndarray
_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1  # torch convention: new = (1 - m) old + m batch


# ---------------------------------------------------------------- first-frame samples
def crop_box(size: Array, scale_z: Array, instance_size: int) -> Array:
    """The target box on the first search crop (centred), as corners."""
    c = instance_size // 2
    w, h = size[0] * scale_z, size[1] * scale_z
    return jnp.stack([c - w * 0.5, c - h * 0.5, c + w * 0.5, c + h * 0.5])


def first_frame_labels(key, anchors: Array, box: Array, pos_num: int = 16,
                       total_num: int = 64) -> Array:
    """Anchor labels (A, S, S) for the initial box with the jit-able sampler."""
    iou = targets_lib.anchor_iou(anchors, box)
    labels, _ = targets_lib.sample_labels(key, iou, pos_num=pos_num, total_num=total_num)
    return labels


def background_ratio(cls: Array, num_anchors: int) -> Array:
    """log p_bg / (log p_bg + log p_fg) per anchor (A, S, S): the official ranking key.

    Kept for reference and tests; :func:`mine_negatives` ranks by :func:`foreground_margin`,
    which orders the anchors the same way without saturating in float32.
    """
    h, w, _ = cls.shape
    logp = jax.nn.log_softmax(jnp.transpose(cls.reshape(h, w, 2, num_anchors), (3, 0, 1, 2)), -1)
    return logp[..., 0] / (logp[..., 0] + logp[..., 1])


def foreground_margin(cls: Array, num_anchors: int) -> Array:
    """d = logit_fg - logit_bg per anchor (A, S, S).

    The official ratio r = log p_bg / (log p_bg + log p_fg) equals
    softplus(d) / (softplus(d) + softplus(-d)), strictly increasing in d, so ranking by d
    picks the same anchors as ranking by r in exact arithmetic. In float32 r saturates at
    1 - 6e-8 for confidently foreground anchors (d above ~16), where many anchors tie and
    the pick falls to the sort's tie-breaking; d keeps them apart. Measured on a held-out
    sequence: ranking by d in float32 picks upstream's float64 set where r in float32
    (ours and upstream's) picks two different ones.
    """
    h, w, _ = cls.shape
    logits = jnp.transpose(cls.reshape(h, w, 2, num_anchors), (3, 0, 1, 2))
    return logits[..., 1] - logits[..., 0]


def mine_negatives(labels: Array, cls_base: Array, num: int = 16) -> Array:
    """Diverse sample mining: the ``num`` unused anchors scored most foreground become 0.

    labels (A, S, S); cls_base (S, S, 2A) fused cls of the unadjusted heads. Anchors are
    ranked by :func:`foreground_margin` (the official ranking's order, without its float32
    ties).
    """
    a = labels.shape[0]
    margin = foreground_margin(cls_base, a)
    unused = labels < 0
    rank = jnp.where(unused, margin, -jnp.inf).reshape(-1)
    _, idx = ops.top_k(rank, num)
    flat = labels.reshape(-1)
    flat = flat.at[idx].set(jnp.where(unused.reshape(-1)[idx], 0, flat[idx]))
    return flat.reshape(labels.shape)


def sample_masks(labels: Array, layout: str = "corrected") -> tuple[Array, Array]:
    """Positive and negative position masks (S, S) from anchor labels (A, S, S).

    A position is positive if any of its anchors is 1, negative if any is 0 or 1 and it is
    not positive. ``layout='official'`` reproduces the official tracker, whose label map
    lacks its batch axis: the reduction runs over rows, and the (A, S) result indexes the
    first A rows of the map.
    """
    if layout == "corrected":
        pos = jnp.any(labels == 1, axis=0)
        neg = jnp.any(labels >= 0, axis=0) & ~pos
        return pos, neg
    if layout == "official":
        a, s, _ = labels.shape
        pos_small = jnp.any(labels == 1, axis=1)
        neg_small = jnp.any(labels >= 0, axis=1) & ~pos_small
        pad = lambda m: jnp.concatenate([m, jnp.zeros((s - a, s), bool)])  # rows a.. empty
        return pad(pos_small), pad(neg_small)
    raise ValueError(f"unknown label layout {layout!r} (expected 'corrected' or 'official')")


# ---------------------------------------------------------------- g_a and the latent
def _batch_norm(x: Array, p: dict, stats: dict, train: bool, weights: Array | None):
    if train:
        w = jnp.ones(x.shape[0]) if weights is None else weights
        n = jnp.maximum(jnp.sum(w), 1.0)
        mean = jnp.sum(w[:, None] * x, 0) / n
        var = jnp.sum(w[:, None] * (x - mean) ** 2, 0) / n
        unbiased = var * n / jnp.maximum(n - 1, 1.0)
        new_stats = {"mean": (1 - _BN_MOMENTUM) * stats["mean"] + _BN_MOMENTUM * mean,
                     "var": (1 - _BN_MOMENTUM) * stats["var"] + _BN_MOMENTUM * unbiased}
    else:
        mean, var, new_stats = stats["mean"], stats["var"], stats
    y = (x - mean) * jax.lax.rsqrt(var + _BN_EPS) * p["scale"] + p["bias"]
    return y, new_stats


def feature_adjust(params: dict, stats: dict, hidden: Array, train: bool = False,
                   weights: Array | None = None) -> tuple[Array, dict]:
    """g_a: three 1x1 conv + BN + ReLU blocks on (N, C) vectors -> ((N, C'), new stats).

    ``train`` uses the batch statistics of the (optionally weighted) rows, as the encoder
    does in CLNet training; otherwise the running statistics.
    """
    x, new = hidden, {}
    for name in sorted(params):
        x = x @ params[name]["conv"]["kernel"].reshape(x.shape[-1], -1)
        x, new_bn = _batch_norm(x, params[name]["bn"], stats[name]["bn"], train, weights)
        new[name] = {"bn": new_bn}
        x = jax.nn.relu(x)
    return x, new


def _masked_moments(codes: Array, mask: Array) -> tuple[Array, Array, Array]:
    """Mean and unbiased std over the rows selected by ``mask``; zero where undefined."""
    m = mask.astype(codes.dtype)[:, None]
    n = jnp.sum(m)
    mean = jnp.sum(m * codes, 0) / jnp.maximum(n, 1.0)
    var = jnp.sum(m * (codes - mean) ** 2, 0) / jnp.maximum(n - 1.0, 1.0)
    ok = (n > 1) & (var > 0)
    std = jnp.where(ok, jnp.sqrt(jnp.where(ok, var, 1.0)), 0.0)  # no inf gradient at 0
    return jnp.where(n > 0, mean, 0.0), std, n


def latent_statistics(codes: Array, pos: Array, neg: Array | None, stats: str = "mean_std"
                      ) -> Array:
    """The latent of a set of coded vectors (N, C) pooled over a whole group.

    cls (``neg`` given): concat(mu+, mu-, sigma+, sigma-); loc: concat(mu+, sigma+).
    ``stats='mean'`` keeps only the means (the ``mean_only`` variant).
    """
    mu_p, sd_p, _ = _masked_moments(codes, pos)
    if neg is None:
        parts = [mu_p] if stats == "mean" else [mu_p, sd_p]
    else:
        mu_n, sd_n, _ = _masked_moments(codes, neg)
        parts = [mu_p, mu_n] if stats == "mean" else [mu_p, mu_n, sd_p, sd_n]
    return jnp.concatenate(parts)


def predict_delta(decoder: dict, latent: Array, hidden: int, out: int
                  ) -> tuple[Array, Array, Array]:
    """g_delta: FC-ReLU-FC-ReLU-FC-tanh -> (fusion-weight change, bias change, weight change).

    Output element 0 changes the level's fusion weight; the rest, viewed as
    (out, hidden + 1), gives the bias change (column 0) and the weight change (columns 1..),
    returned as (hidden, out) to match :func:`clnet_jax.model.siamrpn.apply_head`.
    """
    x = jax.nn.relu(latent @ decoder["fc1"])
    x = jax.nn.relu(x @ decoder["fc2"])
    y = jnp.tanh(x @ decoder["fc3"])
    wb = y[1:].reshape(out, hidden + 1)
    return y[0], wb[:, 0], wb[:, 1:].T


def adjust_head_params(base_heads: dict, clnet: dict, hidden_maps: dict, masks: tuple,
                       train: bool = False, stats: str = "mean_std", weights: Array | None = None
                       ) -> tuple[dict, dict]:
    """theta_a = theta_0 + delta for every level and branch, from one group's hidden maps.

    hidden_maps: {level: {'cls'|'loc': (n, S, S, C)}}; masks: (pos, neg), each (n, S, S),
    pooled over the n pairs of the group. Returns (adjusted heads, new encoder BN stats).
    """
    pos, neg = (m.reshape(-1) for m in masks)
    heads = dict(base_heads)
    new_stats: dict = {}
    layer_delta = {"cls": [], "loc": []}
    for level in model_lib.level_names(base_heads):
        heads[level] = {}
        new_stats[level] = {}
        for branch in model_lib.BRANCHES:
            p = clnet["params"][level][branch]
            s = clnet["batch_stats"][level][branch]
            h = hidden_maps[level][branch]
            codes, bn = feature_adjust(p["encoder"], s["encoder"], h.reshape(-1, h.shape[-1]),
                                       train, weights)
            new_stats[level][branch] = {"encoder": bn}
            latent = latent_statistics(codes, pos, neg if branch == "cls" else None, stats)
            theta = base_heads[level][branch]
            d_layer, d_b, d_w = predict_delta(p["decoder"], latent, *theta["w"].shape)
            heads[level][branch] = {"w": theta["w"] + d_w, "b": theta["b"] + d_b}
            layer_delta[branch].append(d_layer)
    heads["cls_weight"] = base_heads["cls_weight"] + jnp.stack(layer_delta["cls"])
    heads["loc_weight"] = base_heads["loc_weight"] + jnp.stack(layer_delta["loc"])
    return heads, new_stats


def init_generator_params(key, levels: list[int], hidden: int, num_anchors: int,
                          enc_cls: int = 128, enc_loc: int = 256, dec_hidden: int = 256,
                          latent_scale: tuple = (4, 2)) -> dict:
    """Random CLNet encoder/decoder params (He-style init), BN at identity."""
    params, stats = {}, {}
    for level in levels:
        params[f"rpn{level}"], stats[f"rpn{level}"] = {}, {}
        for branch, ch, out, k in (("cls", enc_cls, 2 * num_anchors, latent_scale[0]),
                                   ("loc", enc_loc, 4 * num_anchors, latent_scale[1])):
            key, *ks = jax.random.split(key, 7)
            enc, enc_s, c_in = {}, {}, hidden
            for i in range(3):
                w = jax.random.normal(ks[i], (1, 1, c_in, ch)) * np.sqrt(2.0 / c_in)
                enc[f"block{i + 1}"] = {"conv": {"kernel": w},
                                        "bn": {"scale": jnp.ones(ch), "bias": jnp.zeros(ch)}}
                enc_s[f"block{i + 1}"] = {"bn": {"mean": jnp.zeros(ch), "var": jnp.ones(ch)}}
                c_in = ch
            d_in = ch * k
            dec = {"fc1": jax.random.normal(ks[3], (d_in, dec_hidden)) * np.sqrt(2.0 / d_in),
                   "fc2": jax.random.normal(ks[4], (dec_hidden, dec_hidden)) * np.sqrt(2.0 / dec_hidden),
                   "fc3": jax.random.normal(ks[5], (dec_hidden, (hidden + 1) * out + 1)) * 1e-3}
            params[f"rpn{level}"][branch] = {"encoder": enc, "decoder": dec}
            stats[f"rpn{level}"][branch] = {"encoder": enc_s}
    return {"params": params, "batch_stats": stats}
