"""Evaluation datasets from their published layouts (and pysot JSON files where they exist).

Every loader returns ``(sequences, problems)``: :class:`EvalSequence` s and, for sequences
that cannot be evaluated, a message naming the file (those are reported as failed while
the others are still evaluated).

* ``folder``: every subdirectory in the OTB layout (``img/*.jpg|png`` and
  ``groundtruth_rect.txt``, values separated by commas, spaces or tabs). A file with only
  the initial box tracks the whole sequence and leaves it out of the metrics.
* ``otb100``, ``uav123``, ``dtb70``, ``nfs30``: the pysot JSON file (``OTB100.json`` …)
  in the data directory if present, else the folder layout.
* ``lasot`` (test split), ``got10k`` (val; ``got10k_test`` has initial boxes only),
  ``synthetic`` (the TFDS test split of the synthetic benchmark).
"""
from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from clnet_jax.data import layouts


class EvalSequence(NamedTuple):
    name: str
    frames: list          # file paths or encoded image bytes
    gt: np.ndarray        # (N, 4) x, y, w, h; NaN where unknown
    init_only: bool       # only the first box is known: tracked, not scored
    meta: dict | None = None  # GOT-10k: {'cover', 'resolution'}; pysot JSON: {'attr': [...]}


def _images(d: str) -> list[str]:
    jpg = layouts.frame_files(d, "*.jpg")
    return jpg if jpg else layouts.frame_files(d, "*.png")


def _sequence(name: str, frames: list, gt: np.ndarray, gt_file: str) -> EvalSequence:
    """One box per frame (or only the initial one): surplus boxes fail the sequence rather
    than shift the ground truth."""
    if not frames:
        raise ValueError(f"{name}: no frames found")
    if len(gt) == 0:
        raise ValueError(f"{gt_file}: empty ground-truth file")
    if len(gt) == 1 and len(frames) > 1:
        full = np.full((len(frames), 4), np.nan)
        full[0] = gt[0]
        return EvalSequence(name, frames, full, True)
    if len(gt) != len(frames):
        raise ValueError(f"{gt_file}: {len(gt)} boxes for {len(frames)} frames")
    return EvalSequence(name, frames, np.asarray(gt, np.float64), False)


def folder(root: str) -> tuple[list[EvalSequence], dict[str, str]]:
    if not os.path.isdir(root):
        raise layouts.LayoutError(f"{root}: missing; expected sequence folders with img/ "
                                  "and groundtruth_rect.txt")
    seqs, problems = [], {}
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isdir(d):
            continue
        gt_file = next((os.path.join(d, f) for f in ("groundtruth_rect.txt", "groundtruth.txt")
                        if os.path.isfile(os.path.join(d, f))), os.path.join(d, "groundtruth_rect.txt"))
        try:
            if not os.path.isfile(gt_file):
                raise ValueError(f"{gt_file}: missing")
            img = os.path.join(d, "img")
            frames = _images(img if os.path.isdir(img) else d)
            gap = layouts.numbering_gap(frames)  # (a JSON's frame list may skip on purpose)
            if gap:
                raise ValueError(gap)
            seqs.append(_sequence(name, frames, layouts.read_boxes(gt_file, np.float64), gt_file))
        except ValueError as e:
            problems[name] = str(e)
    if not seqs and not problems:
        raise layouts.LayoutError(f"{root}: no sequence folders")
    return seqs, problems


def pysot_json(root: str, name: str) -> tuple[list[EvalSequence], dict[str, str]]:
    """pysot's <NAME>.json: {seq: {img_names: [...], gt_rect: [[x, y, w, h], ...]}}."""
    meta = json.load(open(os.path.join(root, f"{name}.json")))
    seqs, problems = [], {}
    for seq, m in sorted(meta.items()):
        frames = [os.path.join(root, p) for p in m["img_names"]]
        try:
            gt = np.asarray(m["gt_rect"], np.float64).reshape(-1, 4)
            s = _sequence(seq, frames, gt, f"{name}.json:{seq}")
            seqs.append(s._replace(meta={"attr": list(m.get("attr", []))}))
        except ValueError as e:
            problems[seq] = str(e)
    return seqs, problems


def _records(records) -> tuple[list[EvalSequence], dict[str, str]]:
    seqs, problems = [], {}
    for r in records:
        if r.problem:
            problems[r.name] = r.problem
            continue
        gt = np.where(r.valid[:, None], r.boxes, np.nan).astype(np.float64)
        seqs.append(EvalSequence(r.name, list(r.frames), gt, False))
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


def vot(root: str) -> tuple[list[EvalSequence], dict[str, str]]:
    """VOT layout: [list.txt], <seq>/color/*.jpg (or <seq>/*.jpg), groundtruth.txt with
    4 (x,y,w,h) or 8 (polygon) values per line. ``gt`` keeps the regions as given."""
    if not os.path.isdir(root):
        raise layouts.LayoutError(f"{root}: missing; expected VOT sequence folders")
    listed = os.path.join(root, "list.txt")
    names = (open(listed).read().split() if os.path.isfile(listed)
             else sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))))
    seqs, problems = [], {}
    for name in names:
        d = os.path.join(root, name)
        gt_file = os.path.join(d, "groundtruth.txt")
        try:
            if not os.path.isfile(gt_file):
                raise ValueError(f"{gt_file}: missing")
            rows = [np.asarray(line.replace("\t", ",").replace(" ", ",").split(","), np.float64)
                    for line in open(gt_file).read().split("\n") if line.strip()]
            color = os.path.join(d, "color")
            frames = _images(color if os.path.isdir(color) else d)
            if len(rows) < len(frames) or not frames:
                raise ValueError(f"{gt_file}: {len(rows)} regions for {len(frames)} frames")
            width = max(len(r) for r in rows)
            gt = np.full((len(frames), width), np.nan)
            for i, r in enumerate(rows[: len(frames)]):
                gt[i, : len(r)] = r
            seqs.append(EvalSequence(name, frames, gt, False))
        except ValueError as e:
            problems[name] = str(e)
    return seqs, problems


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
        gt = layouts.read_boxes(os.path.join(d, "groundtruth.txt"), np.float64)
        seqs.append(EvalSequence(r.name, list(r.frames), gt, False, meta))
    return seqs, problems


def load(dataset: str, data_dir: str) -> tuple[list[EvalSequence], dict[str, str]]:
    json_names = {"otb100": "OTB100", "uav123": "UAV123", "dtb70": "DTB70", "nfs30": "NFS30"}
    if dataset == "folder":
        return folder(data_dir)
    if dataset in json_names:
        if os.path.isfile(os.path.join(data_dir, f"{json_names[dataset]}.json")):
            return pysot_json(data_dir, json_names[dataset])
        return folder(data_dir)
    if dataset == "lasot":
        return _records(layouts.lasot(data_dir, "test"))
    if dataset == "got10k":
        return got10k_val(data_dir)
    if dataset == "got10k_test":
        seqs, problems = folder(os.path.join(data_dir, "test"))
        return [s._replace(init_only=True) for s in seqs], problems
    if dataset == "synthetic":
        return synthetic(data_dir)
    if dataset == "vot2019":
        return vot(data_dir)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of "
                     f"{sorted(['folder', 'lasot', 'got10k', 'got10k_test', 'synthetic', 'vot2019', *json_names])}")
