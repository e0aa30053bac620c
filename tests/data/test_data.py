"""Synthetic data, published-layout readers on tiny fixtures, TFDS builders, grain pipeline."""
import json
import os

import cv2
import numpy as np
import pytest

from clnet_jax.data import builders, frames, layouts, pipeline, synthetic
from clnet_jax.data import prepare as prep
from conftest import config


def _img(path, h=48, w=64, value=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def _write_boxes(path, boxes, sep=","):
    with open(path, "w") as f:
        f.writelines(sep.join(str(v) for v in b) + "\n" for b in boxes)


def test_synthetic_sequences_are_deterministic_and_annotated():
    a, b = synthetic.make_sequence(7, 10), synthetic.make_sequence(7, 10)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    c = synthetic.make_sequence(8, 10)
    assert not np.array_equal(a.frames, c.frames)
    assert a.valid.any() and np.all(a.boxes[a.valid, 2:] >= 4)
    assert synthetic.split_seed("train", 3) != synthetic.split_seed("test", 3)


def test_got10k_layout(tmp_path):
    seq = tmp_path / "train" / "GOT-10k_Train_000001"
    for i in range(3):
        _img(seq / f"{i + 1:08d}.jpg")
    _write_boxes(seq / "groundtruth.txt", [[1, 2, 10, 12], [2, 3, 10, 12], [3, 4, 10, 12]])
    (seq / "absence.label").write_text("0\n1\n0\n")
    (rec,) = list(layouts.got10k(str(tmp_path), "train"))
    assert rec.name == "GOT-10k_Train_000001" and len(rec.frames) == 3
    np.testing.assert_array_equal(rec.valid, [True, False, True])
    with pytest.raises(layouts.LayoutError, match="val"):
        list(layouts.got10k(str(tmp_path), "val"))


def test_lasot_layout_and_test_split(tmp_path):
    for name in ("cat-1", "cat-2"):
        d = tmp_path / "cat" / name
        for i in range(2):
            _img(d / "img" / f"{i + 1:08d}.jpg")
        _write_boxes(d / "groundtruth.txt", [[1, 2, 10, 12], [2, 3, 10, 12]])
        (d / "full_occlusion.txt").write_text("0,1")
        (d / "out_of_view.txt").write_text("0,0")
    with pytest.raises(layouts.LayoutError, match="testing_set.txt"):
        list(layouts.lasot(str(tmp_path), "test"))
    (tmp_path / "testing_set.txt").write_text("cat-2\n")
    (test,) = list(layouts.lasot(str(tmp_path), "test"))
    (train,) = list(layouts.lasot(str(tmp_path), "train"))
    assert test.name == "cat-2" and train.name == "cat-1"
    np.testing.assert_array_equal(train.valid, [True, False])


def test_imagenet_vid_layout(tmp_path):
    vdir = "ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    for i in range(2):
        _img(tmp_path / "Data" / "VID" / "train" / vdir / f"{i:06d}.JPEG")
        objs = "".join(
            f"<object><trackid>{t}</trackid><bndbox><xmax>{20 + t}</xmax><xmin>{2 + t}</xmin>"
            f"<ymax>30</ymax><ymin>5</ymin></bndbox></object>" for t in ([0, 1] if i == 0 else [0]))
        p = tmp_path / "Annotations" / "VID" / "train" / vdir / f"{i:06d}.xml"
        os.makedirs(p.parent, exist_ok=True)
        p.write_text(f"<annotation>{objs}</annotation>")
    recs = list(layouts.imagenet_vid(str(tmp_path), "train"))
    assert [r.name.split("/")[-1] for r in recs] == ["0", "1"]
    np.testing.assert_array_equal(recs[0].boxes[0], [2, 5, 18, 25])
    np.testing.assert_array_equal(recs[1].valid, [True, False])


def test_coco_layout(tmp_path):
    _img(tmp_path / "train2017" / "000000000001.jpg")
    ann = {"images": [{"id": 1, "file_name": "000000000001.jpg"}],
           "annotations": [{"id": 5, "image_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 0},
                           {"id": 6, "image_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 1}]}
    os.makedirs(tmp_path / "annotations")
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(ann))
    (rec,) = list(layouts.coco(str(tmp_path)))
    assert rec.name == "1/5" and rec.frames[0].endswith("000000000001.jpg")


def test_youtube_bb_layout(tmp_path):
    _img(tmp_path / "frames" / "abc" / "1000.jpg", h=100, w=200)
    _img(tmp_path / "frames" / "abc" / "2000.jpg", h=100, w=200)
    (tmp_path / "yt_bb_detection_train.csv").write_text(
        "abc,1000,0,person,0,present,0.1,0.5,0.2,0.6\nabc,2000,0,person,0,absent,-1,-1,-1,-1\n")
    (rec,) = list(layouts.youtube_bb(str(tmp_path), "train"))
    assert rec.normalised  # listing reads no image; boxes become pixels once decoded
    np.testing.assert_allclose(layouts.to_pixels(rec.boxes[0], (100, 200)), [20, 20, 80, 40])
    np.testing.assert_array_equal(rec.valid, [True, False])
    store = frames.FrameStore(prep.prepare("youtube_bb", str(tmp_path / "c"), str(tmp_path),
                                             storage="full", progress=False))
    assert len(store) == 1
    np.testing.assert_allclose(store[0]["box"], [20, 20, 80, 40])


def test_missing_directory_names_what_was_expected(tmp_path):
    for reader in layouts.READERS.values():
        with pytest.raises(layouts.LayoutError, match=str(tmp_path / "nope")):
            list(reader(str(tmp_path / "nope")))
    with pytest.raises(layouts.LayoutError, match="manual_dir"):
        builders.prepare("got10k", str(tmp_path / "tfds"), str(tmp_path / "nope"))


def test_got10k_builder_reads_back_without_tensorflow(tmp_path):
    seq = tmp_path / "raw" / "train" / "GOT-10k_Train_000001"
    for i in range(2):
        _img(seq / f"{i + 1:08d}.jpg", value=50 + i)
    _write_boxes(seq / "groundtruth.txt", [[1, 2, 10, 12], [2, 3, 10, 12]], sep="\t")
    os.makedirs(tmp_path / "raw" / "val" / "GOT-10k_Val_000001")
    vseq = tmp_path / "raw" / "val" / "GOT-10k_Val_000001"
    _img(vseq / "00000001.jpg")
    _write_boxes(vseq / "groundtruth.txt", [[1, 2, 10, 12]])
    b = builders.prepare("got10k", str(tmp_path / "tfds"), str(tmp_path / "raw"))
    src = b.as_data_source()
    rec = src["train"][0]
    assert rec["boxes"].shape == (2, 4) and len(rec["frames"]) == 2
    img = cv2.imdecode(np.frombuffer(rec["frames"][1], np.uint8), cv2.IMREAD_COLOR)
    assert abs(int(img[0, 0, 0]) - 51) <= 1
    import sys
    assert "tensorflow" not in sys.modules


def _cfg(tmp_path):
    c = config("train_tiny", **{"data.data_dir": str(tmp_path / "tfds")})
    return c


def test_pipeline_groups_are_deterministic_and_resumable(tmp_path):
    c = _cfg(tmp_path)
    src = prep.open_store("synthetic", c.data.data_dir, None, builder_config="tiny")
    it = pipeline.make_iterator(src, c, 3, 2, 6, pairs_per_group=3)
    first = next(it)
    assert first["template"].shape == (2, 3, 127, 127, 3) and first["search"].shape == (2, 3, 255, 255, 3)
    assert first["box"].shape == (2, 3, 4) and first["negative"].dtype == bool
    state = it.get_state()
    second = next(it)
    again = pipeline.make_iterator(src, c, 3, 2, 6, pairs_per_group=3)
    again.set_state(state)
    resumed = next(again)
    for k in second:
        np.testing.assert_array_equal(second[k], resumed[k])
    other_seed = next(pipeline.make_iterator(src, c, 4, 2, 6, pairs_per_group=3))
    assert not np.array_equal(other_seed["search"], first["search"])
    # the box of a positive pair sits near the crop centre (shift <= 64 px)
    pos = ~first["negative"]
    centres = (first["box"][..., :2] + first["box"][..., 2:]) / 2
    assert np.all(np.abs(centres[pos] - 127) <= 64 + 1)


class _MemoryStore:
    """A frame store in memory: tracks of (image bytes, box) records."""

    def __init__(self, tracks):
        self.records = [dict(image=img, box=np.asarray(b, np.float32),
                             pad=np.zeros(3, np.float32)) for t in tracks for img, b in t]
        lengths = np.asarray([len(t) for t in tracks])
        self.offsets, self.lengths = np.cumsum(lengths) - lengths, lengths
        self.tracks, self.path = np.nonzero(lengths)[0], "memory"

    def __getitem__(self, i):
        return self.records[i]

    def track_span(self, t):
        return int(self.offsets[t]), int(self.lengths[t])


def test_undecodable_records_are_skipped_and_counted(tmp_path):
    c = _cfg(tmp_path)
    ok = cv2.imencode(".jpg", np.full((60, 60, 3), 90, np.uint8))[1].tobytes()
    box = [20, 20, 15, 15]
    store = _MemoryStore([[(b"broken", box)] * 3, [(ok, box)] * 3])
    c.data.neg_prob = 0.0
    sampler = pipeline.GroupSampler([store], c)
    rng = np.random.default_rng(0)
    counts = [int(sampler(i, rng)["skipped"]) for i in range(12)]
    assert sum(counts) > 0
    with pytest.raises(RuntimeError, match="unusable"):
        pipeline.GroupSampler([_MemoryStore([[(b"broken", box)]])], c)(0, rng)
