"""Frame-level training stores: one record per annotated (frame, object), random access.

A store is a folder of array_record shards plus a small index: per track its first record
and its number of records (``tracks.npy``, memory-mapped, so opening a store of millions of
tracks reads a few bytes and every process and grain worker shares the page cache), so
drawing a pair is two random reads whatever the sequence length (the whole-sequence records
of :mod:`clnet_jax.data.builders` cost a read of every frame). Records are serialised with TFDS's feature encoding (``FEATURES``, no TensorFlow):

* ``image``: JPEG bytes — the original frame (storage ``full``) or pysot's 511×511 context
  crop around the target (storage ``crop511``, the default for real datasets);
* ``box``: x, y, w, h in that image's pixels; ``pad``: the frame's mean colour (crops that
  leave the image are filled with it, as upstream pads);
* ``track``: the track's number in the store, ``frame``: the frame's index in its sequence.

Only frames whose target is annotated and present are stored (they are the only ones a
template or search target can come from); the index is over them, in frame order, as in
pysot's JSON. Preparation (:func:`prepare`) runs in worker processes, shard by shard,
resumes after an interruption without redoing finished shards, and skips — counting and
listing them — unreadable or missing frames, boxes outside their image and tracks without an
annotated frame.

Files of a store (format version 2): ``index.json`` (version, counts, each shard's size in
bytes; written last, so its presence marks a finished store), ``tracks.npy`` (int64, one row
per track: first record, number of records), ``drawable.npy`` (the tracks with a record),
``names.txt`` (one track name per line, read only when asked for) and ``skipped.txt`` (the
bad inputs, one per line). :class:`FrameStore` refuses, naming the file, a store that is
missing, truncated or of another format version.
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
import tensorflow_datasets as tfds
from tqdm import tqdm

from clnet_jax.data import benchmarks, generators, layouts

FEATURES = tfds.features.FeaturesDict(dict(
    image=tfds.features.Tensor(shape=(), dtype=np.object_),
    box=tfds.features.Tensor(shape=(4,), dtype=np.float32),
    pad=tfds.features.Tensor(shape=(3,), dtype=np.float32),
    track=np.int64,
    frame=np.int32,
))
STORAGES = ("crop511", "full")
CROP_SIZE, EXEMPLAR, CONTEXT = 511, 127, 0.5
JPEG_QUALITY = 90
# 1: the index as JSON lists (parsed in full by every process and pickled into every
# worker); 2: a binary, memory-mapped track index.
FORMAT_VERSION = 2


class StoreError(RuntimeError):
    """A prepared store that cannot be trained on as it is (truncated, or of another format
    version): refused at the start, naming the store, never mid-run in a worker."""


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
    """pysot's ``par_crop`` search crop: side s_x = s_z·511/127 around the target
    (s_z = sqrt((w + p)(h + p)), p = (w + h)/2), resized to 511², padded with ``pad``.

    Returns the crop and the box (x, y, w, h) in crop pixels.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    p = CONTEXT * (w + h)
    s_z = np.sqrt((w + p) * (h + p))
    s_x = s_z + 2 * ((CROP_SIZE - EXEMPLAR) / 2) / (EXEMPLAR / s_z)
    a = (CROP_SIZE - 1) / s_x
    m = np.array([[a, 0, -a * (cx - s_x / 2)], [0, a, -a * (cy - s_x / 2)]], np.float64)
    crop = cv2.warpAffine(img, m, (CROP_SIZE, CROP_SIZE), borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in pad))
    return crop, np.array([a * x + m[0, 2], a * y + m[1, 2], a * w, a * h], np.float32)


def encode_jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


def decode(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None


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


def _shard_path(out: str, i: int, ext: str) -> str:
    return os.path.join(out, f"shard-{i:05d}.{ext}")


def _prepare_shard(out: str, shard: int, first_track: int, tracks: list[Track],
                   storage: str) -> dict:
    """Writes one shard (records, then its JSON summary: the JSON marks it done)."""
    from array_record.python import array_record_module
    cv2.setNumThreads(1)
    tmp = _shard_path(out, shard, "array_record.tmp")
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
    os.replace(tmp, _shard_path(out, shard, "array_record"))
    summary = {"first_track": first_track, "names": [t.name for t in tracks],
               "counts": counts, "skipped": skipped}
    with open(_shard_path(out, shard, "json.tmp"), "w") as f:
        json.dump(summary, f)
    os.replace(_shard_path(out, shard, "json.tmp"), _shard_path(out, shard, "json"))
    return summary


def default_storage(dataset: str) -> str:
    """Small synthetic frames are stored whole; real datasets as pysot's 511 pre-crops."""
    return "full" if dataset == "synthetic" else "crop511"


def folder_store_name(folder: str, exclude: frozenset[str] = frozenset()) -> str:
    """A store name of its own for a folder of videos: its name and a hash of its path and
    of the videos held back, so that two folders (or two splits) never share a store."""
    path = os.path.abspath(folder)
    key = "\n".join([path, *sorted(exclude)]).encode()
    return f"{os.path.basename(os.path.normpath(path))}-{hashlib.sha1(key).hexdigest()[:8]}"


def store_dir(data_dir: str, dataset: str, split: str, storage: str | None = None,
              builder_config: str = "default", name: str | None = None) -> str:
    """Where a store lives (``storage`` None: the dataset's default; ``name``: the store's
    own name where several folders of one layout are prepared, e.g. a mixture's key)."""
    name = name or (f"{dataset}-{builder_config}" if dataset == "synthetic" else dataset)
    return os.path.join(data_dir, "frames", name,
                        f"{split}-{storage or default_storage(dataset)}")


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
    todo = [i for i in range(len(plan)) if not os.path.isfile(_shard_path(out, i, "json"))]
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
            with open(_shard_path(out, i, "json")) as f:
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
             "shard_bytes": [os.path.getsize(_shard_path(out, i, "array_record"))
                             for i in range(num_shards)],
             "file_bytes": {n: os.path.getsize(os.path.join(out, n)) for n in _INDEX_FILES}}
    with open(os.path.join(out, "index.json.tmp"), "w") as f:
        json.dump(index, f)
    os.replace(os.path.join(out, "index.json.tmp"), os.path.join(out, "index.json"))
    if verbose and skipped:
        print(f"{out}: skipped {len(skipped)} bad inputs (listed in skipped.txt); "
              f"first: {skipped[0]}")
    return out


# --------------------------------------------------------------------------- reading

def read_index(path: str) -> dict:
    """A finished store's ``index.json``, checked: the format version this code reads and
    every file at the size recorded when it was written. Raises :class:`StoreError` (or
    FileNotFoundError for a folder that holds no finished store) naming what is wrong."""
    index_file = os.path.join(path, "index.json")
    if not os.path.isfile(index_file):
        raise FileNotFoundError(f"{path}: not a prepared frame store (no index.json); "
                                "prepare it with clnet-prepare (or clnet_jax.data.frames."
                                "prepare)")
    try:
        with open(index_file) as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{index_file}: unreadable ({e}); the store is damaged: delete "
                         f"{path} and prepare it again") from None
    version = index.get("version") if isinstance(index, dict) else None
    if version != FORMAT_VERSION:
        raise StoreError(f"{path}: a store of format version {version}; this clnet_jax "
                         f"reads version {FORMAT_VERSION}. Delete the folder and prepare it "
                         "again (clnet-prepare, or training prepares it on first use)")
    expected = {_shard_path(path, i, "array_record"): n
                for i, n in enumerate(index["shard_bytes"])}
    expected.update({os.path.join(path, n): b for n, b in index["file_bytes"].items()})
    for f, size in expected.items():
        if not os.path.isfile(f):
            raise StoreError(f"{f}: missing from the store {path}; delete the folder and "
                             "prepare it again")
        if os.path.getsize(f) != size:
            raise StoreError(f"{f}: {os.path.getsize(f)} bytes, {size} when the store was "
                             f"written (truncated or replaced); delete {path} and prepare "
                             "it again")
    return index


class FrameStore:
    """Random access to a prepared store: ``len``, ``store[i]`` (a record dict),
    ``track_span(t)`` (first record, count) and ``tracks``, the tracks that have records.

    The track index is memory-mapped: opening costs a few reads whatever the store's size,
    and pickling (grain worker processes) sends the folder's path only; every worker maps the
    same pages. ``names`` and ``skipped`` are read when asked for.
    """

    def __init__(self, path: str):
        index = read_index(path)
        self.path = path
        self.num_records = int(index["num_records"])
        self.num_tracks = int(index["num_tracks"])
        self._num_shards = int(index["num_shards"])
        self._map()
        if self._index.shape != (self.num_tracks, 2) or len(self.tracks) != index["num_drawable"]:
            raise StoreError(f"{path}: tracks.npy holds {self._index.shape[0]} tracks, "
                             f"index.json {self.num_tracks}; delete the folder and prepare "
                             "it again")

    def _map(self) -> None:
        self._index = np.load(os.path.join(self.path, "tracks.npy"), mmap_mode="r")
        self.tracks = np.load(os.path.join(self.path, "drawable.npy"), mmap_mode="r")
        self._source = None

    @property
    def offsets(self) -> np.ndarray:
        return self._index[:, 0]

    @property
    def lengths(self) -> np.ndarray:
        return self._index[:, 1]

    @property
    def names(self) -> list[str]:
        with open(os.path.join(self.path, "names.txt")) as f:
            return f.read().splitlines()

    @property
    def skipped(self) -> list[str]:
        with open(os.path.join(self.path, "skipped.txt")) as f:
            return f.read().splitlines()

    def _open(self):
        if self._source is None:
            from array_record.python.array_record_data_source import ArrayRecordDataSource
            self._source = ArrayRecordDataSource(
                [_shard_path(self.path, i, "array_record") for i in range(self._num_shards)])
        return self._source

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_index", "tracks", "_source")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._map()

    def __len__(self) -> int:
        return self.num_records

    def __getitem__(self, i: int) -> dict:
        return FEATURES.deserialize_example_np(self._open()[int(i)])

    def track_span(self, t: int) -> tuple[int, int]:
        off, n = self._index[t]
        return int(off), int(n)


def open_store(dataset: str, data_dir: str, manual_dir: str | None = None, split: str = "train",
               storage: str | None = None, workers: int = 1, builder_config: str = "default",
               name: str | None = None) -> FrameStore:
    """Prepares the store if needed (see :func:`prepare`) and opens it."""
    return FrameStore(prepare(dataset, data_dir, manual_dir, split, storage, workers,
                              builder_config, name=name))


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description="Prepare a frame-level training store.")
    ap.add_argument("--dataset", required=True, choices=SOURCES, metavar="DATASET",
                    help="synthetic, a training set, a benchmark layout, or auto (detected "
                         f"from --manual_dir): {', '.join(SOURCES)}")
    ap.add_argument("--name", default=None, help="the store's name (default: the dataset's)")
    ap.add_argument("--manual_dir", default=None, help="the dataset in its published layout")
    ap.add_argument("--data_dir", default="data_cache")
    ap.add_argument("--split", default="train")
    ap.add_argument("--storage", default=None, choices=STORAGES)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--builder_config", default="default", help="synthetic only")
    a = ap.parse_args(argv)
    out = prepare(a.dataset, a.data_dir, a.manual_dir, a.split, a.storage, a.workers,
                  a.builder_config, name=a.name)
    store = FrameStore(out)
    print(f"{out}: {len(store)} records, {len(store.tracks)} tracks, "
          f"{len(store.skipped)} skipped inputs")


if __name__ == "__main__":
    main()
