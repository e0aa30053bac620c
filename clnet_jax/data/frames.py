"""Frame-level training stores: one record per annotated (frame, object), random access.

A store is a folder of array_record shards plus a small index: per track its first record
and its number of records (``tracks.npy``, memory-mapped, so opening a store of millions of
tracks reads a few bytes and every process and grain worker shares the page cache), so
drawing a pair is two random reads whatever the sequence length (the whole-sequence records
of :mod:`clnet_jax.data.builders` cost a read of every frame). Records are serialised with
TFDS's feature encoding (``FEATURES``, no TensorFlow):

* ``image``: JPEG bytes — the original frame (storage ``full``) or pysot's 511×511 context
  crop around the target (storage ``crop511``, the default for real datasets);
* ``box``: x, y, w, h in that image's pixels; ``pad``: the frame's mean colour (crops that
  leave the image are filled with it, as upstream pads);
* ``track``: the track's number in the store, ``frame``: the frame's index in its sequence.

Only frames whose target is annotated and present are stored (they are the only ones a
template or search target can come from); the index is over them, in frame order, as in
pysot's JSON. Stores are written by :mod:`clnet_jax.data.prepare`; this module reads them.

Files of a store (format version 2): ``index.json`` (version, counts, each shard's size in
bytes; written last, so its presence marks a finished store), ``tracks.npy`` (int64, one row
per track: first record, number of records), ``drawable.npy`` (the tracks with a record),
``names.txt`` (one track name per line, read only when asked for) and ``skipped.txt`` (the
bad inputs, one per line). :class:`FrameStore` refuses, naming the file, a store that is
missing, truncated or of another format version.
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

FEATURES = tfds.features.FeaturesDict(dict(
    image=tfds.features.Tensor(shape=(), dtype=np.object_),
    box=tfds.features.Tensor(shape=(4,), dtype=np.float32),
    pad=tfds.features.Tensor(shape=(3,), dtype=np.float32),
    track=np.int64,
    frame=np.int32,
))
STORAGES = ("crop511", "full")
FORMAT_VERSION = 2  # stores of another version are refused (CHANGELOG.md has what changed)


class StoreError(RuntimeError):
    """A prepared store that cannot be trained on as it is (truncated, or of another format
    version): refused at the start, naming the store, never mid-run in a worker."""


def decode(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None


def shard_path(out: str, i: int, ext: str) -> str:
    return os.path.join(out, f"shard-{i:05d}.{ext}")


def default_storage(dataset: str) -> str:
    """Small synthetic frames are stored whole; real datasets as pysot's 511 pre-crops."""
    return "full" if dataset == "synthetic" else "crop511"


def store_dir(data_dir: str, dataset: str, split: str, storage: str | None = None,
              builder_config: str = "default", name: str | None = None) -> str:
    """Where a store lives (``storage`` None: the dataset's default; ``name``: the store's
    own name where several folders of one layout are prepared, e.g. a mixture's key)."""
    name = name or (f"{dataset}-{builder_config}" if dataset == "synthetic" else dataset)
    return os.path.join(data_dir, "frames", name,
                        f"{split}-{storage or default_storage(dataset)}")


# --------------------------------------------------------------------------- reading

def read_index(path: str) -> dict:
    """A finished store's ``index.json``, checked: the format version this code reads and
    every file at the size recorded when it was written. Raises :class:`StoreError` (or
    FileNotFoundError for a folder that holds no finished store) naming what is wrong."""
    index_file = os.path.join(path, "index.json")
    if not os.path.isfile(index_file):
        raise FileNotFoundError(f"{path}: not a prepared frame store (no index.json); "
                                "prepare it with clnet-prepare (or clnet_jax.data.prepare."
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
    expected = {shard_path(path, i, "array_record"): n
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
                [shard_path(self.path, i, "array_record") for i in range(self._num_shards)])
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
