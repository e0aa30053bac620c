"""grain pipeline: groups of n template/search pairs drawn from one track.

One element is a *group* (the paper's "one sequence per batch", OS): n pairs whose
templates come from the same sequence. A pair is negative (search from another sequence)
with probability ``neg_prob``. Crops follow the tracker's context rule with upstream's
shift / scale / colour / blur augmentation. Anchor labels are computed from the returned
crop boxes inside the jitted train step (:mod:`clnet_jax.model.targets`).

The pipeline is a pure function of (seed, element index): its iterator state is one
position, saved with every checkpoint.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import grain
import numpy as np

from clnet_jax.data import frames, geometry


class SkipSequence(Exception):
    pass


def _decode(data: bytes) -> np.ndarray:
    img = frames.decode(data)
    if img is None:
        raise SkipSequence("unreadable frame")
    return img


def context_crop(img: np.ndarray, box: np.ndarray, out_size: int, rng: np.random.Generator,
                 exemplar: int = 127, context: float = 0.5, shift: float = 0.0,
                 scale: float = 0.0, pad: Sequence[float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Crop of ``out_size`` around an (x, y, w, h) box at the template's scale, jittered;
    outside the image it is filled with ``pad`` (the frame's mean colour; default: this
    image's mean).

    Returns the crop and the box as corners in crop pixels. On a 511 pre-crop the box is
    already at the template's scale, so this is pysot's centre crop with shift and scale.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    k = geometry.crop_scale(geometry.context_side(w, h, context), exemplar)
    sx, sy = 1 + rng.uniform(-1, 1) * scale, 1 + rng.uniform(-1, 1) * scale
    dx, dy = rng.uniform(-1, 1) * shift, rng.uniform(-1, 1) * shift
    ax, ay = k / sx, k / sy
    c = (out_size - 1) / 2
    m = np.array([[ax, 0, c + dx - ax * cx], [0, ay, c + dy - ay * cy]], np.float64)
    mean = img.reshape(-1, 3).mean(0) if pad is None else pad
    crop = cv2.warpAffine(img, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in mean))
    corners = np.array([ax * x + m[0, 2], ay * y + m[1, 2], ax * (x + w) + m[0, 2],
                        ay * (y + h) + m[1, 2]], np.float32)
    return crop, corners


def colour_and_blur(img: np.ndarray, rng: np.random.Generator, colour: float, blur: float
                    ) -> np.ndarray:
    out = img.astype(np.float32)
    if rng.random() < colour:
        out += rng.normal(0, 6.0, 3).astype(np.float32)  # per-channel offset
    if rng.random() < blur:
        k = int(rng.choice([3, 5, 7]))
        out = cv2.GaussianBlur(out, (k, k), float(rng.uniform(0.5, 2.0)))
    return np.clip(out, 0, 255).astype(np.uint8)


class Mixture:
    """Which store each global group index draws from.

    Upstream draws, per epoch, NUM_USE videos from each dataset. Here a mixture epoch is
    ``sum(samples)`` consecutive group indices holding exactly ``samples[d]`` groups of
    store d, in an order seeded by (seed, epoch): a pure function of the index, hence
    deterministic and exactly resumable.
    """

    def __init__(self, samples: Sequence[int], seed: int):
        if not samples or min(samples) <= 0:
            raise ValueError(f"samples per epoch must be positive, got {list(samples)}")
        self.ids = np.repeat(np.arange(len(samples)), samples)
        self.weights = np.asarray(samples, np.float64) / np.sum(samples)
        self.seed = seed
        self._cache: tuple[int, np.ndarray] | None = None

    def __getstate__(self):
        return dict(self.__dict__, _cache=None)

    def __call__(self, index: int) -> int:
        epoch, pos = divmod(int(index), len(self.ids))
        cache = self._cache
        if cache is None or cache[0] != epoch:
            cache = (epoch, np.random.default_rng([self.seed, 7, epoch]).permutation(
                len(self.ids)))
            self._cache = cache
        return int(self.ids[cache[1][pos]])

    def draw(self, rng: np.random.Generator) -> int:
        """A store drawn in proportion to its samples (for negatives)."""
        return int(rng.choice(len(self.weights), p=self.weights))


class GroupSampler:
    """Maps (global group index, rng) -> one group of n pairs from one track.

    Reads 2 records per pair from frame-level stores (:mod:`clnet_jax.data.frames`), so
    the cost does not depend on the sequence length. As in pysot, the search frame is
    within ``frame_range`` annotated frames of the template, and a negative pair's search
    image comes from a random track of a store drawn by the mixture weights.
    """

    def __init__(self, stores, cfg, mixture: Mixture | None = None, pairs_per_group: int = 1):
        self.stores = list(stores) if isinstance(stores, (list, tuple)) else [stores]
        for s in self.stores:
            if not len(s.tracks):
                raise ValueError(f"{s.path}: no track with an annotated frame")
        self.mixture = mixture or Mixture([1] * len(self.stores), 0)
        self.d = cfg.data
        self.t = cfg.track
        self.n = pairs_per_group

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        store = self.stores[self.mixture(index)]
        skipped = 0
        for _ in range(20):
            try:
                return dict(self._group(store, rng), skipped=np.int32(skipped))
            except SkipSequence:
                skipped += 1
        raise RuntimeError("20 tracks in a row were unusable: check the dataset")

    def _random_record(self, rng):
        store = self.stores[self.mixture.draw(rng)]
        off, n = store.track_span(int(rng.choice(store.tracks)))
        return store[off + int(rng.integers(n))]

    def _group(self, store, rng):
        d, t = self.d, self.t
        off, n = store.track_span(int(rng.choice(store.tracks)))
        out = {k: [] for k in ("template", "search", "box", "negative")}
        for _ in range(self.n):
            ti = int(rng.integers(n))
            lo, hi = max(ti - d.frame_range, 0), min(ti + d.frame_range, n - 1)
            si = int(rng.integers(lo, hi + 1))
            negative = rng.random() < d.neg_prob
            z_rec = store[off + ti]
            x_rec = self._random_record(rng) if negative else store[off + si]
            z, _ = context_crop(_decode(z_rec["image"]), z_rec["box"], t.exemplar_size, rng,
                                t.exemplar_size, t.context_amount, d.template_shift,
                                d.template_scale, z_rec["pad"])
            x, box = context_crop(_decode(x_rec["image"]), x_rec["box"], t.instance_size, rng,
                                  t.exemplar_size, t.context_amount, d.search_shift,
                                  d.search_scale, x_rec["pad"])
            out["template"].append(colour_and_blur(z, rng, d.colour, 0.0))
            out["search"].append(colour_and_blur(x, rng, d.colour, d.blur))
            out["box"].append(box)
            out["negative"].append(negative)
        return {k: np.stack(v) for k, v in out.items()}


class _GlobalIndex:
    """Local element j of process block ``start`` -> global group index (picklable)."""

    def __init__(self, local: int, global_size: int, start: int):
        self.local, self.global_size, self.start = local, global_size, start

    def __call__(self, j) -> int:
        return (j // self.local) * self.global_size + self.start + j % self.local


class _Seeded:
    """Element = global group index -> the group, with an rng derived from (seed, index):
    the same group whichever process draws it."""

    def __init__(self, sampler: GroupSampler, seed: int):
        self.sampler, self.seed = sampler, seed

    def __call__(self, index) -> dict[str, Any]:
        return self.sampler(int(index), np.random.default_rng([self.seed, int(index)]))


def make_iterator(stores, cfg, seed: int, groups_per_batch: int, num_batches: int,
                  process_index: int = 0, process_count: int = 1, start_batch: int = 0,
                  samples: Sequence[int] | None = None, pairs_per_group: int = 1):
    """A checkpointable grain iterator of this process's block of every global batch.

    Global batch s holds the groups s*G .. s*G + G - 1; process p draws the contiguous block
    p*G/P .. (p+1)*G/P - 1 of it. Every group is a pure function of (seed, global index),
    so the global batch, and hence training, is the same for any number of processes,
    devices, threads (``data.threads``) and worker processes (``data.workers``, grain's
    multiprocessing); ``start_batch`` starts at a later batch (resume by position).
    ``samples``: per-store groups per mixture epoch (default: equal).
    """
    if groups_per_batch % process_count:
        raise ValueError(f"train.groups_per_batch={groups_per_batch} is not divisible by "
                         f"{process_count} processes")
    stores = list(stores) if isinstance(stores, (list, tuple)) else [stores]
    mixture = Mixture(samples or [1] * len(stores), seed)
    local = groups_per_batch // process_count
    start = process_index * local
    ds = (grain.MapDataset.range(start_batch * local, num_batches * local)
          .map(_GlobalIndex(local, groups_per_batch, start))
          .map(_Seeded(GroupSampler(stores, cfg, mixture, pairs_per_group), seed))
          .batch(local, drop_remainder=True))
    opts = grain.ReadOptions(num_threads=cfg.data.threads, prefetch_buffer_size=2 * local)
    it = ds.to_iter_dataset(opts)
    workers = cfg.data.workers
    if workers:
        from absl import flags
        if not flags.FLAGS.is_parsed():  # grain reads absl flags; our entry points use argparse
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(it)
