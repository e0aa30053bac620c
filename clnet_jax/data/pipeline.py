"""grain pipeline: groups of n template/search pairs drawn from one sequence.

One element is a *group* (the paper's "one sequence per batch", OS): n pairs whose
templates come from the same sequence. A pair is negative (search from another sequence)
with probability ``neg_prob``. Crops follow the tracker's context rule with upstream's
shift / scale / colour / blur augmentation. Anchor labels are computed from the returned
crop boxes inside the jitted train step (:mod:`clnet_jax.targets`).

The pipeline is a pure function of (seed, element index): its iterator state is one
position, saved with every checkpoint.
"""
from __future__ import annotations

from typing import Any

import cv2
import grain
import numpy as np


class SkipSequence(Exception):
    pass


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if len(data) else None
    if img is None:
        raise SkipSequence("unreadable frame")
    return img


def context_crop(img: np.ndarray, box: np.ndarray, out_size: int, rng: np.random.Generator,
                 exemplar: int = 127, context: float = 0.5, shift: float = 0.0,
                 scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Crop of ``out_size`` around an (x, y, w, h) box at the template's scale, jittered.

    Returns the crop and the box as corners in crop pixels.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    pad = context * (w + h)
    k = exemplar / np.sqrt((w + pad) * (h + pad))  # crop pixels per frame pixel
    sx, sy = 1 + rng.uniform(-1, 1) * scale, 1 + rng.uniform(-1, 1) * scale
    dx, dy = rng.uniform(-1, 1) * shift, rng.uniform(-1, 1) * shift
    ax, ay = k / sx, k / sy
    c = (out_size - 1) / 2
    m = np.array([[ax, 0, c + dx - ax * cx], [0, ay, c + dy - ay * cy]], np.float64)
    mean = tuple(float(v) for v in img.reshape(-1, 3).mean(0))
    crop = cv2.warpAffine(img, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=mean)
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


class GroupSampler:
    """Maps (index, rng) -> one group of pairs; pickle-free, deterministic."""

    def __init__(self, source, cfg):
        self.source = source
        self.d = cfg.data
        self.t = cfg.track
        self.n = cfg.train.pairs_per_group

    def _sequence(self, rng):
        rec = self.source[int(rng.integers(len(self.source)))]
        valid = np.nonzero(rec["valid"])[0]
        if len(valid) == 0:
            raise SkipSequence("no annotated frame")
        return rec, valid

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        skipped = 0
        for _ in range(20):
            try:
                return dict(self._group(rng), skipped=np.int32(skipped))
            except SkipSequence:
                skipped += 1
        raise RuntimeError("20 sequences in a row were unusable: check the dataset")

    def _group(self, rng):
        d, t = self.d, self.t
        rec, valid = self._sequence(rng)
        out = {k: [] for k in ("template", "search", "box", "negative")}
        for _ in range(self.n):
            ti = int(rng.choice(valid))
            near = valid[np.abs(valid - ti) <= d.frame_range]
            si = int(rng.choice(near))
            negative = rng.random() < d.neg_prob
            if negative:
                other, ovalid = self._sequence(rng)
                oi = int(rng.choice(ovalid))
                s_img, s_box = _decode(other["frames"][oi]), other["boxes"][oi]
            else:
                s_img, s_box = _decode(rec["frames"][si]), rec["boxes"][si]
            z_img = _decode(rec["frames"][ti])
            z, _ = context_crop(z_img, rec["boxes"][ti], t.exemplar_size, rng,
                                t.exemplar_size, t.context_amount, d.template_shift,
                                d.template_scale)
            x, box = context_crop(s_img, s_box, t.instance_size, rng, t.exemplar_size,
                                  t.context_amount, d.search_shift, d.search_scale)
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


def make_iterator(source, cfg, seed: int, groups_per_batch: int, num_batches: int,
                  process_index: int = 0, process_count: int = 1):
    """A checkpointable grain iterator of this process's block of every global batch.

    Global batch s holds the groups s*G .. s*G + G - 1; process p draws the contiguous block
    p*G/P .. (p+1)*G/P - 1 of it. Every group is a pure function of (seed, global index),
    so the global batch, and hence training, is the same for any number of processes (and
    devices).
    """
    if groups_per_batch % process_count:
        raise ValueError(f"train.groups_per_batch={groups_per_batch} is not divisible by "
                         f"{process_count} processes")
    local = groups_per_batch // process_count
    start = process_index * local
    ds = (grain.MapDataset.range(num_batches * local)
          .map(_GlobalIndex(local, groups_per_batch, start))
          .map(_Seeded(GroupSampler(source, cfg), seed))
          .batch(local, drop_remainder=True))
    opts = grain.ReadOptions(num_threads=cfg.data.threads, prefetch_buffer_size=2 * local)
    return iter(ds.to_iter_dataset(opts))
