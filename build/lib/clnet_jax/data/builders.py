"""TFDS builders (array_record, read with ``as_data_source()``; no TensorFlow needed).

Every example is one sequence: ``name``, ``frames`` (encoded image bytes, one per frame),
``boxes`` (T, 4) x,y,w,h and ``valid`` (T,) (target present and annotated).
"""
from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

from clnet_jax.data import generators, layouts

_FEATURES = dict(
    name=tfds.features.Text(),
    frames=tfds.features.Tensor(shape=(None,), dtype=np.object_),
    boxes=tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
    valid=tfds.features.Tensor(shape=(None,), dtype=np.bool_),
)


def _info(builder):
    return builder.dataset_info_from_configs(features=tfds.features.FeaturesDict(_FEATURES))


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    train: int = 160
    validation: int = 16
    test: int = 24
    length: int = 40
    height: int = 160
    width: int = 160
    seed: int = 0
    generator: str = "lookalike"  # generators.GENERATORS
    transfer: int = 0              # sequences of the 'transfer' test split (scenes only)


class SyntheticTracking(tfds.core.GeneratorBasedBuilder):
    """Look-alike distractor sequences (see :mod:`clnet_jax.data.synthetic`)."""
    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        SyntheticConfig(name="default", description="the demo / ablation benchmark"),
        SyntheticConfig(name="tiny", train=6, validation=2, test=3, length=12,
                        description="for tests"),
        # The research testbed (clnet_jax/data/scenes.py): levels rotate with the index.
        SyntheticConfig(name="scenes", train=600, validation=30, test=120, transfer=120,
                        length=50, generator="scenes",
                        description="the testbed: realistic scenes, 3 levels, transfer split"),
        # The demo's: the same scenes without the hard level, sized for minutes.
        SyntheticConfig(name="scenes_demo", train=300, validation=12, test=60, length=50,
                        generator="scenes_easy_medium",
                        description="the demo: realistic scenes, easy and medium levels"),
        SyntheticConfig(name="scenes_tiny", train=6, validation=3, test=3, transfer=3,
                        length=12, generator="scenes", description="for tests"),
    ]

    def _info(self):
        return _info(self)

    def _split_generators(self, dl_manager):
        c = self.builder_config
        splits = ("train", "validation", "test") + (("transfer",) if c.transfer else ())
        return {s: self._generate_examples(s, getattr(c, s)) for s in splits}

    def _generate_examples(self, split, count):
        c = self.builder_config
        for i in range(count):
            name, seq = generators.make(c.generator, split, i, c.seed, c.length,
                                       (c.height, c.width))
            frames = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
                      for f in seq.frames]
            yield name, dict(name=name, frames=frames, boxes=seq.boxes, valid=seq.valid)


class _ManualTracking(tfds.core.GeneratorBasedBuilder):
    """Shared part of the real-data builders: read a published layout from manual_dir."""
    VERSION = tfds.core.Version("1.0.0")
    READER = ""
    SPLITS: dict = {}
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place the dataset in its published layout in manual_dir."

    def _info(self):
        return _info(self)

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        reader = layouts.READERS[self.READER]
        return {name: self._generate_examples(reader(root, on_disk))
                for name, on_disk in self.SPLITS.items()}

    def _generate_examples(self, records):
        for rec in records:
            if rec.problem:  # misaligned frames and boxes: left out, never shifted
                print(f"skipped {rec.name}: {rec.problem}")
                continue
            frames, valid, boxes = [], rec.valid.copy(), rec.boxes.copy()
            for i, path in enumerate(rec.frames):
                try:
                    with open(path, "rb") as f:
                        frames.append(f.read())
                except OSError:  # missing frame: kept as an invalid, empty entry
                    frames.append(b"")
                    valid[i] = False
                    continue
                if rec.normalised and valid[i]:
                    img = cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR)
                    if img is None:
                        valid[i] = False
                    else:
                        boxes[i] = layouts.to_pixels(boxes[i], img.shape)
            yield rec.name, dict(name=rec.name, frames=frames, boxes=boxes, valid=valid)


class TrackingGot10k(_ManualTracking):
    READER, SPLITS = "got10k", {"train": "train", "validation": "val"}


class TrackingLasot(_ManualTracking):
    READER, SPLITS = "lasot", {"train": "train", "test": "test"}


class TrackingImagenetVid(_ManualTracking):
    READER, SPLITS = "imagenet_vid", {"train": "train"}


class TrackingCoco(_ManualTracking):
    READER, SPLITS = "coco", {"train": "train2017"}


class TrackingYoutubeBb(_ManualTracking):
    READER, SPLITS = "youtube_bb", {"train": "train"}


BUILDERS = {"synthetic": SyntheticTracking, "got10k": TrackingGot10k, "lasot": TrackingLasot,
            "imagenet_vid": TrackingImagenetVid, "coco": TrackingCoco,
            "youtube_bb": TrackingYoutubeBb}


def prepare(name: str, data_dir: str, manual_dir: str | None = None, config: str | None = None):
    """Builds (once) and returns the builder; later calls reuse the prepared files."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(BUILDERS)}")
    cls = BUILDERS[name]
    kwargs = dict(data_dir=data_dir, file_format="array_record")
    if config:
        kwargs["config"] = config
    tfds.disable_progress_bar()
    builder = cls(**kwargs)
    dl_config = None
    if name != "synthetic":
        if not manual_dir or not os.path.isdir(manual_dir):
            raise layouts.LayoutError(f"{manual_dir}: missing; set data.manual_dir to the "
                                      f"{name} folder in its published layout")
        dl_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=dl_config)
    return builder
