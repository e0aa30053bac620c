"""The SiamRPN++ tracker as module-level pure functions on a fixed state.

    spec = tracker.setup(cfg)                      # what the config fixes (static)
    state = tracker.init(spec, params, frame, box)  # first frame: kernels, adapted heads
    state, box, score = tracker.step(spec, params, state, frame)

``params`` is the weights pytree (``model``, ``heads``[, ``clnet``]). The state carries the
head parameters actually used (``heads``): the base ones for the base tracker, the adapted
ones for CLNet and the other weight-generation variants, so one ``step`` serves them all.
Its schema (:class:`TrackState`) is the same for every variant, re-adaptation included.
Bind ``spec`` at the call site (``functools.partial``, or :func:`make_tracker`) and wrap
with ``jax.jit`` / ``jax.vmap``: each function is one compiled program per frame size.

``step`` follows pysot's ``SiamRPNTracker.track`` in order: search crop, forward pass,
decoding, scale/ratio penalty, window penalty, best anchor, smoothing, clipping.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax import config as config_lib
from clnet_jax.adapt import clnet as clnet_lib
from clnet_jax.adapt import variants as variants_lib
from clnet_jax.data import geometry
from clnet_jax.model import anchors as anchors_lib
from clnet_jax.model import decode, winograd
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import targets as targets_lib
from clnet_jax.track.crop import crop_and_resize, frame_extent, frame_mean_fill

Array = jnp.ndarray


class Geometry(NamedTuple):
    """Static arrays and constants derived from the config."""
    anchors: np.ndarray   # (A*S*S, 4) in search-crop coordinates, centred
    window: np.ndarray    # (A*S*S,) cosine window
    num_anchors: int
    score_size: int


def geometry_of(cfg) -> Geometry:
    s = config_lib.score_size(cfg)
    a = cfg.anchor
    anchors = anchors_lib.generate_anchors(a.stride, a.ratios, a.scales, s)
    n = len(a.ratios) * len(a.scales)
    return Geometry(anchors, anchors_lib.cosine_window(s, n).astype(np.float32), n, s)


class Spec(NamedTuple):
    """What a config fixes about tracking: built once, closed over by the jitted functions."""
    cfg: Any                 # the ConfigDict (track, clnet, anchor, model)
    net: model_lib.SiamRPN
    dtype: Any               # state, boxes and heads: float64 for exactness work, else float32
    geometry: Geometry
    anchors: Array           # geometry.anchors in ``dtype``
    window: Array
    crop_anchors: Array      # corner anchors on the search crop (labels, loc targets)
    variant: variants_lib.Variant
    adapts: bool             # a weight-generation variant other than 'none'
    readapt: bool            # track.readapt (only with a variant that adapts)


def setup(cfg) -> Spec:
    """The static part of the tracker for ``cfg`` (network, anchors, window, variant)."""
    compute = cfg.track.compute_dtype
    net = model_lib.model_from_config(cfg.model, dtype=compute)
    dtype = jnp.float64 if compute == "float64" else jnp.float32
    geo = geometry_of(cfg)
    adapts = cfg.clnet.variant != "none"
    return Spec(cfg, net, dtype, geo, jnp.asarray(geo.anchors, dtype),
                jnp.asarray(geo.window, dtype), jnp.asarray(targets_lib.crop_anchors(cfg)),
                variants_lib.get_variant(cfg.clnet.variant), adapts,
                bool(cfg.track.readapt) and adapts)


class Readapt(NamedTuple):
    """What re-adaptation while tracking keeps. With ``track.readapt`` off the samples have
    a leading axis of length 0 and the counters stay 0: the schema does not change."""
    samples: tuple    # the first frame's (hidden maps, masks, targets), leading axis 1 or 0
    since: Array      # frames since the last adaptation
    frame: Array      # frames tracked since init
    count: Array      # re-adaptations so far


class TrackState(NamedTuple):
    """The tracker's state between frames: one schema for every variant."""
    center: Array     # (2,) target centre, frame pixels
    size: Array       # (2,) target width and height
    fill: Array       # (3,) the first frame's mean colour (crop padding)
    kernels: Any      # template features per layer
    heads: Any        # head parameters in use (base or adapted)
    adjusted: Array   # whether the first-frame adaptation replaced the base heads
    nonfinite: Array  # frames whose scores or boxes were not finite (state kept)
    readapt: Readapt


# --------------------------------------------------------------------------- pieces

def cast(spec: Spec, params: dict) -> dict:
    """Weights in float64 when the tracker runs in float64; unchanged otherwise."""
    if spec.dtype != jnp.float64:
        return params
    return jax.tree.map(lambda a: a.astype(spec.dtype) if jnp.issubdtype(a.dtype, jnp.floating)
                        else a, params)


def search_region(spec: Spec, size: Array) -> tuple[Array, Array]:
    """(side of the search crop in frame pixels, crop pixels per frame pixel) for a target
    of ``size``, as pysot's ``track`` computes them."""
    t = spec.cfg.track
    s_z = geometry.context_side(size[0], size[1], t.context_amount)
    side = jnp.round(geometry.search_side(s_z, t.exemplar_size, t.instance_size))
    return side, geometry.crop_scale(s_z, t.exemplar_size)


def search_hidden(spec: Spec, params: dict, kernels, crop: Array):
    """The heads' hidden maps (h0) of one search crop against the template kernels."""
    return spec.net.apply(params["model"], kernels, crop[None], method=spec.net.search_hidden)


def template_kernels(spec: Spec, params: dict, frame: Array, center: Array, size: Array,
                     fill: Array, frame_size: Array | None = None):
    """The template crop (side rounded, as pysot's ``init``) through the template branch."""
    t = spec.cfg.track
    s_z = jnp.round(geometry.context_side(size[0], size[1], t.context_amount))
    z = crop_and_resize(frame, center, s_z, t.exemplar_size, fill, frame_size)
    return spec.net.apply(params["model"], z[None], method=spec.net.template_kernels)


def adaptation_samples(spec: Spec, params: dict, hidden, box: Array, labels: Array):
    """One crop's adaptation samples: position masks and targets from anchor labels (mined
    with the base heads), and whether any anchor is positive."""
    c = spec.cfg.clnet
    labels = jnp.asarray(labels, jnp.int32)
    cls0, _ = model_lib.rpn_outputs(params["heads"], hidden)
    mined = clnet_lib.mine_negatives(labels, cls0[0], c.mining_negatives)
    pos, neg = clnet_lib.sample_masks(mined, c.label_layout)
    npos = jnp.sum(labels == 1)
    loc_w = jnp.where(labels == 1, 1.0 / (npos + 1e-6), 0.0).astype(spec.dtype)
    tgt = (mined[None], targets_lib.loc_targets(spec.crop_anchors, box)[None], loc_w[None])
    return ((pos[None], neg[None]), tgt), npos > 0


def generate_heads(spec: Spec, params: dict, hidden, masks, tgt, ok: Array):
    """theta_0 -> the variant's heads; theta_0 where they are not finite or ``ok`` is false
    (no positive anchor: a target too small). Returns (heads, whether they were replaced)."""
    base = params["heads"]
    heads = spec.variant.generate(base, params.get("clnet"), hidden, masks, tgt, spec.cfg)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(heads)]))
    ok = ok & finite
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), heads, base), ok


def first_frame_samples(spec: Spec, params: dict, frame: Array, center: Array, size: Array,
                        fill: Array, kernels, key: Array, labels: Array | None,
                        frame_size: Array | None = None):
    """The first search crop's hidden maps and adaptation samples:
    ((hidden, masks, targets), whether any anchor is positive)."""
    t = spec.cfg.track
    side, scale_z = search_region(spec, size)
    hidden = search_hidden(spec, params, kernels, crop_and_resize(
        frame, center, side, t.instance_size, fill, frame_size))
    box = geometry.centred_box(size, scale_z, t.instance_size)
    if labels is None:
        labels = clnet_lib.first_frame_labels(key, spec.crop_anchors, box)
    (masks, tgt), ok = adaptation_samples(spec, params, hidden, box, labels)
    return (hidden, masks, tgt), ok


def adapt_first_frame(spec: Spec, params: dict, samples, ok: Array):
    """First-frame weight generation from the first crop's samples: (heads, adjusted)."""
    return generate_heads(spec, params, *samples, ok)


def no_readapt(samples) -> Readapt:
    """The re-adaptation fields when nothing is re-adapted (samples of length 0)."""
    zero = jnp.zeros((), jnp.int32)
    empty = jax.tree.map(lambda a: jnp.zeros((0, *a.shape[1:]), a.dtype), samples)
    return Readapt(empty, zero, zero, zero)


# --------------------------------------------------------------------------- init

def init(spec: Spec, params: dict, frame: Array, box: Array, key: Array | None = None,
         labels: Array | None = None, frame_size: Array | None = None) -> TrackState:
    """First frame: template kernels and, for variants that adapt, the adapted heads.

    ``labels`` (A, S, S) overrides the first-frame anchor sampler (e.g. the official NumPy
    one); otherwise ``key`` (default: from ``clnet.seed``) seeds the jit-able sampler.
    ``frame_size`` (2,) (height, width): the image is that top-left part of ``frame``, a
    canvas (crop.crop_and_resize); ``step`` then takes the same ``frame_size``.
    """
    params = cast(spec, params)
    box = jnp.asarray(box, spec.dtype)
    center, size = box[:2] + (box[2:] - 1) / 2, box[2:]
    fill = frame_mean_fill(frame, frame_size)
    kernels = template_kernels(spec, params, frame, center, size, fill, frame_size)
    if key is None:
        with jax.ensure_compile_time_eval():  # a constant: its draws are constants too
            key = jax.random.key(spec.cfg.clnet.seed)
    sample = functools.partial(first_frame_samples, spec, params, frame, center, size, fill,
                               kernels, key, labels, frame_size)
    heads, adjusted = params["heads"], jnp.zeros((), bool)
    if spec.adapts:
        samples, ok = sample()
        heads, adjusted = adapt_first_frame(spec, params, samples, ok)
    else:
        samples = jax.eval_shape(sample)[0]  # shapes only: nothing is computed
    readapt = no_readapt(samples)
    if spec.readapt:
        readapt = readapt._replace(samples=samples)
    return TrackState(center, size, fill, kernels, heads, adjusted, jnp.zeros((), jnp.int32),
                      readapt)


# --------------------------------------------------------------------------- step

def penalized_scores(spec: Spec, score: Array, pred: Array, size: Array, scale_z: Array
                     ) -> tuple[Array, Array]:
    """pysot's scale/ratio penalty and cosine window: (penalty, pscore). Anchors with a
    non-finite score or box get -inf, so they never win."""
    t = spec.cfg.track
    penalty = anchors_lib.scale_ratio_penalty(pred[:, 2:], size * scale_z, t.penalty_k)
    pscore = penalty * score * (1 - t.window_influence) + spec.window * t.window_influence
    finite = jnp.isfinite(pscore) & jnp.all(jnp.isfinite(pred), -1)
    return penalty, jnp.where(finite, pscore, -jnp.inf)


def smooth(spec: Spec, center: Array, size: Array, bbox: Array, lr: Array
           ) -> tuple[Array, Array]:
    """The new centre moves fully; the size by the learning rate ``lr``."""
    return center + bbox[:2], size * (1 - lr) + bbox[2:] * lr


def clip(spec: Spec, center: Array, size: Array, extent) -> tuple[Array, Array]:
    """pysot's ``_bbox_clip``: the centre inside the frame, the size in [10, frame];
    ``extent`` = (height, width)."""
    h, w = extent
    limit = jnp.stack([jnp.asarray(w, spec.dtype), jnp.asarray(h, spec.dtype)])
    return jnp.clip(center, 0.0, limit), jnp.clip(size, 10.0, limit)


def box_from_center(center: Array, size: Array) -> Array:
    return jnp.concatenate([center - size / 2, size])


def readapted(spec: Spec, params: dict, state: TrackState, hidden, pred_box: Array,
              size_crop: Array, frame_ok: Array) -> tuple[Any, Array]:
    """Re-adaptation while tracking (``track.readapt``): from theta_0, on the first frame's
    samples together with this frame's (labels against the predicted box on the crop the
    prediction was made on: no extra forward pass), when the frame's score passes
    ``track.readapt_score`` and ``track.readapt_every`` frames have passed since the last
    adaptation. Returns (heads, whether it re-adapted)."""
    t, r = spec.cfg.track, state.readapt
    c = t.instance_size // 2
    cx, cy = c + pred_box[0], c + pred_box[1]
    box = jnp.stack([cx - size_crop[0] / 2, cy - size_crop[1] / 2,
                     cx + size_crop[0] / 2, cy + size_crop[1] / 2])
    key = jax.random.fold_in(jax.random.key(spec.cfg.clnet.seed), r.frame)
    labels = clnet_lib.first_frame_labels(key, spec.crop_anchors, box)
    (masks, tgt), ok = adaptation_samples(spec, params, hidden, box, labels)
    first_hidden, first_masks, first_tgt = r.samples
    cat = lambda a, b: jax.tree.map(lambda u, v: jnp.concatenate([u, v]), a, b)
    due = (r.since + 1 >= t.readapt_every) & frame_ok & state.adjusted

    def redo(_):
        heads, done = generate_heads(spec, params, cat(first_hidden, hidden),
                                     cat(first_masks, masks), cat(first_tgt, tgt), ok)
        return jax.tree.map(lambda a, b: jnp.where(done, a, b), heads, state.heads), done

    return jax.lax.cond(due & ok, redo, lambda _: (state.heads, jnp.zeros((), bool)), None)


def step(spec: Spec, params: dict, state: TrackState, frame: Array,
         frame_size: Array | None = None) -> tuple[TrackState, Array, Array]:
    """One frame: (new state, box x,y,w,h, score). A frame where nothing finite is left
    keeps the previous state, scores 0 and is counted in ``nonfinite``: never a NaN box.
    ``frame_size``: as in :func:`init`."""
    params = cast(spec, params)
    t, g = spec.cfg.track, spec.geometry
    side, scale_z = search_region(spec, state.size)
    crop = crop_and_resize(frame, state.center, side, t.instance_size, state.fill, frame_size)
    hidden = search_hidden(spec, params, state.kernels, crop)
    cls, loc = model_lib.rpn_outputs(state.heads, hidden)
    score = decode.scores_from_cls(cls[0], g.num_anchors)
    pred = anchors_lib.decode_boxes(decode.deltas_from_loc(loc[0], g.num_anchors), spec.anchors)
    penalty, pscore = penalized_scores(spec, score, pred, state.size, scale_z)
    best = jnp.argmax(pscore)
    bbox = pred[best] / scale_z
    lr = penalty[best] * score[best] * t.lr
    center, size = smooth(spec, state.center, state.size, bbox, lr)
    center, size = clip(spec, center, size, frame_extent(frame, frame_size))
    ok = (jnp.isfinite(pscore[best]) & jnp.all(jnp.isfinite(center))
          & jnp.all(jnp.isfinite(size)))
    center = jnp.where(ok, center, state.center)
    size = jnp.where(ok, size, state.size)
    state = state._replace(center=center, size=size,
                           nonfinite=state.nonfinite + (~ok).astype(jnp.int32))
    if spec.readapt:
        heads, did = readapted(spec, params, state, hidden, pred[best], size * scale_z,
                               ok & (score[best] >= t.readapt_score))
        r = state.readapt
        state = state._replace(heads=heads, readapt=r._replace(
            frame=r.frame + 1, since=jnp.where(did, 0, r.since + 1),
            count=r.count + did.astype(jnp.int32)))
    return state, box_from_center(center, size), jnp.where(ok, score[best], 0.0)


# --------------------------------------------------------------------------- inference params

def use_winograd(cfg) -> bool:
    """``track.winograd`` 'on', or 'auto' on a CPU backend; never in float64, whose purpose
    is exactness (Winograd's ~1e-6 relative error would hide what it shows)."""
    if cfg.track.compute_dtype == "float64":
        return False
    return winograd.enabled(cfg.track.winograd)


def prepare(spec: Spec, params: dict) -> dict:
    """Inference params: with :func:`use_winograd` every 3×3 stride-1 convolution gets its
    Winograd-transformed kernel (collection 'winograd'), computed here once; the tracker
    then runs those convolutions as matrix products. Idempotent; the weights themselves are
    unchanged."""
    cfg, net = spec.cfg, spec.net
    if not use_winograd(cfg) or "winograd" in params["model"]:
        return params
    t = cfg.track

    def collect(model_vars):
        z = jnp.zeros((1, t.exemplar_size, t.exemplar_size, 3), jnp.float32)
        x = jnp.zeros((1, t.instance_size, t.instance_size, 3), jnp.float32)
        kernels, a = net.apply(model_vars, z, method=net.template_kernels, mutable=["winograd"])
        _, b = net.apply(model_vars, kernels, x, method=net.search_hidden, mutable=["winograd"])
        return _merge(a["winograd"], b["winograd"])

    # which convolutions qualify comes from tracing alone (no compile, no forward pass);
    # each kernel is then transformed directly
    shapes = jax.eval_shape(collect, params["model"])

    def transform(path, _):
        node = params["model"]["params"]
        for k in path:
            node = node[k.key]
        kernel = np.asarray(node["kernel"])
        return jnp.asarray(winograd.kernel_transform(
            kernel, winograd.tile_for(t.winograd_tile, kernel.shape[2])))

    wino = jax.tree_util.tree_map_with_path(transform, shapes)
    return dict(params, model=dict(params["model"], winograd=wino))


def _merge(a: dict, b: dict) -> dict:
    """Union of two nested dicts (the template and the search branch's collections)."""
    out = dict(a)
    for k, v in b.items():
        both = isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        out[k] = _merge(dict(out[k]), v) if both else v
    return out


# --------------------------------------------------------------------------- bound

class Tracker(NamedTuple):
    """The pure functions with one config's spec bound (not jitted)."""
    init: Callable             # (params, frame, box, key=None, labels=None, frame_size=None)
    step: Callable             # (params, state, frame, frame_size=None) -> (state, box, score)
    search_hidden: Callable    # (params, kernels, crop) -> hidden maps
    prepare: Callable          # params -> inference params (once, at load)
    spec: Spec


def make_tracker(cfg) -> Tracker:
    """``init``/``step``/``prepare`` bound to ``setup(cfg)``, ready for ``jax.jit``."""
    spec = setup(cfg)
    bind = lambda f: functools.partial(f, spec)
    return Tracker(bind(init), bind(step), bind(search_hidden), bind(prepare), spec)
