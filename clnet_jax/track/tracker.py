"""The SiamRPN++ tracker as pure functions: ``init(params, frame, box) -> state`` and
``step(params, state, frame) -> (state, box, score)``.

``params`` is the weights pytree (``model``, ``heads``[, ``clnet``]). The state carries
the head parameters actually used (``heads``): the base ones here, the adjusted ones for
CLNet, so a single ``step`` serves every weight-generation variant. Each function is one
``jax.jit`` per frame size and composes with ``jax.vmap`` over sequences.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.model import anchors as anchors_lib
from clnet_jax.adapt import clnet as clnet_lib
from clnet_jax import config as config_lib
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import targets as targets_lib
from clnet_jax.adapt import variants as variants_lib
from clnet_jax.model import winograd
from clnet_jax.track.crop import crop_and_resize, frame_mean_fill

Array = jnp.ndarray


class Geometry(NamedTuple):
    """Static arrays and constants derived from the config."""
    anchors: np.ndarray   # (A*S*S, 4)
    window: np.ndarray    # (A*S*S,)
    num_anchors: int
    score_size: int


def geometry(cfg) -> Geometry:
    s = config_lib.score_size(cfg)
    a = cfg.anchor
    anchors = anchors_lib.generate_anchors(a.stride, a.ratios, a.scales, s)
    n = len(a.ratios) * len(a.scales)
    return Geometry(anchors, anchors_lib.cosine_window(s, n).astype(np.float32), n, s)


def context_side(size: Array, context_amount: float) -> Array:
    """sqrt((w + c(w+h)) (h + c(w+h))): side of the template region before rounding."""
    pad = context_amount * (size[0] + size[1])
    return jnp.sqrt((size[0] + pad) * (size[1] + pad))


def scores_from_cls(cls: Array, num_anchors: int) -> Array:
    """(H, W, 2A) -> (A*H*W,) foreground probability, anchor-major."""
    h, w, _ = cls.shape
    logits = jnp.transpose(cls.reshape(h, w, 2, num_anchors), (2, 3, 0, 1)).reshape(2, -1)
    return jax.nn.softmax(logits, axis=0)[1]


def deltas_from_loc(loc: Array, num_anchors: int) -> Array:
    """(H, W, 4A) -> (A*H*W, 4), anchor-major."""
    h, w, _ = loc.shape
    return jnp.transpose(loc.reshape(h, w, 4, num_anchors), (3, 0, 1, 2)).reshape(-1, 4)


def box_from_center(center: Array, size: Array) -> Array:
    return jnp.concatenate([center - size / 2, size])


class Tracker(NamedTuple):
    init: Callable
    step: Callable
    search_hidden: Callable   # (params, kernels, crop) -> hidden maps, for CLNet's init
    geometry: Geometry
    prepare: Callable         # params -> inference params (once, at load; see below)


def make_tracker(cfg) -> Tracker:
    """Builds the pure ``init``/``step`` functions for a config (not jitted here)."""
    dtype = cfg.track.get("compute_dtype", "float32")
    net = model_lib.model_from_config(cfg.model, dtype=dtype)
    # float64 (exactness work, finite differences): state, boxes, heads and adaptation in
    # float64 too; weights are cast on the way in. Otherwise the state stays float32.
    fdt = jnp.float64 if dtype == "float64" else jnp.float32
    geo = geometry(cfg)
    t = cfg.track
    anchors = jnp.asarray(geo.anchors, fdt)
    window = jnp.asarray(geo.window, fdt)

    def cast(params):
        if fdt != jnp.float64:
            return params
        return jax.tree.map(lambda a: a.astype(fdt) if jnp.issubdtype(a.dtype, jnp.floating)
                            else a, params)

    def search_hidden(params, kernels, crop):
        return net.apply(params["model"], kernels, crop[None], method=net.search_hidden)

    variant = variants_lib.get_variant(cfg.clnet.variant)
    crop_anchors = jnp.asarray(targets_lib.crop_anchors(cfg))
    layout = cfg.clnet.label_layout
    if layout not in ("corrected", "official"):
        raise ValueError(f"clnet.label_layout must be 'corrected' or 'official', got {layout!r}")

    def samples(params, hidden, box, labels):
        """Adaptation samples of one crop: masks and targets from anchor labels (mined with
        the base heads), and whether any anchor is positive."""
        labels = jnp.asarray(labels, jnp.int32)
        cls0, _ = model_lib.rpn_outputs(params["heads"], hidden)
        mined = clnet_lib.mine_negatives(labels, cls0[0], cfg.clnet.mining_negatives)
        pos, neg = clnet_lib.sample_masks(mined, layout)
        npos = jnp.sum(labels == 1)
        loc_w = jnp.where(labels == 1, 1.0 / (npos + 1e-6), 0.0).astype(fdt)
        tgt = (mined[None], targets_lib.loc_targets(crop_anchors, box)[None], loc_w[None])
        return (pos[None], neg[None]), tgt, npos > 0

    def generate(params, hidden, masks, tgt, ok):
        """theta_0 -> the variant's heads; theta_0 where they are not finite or ``ok`` is
        false (no positive anchor: a target too small)."""
        base = params["heads"]
        heads = variant.generate(base, params.get("clnet"), hidden, masks, tgt, cfg)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(heads)]))
        ok = ok & finite
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), heads, base), ok

    def adjust(params, frame, center, size, fill, kernels, key, labels):
        """First-frame weight generation: (heads, whether adjusted, the samples it used)."""
        s_z = context_side(size, t.context_amount)
        scale_z = t.exemplar_size / s_z
        side = jnp.round(s_z * (t.instance_size / t.exemplar_size))
        x = crop_and_resize(frame, center, side, t.instance_size, fill)
        hidden = search_hidden(params, kernels, x)
        box = clnet_lib.crop_box(size, scale_z, t.instance_size)
        if labels is None:
            labels = clnet_lib.first_frame_labels(key, crop_anchors, box)
        masks, tgt, ok = samples(params, hidden, box, labels)
        heads, ok = generate(params, hidden, masks, tgt, ok)
        return heads, ok, (hidden, masks, tgt)

    readapt = bool(cfg.track.get("readapt", False)) and cfg.clnet.variant != "none"
    readapt_every = int(cfg.track.get("readapt_every", 10))
    readapt_score = float(cfg.track.get("readapt_score", 0.95))

    def readapted(params, state, hidden, pred_box, size_crop, frame_ok):
        """Re-adaptation while tracking (``track.readapt``): from theta_0, on the first
        frame's samples together with this frame's (labels against the predicted box on the
        crop the prediction was made on: no extra forward pass), when the frame's score
        passes ``track.readapt_score`` and ``track.readapt_every`` frames have passed since
        the last adaptation. Returns (heads, whether it re-adapted)."""
        c = t.instance_size // 2
        cx, cy = c + pred_box[0], c + pred_box[1]
        box = jnp.stack([cx - size_crop[0] / 2, cy - size_crop[1] / 2,
                         cx + size_crop[0] / 2, cy + size_crop[1] / 2])
        key = jax.random.fold_in(jax.random.key(cfg.clnet.seed), state["frame"])
        labels = clnet_lib.first_frame_labels(key, crop_anchors, box)
        masks, tgt, ok = samples(params, hidden, box, labels)
        first_hidden, first_masks, first_tgt = state["samples"]
        cat = lambda a, b: jax.tree.map(lambda u, v: jnp.concatenate([u, v]), a, b)
        due = (state["since"] + 1 >= readapt_every) & frame_ok & state["adjusted"]

        def redo(_):
            heads, done = generate(params, cat(first_hidden, hidden), cat(first_masks, masks),
                                   cat(first_tgt, tgt), ok)  # keep the current heads if not
            return jax.tree.map(lambda a, b: jnp.where(done, a, b), heads, state["heads"]), done

        return jax.lax.cond(due & ok, redo, lambda _: (state["heads"], jnp.zeros((), bool)),
                            None)

    def init(params: dict, frame: Array, box: Array, key: Array | None = None,
             labels: Array | None = None) -> dict:
        """First frame: template kernels and, for CLNet variants, the adjusted heads.

        ``labels`` (A, S, S) overrides the first-frame anchor sampler (e.g. the official
        NumPy one); otherwise ``key`` seeds the jit-able sampler.
        """
        params = cast(params)
        box = jnp.asarray(box, fdt)
        center = box[:2] + (box[2:] - 1) / 2
        size = box[2:]
        fill = frame_mean_fill(frame)
        s_z = jnp.round(context_side(size, t.context_amount))
        z = crop_and_resize(frame, center, s_z, t.exemplar_size, fill)
        kernels = net.apply(params["model"], z[None], method=net.template_kernels)
        heads, adjusted = params["heads"], jnp.zeros((), bool)
        extra = {}
        if cfg.clnet.variant != "none":
            key = jax.random.key(cfg.clnet.seed) if key is None else key
            heads, adjusted, first = adjust(params, frame, center, size, fill, kernels, key,
                                            labels)
            if readapt:  # what re-adaptation needs later
                extra = dict(samples=first, since=jnp.zeros((), jnp.int32),
                             frame=jnp.zeros((), jnp.int32), readapted=jnp.zeros((), jnp.int32))
        return dict(center=center, size=size, fill=fill, kernels=kernels, heads=heads,
                    adjusted=adjusted, nonfinite=jnp.zeros((), jnp.int32), **extra)

    def step(params: dict, state: dict, frame: Array):
        params = cast(params)
        center, size = state["center"], state["size"]
        s_z = context_side(size, t.context_amount)
        scale_z = t.exemplar_size / s_z
        side = jnp.round(s_z * (t.instance_size / t.exemplar_size))
        x = crop_and_resize(frame, center, side, t.instance_size, state["fill"])
        hidden = search_hidden(params, state["kernels"], x)
        cls, loc = model_lib.rpn_outputs(state["heads"], hidden)
        score = scores_from_cls(cls[0], geo.num_anchors)
        pred = anchors_lib.decode_boxes(deltas_from_loc(loc[0], geo.num_anchors), anchors)
        penalty = anchors_lib.scale_ratio_penalty(pred[:, 2:], size * scale_z, t.penalty_k)
        pscore = penalty * score * (1 - t.window_influence) + window * t.window_influence
        # Anchors with a non-finite score or box cannot win; if nothing finite is left the
        # frame keeps the previous state (score 0) and is counted, never a NaN box.
        pscore = jnp.where(jnp.isfinite(pscore) & jnp.all(jnp.isfinite(pred), -1), pscore,
                           -jnp.inf)
        best = jnp.argmax(pscore)
        bbox = pred[best] / scale_z
        lr = penalty[best] * score[best] * t.lr
        h, w = frame.shape[:2]
        new_center = jnp.clip(center + bbox[:2], 0.0, jnp.array([w, h], fdt))
        new_size = size * (1 - lr) + bbox[2:] * lr
        new_size = jnp.clip(new_size, 10.0, jnp.array([w, h], fdt))
        ok = (jnp.isfinite(pscore[best]) & jnp.all(jnp.isfinite(new_center))
              & jnp.all(jnp.isfinite(new_size)))
        new_center = jnp.where(ok, new_center, center)
        new_size = jnp.where(ok, new_size, size)
        state = dict(state, center=new_center, size=new_size,
                     nonfinite=state["nonfinite"] + (~ok).astype(jnp.int32))
        if readapt:
            frame_ok = ok & (score[best] >= readapt_score)
            heads, did = readapted(params, state, hidden, pred[best], new_size * scale_z, frame_ok)
            state = dict(state, heads=heads, frame=state["frame"] + 1,
                         since=jnp.where(did, 0, state["since"] + 1),
                         readapted=state["readapted"] + did.astype(jnp.int32))
        return state, box_from_center(new_center, new_size), jnp.where(ok, score[best], 0.0)

    def prepare(params: dict) -> dict:
        """Inference params: with ``track.winograd`` ('auto': on a CPU backend) every 3×3
        stride-1 convolution gets its Winograd-transformed kernel (collection 'winograd'),
        computed here once; the tracker then runs those convolutions as matrix products.
        Idempotent; the weights themselves are unchanged."""
        if not use_winograd(cfg) or "winograd" in params["model"]:
            return params
        tile = cfg.track.get("winograd_tile", 2)
        if tile not in (2, 4):
            raise ValueError(f"track.winograd_tile={tile!r}: choose 2 (F(2x2,3x3)) or 4 (F(4x4,3x3))")

        def collect(model_vars):
            z = jnp.zeros((1, t.exemplar_size, t.exemplar_size, 3), jnp.float32)
            x = jnp.zeros((1, t.instance_size, t.instance_size, 3), jnp.float32)
            kernels, a = net.apply(model_vars, z, method=net.template_kernels,
                                   mutable=["winograd"])
            _, b = net.apply(model_vars, kernels, x, method=net.search_hidden,
                             mutable=["winograd"])
            return _merge(a["winograd"], b["winograd"])

        # which convolutions qualify comes from tracing alone (no compile, no forward pass);
        # each kernel is then transformed directly
        shapes = jax.eval_shape(collect, params["model"])

        def transform(path, _):
            node = params["model"]["params"]
            for k in path:
                node = node[k.key]
            return jnp.asarray(winograd.kernel_transform(np.asarray(node["kernel"]), tile))

        wino = jax.tree_util.tree_map_with_path(transform, shapes)
        return dict(params, model=dict(params["model"], winograd=wino))

    return Tracker(init, step, search_hidden, geo, prepare)


def use_winograd(cfg) -> bool:
    """``track.winograd``: 'on', 'off' or 'auto' (on for a CPU backend, off in float64,
    whose purpose is exactness: Winograd's ~1e-6 relative error would hide what it shows)."""
    mode = cfg.track.get("winograd", "auto")
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"track.winograd={mode!r}: choose auto, on or off")
    if cfg.track.get("compute_dtype", "float32") == "float64":
        if mode == "on":
            raise ValueError("track.winograd='on' with track.compute_dtype='float64': the "
                             "Winograd path is a float32 speed path; use 'auto' or 'off'")
        return False
    return mode == "on" or (mode == "auto" and jax.default_backend() == "cpu")


def _merge(a: dict, b: dict) -> dict:
    """Union of two nested dicts (the template and the search branch's collections)."""
    out = dict(a)
    for k, v in b.items():
        both = isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        out[k] = _merge(dict(out[k]), v) if both else v
    return out
