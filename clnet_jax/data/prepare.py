"""Writing frame-level training stores (:mod:`clnet_jax.data.frames` has their format).

Preparation (:func:`prepare`) reads a dataset in its published layout (or the synthetic
scenes), runs in worker processes, shard by shard, resumes after an interruption without
redoing finished shards, and skips — counting and listing them — unreadable or missing
frames, boxes outside their image and tracks without an annotated frame. Storage
``crop511`` keeps pysot's 511×511 context crop around the target (``par_crop``), ``full``
the original frame.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing
import os
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from clnet_jax.data import benchmarks, generators, geometry, layouts
from clnet_jax.data.frames import (  # noqa: F401
    FEATURES,
    FORMAT_VERSION,
    STORAGES,
    FrameStore,
    StoreError,
    decode,
    default_storage,
    read_index,
    shard_path,
    store_dir,
)

CROP_SIZE, EXEMPLAR, CONTEXT = 511, 127, 0.5
JPEG_QUALITY = 90


@dataclasses.dataclass(frozen=True)
class SyntheticTrack:
    """A synthetic sequence, made in the worker from its arguments (nothing read from disk)."""
    name: str
    generator: str
    split: str
    index: int
    base_seed: int
    length: int
    size: tuple[int, int]


Track = Any  # layouts.SequenceRecord | SyntheticTrack


# --------------------------------------------------------------------------- cropping

def crop511(img: np.ndarray, box: Sequence[float], pad: Sequence[float]
            ) -> tuple[np.ndarray, np.ndarray]:
    """pysot's ``par_crop`` search crop: side s_z·511/127 around the target
    (:mod:`clnet_jax.data.geometry`), resized to 511², padded with ``pad``.

    Returns the crop and the box (x, y, w, h) in crop pixels.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    s_x = geometry.padded_side(geometry.context_side(w, h, CONTEXT), EXEMPLAR, CROP_SIZE)
    a = (CROP_SIZE - 1) / s_x
    m = np.array([[a, 0, -a * (cx - s_x / 2)], [0, a, -a * (cy - s_x / 2)]], np.float64)
    crop = cv2.warpAffine(img, m, (CROP_SIZE, CROP_SIZE), borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in pad))
    return crop, np.array([a * x + m[0, 2], a * y + m[1, 2], a * w, a * h], np.float32)


def encode_jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


def _is_truncated_jpeg(data: bytes) -> bool:
    """A JPEG must end with its EOI marker; OpenCV decodes a cut file with a grey tail and
    only a warning, so the check is explicit."""
    if data[:2] != b"\xff\xd8":
        return False
    return not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")


def box_problem(box: np.ndarray, shape: tuple[int, ...]) -> str:
    x, y, w, h = (float(v) for v in box)
    if not np.all(np.isfinite(box)) or w <= 0 or h <= 0:
        return f"invalid box {[x, y, w, h]}"
    ih, iw = shape[:2]
    if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
        return f"box {[x, y, w, h]} outside the {iw}x{ih} image"
    return ""


# --------------------------------------------------------------------------- sources

# What a store can be prepared from: the synthetic scenes, the training sets' layouts, and
# every benchmark layout (``auto``: detected), so that one's own annotated videos in any of
# them train like the published sets.
SOURCES = sorted(["synthetic", "auto", *layouts.READERS,
                  *(n for n in benchmarks.LOADERS if n not in layouts.READERS)])


def list_tracks(dataset: str, root: str | None, split: str, builder_config: str = "default",
                exclude: frozenset[str] = frozenset()) -> tuple[list[Track], list[str]]:
    """The tracks of a dataset split in a deterministic order, and the sequences that the
    reader already rejected (misaligned frames, ground truth of another format), as
    messages. A benchmark layout has no splits: every sequence is a track, but those of the
    videos in ``exclude`` (held back for evaluation)."""
    if dataset == "synthetic":
        from clnet_jax.data.builders import SyntheticTracking
        c = next(b for b in SyntheticTracking.BUILDER_CONFIGS if b.name == builder_config)
        count = getattr(c, split)
        return [SyntheticTrack(generators.sequence_name(c.generator, split, i), c.generator,
                               split, i, c.seed, c.length,
                               (c.height, c.width)) for i in range(count)], []
    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {SOURCES}")
    if not root or not os.path.isdir(root):
        raise layouts.LayoutError(f"{root}: missing; set the {dataset} folder (its published "
                                  "layout) as manual_dir")
    if dataset in layouts.READERS:
        source = layouts.READERS[dataset](root, split)
    else:  # a benchmark (or any annotated videos in one of its layouts): every sequence
        source = benchmarks.records(benchmarks.detect(root) if dataset == "auto" else dataset,
                                    root, exclude)
    tracks, problems = [], []
    for rec in source:
        if rec.problem:
            problems.append(f"{rec.name}: {rec.problem}")
        else:
            tracks.append(rec)
    return tracks, problems


def _track_size(track: Track) -> int:
    if isinstance(track, layouts.SequenceRecord):
        return int(np.sum(track.valid))
    return track.length  # SyntheticTrack, or any source with iter_frames()


def _track_frames(track: Track) -> Iterator[tuple[int, Any, np.ndarray]]:
    """(frame index, image array or encoded bytes or an error message, box) per annotated
    frame. A track of another kind provides them itself (``iter_frames()``, ``length``)."""
    if hasattr(track, "iter_frames"):
        yield from track.iter_frames()
        return
    if isinstance(track, SyntheticTrack):
        _, seq = generators.make(track.generator, track.split, track.index, track.base_seed,
                                track.length, track.size)
        for i in np.nonzero(seq.valid)[0]:
            yield int(i), seq.frames[i], seq.boxes[i]
        return
    for i in np.nonzero(track.valid)[0]:
        path = track.frames[i]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            yield int(i), f"{path}: missing or unreadable ({e.strerror})", track.boxes[i]
            continue
        if _is_truncated_jpeg(data):
            yield int(i), f"{path}: truncated JPEG", track.boxes[i]
        else:
            yield int(i), (path, data), track.boxes[i]


# --------------------------------------------------------------------------- preparation

def _plan(tracks: list[Track], frames_per_shard: int) -> list[tuple[int, int]]:
    """Contiguous track ranges [start, stop) holding about ``frames_per_shard`` frames."""
    shards, start, acc = [], 0, 0
    for i, t in enumerate(tracks):
        acc += max(_track_size(t), 1)
        if acc >= frames_per_shard:
            shards.append((start, i + 1))
            start, acc = i + 1, 0
    if start < len(tracks):
        shards.append((start, len(tracks)))
    return shards


def _fingerprint(tracks: list[Track], storage: str, frames_per_shard: int) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION}|{storage}|{frames_per_shard}".encode())
    for t in tracks:
        h.update(f"{t.name}|{_track_size(t)}\n".encode())
    return h.hexdigest()[:16]


def _prepare_shard(out: str, shard: int, first_track: int, tracks: list[Track],
                   storage: str) -> dict:
    """Writes one shard (records, then its JSON summary: the JSON marks it done)."""
    from array_record.python import array_record_module
    cv2.setNumThreads(1)
    tmp = shard_path(out, shard, "array_record.tmp")
    writer = array_record_module.ArrayRecordWriter(tmp, "group_size:1")
    counts, skipped = [], []
    for k, track in enumerate(tracks):
        n = 0
        for frame, item, box in _track_frames(track):
            if isinstance(item, str):
                skipped.append(item)
                continue
            if isinstance(item, tuple):
                path, data = item
                img = decode(data)
                if img is None:
                    skipped.append(f"{path}: not a decodable image")
                    continue
            else:
                path, img = f"{track.name}#{frame}", item
                data = None
            if getattr(track, "normalised", False):
                box = layouts.to_pixels(box, img.shape)
            problem = box_problem(box, img.shape)
            if problem:
                skipped.append(f"{path}: {problem}")
                continue
            pad = img.reshape(-1, 3).mean(0).astype(np.float32)
            if storage == "crop511":
                crop, cbox = crop511(img, box, pad)
                image, out_box = encode_jpeg(crop), cbox
            else:
                image = data if data is not None else encode_jpeg(img)
                out_box = np.asarray(box, np.float32)
            writer.write(FEATURES.serialize_example(dict(
                image=image, box=out_box, pad=pad, track=first_track + k, frame=frame)))
            n += 1
        if n == 0:
            skipped.append(f"{track.name}: no usable annotated frame (track left out)")
        counts.append(n)
    writer.close()
    os.replace(tmp, shard_path(out, shard, "array_record"))
    summary = {"first_track": first_track, "names": [t.name for t in tracks],
               "counts": counts, "skipped": skipped}
    with open(shard_path(out, shard, "json.tmp"), "w") as f:
        json.dump(summary, f)
    os.replace(shard_path(out, shard, "json.tmp"), shard_path(out, shard, "json"))
    return summary


def folder_store_name(folder: str, exclude: frozenset[str] = frozenset()) -> str:
    """A store name of its own for a folder of videos: its name and a hash of its path and
    of the videos held back, so that two folders (or two splits) never share a store."""
    path = os.path.abspath(folder)
    key = "\n".join([path, *sorted(exclude)]).encode()
    return f"{os.path.basename(os.path.normpath(path))}-{hashlib.sha1(key).hexdigest()[:8]}"


def prepare(dataset: str, data_dir: str, manual_dir: str | None = None, split: str = "train",
            storage: str | None = None, workers: int = 1, builder_config: str = "default",
            frames_per_shard: int = 2048, progress: bool = True, name: str | None = None,
            exclude: frozenset[str] = frozenset()) -> str:
    """Builds (or finishes) a frame-level store and returns its folder.

    Shards are written by ``workers`` processes; a shard whose JSON exists is done and is
    not redone, so an interrupted preparation resumes where it stopped. Bad source files are
    skipped and listed in the store (``skipped.txt``); nothing else is lost. A finished store
    of another format version is refused (:class:`StoreError`), not rebuilt over.
    """
    storage = storage or default_storage(dataset)  # recorded in the plan below
    if storage not in STORAGES:
        raise ValueError(f"storage {storage!r}: choose one of {STORAGES}")
    out = store_dir(data_dir, dataset, split, storage, builder_config, name)
    if os.path.isfile(os.path.join(out, "index.json")):
        read_index(out)  # a finished store: refused here if of another version
        return out
    tracks, rejected = list_tracks(dataset, manual_dir, split, builder_config, exclude)
    if not tracks:
        raise layouts.LayoutError(f"{manual_dir}: no {dataset} sequences for split '{split}'")
    return write_store(out, tracks, storage, workers, frames_per_shard, rejected, progress,
                       desc=f"prepare {dataset}/{split}", meta={"dataset": dataset,
                                                            "split": split})


def write_store(out: str, tracks: list[Track], storage: str, workers: int = 1,
                frames_per_shard: int = 2048, rejected: Sequence[str] = (),
                progress: bool = True, desc: str = "prepare", meta: dict | None = None) -> str:
    """Writes (or finishes) the store of ``tracks`` in ``out`` (see :func:`prepare`)."""
    plan = _plan(tracks, frames_per_shard)
    fingerprint = _fingerprint(tracks, storage, frames_per_shard)
    os.makedirs(out, exist_ok=True)
    plan_file = os.path.join(out, "plan.json")
    if os.path.isfile(plan_file):
        with open(plan_file) as f:
            if json.load(f)["fingerprint"] != fingerprint:
                raise RuntimeError(f"{out}: a preparation of different source data is there; "
                                   "delete the folder or use another data_dir")
    else:
        with open(plan_file, "w") as f:
            json.dump(dict(meta or {}, fingerprint=fingerprint, shards=plan, storage=storage), f)
    todo = [i for i in range(len(plan)) if not os.path.isfile(shard_path(out, i, "json"))]
    sizes = np.fromiter((_track_size(t) for t in tracks), np.int64, len(tracks))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    shard_frames = lambda i: int(bounds[plan[i][1]] - bounds[plan[i][0]])
    total = int(bounds[-1])
    bar = tqdm(total=total, initial=total - sum(shard_frames(i) for i in todo), unit="frame",
               disable=not progress, desc=f"{desc} ({storage}, {workers} workers)")
    args = [(out, i, plan[i][0], tracks[slice(*plan[i])], storage) for i in todo]
    if min(workers, len(args)) <= 1:  # one shard: no process start-up cost
        for i, a in zip(todo, args):
            _prepare_shard(*a)
            bar.update(shard_frames(i))
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked copies of a JAX runtime
        with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {pool.submit(_prepare_shard, *a): i for i, a in zip(todo, args)}
            for fut in cf.as_completed(futures):
                fut.result()
                bar.update(shard_frames(futures[fut]))
    bar.close()
    return _write_index(out, len(plan), rejected, progress)


_INDEX_FILES = ("tracks.npy", "drawable.npy", "names.txt", "skipped.txt")


def _write_index(out: str, num_shards: int, rejected: Sequence[str], verbose: bool) -> str:
    """The track index from the shards' summaries; ``index.json`` last (it marks the store
    finished and records what the other files must hold)."""
    counts, skipped = [], list(rejected)
    with open(os.path.join(out, "names.txt.tmp"), "w") as names:
        for i in range(num_shards):
            with open(shard_path(out, i, "json")) as f:
                s = json.load(f)
            skipped += s["skipped"]
            # every planned track keeps its number (records carry it); empty ones have 0
            counts.append(np.asarray(s["counts"], np.int64))
            names.writelines(n.replace("\n", " ") + "\n" for n in s["names"])
    lengths = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    for name, array in (("tracks.npy", np.stack([offsets, lengths], 1)),
                        ("drawable.npy", np.nonzero(lengths > 0)[0].astype(np.int64))):
        with open(os.path.join(out, name + ".tmp"), "wb") as f:
            np.save(f, array)
    with open(os.path.join(out, "skipped.txt.tmp"), "w") as f:
        f.writelines(m.replace("\n", " ") + "\n" for m in skipped)
    for name in _INDEX_FILES:
        os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
    index = {"version": FORMAT_VERSION, "num_shards": num_shards,
             "num_records": int(lengths.sum()), "num_tracks": len(lengths),
             "num_drawable": int(np.count_nonzero(lengths)), "num_skipped": len(skipped),
             "shard_bytes": [os.path.getsize(shard_path(out, i, "array_record"))
                             for i in range(num_shards)],
             "file_bytes": {n: os.path.getsize(os.path.join(out, n)) for n in _INDEX_FILES}}
    with open(os.path.join(out, "index.json.tmp"), "w") as f:
        json.dump(index, f)
    os.replace(os.path.join(out, "index.json.tmp"), os.path.join(out, "index.json"))
    if verbose and skipped:
        print(f"{out}: skipped {len(skipped)} bad inputs (listed in skipped.txt); "
              f"first: {skipped[0]}")
    return out


def open_store(dataset: str, data_dir: str, manual_dir: str | None = None, split: str = "train",
               storage: str | None = None, workers: int = 1, builder_config: str = "default",
               name: str | None = None) -> FrameStore:
    """Prepares the store if needed (see :func:`prepare`) and opens it."""
    return FrameStore(prepare(dataset, data_dir, manual_dir, split, storage, workers,
                              builder_config, name=name))
