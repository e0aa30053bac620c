"""The tracker as portable artifacts: ``init`` and ``step`` for fixed frame sizes.

``export_tracker`` lowers the pure, jitted ``init(frame, box) -> state`` and
``step(state, frame) -> (state, box, score)`` of :mod:`clnet_jax.track.tracker` with the
weights folded in as constants, once per frame size, and serialises them with
``jax.export`` (StableHLO). An artifact reloads with ``jax.export.deserialize`` in any
process that has JAX, without this package, and runs on the platforms it was exported for.

``export_onnx`` converts the same two functions to ONNX with jax2onnx, traced inside
``model.ops.portable()``: the cross-correlation is a sum of shifted products and the stem
pool a maximum of slices, so the graph has no convolution whose kernel is a runtime tensor
(TensorRT's parser needs that) and onnxruntime runs every node. The state is flat there:
``init`` returns the leaves named in the manifest, ``step`` takes them and the frame and
returns the next leaves, the box and the score. ``clnet_jax.runtime`` tracks with them
without JAX.

A folder (:mod:`clnet_jax.io.artifacts`) holds, per frame size ``HxW``, ``init_HxW.<kind>``
and ``step_HxW.<kind>`` and one ``export.json``: the format version, the artifact kind, the
config's name and tracking constants, the frame sizes, the platforms, and the names and
shapes of the inputs and outputs.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from importlib import metadata
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.io import artifacts
from clnet_jax.io.artifacts import MANIFEST, ExportError, parse_sizes  # noqa: F401 (re-exported)
from clnet_jax.model import ops
from clnet_jax.track import tracker as tracker_lib
from clnet_jax.track import video
from clnet_jax.track.inputs import next_frame, to_bgr_uint8, validate_box


class Exported(NamedTuple):
    init: jax.export.Exported
    step: jax.export.Exported


def _check_exportable(cfg) -> None:
    if cfg.clnet.variant != "none" and cfg.clnet.label_sampler != "jax":
        raise ExportError(f"clnet.label_sampler={cfg.clnet.label_sampler!r} samples the first "
                          "frame's labels on the host; export with clnet.label_sampler=jax")
    if cfg.track.readapt:
        raise ExportError("track.readapt: re-adaptation is not exported; export with "
                          "track.readapt=false")


def _functions(cfg, params: dict):
    """``init(frame, box) -> state`` and ``step(state, frame) -> (state, box, score)`` with
    the prepared weights closed over and the state in its :func:`plain` form."""
    _check_exportable(cfg)
    fns = tracker_lib.make_tracker(cfg)
    prepared = jax.tree.map(jnp.asarray, fns.prepare(params))

    def init(frame, box):
        return plain(fns.init(prepared, frame, box))

    def step(state, frame):
        state, box, score = fns.step(prepared, track_state(state), frame)
        return plain(state), box, score

    return init, step


def _specs(size: tuple[int, int]):
    return (jax.ShapeDtypeStruct((*size, 3), jnp.uint8), jax.ShapeDtypeStruct((4,), jnp.float32))


def export_tracker(cfg, params: dict, size: tuple[int, int],
                   platforms: Sequence[str] | None = None) -> Exported:
    """``init`` and ``step`` for frames of ``size`` (H, W) as StableHLO, weights folded in."""
    init, step = _functions(cfg, params)
    frame, box = _specs(size)
    kw = {"platforms": tuple(platforms)} if platforms else {}
    e_init = jax.export.export(jax.jit(init), **kw)(frame, box)
    state = jax.tree.unflatten(e_init.out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype)
                                                 for a in e_init.out_avals])
    e_step = jax.export.export(jax.jit(step), **kw)(state, frame)
    return Exported(e_init, e_step)


def state_names(state) -> list[str]:
    """``state.center``, ``state.kernels.rpn2.cls``, ...: the flat state's leaves in order."""
    def part(k):
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                return str(getattr(k, attr))
        return str(k)
    return ["state." + ".".join(part(k) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]


class OnnxExported(NamedTuple):
    init: bytes
    step: bytes
    signature: dict


def export_onnx(cfg, params: dict, size: tuple[int, int], opset: int = 23) -> OnnxExported:
    """``init`` and ``step`` for frames of ``size`` as serialised ONNX models (jax2onnx).

    ``init(frame, box) -> state leaves``; ``step(state leaves..., frame) -> (next leaves...,
    box, score)``. Inputs and outputs carry the names of :func:`state_names` (outputs of
    ``step`` as ``next.<...>``)."""
    # jax2onnx warns on import about plugins of libraries we do not use (dm_pix)
    logging.getLogger("jax2onnx").setLevel(logging.ERROR)
    try:
        from jax2onnx import to_onnx
    except ImportError:
        raise ExportError("--format onnx needs jax2onnx: pip install 'clnet-jax[export]'") from None
    init, step = _functions(cfg, params)
    frame, box = _specs(size)
    quiet = logging.getLogger("onnx_ir")  # a warning per untyped constant while serialising
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with ops.portable():
        state = jax.eval_shape(init, frame, box)
        leaves, tree = jax.tree.flatten(state)
        names = state_names(state)
        nxt = ["next" + n[len("state"):] for n in names]

        def flat_init(frame, box):
            return _distinct(jax.tree.leaves(init(frame, box)), (frame, box))

        def flat_step(*args):
            state, box, score = step(jax.tree.unflatten(tree, args[:-1]), args[-1])
            return _distinct([*jax.tree.leaves(state), box, score], args)

        # the converter prints debugging lines of its flax plugins on stdout, and its
        # patched jnp functions warn on the float64 NumPy constants (anchors) that JAX
        # itself reads as float32 here
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
            try:
                m_init = to_onnx(flat_init, [frame, box], model_name="clnet_init",
                                 opset=opset, input_names=["frame", "box"], output_names=names)
                m_step = to_onnx(flat_step, [*leaves, frame], model_name="clnet_step",
                                 opset=opset, input_names=[*names, "frame"],
                                 output_names=[*nxt, "box", "score"])
            finally:
                quiet.setLevel(level)

    def spec(n, a):
        return {"name": n, "shape": list(a.shape), "dtype": str(np.dtype(a.dtype))}

    st = [spec(n, a) for n, a in zip(names, leaves)]
    signature = {
        "init": {"inputs": [spec("frame", frame), spec("box", box)], "outputs": st},
        "step": {"inputs": [*st, spec("frame", frame)],
                 "outputs": [spec(n, a) for n, a in zip(nxt, leaves)]
                 + [spec("box", box), {"name": "score", "shape": [], "dtype": "float32"}]}}
    return OnnxExported(m_init.SerializeToString(), m_step.SerializeToString(), signature)


CONVS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv")


def runtime_kernel_convs(graph, dynamic: set[str] | None = None) -> list[str]:
    """Convolution nodes of an ONNX graph (``model.graph``) whose kernel depends on a graph
    input: what TensorRT's parser refuses. Control-flow subgraphs are walked with what is
    dynamic around them."""
    consts = {t.name for t in graph.initializer}
    dynamic = set(dynamic or ()) | {i.name for i in graph.input if i.name not in consts}
    bad = []
    for node in graph.node:  # ONNX keeps nodes in topological order
        if node.op_type in CONVS and len(node.input) > 1 and node.input[1] in dynamic:
            bad.append(node.name or node.op_type)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                bad += runtime_kernel_convs(sub, dynamic)
        if any(i in dynamic for i in node.input) or any(
                a.HasField("g") or len(a.graphs) for a in node.attribute):
            dynamic.update(node.output)
    return bad


def _distinct(outputs: list, inputs: Sequence) -> tuple:
    """Every output its own value: a graph names each value once, so a leaf that repeats an
    earlier output (the zero counters) or passes an input through (the template kernels in
    ``step``) becomes a copy."""
    seen = {id(x) for x in inputs}
    out = []
    for x in outputs:
        out.append(jnp.copy(x) if id(x) in seen else x)
        seen.add(id(x))
    return tuple(out)


def plain(tree):
    """NamedTuples as dicts, recursively: ``jax.export`` serialises only built-in containers,
    so an artifact's state reloads without this package's types."""
    if hasattr(tree, "_asdict"):
        tree = tree._asdict()
    if isinstance(tree, dict):
        return {k: plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(plain(v) for v in tree)
    return tree


def track_state(d: dict) -> tracker_lib.TrackState:
    """The tracker's state from its :func:`plain` form."""
    return tracker_lib.TrackState(**dict(d, readapt=tracker_lib.Readapt(**d["readapt"])))


_ARGS = {"init": ["frame", "box"], "step": ["state", "frame"]}
_OUTS = {"init": ["state"], "step": ["state", "box", "score"]}


def _names(exp: jax.export.Exported, fn: str, kind: str) -> list[dict]:
    """Name, shape and dtype of every flat input (``kind`` 'in') or output ('out')."""
    tree = exp.in_tree if kind == "in" else exp.out_tree
    avals = exp.in_avals if kind == "in" else exp.out_avals
    leaves = jax.tree_util.tree_flatten_with_path(jax.tree.unflatten(tree, list(avals)))[0]
    out = []
    for path, a in leaves:
        if kind == "in":  # ((args...), {kwargs})
            head, rest = _ARGS[fn][path[1].idx], path[2:]
        elif fn == "init":
            head, rest = "state", path
        else:
            head, rest = _OUTS[fn][path[0].idx], path[1:]
        out.append({"name": head + jax.tree_util.keystr(tuple(rest)), "shape": list(a.shape),
                    "dtype": str(a.dtype)})
    return out


def tracking_constants(cfg) -> dict:
    t = cfg.track
    keys = ("exemplar_size", "instance_size", "base_size", "context_amount", "penalty_k",
            "window_influence", "lr")
    return {k: t[k] for k in keys if k in t}


def write(out: str, cfg, params: dict, sizes: Sequence[tuple[int, int]],
          platforms: Sequence[str] | None = None, kind: str = "stablehlo") -> dict:
    """Exports for every size into ``out`` as ``kind`` (stablehlo or onnx); returns the
    manifest."""
    if kind not in artifacts.KINDS:
        raise ExportError(f"format {kind!r}: one of {', '.join(artifacts.KINDS)}")
    if kind == "onnx" and platforms:
        raise ExportError("--platforms applies to stablehlo; an ONNX graph runs on any "
                          "onnxruntime provider")
    os.makedirs(out, exist_ok=True)
    files, signature, platforms_used = {}, None, ["any onnxruntime provider"]
    for size in sizes:
        if kind == "onnx":
            e = export_onnx(cfg, params, size)
            data = {"init": e.init, "step": e.step}
            signature = signature or e.signature
        else:
            e = export_tracker(cfg, params, size, platforms)
            data = {"init": e.init.serialize(), "step": e.step.serialize()}
            signature = signature or {
                fn: {"inputs": _names(exp, fn, "in"), "outputs": _names(exp, fn, "out")}
                for fn, exp in (("init", e.init), ("step", e.step))}
            platforms_used = list(e.init.platforms)
        for fn, blob in data.items():
            name = artifacts.file_name(fn, size, kind)
            files[name] = artifacts.write_file(out, name, blob)
    manifest = {"format": artifacts.FORMAT, "artifact": kind, "config": cfg.name,
                "variant": cfg.clnet.variant, "frame_sizes": [list(s) for s in sizes],
                "platforms": platforms_used, "tracking": tracking_constants(cfg),
                "jax": jax.__version__, "frame": "BGR uint8 (H, W, 3)",
                "box": "x, y, w, h float32 (0-based pixels)", "signature": signature,
                "files": files}
    if kind == "onnx":
        manifest["converter"] = f"jax2onnx {metadata.version('jax2onnx')}"
    artifacts.write_manifest(out, manifest)
    return manifest


def read_manifest(folder: str) -> dict:
    return artifacts.read_manifest(folder)


class ExportedTracker:
    """Tracks with the StableHLO artifacts of an export folder (JAX only; no model code runs)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.manifest = artifacts.read_manifest(folder, "stablehlo")
        self._loaded: dict[tuple[int, int], Exported] = {}
        self.state, self.frame_shape = None, None

    def _for(self, shape: tuple[int, ...]) -> Exported:
        size = artifacts.check_size(self.folder, self.manifest, shape)
        if size not in self._loaded:
            self._loaded[size] = Exported(*(
                jax.export.deserialize(bytearray(artifacts.read_artifact(
                    self.folder, self.manifest, fn, size))) for fn in ("init", "step")))
        return self._loaded[size]

    def init(self, frame: np.ndarray, box) -> None:
        frame = to_bgr_uint8(frame)
        box = validate_box(box, frame.shape)
        self._e = self._for(frame.shape)
        self.state = self._e.init.call(frame, np.asarray(box, np.float32))
        self.frame_shape = frame.shape

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        frame = next_frame(frame, self.frame_shape, ExportError)
        self.state, box, score = self._e.step.call(self.state, frame)
        return np.asarray(box, np.float64), float(score)

    def track(self, frames, box) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0)."""
        return video.track_frames(self, frames, box)
