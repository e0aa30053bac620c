"""The tracking benchmarks in the folder layouts they are published in.

Every loader takes the benchmark's root folder and returns ``(sequences, problems)``:
:class:`BenchmarkSequence` s, and for each sequence that cannot be read a message naming
the file (the others still load). Nothing is guessed: ground truth is read by the column
count of its format (:mod:`clnet_jax.data.groundtruth`), and frames and boxes must align.

- ``otb100``, ``otb2013``: ``<Seq>/img/0001.jpg``, ``groundtruth_rect.txt``; two targets
  as ``groundtruth_rect.1.txt``, ``.2.txt`` (``Jogging-1``, ``Jogging-2``); the toolkit's
  frame ranges (David 300-770, ...)
- ``uav123``, ``uav20l``, ``uav123_10fps``: ``data_seq/<set>/<video>/000001.jpg``,
  ``anno/<set>/<seq>.txt``; sub-sequences are frame ranges of a video
  (``tables/uav123.json``)
- ``dtb70``, ``folder``: ``<Seq>/img/*.jpg|png``, ``groundtruth_rect.txt`` (``folder``: also
  ``groundtruth.txt``, frames beside it)
- ``uavdt``: ``UAV-benchmark-S/<seq>/img000001.jpg``,
  ``UAV-benchmark-SOT_v1.0/anno/<seq>_gt.txt``
- ``nfs30``, ``nfs240``: ``<seq>/<fps>/<seq>/00001.jpg``, ``<seq>/<fps>/<seq>.txt`` (240 fps
  labels, every 8th for 30 fps)
- ``tlp``, ``tinytlp``: ``<Seq>/img/00001.jpg``, ``groundtruth_rect.txt`` as
  ``frame,x,y,w,h,isLost``
- ``trackingnet``: ``TRAIN_<k>/frames/<seq>/0.jpg``, ``TRAIN_<k>/anno/<seq>.txt``; ``TEST/``
  (first box only)
- ``vot2019``: ``[list.txt]``, ``<seq>/color/00000001.jpg`` or ``<seq>/00000001.png``,
  ``groundtruth.txt``
- ``lasot``, ``got10k``: see :mod:`clnet_jax.data.layouts`

``gt`` is NaN on frames where the benchmark marks the target absent (NaN rows, TLP's
``isLost``, LaSOT's occlusion and out-of-view labels); ``present`` keeps the benchmark's own
absence labels where it has them, since the toolkits score those frames by their own rules.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import re
from typing import Callable, NamedTuple

import numpy as np

from clnet_jax.data import groundtruth, layouts

_TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


class BenchmarkSequence(NamedTuple):
    name: str
    frames: list              # file paths or encoded image bytes
    gt: np.ndarray            # (N, 4) x, y, w, h (VOT: its regions); NaN where unknown
    init_only: bool           # only the first box is known: tracked, not scored
    meta: dict | None = None  # GOT-10k: {'cover', 'resolution'}; pysot JSON: {'attr': [...]}
    present: np.ndarray | None = None  # the benchmark's own absence labels, where it has any


Loaded = tuple[list[BenchmarkSequence], dict[str, str]]


@functools.cache
def table(name: str) -> dict:
    """A table shipped with the package (``data/tables/<name>.json``)."""
    with open(os.path.join(_TABLES, f"{name}.json")) as f:
        return json.load(f)


def images(d: str) -> list[str]:
    """The frames of a folder: its JPEGs, else its PNGs, in frame order."""
    jpg = layouts.frame_files(d, "*.jpg")
    return jpg if jpg else layouts.frame_files(d, "*.png")


def aligned(name: str, frames: list, gt: np.ndarray, gt_file: str,
            present: np.ndarray | None = None) -> BenchmarkSequence:
    """One box per frame, or only the initial one (tracked, not scored); any other count
    fails the sequence rather than shift the ground truth against the frames."""
    if not frames:
        raise ValueError(f"{name}: no frames found")
    if len(gt) == 0:
        raise ValueError(f"{gt_file}: empty ground-truth file")
    if len(gt) == 1 and len(frames) > 1:
        full = np.full((len(frames), gt.shape[1]), np.nan)
        full[0] = gt[0]
        return BenchmarkSequence(name, frames, full, True)
    if len(gt) != len(frames):
        raise ValueError(f"{gt_file}: {len(gt)} boxes for {len(frames)} frames")
    gt = np.asarray(gt, np.float64)
    if present is not None:
        gt = np.where(present[:, None], gt, np.nan)
    return BenchmarkSequence(name, frames, gt, False, None, present)


def _need(root: str, what: str) -> None:
    if not os.path.isdir(root):
        raise layouts.LayoutError(f"{root}: missing; expected {what}")


def _checked_frames(d: str) -> list[str]:
    frames = images(d)
    gap = layouts.numbering_gap(frames)
    if gap:
        raise ValueError(gap)
    return frames


def _targets(d: str) -> list[tuple[str, str]]:
    """(suffix, ground-truth file) of each target of an OTB folder: ``groundtruth_rect.txt``,
    or one ``groundtruth_rect.<k>.txt`` per target; empty files hold no target (Human4's
    ``.1``), as the OTB toolkits skip them."""
    files = sorted(glob.glob(os.path.join(d, "groundtruth_rect.*.txt")),
                   key=lambda f: int(re.sub(r"\D", "", os.path.basename(f)) or 0))
    files = [f for f in files if re.fullmatch(r"groundtruth_rect\.\d+\.txt", os.path.basename(f))]
    if not files:
        return [("", os.path.join(d, "groundtruth_rect.txt"))]
    full = [f for f in files if open(f).read().strip()]
    if len(full) == 1:
        return [("", full[0])]
    return [(f"-{os.path.basename(f).split('.')[1]}", f) for f in full]


def _otb_folder(root: str, name: str, frame_range: tuple[int, int] | None = None
                ) -> list[BenchmarkSequence]:
    d = os.path.join(root, name)
    img = os.path.join(d, "img")
    frames = _checked_frames(img if os.path.isdir(img) else d)
    if frame_range:
        frames = frames[frame_range[0] - 1:frame_range[1]]
    out = []
    for suffix, gt_file in _targets(d):
        if not os.path.isfile(gt_file):
            alt = os.path.join(d, "groundtruth.txt")
            if suffix or not os.path.isfile(alt):
                raise ValueError(f"{gt_file}: missing")
            gt_file = alt
        seq = aligned(name + suffix, frames, groundtruth.read_boxes(gt_file), gt_file)
        out.append(seq._replace(meta={"video": name}) if suffix else seq)
    return out


def _each(names, load: Callable[[str], list[BenchmarkSequence]]) -> Loaded:
    seqs, problems = [], {}
    for name in names:
        try:
            seqs.extend(load(name))
        except ValueError as e:
            problems[name] = str(e)
    return seqs, problems


def folder(root: str) -> Loaded:
    """Every subfolder in the OTB layout (``img/`` or frames beside the ground truth)."""
    _need(root, "sequence folders with img/ and groundtruth_rect.txt")
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    if not names:
        raise layouts.LayoutError(f"{root}: no sequence folders")
    return _each(names, lambda n: _otb_folder(root, n))


def otb(root: str, version: str = "otb100") -> Loaded:
    """OTB-2013 / OTB-100: the version's folders that are present, with the toolkit's frame
    ranges; a listed folder that is absent is reported, a folder not listed is left out."""
    _need(root, f"the {version} sequence folders (<Seq>/img, groundtruth_rect.txt)")
    t = table("otb")
    present = [n for n in t[version] if os.path.isdir(os.path.join(root, n))]
    if not present:
        raise layouts.LayoutError(f"{root}: none of the {len(t[version])} {version} sequence "
                                  f"folders (e.g. {t[version][0]}/img)")
    seqs, problems = _each(present, lambda n: _otb_folder(root, n, t["frames"].get(n)))
    for n in t[version]:
        if n not in present:
            problems[n] = f"{os.path.join(root, n)}: {_MISSING} ({version} lists it)"
    return seqs, problems


_MISSING = "missing folder"


def is_missing(problem: str) -> bool:
    """Whether a problem is a listed sequence whose folder is absent (a partial copy of the
    benchmark), not a sequence that failed to load."""
    return f": {_MISSING} (" in problem


def uav(root: str, version: str = "UAV123") -> Loaded:
    """UAV123 / UAV20L / UAV123@10fps: each sub-sequence a frame range of one video."""
    meta = table("uav123")[version]
    data = "UAV123_10fps" if version == "UAV123_10fps" else "UAV123"
    anno = os.path.join(root, "anno", version)
    _need(anno, f"the official {version} layout (anno/{version}/<seq>.txt, "
                f"data_seq/{data}/<video>/000001.jpg)")
    names = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(anno, "*.txt")))
    if not names:
        raise layouts.LayoutError(f"{anno}: no <seq>.txt annotation files")

    def load(name):
        if name not in meta:
            raise ValueError(f"{os.path.join(anno, name)}.txt: {name} is not a {version} "
                             "sequence (tables/uav123.json has its frame ranges)")
        m = meta[name]
        video = os.path.join(root, "data_seq", data, m["folder_name"])
        frames = [os.path.join(video, f"{i:06d}.jpg")
                  for i in range(m["start_frame"], m["end_frame"] + 1)]
        missing = next((f for f in frames if not os.path.isfile(f)), None)
        if missing:
            raise ValueError(f"{missing}: missing frame")
        gt_file = os.path.join(anno, f"{name}.txt")
        seq = aligned(name, frames, groundtruth.read_boxes(gt_file), gt_file)
        return [seq._replace(meta={"video": m["folder_name"]})]
    return _each(names, load)


def dtb70(root: str) -> Loaded:
    _need(root, "DTB70 sequence folders (<Seq>/img/00001.jpg, groundtruth_rect.txt)")
    names = sorted(os.path.basename(os.path.dirname(f))
                   for f in glob.glob(os.path.join(root, "*", "groundtruth_rect.txt")))
    if not names:
        raise layouts.LayoutError(f"{root}: no <Seq>/groundtruth_rect.txt")
    return _each(names, lambda n: _otb_folder(root, n))


def tlp(root: str) -> Loaded:
    """TLP / TinyTLP: ``isLost`` frames are absent targets."""
    _need(root, "TLP sequence folders (<Seq>/img/00001.jpg, groundtruth_rect.txt)")
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))

    def load(name):
        d = os.path.join(root, name)
        gt_file = os.path.join(d, "groundtruth_rect.txt")
        if not os.path.isfile(gt_file):
            raise ValueError(f"{gt_file}: missing")
        boxes, lost = groundtruth.read_tlp(gt_file)
        return [aligned(name, _checked_frames(os.path.join(d, "img")), boxes, gt_file, ~lost)]
    return _each(names, load)


def uavdt(root: str) -> Loaded:
    frames_root = os.path.join(root, "UAV-benchmark-S")
    anno = os.path.join(root, "UAV-benchmark-SOT_v1.0", "anno")
    _need(frames_root, "UAVDT's UAV-benchmark-S/<seq>/img000001.jpg")
    _need(anno, "UAVDT's UAV-benchmark-SOT_v1.0/anno/<seq>_gt.txt")
    names = sorted(os.path.basename(f)[:-7] for f in glob.glob(os.path.join(anno, "*_gt.txt")))
    if not names:
        raise layouts.LayoutError(f"{anno}: no <seq>_gt.txt files")

    def load(name):
        gt_file = os.path.join(anno, f"{name}_gt.txt")
        frames = _checked_frames(os.path.join(frames_root, name))
        return [aligned(name, frames, groundtruth.read_boxes(gt_file), gt_file)]
    return _each(names, load)


def nfs(root: str, fps: int = 30) -> Loaded:
    """NfS at 30 or 240 fps, aligned as the got10k toolkit does: the 240 fps labels taken
    every 8th frame when a 30 fps folder has 8x fewer frames, one surplus frame dropped."""
    _need(root, f"NfS sequence folders (<seq>/{fps}/<seq>/00001.jpg, <seq>/{fps}/<seq>.txt)")
    files = sorted(glob.glob(os.path.join(root, "*", str(fps), "*.txt")))
    if not files:
        raise layouts.LayoutError(f"{root}: no <seq>/{fps}/<seq>.txt annotation files")
    by_name = {os.path.basename(f)[:-4]: f for f in files}

    def load(name):
        gt_file = by_name[name]
        frames = layouts.frame_files(os.path.join(os.path.dirname(gt_file), name))
        gt = groundtruth.read_nfs(gt_file)
        if frames and len(gt) != len(frames):
            if abs(len(gt) / len(frames) - 8) < 1:
                gt = gt[0::8]
            if 0 < abs(len(frames) - len(gt)) <= 1:
                n = min(len(frames), len(gt))
                gt, frames = gt[:n], frames[:n]
        return [aligned(name, frames, gt, gt_file)]
    return _each(sorted(by_name), load)


def trackingnet(root: str) -> Loaded:
    """TrackingNet: ``TEST/`` when present (initial boxes only: tracked, not scored), else
    every ``TRAIN_<k>/`` chunk."""
    _need(root, "TrackingNet's TRAIN_<k>/ or TEST/ folders with frames/ and anno/")
    subsets = (["TEST"] if os.path.isdir(os.path.join(root, "TEST")) else
               sorted(d for d in os.listdir(root) if re.fullmatch(r"TRAIN_\d+", d)))
    if not subsets:
        raise layouts.LayoutError(f"{root}: no TRAIN_<k>/ or TEST/ folder")
    pairs = []
    for s in subsets:
        _need(os.path.join(root, s, "anno"), f"{s}/anno/<seq>.txt")
        pairs += [(s, os.path.basename(f)[:-4])
                  for f in sorted(glob.glob(os.path.join(root, s, "anno", "*.txt")))]

    def load(key):
        s, name = key.split("/")
        gt_file = os.path.join(root, s, "anno", f"{name}.txt")
        frames = _checked_frames(os.path.join(root, s, "frames", name))
        return [aligned(name, frames, groundtruth.read_boxes(gt_file), gt_file)]
    return _each([f"{s}/{n}" for s, n in pairs], load)


def vot(root: str) -> Loaded:
    """VOT: ``gt`` keeps each frame's region as given (4 or 8 values; NaN-padded to the
    widest), one region per frame."""
    _need(root, "VOT sequence folders")
    listed = os.path.join(root, "list.txt")
    names = (open(listed).read().split() if os.path.isfile(listed)
             else sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))))

    def load(name):
        d = os.path.join(root, name)
        gt_file = os.path.join(d, "groundtruth.txt")
        if not os.path.isfile(gt_file):
            raise ValueError(f"{gt_file}: missing")
        regions = groundtruth.read_regions(gt_file)
        color = os.path.join(d, "color")
        frames = _checked_frames(color if os.path.isdir(color) else d)
        if len(regions) != len(frames) or not frames:
            raise ValueError(f"{gt_file}: {len(regions)} regions for {len(frames)} frames")
        gt = np.full((len(frames), max(len(r) for r in regions)), np.nan)
        for i, r in enumerate(regions):
            gt[i, :len(r)] = r
        return [BenchmarkSequence(name, frames, gt, False)]
    return _each(names, load)


def as_boxes(seq: BenchmarkSequence) -> np.ndarray:
    """(N, 4) x,y,w,h of a sequence: VOT polygons as their bounding rectangles."""
    if seq.gt.shape[1] == 4:
        return seq.gt
    out = np.full((len(seq.gt), 4), np.nan)
    for i, r in enumerate(seq.gt):
        r = r[np.isfinite(r)]
        if r.size in (4, 8):
            out[i] = groundtruth.polygon_to_box(r, "vot")
    return out


def lasot(root: str) -> Loaded:
    """LaSOT's test split; occluded and out-of-view frames are its absence labels."""
    seqs, problems = [], {}
    for r in layouts.lasot(root, "test"):
        if r.problem:
            problems[r.name] = r.problem
            continue
        gt = np.where(r.valid[:, None], r.boxes, np.nan).astype(np.float64)
        seqs.append(BenchmarkSequence(r.name, list(r.frames), gt, False, None, r.valid.copy()))
    return seqs, problems


LOADERS: dict[str, Callable[[str], Loaded]] = {
    "folder": folder,
    "otb100": functools.partial(otb, version="otb100"),
    "otb2013": functools.partial(otb, version="otb2013"),
    "uav123": functools.partial(uav, version="UAV123"),
    "uav20l": functools.partial(uav, version="UAV20L"),
    "uav123_10fps": functools.partial(uav, version="UAV123_10fps"),
    "dtb70": dtb70,
    "uavdt": uavdt,
    "nfs30": functools.partial(nfs, fps=30),
    "nfs240": functools.partial(nfs, fps=240),
    "tlp": tlp,
    "tinytlp": tlp,
    "trackingnet": trackingnet,
    "vot2019": vot,
    "lasot": lasot,
}


def detect(root: str) -> str:
    """The benchmark whose published layout ``root`` holds, from its contents alone."""
    _need(root, "a benchmark folder")
    has = lambda *p: os.path.exists(os.path.join(root, *p))
    subdirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if has("anno") and has("data_seq"):
        for version, name in (("UAV123_10fps", "uav123_10fps"), ("UAV123", "uav123"),
                              ("UAV20L", "uav20l")):
            if has("anno", version):
                return name
    if has("UAV-benchmark-S"):
        return "uavdt"
    if has("TEST", "anno") or any(re.fullmatch(r"TRAIN_\d+", d) for d in subdirs):
        return "trackingnet"
    if has("train") or has("val") or has("test"):
        if glob.glob(os.path.join(root, "*", "GOT-10k_*")):
            return "got10k"
    if glob.glob(os.path.join(root, "*", "*", "img")) and not glob.glob(
            os.path.join(root, "*", "img")):
        return "lasot"
    for fps in (30, 240):
        if glob.glob(os.path.join(root, "*", str(fps), "*.txt")):
            return f"nfs{fps}"
    otb100 = set(table("otb")["otb100"])
    if subdirs and all(d in otb100 for d in subdirs):
        return "otb100"
    for d in subdirs:
        gt = os.path.join(root, d, "groundtruth.txt")
        if os.path.isfile(gt):
            return "vot2019"
        gt = os.path.join(root, d, "groundtruth_rect.txt")
        if os.path.isfile(gt):
            with open(gt) as f:
                first = f.readline().replace(",", " ").replace("\t", " ").split()
            return "tlp" if len(first) == 6 else "folder"
        if glob.glob(os.path.join(root, d, "groundtruth_rect.*.txt")):
            return "folder"
    raise layouts.LayoutError(
        f"{root}: no benchmark layout recognised (looked for anno/ + data_seq/ (UAV123), "
        "UAV-benchmark-S/ (UAVDT), TRAIN_<k>/ or TEST/ (TrackingNet), train|val/GOT-10k_* "
        "(GOT-10k), <class>/<class>-<n>/img (LaSOT), <seq>/30|240/ (NfS), <seq>/groundtruth.txt "
        "(VOT), <seq>/groundtruth_rect.txt (OTB-style folders, TLP))")


def load(dataset: str, root: str) -> Loaded:
    """``dataset`` one of :data:`LOADERS` or ``auto`` (see :func:`detect`)."""
    if dataset == "auto":
        dataset = detect(root)
    if dataset not in LOADERS:
        raise ValueError(f"unknown benchmark {dataset!r}; choose one of {sorted(LOADERS)} "
                         "or auto")
    return LOADERS[dataset](root)


def video_of(seq: BenchmarkSequence) -> str:
    """The video a sequence comes from: targets of one OTB folder and sub-sequences of one
    UAV123 video share it (a split by video keeps them together)."""
    return (seq.meta or {}).get("video", seq.name)


def held_out(videos: list[str], named: list[str], every: int) -> set[str]:
    """The videos held back for evaluation: those of ``named`` that are present, or, where
    none is, every ``every``-th video in name order (0: none)."""
    named_here = set(named) & set(videos)
    if named_here:
        return named_here
    return set(sorted(set(videos))[every - 1::every]) if every > 0 else set()


def records(dataset: str, root: str, exclude: frozenset[str] = frozenset()
            ) -> list[layouts.SequenceRecord]:
    """A benchmark's sequences as training records: boxes float32, frames where the target
    is present and annotated drawable; a sequence that does not load is a problem record.
    Sequences of the videos in ``exclude`` (held back for evaluation) are left out."""
    seqs, problems = load(dataset, root)
    seqs = [s for s in seqs if video_of(s) not in exclude]
    out = [layouts.SequenceRecord(n, [], np.zeros((0, 4), np.float32), np.zeros(0, bool), p)
           for n, p in sorted(problems.items()) if not is_missing(p) and n not in exclude]
    for s in seqs:
        if s.init_only:
            continue
        boxes = as_boxes(s).astype(np.float32)
        valid = np.all(np.isfinite(boxes), 1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        out.append(layouts.SequenceRecord(s.name, list(s.frames), np.nan_to_num(boxes), valid))
    return out
