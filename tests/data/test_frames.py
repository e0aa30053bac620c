"""Frame-level stores: crop511, preparation (bad inputs, workers, resume), DET layout,
mixtures and grain worker processes."""
import json
import os

import cv2
import numpy as np
import pytest

from clnet_jax.data import frames, layouts, pipeline
from clnet_jax.data import prepare as prep
from conftest import config


def _jpeg(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def _frame(h=120, w=160, box=(60, 40, 30, 20), colour=(0, 0, 255), seed=0):
    img = np.random.default_rng(seed).integers(60, 120, (h, w, 3)).astype(np.uint8)
    x, y, bw, bh = box
    img[y:y + bh, x:x + bw] = colour
    return img


def _got10k(root, sequences):
    """sequences: name -> list of (image or None for a missing file, box) per frame."""
    for name, items in sequences.items():
        d = root / "train" / name
        os.makedirs(d, exist_ok=True)
        for i, (img, _) in enumerate(items):
            if img is not None:
                _jpeg(d / f"{i + 1:08d}.jpg", img)
        with open(d / "groundtruth.txt", "w") as f:
            f.writelines(",".join(str(v) for v in b) + "\n" for _, b in items)


def test_crop511_follows_the_upstream_context_rule():
    box = (60, 40, 30, 20)
    img = _frame(box=box)
    pad = img.reshape(-1, 3).mean(0)
    crop, cbox = prep.crop511(img, box, pad)
    assert crop.shape == (511, 511, 3)
    w, h = 30, 20
    s_z = np.sqrt((w + 25) * (h + 25))
    scale = 510 / (s_z * 511 / 127)  # 511 crop pixels span s_x = s_z·511/127 frame pixels
    np.testing.assert_allclose(cbox[2:], [w * scale, h * scale], rtol=1e-5)
    np.testing.assert_allclose(cbox[:2] + cbox[2:] / 2, 255, atol=1e-3)  # target centred
    x0, y0, x1, y1 = (cbox[:2] + 2).astype(int).tolist() + (cbox[:2] + cbox[2:] - 2).astype(int).tolist()
    assert np.all(np.abs(crop[y0:y1, x0:x1].astype(int) - [0, 0, 255]) <= 3)  # the target
    assert np.all(np.abs(crop[2, 2].astype(int) - pad) <= 1)  # outside the frame: mean pad


def test_prepare_skips_bad_inputs_and_keeps_the_rest(tmp_path):
    good = [(_frame(seed=i), (60, 40, 30, 20)) for i in range(4)]
    truncated_seq = [(_frame(seed=9), (60, 40, 30, 20))] * 3
    outside = [(_frame(seed=5), (60, 40, 30, 20)), (_frame(seed=6), (500, 400, 30, 20))]
    _got10k(tmp_path / "raw", {"GOT-10k_Train_000001": good,
                               "GOT-10k_Train_000002": truncated_seq,
                               "GOT-10k_Train_000003": outside,
                               "GOT-10k_Train_000004": [(None, (60, 40, 30, 20))] * 2})
    d2 = tmp_path / "raw" / "train" / "GOT-10k_Train_000002"
    data = (d2 / "00000002.jpg").read_bytes()
    (d2 / "00000002.jpg").write_bytes(data[: len(data) // 2])  # cut mid-file
    _jpeg(tmp_path / "raw" / "train" / "GOT-10k_Train_000004" / "00000001.jpg", _frame())
    os.remove(tmp_path / "raw" / "train" / "GOT-10k_Train_000004" / "00000001.jpg")
    # GOT-10k_Train_000004 then has groundtruth for 2 frames and no frame files
    empty = tmp_path / "raw" / "train" / "GOT-10k_Train_000005"
    os.makedirs(empty)
    (empty / "groundtruth.txt").write_text("")

    out = prep.prepare("got10k", str(tmp_path / "cache"), str(tmp_path / "raw"),
                         storage="crop511", progress=False)
    store = frames.FrameStore(out)
    assert store.names[:3] == ["GOT-10k_Train_000001", "GOT-10k_Train_000002",
                               "GOT-10k_Train_000003"]
    assert list(store.lengths[:3]) == [4, 2, 1]  # good ones all kept
    skipped = "\n".join(store.skipped)
    assert "00000002.jpg: truncated JPEG" in skipped
    assert "outside the 160x120 image" in skipped
    assert "GOT-10k_Train_000004" in skipped  # 2 boxes, no frames: misaligned, named
    assert "GOT-10k_Train_000005: no usable annotated frame" in skipped
    assert len(store) == 7
    rec = store[store.track_span(0)[0] + 1]
    assert rec["frame"] == 1 and rec["track"] == 0
    img = frames.decode(rec["image"])
    assert img.shape == (511, 511, 3)
    np.testing.assert_allclose(rec["box"][:2] + rec["box"][2:] / 2, 255, atol=1e-3)


def test_prepare_with_workers_equals_one_process_and_resumes(tmp_path):
    c = {"data_dir": str(tmp_path / "a"), "builder_config": "tiny", "progress": False}
    serial = frames.FrameStore(prep.prepare("synthetic", **c, frames_per_shard=20))
    c["data_dir"] = str(tmp_path / "b")
    out = prep.prepare("synthetic", **c, workers=2, frames_per_shard=20)
    parallel = frames.FrameStore(out)
    assert len(serial) == len(parallel) > 0
    for i in range(len(serial)):
        a, b = serial[i], parallel[i]
        assert a["image"] == b["image"] and np.array_equal(a["box"], b["box"])
    # an interruption: shard 1 unfinished (no JSON), no index yet
    shards = sorted(f for f in os.listdir(out) if f.endswith(".array_record"))
    assert len(shards) >= 3
    os.remove(os.path.join(out, "shard-00001.json"))
    os.remove(os.path.join(out, "index.json"))
    before = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in shards}
    prep.prepare("synthetic", **c, workers=2, frames_per_shard=20)
    after = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in shards}
    assert [f for f in shards if before[f] != after[f]] == ["shard-00001.array_record"]
    again = frames.FrameStore(out)
    assert all(again[i]["image"] == serial[i]["image"] for i in range(len(serial)))
    # a different plan in the same folder is refused, not mixed in
    os.remove(os.path.join(out, "index.json"))
    with pytest.raises(RuntimeError, match="different source data"):
        prep.prepare("synthetic", **c, frames_per_shard=7)


def test_imagenet_det_layout(tmp_path):
    img_dir = tmp_path / "Data" / "DET" / "train" / "ILSVRC2013_train" / "n01"
    ann_dir = tmp_path / "Annotations" / "DET" / "train" / "ILSVRC2013_train" / "n01"
    _jpeg(img_dir / "n01_1.JPEG", _frame())
    os.makedirs(ann_dir)
    objs = "".join(f"<object><name>n01</name><bndbox><xmin>{x}</xmin><ymin>10</ymin>"
                   f"<xmax>{x + 30}</xmax><ymax>40</ymax></bndbox></object>" for x in (5, 60))
    (ann_dir / "n01_1.xml").write_text(f"<annotation><folder>n01</folder>{objs}</annotation>")
    recs = list(layouts.imagenet_det(str(tmp_path)))
    assert [r.name for r in recs] == ["ILSVRC2013_train/n01/n01_1/0", "ILSVRC2013_train/n01/n01_1/1"]
    np.testing.assert_allclose(recs[1].boxes, [[60, 10, 30, 30]])
    assert recs[0].frames == [str(img_dir / "n01_1.JPEG")]
    with pytest.raises(layouts.LayoutError, match="Data/DET"):
        list(layouts.imagenet_det(str(tmp_path / "nope")))
    store = frames.FrameStore(prep.prepare("imagenet_det", str(tmp_path / "c"), str(tmp_path),
                                             progress=False))
    assert len(store) == 2 and list(store.lengths) == [1, 1]


def test_mixture_gives_exact_samples_per_epoch_and_is_a_function_of_the_index():
    m = pipeline.Mixture([3, 1, 6], seed=5)
    epoch0 = [m(i) for i in range(10)]
    assert sorted(epoch0) == [0, 0, 0, 1] + [2] * 6
    assert [m(i) for i in range(10, 20)] != epoch0  # reshuffled per epoch
    fresh = pipeline.Mixture([3, 1, 6], seed=5)
    assert [fresh(i) for i in (17, 3, 12)] == [m(17), m(3), m(12)]
    with pytest.raises(ValueError):
        pipeline.Mixture([2, 0], 0)


def test_batches_are_the_same_for_any_worker_and_thread_count(tmp_path):
    c = config("train_tiny", **{"data.data_dir": str(tmp_path)})
    stores = [prep.open_store("synthetic", str(tmp_path), builder_config="tiny")]
    stores.append(stores[0])  # a two-store mixture (same data, different draws)

    def batches(workers, threads, start=0, n=3):
        c.data.workers, c.data.threads = workers, threads
        it = pipeline.make_iterator(stores, c, 1, 2, 4, start_batch=start, samples=[2, 1],
                                     pairs_per_group=2)
        return [next(it) for _ in range(n)]

    ref = batches(0, 1)
    for got in (batches(0, 2), batches(2, 1)):
        for a, b in zip(ref, got):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    # resume by position with another worker count: the same later batches
    later = batches(2, 2, start=1, n=2)
    for a, b in zip(ref[1:], later):
        np.testing.assert_array_equal(a["search"], b["search"])


class _Payload:
    """A generated track (prep.write_store takes any source with iter_frames/length)."""

    def __init__(self, name, length, jpeg):
        self.name, self.length, self.jpeg = name, length, jpeg

    def iter_frames(self):
        for i in range(self.length):
            yield i, (f"{self.name}#{i}", self.jpeg), np.float32([10, 12, 20, 16])


def _small_store(tmp_path, lengths=(3, 0, 2, 4)):
    ok, data = cv2.imencode(".jpg", _frame(48, 64))
    tracks = [_Payload(f"t{i}", n, data.tobytes()) for i, n in enumerate(lengths)]
    return prep.write_store(str(tmp_path / "store"), tracks, "full", frames_per_shard=4,
                              progress=False)


def test_store_index_is_binary_memory_mapped_and_pickles_as_a_path(tmp_path):
    import pickle
    out = _small_store(tmp_path)
    store = frames.FrameStore(out)
    assert isinstance(store.tracks, np.memmap) and list(store.tracks) == [0, 2, 3]
    assert [store.track_span(t) for t in range(4)] == [(0, 3), (3, 0), (3, 2), (5, 4)]
    assert store.names == ["t0", "t1", "t2", "t3"] and len(store) == 9
    assert "t1: no usable annotated frame" in store.skipped[0]
    blob = pickle.dumps(store)
    assert len(blob) < 2000  # no index arrays inside: a worker maps the files itself
    back = pickle.loads(blob)
    assert back.track_span(3) == (5, 4) and list(back.tracks) == [0, 2, 3]
    assert back[5]["track"] == 3 and back[5]["image"] == store[5]["image"]


@pytest.mark.parametrize("damage, message", [
    ("shard", "shard-00001.array_record: .* bytes, .* when the store was written"),
    ("missing_shard", "shard-00000.array_record: missing from the store"),
    ("tracks", "tracks.npy: .* bytes"),
    ("version1", "format version 1; this clnet_jax reads version 2"),
    ("index", "index.json: unreadable"),
])
def test_damaged_or_old_stores_are_refused_by_name(tmp_path, damage, message):
    out = _small_store(tmp_path)
    index = os.path.join(out, "index.json")
    if damage == "shard":
        path = os.path.join(out, "shard-00001.array_record")
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "missing_shard":
        os.remove(os.path.join(out, "shard-00000.array_record"))
    elif damage == "tracks":
        path = os.path.join(out, "tracks.npy")
        open(path, "ab").write(b"\0" * 16)
    elif damage == "version1":  # what format 1 wrote: JSON lists, no binary index
        json.dump({"version": 1, "num_shards": 3, "num_records": 9, "offsets": [0, 3, 3, 5],
                   "lengths": [3, 0, 2, 4], "names": ["t0", "t1", "t2", "t3"],
                   "skipped": []}, open(index, "w"))
    else:
        open(index, "w").write('{"version": 2, "num_sh')
    with pytest.raises(frames.StoreError, match=message):
        frames.FrameStore(out)
    # checked again (as prepare does before anything else): the same refusal, nothing deleted
    files = sorted(os.listdir(out))
    with pytest.raises(frames.StoreError, match=message):
        frames.read_index(out)
    assert sorted(os.listdir(out)) == files
    with pytest.raises(FileNotFoundError, match="not a prepared frame store"):
        frames.FrameStore(str(tmp_path / "nowhere"))


def test_training_refuses_a_damaged_store_before_it_starts(tmp_path):
    from clnet_jax.train import trainer
    c = config("train_tiny", **{"data.data_dir": str(tmp_path)})
    out = prep.prepare("synthetic", str(tmp_path), builder_config="tiny", progress=False)
    path = os.path.join(out, "shard-00000.array_record")
    open(path, "ab").write(b"junk")
    with pytest.raises(frames.StoreError, match="shard-00000.array_record"):
        trainer.train_source(c)
    with pytest.raises(frames.StoreError, match="shard-00000.array_record"):
        prep.prepare("synthetic", str(tmp_path), builder_config="tiny", progress=False)
