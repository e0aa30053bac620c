"""Readers of the published on-disk layouts of tracking / detection training sets.

Each reader yields :class:`SequenceRecord` s (frame file paths, boxes x,y,w,h and a
per-frame validity flag) and raises :class:`LayoutError` naming what it expected when a
directory is missing or laid out differently.

* GOT-10k:  <root>/<split>/GOT-10k_*/{00000001.jpg, groundtruth.txt[, absence.label]}
* LaSOT:    <root>/<class>/<class>-<n>/{img/00000001.jpg, groundtruth.txt,
            full_occlusion.txt, out_of_view.txt}; split 'test' = <root>/testing_set.txt
* ImageNet VID: <root>/Data/VID/<split>/**/<video>/<frame>.JPEG with
            <root>/Annotations/VID/<split>/**/<video>/<frame>.xml (one record per trackid)
* ImageNet DET: <root>/Data/DET/<split>/**/<image>.JPEG with
            <root>/Annotations/DET/<split>/**/<image>.xml (one single-frame record per object)
* COCO:     <root>/annotations/instances_<split>.json, <root>/<split>/<file_name>
            (one single-frame record per non-crowd object)
* YouTube-BB: <root>/yt_bb_detection_<split>.csv (youtube_id, timestamp_ms, class_id,
            class_name, object_id, object_presence, xmin, xmax, ymin, ymax, normalised) with
            frames at <root>/frames/<youtube_id>/<timestamp_ms>.jpg; boxes stay normalised
            (``normalised=True``) until a frame is decoded, so listing reads no image
"""
from __future__ import annotations

import csv
import glob
import json
import os
import re
import xml.etree.ElementTree as ET
from typing import Iterator, NamedTuple

import numpy as np

from clnet_jax.data import groundtruth


class LayoutError(FileNotFoundError):
    """A dataset directory that is missing or not in the expected published layout."""


class SequenceRecord(NamedTuple):
    name: str
    frames: list[str]
    boxes: np.ndarray   # (T, 4) float32 x, y, w, h
    valid: np.ndarray   # (T,) bool
    problem: str = ""   # why frames and boxes cannot be aligned (then nothing else is set)
    normalised: bool = False  # boxes in fractions of the image size (YouTube-BB)


def to_pixels(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A normalised x, y, w, h box in pixels of an image of ``shape`` (H, W, ...)."""
    h, w = shape[:2]
    return (np.asarray(box, np.float32) * np.float32([w, h, w, h])).astype(np.float32)


def frame_files(d: str, ext: str = "*.jpg") -> list[str]:
    """Frame files of a folder in frame order: numerically where every name is a number
    (so 9.jpg comes before 10.jpg), else by name."""
    files = glob.glob(os.path.join(d, ext))
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    if files and all(st.isdigit() for st in stems):
        return [f for _, f in sorted(zip(map(int, stems), files))]
    return sorted(files)


def numbering_gap(frames: list[str]) -> str:
    """A message naming the first missing frame where numbered names (``0001.jpg``,
    ``img000001.jpg``) skip one, else ''."""
    prev = None
    for f in frames:
        stem, ext = os.path.splitext(os.path.basename(f))
        m = re.fullmatch(r"(\D*)(\d+)", stem)
        if not m:
            return ""
        n = int(m.group(2))
        if prev is not None and n != prev + 1:
            missing = os.path.join(os.path.dirname(f),
                                   m.group(1) + str(prev + 1).zfill(len(m.group(2))) + ext)
            return f"{missing}: missing frame (numbering jumps from {prev} to {n})"
        prev = n
    return ""


def alignment_problem(frames: list[str], num_boxes: int, gt_file: str) -> str:
    """For layouts with one box per frame: a gap in the numbering, or more boxes than
    frames, would shift the ground truth against the frames; '' when aligned."""
    gap = numbering_gap(frames)
    if gap:
        return gap
    if num_boxes > len(frames):
        return (f"{gt_file}: {num_boxes} boxes for {len(frames)} frames (one line per frame: "
                "frames are missing)")
    return ""


def _problem_record(name: str, problem: str) -> SequenceRecord:
    return SequenceRecord(name, [], np.zeros((0, 4), np.float32), np.zeros(0, bool), problem)


def _need_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise LayoutError(f"{path}: missing; expected {what}")


def read_boxes(path: str, dtype=np.float32) -> np.ndarray:
    """x,y,w,h rows (exactly four values a line, see :mod:`clnet_jax.data.groundtruth`)."""
    return groundtruth.read_boxes(path, dtype)


def _valid(boxes: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(boxes), 1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def got10k(root: str, split: str = "train") -> Iterator[SequenceRecord]:
    base = os.path.join(root, split)
    _need_dir(base, f"GOT-10k '{split}' folder with GOT-10k_* sequences")
    names = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    if not names:
        raise LayoutError(f"{base}: no sequence folders (expected GOT-10k_{split.title()}_000001 ...)")
    for name in names:
        d = os.path.join(base, name)
        gt = os.path.join(d, "groundtruth.txt")
        if not os.path.isfile(gt):
            raise LayoutError(f"{gt}: missing (GOT-10k sequences have groundtruth.txt)")
        frames = frame_files(d)
        try:
            boxes = read_boxes(gt)
        except groundtruth.GroundTruthError as e:
            yield _problem_record(name, str(e))
            continue
        problem = alignment_problem(frames, len(boxes), gt)
        if problem:
            yield _problem_record(name, problem)
            continue
        valid = _valid(boxes)
        absence = os.path.join(d, "absence.label")
        if os.path.isfile(absence):
            valid &= np.loadtxt(absence, dtype=int, ndmin=1)[: len(valid)] == 0
        n = min(len(frames), len(boxes))
        yield SequenceRecord(name, frames[:n], boxes[:n], valid[:n])


def lasot(root: str, split: str = "train") -> Iterator[SequenceRecord]:
    _need_dir(root, "LaSOT root with <class>/<class>-<n>/ folders")
    listed = os.path.join(root, "testing_set.txt")
    test = set(open(listed).read().split()) if os.path.isfile(listed) else None
    if split == "test" and test is None:
        raise LayoutError(f"{listed}: missing; the LaSOT test split is defined by it")
    found = False
    for cls in sorted(os.listdir(root)):
        cdir = os.path.join(root, cls)
        if not os.path.isdir(cdir):
            continue
        for name in sorted(os.listdir(cdir)):
            d = os.path.join(cdir, name)
            if not os.path.isdir(os.path.join(d, "img")):
                continue
            if (split == "test") != (test is not None and name in test):
                continue
            found = True
            try:
                boxes = read_boxes(os.path.join(d, "groundtruth.txt"))
            except groundtruth.GroundTruthError as e:
                yield _problem_record(name, str(e))
                continue
            valid = _valid(boxes)
            for flag in ("full_occlusion.txt", "out_of_view.txt"):
                p = os.path.join(d, flag)
                if os.path.isfile(p):
                    v = np.asarray(open(p).read().replace(",", " ").split(), int)
                    valid[: len(v)] &= v[: len(valid)] == 0
            frames = frame_files(os.path.join(d, "img"))
            problem = alignment_problem(frames, len(boxes), os.path.join(d, "groundtruth.txt"))
            if problem:
                yield _problem_record(name, problem)
                continue
            n = min(len(frames), len(boxes))
            yield SequenceRecord(name, frames[:n], boxes[:n], valid[:n])
    if not found:
        raise LayoutError(f"{root}: no LaSOT sequences for split '{split}' "
                          "(expected <class>/<class>-<n>/img/*.jpg and groundtruth.txt)")


def imagenet_vid(root: str, split: str = "train") -> Iterator[SequenceRecord]:
    data = os.path.join(root, "Data", "VID", split)
    ann = os.path.join(root, "Annotations", "VID", split)
    _need_dir(data, "ILSVRC2015 Data/VID/<split> frames")
    _need_dir(ann, "ILSVRC2015 Annotations/VID/<split> XML files")
    videos = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(ann, "**", "*.xml"),
                                                           recursive=True)})
    if not videos:
        raise LayoutError(f"{ann}: no XML annotations found")
    for vdir in videos:
        xmls = sorted(glob.glob(os.path.join(vdir, "*.xml")))
        rel = os.path.relpath(vdir, ann)
        tracks: dict[str, dict[int, list[float]]] = {}
        for t, x in enumerate(xmls):
            for obj in ET.parse(x).getroot().findall("object"):
                bb = obj.find("bndbox")
                x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
                tracks.setdefault(obj.find("trackid").text, {})[t] = [x1, y1, x2 - x1, y2 - y1]
        frames = [os.path.join(data, rel, os.path.basename(x)[:-4] + ".JPEG") for x in xmls]
        for tid, per_frame in sorted(tracks.items()):
            boxes = np.full((len(xmls), 4), np.nan, np.float32)
            for t, b in per_frame.items():
                boxes[t] = b
            yield SequenceRecord(f"{rel}/{tid}", frames, boxes, _valid(boxes))


def imagenet_det(root: str, split: str = "train") -> Iterator[SequenceRecord]:
    data = os.path.join(root, "Data", "DET", split)
    ann = os.path.join(root, "Annotations", "DET", split)
    _need_dir(data, "ILSVRC Data/DET/<split> images")
    _need_dir(ann, "ILSVRC Annotations/DET/<split> XML files")
    xmls = sorted(glob.glob(os.path.join(ann, "**", "*.xml"), recursive=True))
    if not xmls:
        raise LayoutError(f"{ann}: no XML annotations found")
    for x in xmls:
        rel = os.path.relpath(x, ann)[:-4]
        image = os.path.join(data, rel + ".JPEG")
        for k, obj in enumerate(ET.parse(x).getroot().findall("object")):
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax"))
            box = np.asarray([[x1, y1, x2 - x1, y2 - y1]], np.float32)
            yield SequenceRecord(f"{rel}/{k}", [image], box, _valid(box))


def coco(root: str, split: str = "train2017") -> Iterator[SequenceRecord]:
    ann = os.path.join(root, "annotations", f"instances_{split}.json")
    if not os.path.isfile(ann):
        raise LayoutError(f"{ann}: missing; expected COCO annotations/instances_<split>.json")
    _need_dir(os.path.join(root, split), f"COCO image folder {split}/")
    meta = json.load(open(ann))
    files = {im["id"]: im["file_name"] for im in meta["images"]}
    for a in meta["annotations"]:
        x, y, w, h = a["bbox"]
        if a.get("iscrowd", 0) or w <= 0 or h <= 0:
            continue
        box = np.asarray([[x, y, w, h]], np.float32)
        yield SequenceRecord(f"{a['image_id']}/{a['id']}",
                             [os.path.join(root, split, files[a["image_id"]])], box,
                             np.ones(1, bool))


def youtube_bb(root: str, split: str = "train") -> Iterator[SequenceRecord]:
    table = os.path.join(root, f"yt_bb_detection_{split}.csv")
    if not os.path.isfile(table):
        raise LayoutError(f"{table}: missing; expected the YouTube-BB detection CSV")
    _need_dir(os.path.join(root, "frames"), "frames/<youtube_id>/<timestamp_ms>.jpg")
    tracks: dict[tuple, list] = {}
    with open(table) as f:
        for row in csv.reader(f):
            if len(row) != 10:
                raise LayoutError(f"{table}: rows need 10 columns, got {len(row)}")
            yid, ts, cid, _, oid, present = row[:6]
            tracks.setdefault((yid, cid, oid), []).append(
                (int(ts), present == "present", [float(v) for v in row[6:]]))
    for (yid, cid, oid), rows in sorted(tracks.items()):
        rows.sort()
        frames = [os.path.join(root, "frames", yid, f"{ts}.jpg") for ts, _, _ in rows]
        boxes = np.full((len(rows), 4), np.nan, np.float32)
        for i, (_, present, (x1, x2, y1, y2)) in enumerate(rows):
            if present:  # in fractions of the frame: scaled once the frame is decoded
                boxes[i] = [x1, y1, x2 - x1, y2 - y1]
        yield SequenceRecord(f"{yid}/{cid}/{oid}", frames, boxes, _valid(boxes),
                             normalised=True)


READERS = {"got10k": got10k, "lasot": lasot, "imagenet_vid": imagenet_vid,
           "imagenet_det": imagenet_det, "coco": coco, "youtube_bb": youtube_bb}
