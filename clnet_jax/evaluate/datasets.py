"""Evaluation datasets: the benchmarks as published (:mod:`clnet_jax.data.benchmarks`),
pysot's JSON files where they are present, GOT-10k, and the synthetic test split.

Every loader returns ``(sequences, problems)``: :class:`EvalSequence` s and, for sequences
that cannot be evaluated, a message naming the file (those are reported as failed while
the others are still evaluated).

* The benchmarks of :data:`clnet_jax.data.benchmarks.LOADERS` (``otb100``, ``uav123``,
  ``tlp``, ``vot2019``, ``folder``, ...) read from their official folder layouts; for
  ``otb100``, ``otb2013``, ``uav123``, ``uav20l``, ``dtb70``, ``nfs30``, ``nfs240`` and
  ``lasot`` pysot's JSON file (``OTB100.json`` ...) is used instead when the folder has one.
* ``got10k`` (val, with the meta data its protocol scores with; ``got10k_test`` has initial
  boxes only), ``synthetic`` (the TFDS test split of the synthetic benchmark).
* ``auto``: the benchmark detected from the folder's contents.
"""
from __future__ import annotations

import json
import os

import numpy as np

from clnet_jax.data import benchmarks, groundtruth, layouts

EvalSequence = benchmarks.BenchmarkSequence

# pysot's JSON file of each benchmark, used when present in the data directory
PYSOT_JSON = {"otb100": "OTB100", "otb2013": "OTB2013", "uav123": "UAV123", "uav20l": "UAV20L",
              "dtb70": "DTB70", "nfs30": "NFS30", "nfs240": "NFS240", "lasot": "LaSOT"}
OTHER = ("got10k", "got10k_test", "synthetic")


def names() -> list[str]:
    """Every dataset name ``load`` takes."""
    return sorted([*benchmarks.LOADERS, *OTHER, "auto"])


def folder(root: str) -> tuple[list[EvalSequence], dict[str, str]]:
    return benchmarks.folder(root)


def pysot_json(root: str, name: str) -> tuple[list[EvalSequence], dict[str, str]]:
    """pysot's <NAME>.json: {seq: {img_names: [...], gt_rect: [[x, y, w, h], ...]}}."""
    meta = json.load(open(os.path.join(root, f"{name}.json")))
    seqs, problems = [], {}
    for seq, m in sorted(meta.items()):
        frames = [os.path.join(root, p) for p in m["img_names"]]
        try:
            gt = np.asarray(m["gt_rect"], np.float64)
            if gt.ndim != 2 or gt.shape[1] != 4:
                raise groundtruth.GroundTruthError(f"{name}.json:{seq}: gt_rect is not a list "
                                                   "of x,y,w,h boxes")
            present = (np.asarray(m["absent"], np.int8) == 1 if "absent" in m else None)
            s = benchmarks.aligned(seq, frames, gt, f"{name}.json:{seq}")
            seqs.append(s._replace(meta={"attr": list(m.get("attr", []))}, present=present))
        except ValueError as e:
            problems[seq] = str(e)
    return seqs, problems


def from_source(src) -> list[EvalSequence]:
    """Sequences of a TFDS split (encoded frames), starting at the first annotated frame."""
    seqs = []
    for i in range(len(src)):
        r = src[i]
        valid = np.asarray(r["valid"], bool)
        if not valid.any():
            continue
        first = int(np.argmax(valid))
        gt = np.where(valid[:, None], r["boxes"], np.nan).astype(np.float64)[first:]
        name = r["name"].decode() if isinstance(r["name"], bytes) else str(r["name"])
        seqs.append(EvalSequence(name, list(r["frames"])[first:], gt, False))
    return sorted(seqs)


def synthetic(data_dir: str, split: str = "test") -> tuple[list[EvalSequence], dict[str, str]]:
    from clnet_jax.data import builders
    return from_source(builders.prepare("synthetic", data_dir, config="default")
                       .as_data_source()[split]), {}


def _got10k_meta(d: str, n: int) -> dict:
    """What the GOT-10k protocol scores with: the per-frame visible ratio (``cover.label``,
    0 = absent) and the image resolution (``meta_info.ini``) that boxes are clipped to."""
    cover_file = os.path.join(d, "cover.label")
    if not os.path.isfile(cover_file):
        raise ValueError(f"{cover_file}: missing (the GOT-10k protocol scores visible frames)")
    cover = np.loadtxt(cover_file, ndmin=1)
    if len(cover) != n:
        raise ValueError(f"{cover_file}: {len(cover)} labels for {n} frames")
    resolution = None
    info = os.path.join(d, "meta_info.ini")
    if os.path.isfile(info):
        for line in open(info).read().splitlines():
            if line.startswith("resolution: "):
                resolution = tuple(float(v) for v in line.split(": ", 1)[1].strip("() ").split(","))
    if resolution is None:
        raise ValueError(f"{info}: no 'resolution: (W, H)' line")
    return {"cover": cover, "resolution": resolution}


def got10k_val(root: str) -> tuple[list[EvalSequence], dict[str, str]]:
    """GOT-10k val with the raw boxes and the meta data its protocol needs."""
    seqs, problems = [], {}
    for r in layouts.got10k(root, "val"):
        if r.problem:
            problems[r.name] = r.problem
            continue
        d = os.path.join(root, "val", r.name)
        try:
            meta = _got10k_meta(d, len(r.frames))
        except ValueError as e:
            problems[r.name] = str(e)
            continue
        gt = groundtruth.read_boxes(os.path.join(d, "groundtruth.txt"))
        seqs.append(EvalSequence(r.name, list(r.frames), gt, False, meta))
    return seqs, problems


def load(dataset: str, data_dir: str) -> tuple[list[EvalSequence], dict[str, str]]:
    if dataset == "auto":
        dataset = benchmarks.detect(data_dir)
    if dataset in PYSOT_JSON and os.path.isfile(os.path.join(data_dir, f"{PYSOT_JSON[dataset]}.json")):
        return pysot_json(data_dir, PYSOT_JSON[dataset])
    if dataset in benchmarks.LOADERS:
        return benchmarks.LOADERS[dataset](data_dir)
    if dataset == "got10k":
        return got10k_val(data_dir)
    if dataset == "got10k_test":
        seqs, problems = folder(os.path.join(data_dir, "test"))
        return [s._replace(init_only=True) for s in seqs], problems
    if dataset == "synthetic":
        return synthetic(data_dir)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {names()}")
