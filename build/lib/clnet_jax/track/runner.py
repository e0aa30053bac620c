"""Host-side tracking of one sequence: input checks, jitted init/step, official sampler."""
from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from clnet_jax.io import checkpoint as ckpt_lib
from clnet_jax import config as config_lib
from clnet_jax.model import targets as targets_lib
from clnet_jax.track import tracker as tracker_lib
from clnet_jax.adapt import variants as variants_lib
from clnet_jax.track.inputs import to_bgr_uint8, validate_box


def official_labels(cfg, box: np.ndarray) -> np.ndarray:
    """First-frame labels exactly as the official tracker samples them (float64 geometry)."""
    t = cfg.track
    size = np.asarray(box[2:], np.float64)
    pad = t.context_amount * size.sum()
    s_z = np.sqrt((size[0] + pad) * (size[1] + pad))
    w, h = size * (t.exemplar_size / s_z)
    c = t.instance_size // 2
    corner = np.array([c - w / 2, c - h / 2, c + w / 2, c + h / 2])
    return targets_lib.official_first_frame_labels(targets_lib.crop_anchors(cfg), corner,
                                                   seed=cfg.clnet.seed)


def load_params(cfg, directory: str) -> dict:
    """Loads weights for ``cfg``: architecture and kind (base / CLNet) must match."""
    tree, arch = ckpt_lib.load(directory)
    config_lib.check_arch(cfg, arch, directory)
    variant = variants_lib.get_variant(cfg.clnet.variant)
    needs_generator = variant.init_params is not None
    if cfg.clnet.variant == "none":
        ckpt_lib.check_kind(tree, want_clnet=False, where=directory)
    elif needs_generator:
        ckpt_lib.check_kind(tree, want_clnet=True, where=directory)
    return jax.tree.map(jnp.asarray, tree)


class SequenceTracker:
    """Tracks one sequence at a time with jitted pure functions (compiled per frame size)."""

    def __init__(self, cfg, params: dict):
        self.cfg = cfg
        self.fns = tracker_lib.make_tracker(cfg)
        self.params = self.fns.prepare(params)
        self._init = jax.jit(self.fns.init)
        self._step = jax.jit(self.fns.step)
        self.state = None
        self.frame_shape = None

    def init(self, frame: np.ndarray, box) -> None:
        frame = to_bgr_uint8(frame)
        box = validate_box(box, frame.shape)
        labels = None
        if self.cfg.clnet.variant != "none" and self.cfg.clnet.label_sampler == "official_numpy":
            labels = jnp.asarray(official_labels(self.cfg, box), jnp.int32)
        elif self.cfg.clnet.label_sampler not in ("jax", "official_numpy"):
            raise ValueError(f"clnet.label_sampler must be 'jax' or 'official_numpy', got "
                             f"{self.cfg.clnet.label_sampler!r}")
        self.state = self._init(self.params, frame, box, None, labels)
        self.frame_shape = frame.shape

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        if self.state is None:
            raise RuntimeError("call init() before update()")
        frame = to_bgr_uint8(frame)
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame size changed from {self.frame_shape} to {frame.shape}")
        self.state, box, score = self._step(self.params, self.state, frame)
        return np.asarray(box, np.float64), float(score)

    @property
    def nonfinite_frames(self) -> int:
        """Frames since init whose scores or boxes were not finite (state kept, score 0)."""
        return 0 if self.state is None else int(self.state["nonfinite"])

    def track(self, frames: Iterable[np.ndarray], box) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0)."""
        it = iter(frames)
        self.init(next(it), box)
        boxes = [np.asarray(box, np.float64)]
        scores = [np.nan]
        for frame in it:
            b, s = self.update(frame)
            boxes.append(b)
            scores.append(s)
        return np.stack(boxes), np.asarray(scores)
