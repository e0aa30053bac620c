"""The tracker as portable StableHLO artifacts: ``init`` and ``step`` for fixed frame sizes.

``export_tracker`` lowers the pure, jitted ``init(frame, box) -> state`` and
``step(state, frame) -> (state, box, score)`` of :mod:`clnet_jax.track.tracker` with the
weights folded in as constants, once per frame size, and serialises them with
``jax.export``. An artifact reloads with ``jax.export.deserialize`` in any process that has
JAX, without this package, and runs on the platforms it was exported for.

A folder written by :func:`write` holds, per frame size ``HxW``, ``init_HxW.stablehlo`` and
``step_HxW.stablehlo``, and one ``export.json``: the format version, the config's name and
tracking constants, the frame sizes, the platforms, and the names and shapes of the inputs
and outputs. :func:`load` checks all of it and refuses, naming the file, an artifact of
another format, a missing file, or a frame of a size that was not exported.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.track import tracker as tracker_lib

FORMAT = "clnet-export/1"
MANIFEST = "export.json"


class ExportError(ValueError):
    """An export folder that cannot be used as it is (missing file, other format, size)."""


def _size_name(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"480x720,360x640"`` (height x width) -> [(480, 720), (360, 640)]."""
    out = []
    for part in (p for p in text.split(",") if p):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ExportError(f"frame size {part!r}: expected HEIGHTxWIDTH, e.g. 480x720") from None
        if h < 16 or w < 16:
            raise ExportError(f"frame size {part!r}: at least 16x16 pixels")
        out.append((h, w))
    if not out:
        raise ExportError("no frame size given (e.g. --sizes 480x720)")
    return out


class Exported(NamedTuple):
    init: jax.export.Exported
    step: jax.export.Exported


def export_tracker(cfg, params: dict, size: tuple[int, int],
                   platforms: Sequence[str] | None = None) -> Exported:
    """``init`` and ``step`` for frames of ``size`` (H, W), weights folded in."""
    if cfg.clnet.variant != "none" and cfg.clnet.label_sampler != "jax":
        raise ExportError(f"clnet.label_sampler={cfg.clnet.label_sampler!r} samples the first "
                          "frame's labels on the host; export with clnet.label_sampler=jax")
    if cfg.track.readapt:
        raise ExportError("track.readapt: re-adaptation is not exported; export with "
                          "track.readapt=false")
    fns = tracker_lib.make_tracker(cfg)
    prepared = jax.tree.map(jnp.asarray, fns.prepare(params))

    def init(frame, box):
        return plain(fns.init(prepared, frame, box))

    def step(state, frame):
        state, box, score = fns.step(prepared, track_state(state), frame)
        return plain(state), box, score

    frame = jax.ShapeDtypeStruct((*size, 3), jnp.uint8)
    box = jax.ShapeDtypeStruct((4,), jnp.float32)
    kw = {"platforms": tuple(platforms)} if platforms else {}
    e_init = jax.export.export(jax.jit(init), **kw)(frame, box)
    state = jax.tree.unflatten(e_init.out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype)
                                                 for a in e_init.out_avals])
    e_step = jax.export.export(jax.jit(step), **kw)(state, frame)
    return Exported(e_init, e_step)


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
          platforms: Sequence[str] | None = None) -> dict:
    """Exports for every size into ``out``; returns the manifest written last."""
    os.makedirs(out, exist_ok=True)
    files, signature = {}, None
    for size in sizes:
        e = export_tracker(cfg, params, size, platforms)
        for kind, exp in (("init", e.init), ("step", e.step)):
            name = f"{kind}_{_size_name(size)}.stablehlo"
            data = exp.serialize()
            with open(os.path.join(out, name + ".tmp"), "wb") as f:
                f.write(data)
            os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
            files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if signature is None:
            signature = {fn: {"inputs": _names(exp, fn, "in"), "outputs": _names(exp, fn, "out")}
                         for fn, exp in (("init", e.init), ("step", e.step))}
        platforms_used = list(e.init.platforms)
    manifest = {"format": FORMAT, "config": cfg.name, "variant": cfg.clnet.variant,
                "frame_sizes": [list(s) for s in sizes], "platforms": platforms_used,
                "tracking": tracking_constants(cfg), "jax": jax.__version__,
                "frame": "BGR uint8 (H, W, 3)", "box": "x, y, w, h float32 (0-based pixels)",
                "signature": signature, "files": files}
    with open(os.path.join(out, MANIFEST + ".tmp"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(os.path.join(out, MANIFEST + ".tmp"), os.path.join(out, MANIFEST))
    return manifest


def read_manifest(folder: str) -> dict:
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing (not a clnet-export folder)")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ExportError(f"{path}: format {manifest.get('format')!r}, this version reads "
                          f"{FORMAT!r}; export again with this version")
    return manifest


class ExportedTracker:
    """Tracks with the artifacts of an export folder (JAX only; no model code runs)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.manifest = read_manifest(folder)
        self._loaded: dict[tuple[int, int], Exported] = {}

    def _for(self, shape: tuple[int, ...]) -> Exported:
        size = (int(shape[0]), int(shape[1]))
        if size not in self._loaded:
            if list(size) not in self.manifest["frame_sizes"]:
                raise ExportError(f"{self.folder}: frame size {_size_name(size)} was not "
                                  "exported (exported: " + ", ".join(
                                      _size_name(s) for s in self.manifest["frame_sizes"]) + ")")
            parts = []
            for kind in ("init", "step"):
                path = os.path.join(self.folder, f"{kind}_{_size_name(size)}.stablehlo")
                if not os.path.isfile(path):
                    raise ExportError(f"{path}: missing")
                with open(path, "rb") as f:
                    data = f.read()
                want = self.manifest["files"][os.path.basename(path)]["sha256"]
                if hashlib.sha256(data).hexdigest() != want:
                    raise ExportError(f"{path}: does not match {MANIFEST} (another export?)")
                parts.append(jax.export.deserialize(bytearray(data)))
            self._loaded[size] = Exported(*parts)
        return self._loaded[size]

    def track(self, frames, box) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0)."""
        it = iter(frames)
        first = np.ascontiguousarray(next(it), np.uint8)
        e = self._for(first.shape)
        state = e.init.call(first, np.asarray(box, np.float32))
        boxes, scores = [np.asarray(box, np.float64)], [np.nan]
        for frame in it:
            frame = np.ascontiguousarray(frame, np.uint8)
            if frame.shape != first.shape:
                raise ExportError(f"frame size changed from {first.shape} to {frame.shape}")
            state, b, s = e.step.call(state, frame)
            boxes.append(np.asarray(b, np.float64))
            scores.append(float(s))
        return np.stack(boxes), np.asarray(scores)
