"""Host-side tracking: input checks around the jitted ``init``/``step``, one sequence at a
time (:class:`SequenceTracker`) or B of one frame size at a time (:class:`BatchTracker`,
which groups the sequences by frame size itself), with one choice of the first-frame label
sampler (:func:`host_labels`) for both."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from clnet_jax import config as config_lib
from clnet_jax.adapt import variants as variants_lib
from clnet_jax.data import geometry
from clnet_jax.io import checkpoint as ckpt_lib
from clnet_jax.model import targets as targets_lib
from clnet_jax.model import weights
from clnet_jax.track import tracker as tracker_lib
from clnet_jax.track import video
from clnet_jax.track.inputs import FrameError, load_frame, next_frame, to_bgr_uint8, validate_box


def official_labels(cfg, box: np.ndarray) -> np.ndarray:
    """First-frame labels exactly as the official tracker samples them (float64 geometry)."""
    t = cfg.track
    size = np.asarray(box[2:], np.float64)
    s_z = geometry.context_side(size[0], size[1], t.context_amount)
    corner = geometry.centred_box(size, geometry.crop_scale(s_z, t.exemplar_size),
                                  t.instance_size)
    return targets_lib.official_first_frame_labels(targets_lib.crop_anchors(cfg), corner,
                                                   seed=cfg.clnet.seed)


def host_labels(cfg, boxes: np.ndarray) -> np.ndarray | None:
    """First-frame anchor labels sampled on the host, one set per box (B, A, S, S), where
    ``clnet.label_sampler`` is 'official_numpy' and the variant adapts; None where the
    jitted sampler (seeded by ``clnet.seed``) samples them."""
    if cfg.clnet.variant == "none" or cfg.clnet.label_sampler != "official_numpy":
        return None
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([official_labels(cfg, b) for b in boxes]).astype(np.int32)


def load_params(cfg, directory: str) -> dict:
    """Loads weights for ``cfg``: architecture and kind (base / CLNet) must match."""
    tree, arch = weights.load(directory)
    config_lib.check_arch(cfg, arch, directory)
    variant = variants_lib.get_variant(cfg.clnet.variant)
    if cfg.clnet.variant == "none":
        ckpt_lib.check_kind(tree, want_clnet=False, where=directory)
    elif variant.init_params is not None:
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
        self.state: tracker_lib.TrackState | None = None
        self.frame_shape = None

    def init(self, frame: np.ndarray, box) -> None:
        frame = to_bgr_uint8(frame)
        box = validate_box(box, frame.shape)
        labels = host_labels(self.cfg, box)
        labels = None if labels is None else jnp.asarray(labels[0])
        self.state = self._init(self.params, frame, box, None, labels)
        self.frame_shape = frame.shape

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        frame = next_frame(frame, self.frame_shape)
        self.state, box, score = self._step(self.params, self.state, frame)
        return np.asarray(box, np.float64), float(score)

    @property
    def nonfinite_frames(self) -> int:
        """Frames since init whose scores or boxes were not finite (state kept, score 0)."""
        return 0 if self.state is None else int(self.state.nonfinite)

    def track(self, frames: Iterable[np.ndarray], box) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0)."""
        return video.track_frames(self, frames, box)


def first_frame_sizes(seqs: list) -> tuple[dict, dict]:
    """name -> (height, width) of each sequence's first frame, and name -> error for those
    whose first frame does not load."""
    sizes, errors = {}, {}
    for s in seqs:
        try:
            sizes[s.name] = load_frame(s.frames[0], f"{s.name}/0").shape[:2]
        except ValueError as e:
            errors[s.name] = str(e)
    return sizes, errors


def size_groups(seqs: list) -> tuple[list[list], dict]:
    """The sequences grouped by the size of their first frame, in order of first
    appearance, and name -> error for those whose first frame does not load."""
    sizes, errors = first_frame_sizes(seqs)
    by_size = defaultdict(list)
    for s in seqs:
        if s.name in sizes:
            by_size[sizes[s.name]].append(s)
    return list(by_size.values()), errors


def largest_group(seqs: list, canvas: bool = False) -> int:
    """The most sequences tracked together (of one frame size, or all of them on a
    canvas): a batch larger than this is all padding."""
    if canvas:
        return max(len(first_frame_sizes(seqs)[0]), 1)
    groups, _ = size_groups(seqs)
    return max((len(g) for g in groups), default=1)


class BatchTracker:
    """B sequences at a time (``vmap`` of the same ``init``/``step``); sequences that end
    or fail are masked out, and a short chunk is padded, so one compilation serves every
    chunk.

    ``canvas`` False: the sequences are grouped by frame size first (one compilation per
    size). True: every frame is placed in the top-left corner of a canvas as large as the
    largest first frame of the call, and the tracker reads only the frame's own pixels
    (``frame_size``: the crops, their padding and the box clipping are those of the frame
    alone), so sequences of every size share chunks and one compilation. That suits
    benchmarks of many frame sizes (OTB, VOT, real videos), where compiling per size costs
    more than tracking; the copy into the canvas costs a canvas per sequence and frame.
    """

    def __init__(self, cfg, params: dict, batch: int, canvas: bool = False):
        self.cfg, self.batch, self.canvas = cfg, batch, canvas
        fns = tracker_lib.make_tracker(cfg)
        self.prepare = fns.prepare
        self.params = fns.prepare(params)
        self.init = jax.jit(jax.vmap(lambda p, f, b, lab, n: fns.init(p, f, b, None, lab, n),
                                     in_axes=(None, 0, 0, 0, 0)))
        self.init_jax = jax.jit(jax.vmap(lambda p, f, b, n: fns.init(p, f, b, None, None, n),
                                         in_axes=(None, 0, 0, 0)))
        self.step = jax.jit(jax.vmap(fns.step, in_axes=(None, 0, 0, 0)))

    def run(self, seqs: list, params: dict | None = None, desc: str | None = None) -> dict:
        """name -> (boxes (N, 4), fps) or an error message. ``seqs`` have ``name``,
        ``frames`` (paths or encoded bytes) and ``gt`` (the first row is the initial box).
        ``params``: other weights of the same architecture, tracked with the programs
        already compiled (weights are arguments, not constants). The results keep the
        order of ``seqs``. ``desc``: a progress bar over the chunks, so named."""
        params = self.params if params is None else self.prepare(params)
        if self.canvas:
            sizes, found = first_frame_sizes(seqs)
            groups = [[s for s in seqs if s.name in sizes]]
            shape = tuple(max(v[i] for v in sizes.values()) for i in range(2)) if sizes else None
        else:
            groups, found = size_groups(seqs)
            shape = None
        chunks = [g[i:i + self.batch] for g in groups for i in range(0, len(g), self.batch)]
        for chunk in tqdm(chunks, desc=desc, unit="chunk", disable=desc is None):
            found.update(self._run_chunk(chunk, params, shape))
        return {s.name: found[s.name] for s in seqs if s.name in found}

    def _run_chunk(self, chunk, params, canvas):
        b = self.batch
        real = len(chunk)
        chunk = chunk + [chunk[0]] * (b - real)  # fixed B: one compilation
        out, alive = {}, np.ones(b, bool)
        alive[real:] = False
        first = []
        for j, s in enumerate(chunk):
            try:
                f0 = load_frame(s.frames[0], f"{s.name}/0")
                validate_box(s.gt[0], f0.shape)
            except ValueError as e:
                f0 = first[0] if first else None
                alive[j] = False
                if j < real:
                    out[s.name] = str(e)
            first.append(f0)
        if not alive.any():
            return out
        live = next(f for f, a in zip(first, alive) if a)
        first = [live if f is None else f for f in first]
        sizes = np.asarray([f.shape[:2] for f in first], np.int32)
        # without a canvas run() groups by frame size: every live first frame has this one
        buf = np.zeros((b, *(canvas or live.shape[:2]), 3), np.uint8)

        def put(j, frame):
            buf[j, :frame.shape[0], :frame.shape[1]] = frame

        for j, f in enumerate(first):
            put(j, f)
        boxes0 = np.stack([s.gt[0] for s in chunk]).astype(np.float32)
        boxes0 = np.where(alive[:, None], boxes0, boxes0[np.argmax(alive)])
        labels = host_labels(self.cfg, boxes0)
        t0 = time.perf_counter()
        if labels is None:
            state = self.init_jax(params, buf, boxes0, sizes)
        else:
            state = self.init(params, buf, boxes0, labels, sizes)
        # the programs may read buf in place (no copy on the CPU) and run asynchronously:
        # buf is written again only once the program reading it has finished
        jax.block_until_ready(state)
        results = [[s.gt[0]] for s in chunk]
        length = max(len(s.frames) for s in chunk[:real])
        for t in range(1, length):
            for j, s in enumerate(chunk):
                if alive[j] and t < len(s.frames):
                    try:
                        frame = load_frame(s.frames[t], f"{s.name}/{t}")
                        if frame.shape != first[j].shape:
                            raise FrameError(f"{s.name}/{t}: frame size changed")
                        put(j, frame)  # an ended or failed sequence keeps its last frame
                    except ValueError as e:
                        alive[j] = False
                        out[s.name] = str(e)
            state, box, _ = self.step(params, state, buf, sizes)
            box = np.asarray(box, np.float64)  # waits for the step: buf is free again
            for j, s in enumerate(chunk[:real]):
                if alive[j] and t < len(s.frames):
                    results[j].append(box[j])
        fps = sum(len(s.frames) for s in chunk[:real]) / (time.perf_counter() - t0)
        for j, s in enumerate(chunk[:real]):
            if alive[j]:
                out[s.name] = (np.stack(results[j]), fps)
        return out
