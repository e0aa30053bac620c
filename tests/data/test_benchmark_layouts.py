"""Benchmark loaders on their published layouts: real frames (tests/golden/realdata) and
small fixtures written in each official folder structure."""
import os
import shutil

import numpy as np
import pytest

from clnet_jax.data import benchmarks, layouts
from conftest import REALDATA, write_frames, write_rows


def test_real_otb_two_targets_tlp_vot_and_thermal():
    seqs, problems = benchmarks.load("otb100", os.path.join(REALDATA, "otb"))
    assert [s.name for s in seqs] == ["Jogging-1", "Jogging-2"]
    assert len(problems) == 97 and all(benchmarks.is_missing(p) for p in problems.values())
    assert seqs[0].gt[0].tolist() == [111, 98, 25, 101] and seqs[1].gt[0].tolist() == [180, 79, 37, 114]
    assert seqs[0].frames == seqs[1].frames and len(seqs[0].frames) == 3
    (bike,), problems = benchmarks.load("tinytlp", os.path.join(REALDATA, "tlp"))
    assert not problems and bike.gt[0].tolist() == [302, 214, 132, 430] and bike.present.all()
    (bag,), _ = benchmarks.load("vot2019", os.path.join(REALDATA, "vot"))
    assert bag.gt.shape == (3, 8) and bag.frames[0].endswith("color/00000001.jpg")
    (horse,), _ = benchmarks.load("vot2019", os.path.join(REALDATA, "vot_tir"))
    assert horse.frames[0].endswith("horse/00000001.png")
    np.testing.assert_allclose(benchmarks.as_boxes(horse)[0],
                               [257.53, 159, 313.31 - 257.53, 218.89 - 159])
    for family, name in (("otb", "otb100"), ("tlp", "tlp"), ("vot", "vot2019"),
                         ("vot_tir", "vot2019")):
        assert benchmarks.detect(os.path.join(REALDATA, family)) == name


def test_tlp_read_as_boxes_is_refused_naming_the_line():
    seqs, problems = benchmarks.load("folder", os.path.join(REALDATA, "tlp"))
    assert not seqs and "groundtruth_rect.txt:1: 6 values, expected 4" in problems["Bike"]


def _otb(root, name, n, gt_files):
    write_frames(os.path.join(root, name, "img"), range(1, n + 1))
    for fname, rows in gt_files.items():
        write_rows(os.path.join(root, name, fname), rows)


def test_otb_ranges_empty_target_file_and_missing_folders(tmp_path):
    box = [[5, 6, 10, 12]]
    _otb(tmp_path, "David", 770, {"groundtruth_rect.txt": box * 471})
    _otb(tmp_path, "Football1", 74, {"groundtruth_rect.txt": box * 74})
    _otb(tmp_path, "Human4", 4, {"groundtruth_rect.1.txt": [], "groundtruth_rect.2.txt": box * 4})
    _otb(tmp_path, "Skating2", 3, {"groundtruth_rect.1.txt": box * 3, "groundtruth_rect.2.txt": box * 3})
    _otb(tmp_path, "Tiger1", 5, {"groundtruth_rect.txt": box * 4})
    _otb(tmp_path, "NotOTB", 3, {"groundtruth_rect.txt": box * 3})
    seqs, problems = benchmarks.load("otb100", str(tmp_path))
    by = {s.name: s for s in seqs}
    assert set(by) == {"David", "Football1", "Human4", "Skating2-1", "Skating2-2"}
    assert os.path.basename(by["David"].frames[0]) == "0300.jpg" and len(by["David"].frames) == 471
    assert "4 boxes for 5 frames" in problems["Tiger1"]
    assert "NotOTB" not in problems and benchmarks.is_missing(problems["Basketball"])
    assert not benchmarks.is_missing(problems["Tiger1"])
    seqs13, _ = benchmarks.load("otb2013", str(tmp_path))
    assert {s.name for s in seqs13} == {"David", "Football1"}
    # a plain folder knows no benchmark ranges: David's 471 boxes for 770 frames is an error
    _, problems = benchmarks.load("folder", str(tmp_path))
    assert "471 boxes for 770 frames" in problems["David"]


def _uav(root, version, video, first, last, rows):
    data = "UAV123_10fps" if version == "UAV123_10fps" else "UAV123"
    write_frames(os.path.join(root, "data_seq", data, video), range(1, last + 1), "{:06d}.jpg",
                 (8, 8))
    return rows


def test_uav123_sub_sequences_as_frame_ranges(tmp_path):
    meta = benchmarks.table("uav123")["UAV123"]
    m = meta["bird1_2"]
    _uav(tmp_path, "UAV123", "bird1", 1, m["end_frame"], None)
    n = m["end_frame"] - m["start_frame"] + 1
    rows = [[5, 6, 3, 3]] * n
    rows[3] = ["NaN"] * 4
    write_rows(tmp_path / "anno" / "UAV123" / "bird1_2.txt", rows)
    write_rows(tmp_path / "anno" / "UAV123" / "bird1_3.txt", [[1, 1, 2, 2]] * 5)  # frames absent
    write_rows(tmp_path / "anno" / "UAV123" / "nonesuch.txt", [[1, 1, 2, 2]])
    seqs, problems = benchmarks.load("uav123", str(tmp_path))
    (s,) = seqs
    assert s.name == "bird1_2" and len(s.frames) == n and np.isnan(s.gt[3]).all()
    assert os.path.basename(s.frames[0]) == f"{m['start_frame']:06d}.jpg"
    assert "missing frame" in problems["bird1_3"] and "not a UAV123 sequence" in problems["nonesuch"]
    assert benchmarks.detect(str(tmp_path)) == "uav123"
    m10 = benchmarks.table("uav123")["UAV123_10fps"]["uav6"]
    root10 = tmp_path / "ten"
    _uav(root10, "UAV123_10fps", "uav6", 1, m10["end_frame"], None)
    write_rows(root10 / "anno" / "UAV123_10fps" / "uav6.txt", [[1, 1, 4, 4]] * m10["end_frame"])
    (s10,), _ = benchmarks.load("uav123_10fps", str(root10))
    assert len(s10.frames) == m10["end_frame"] and benchmarks.detect(str(root10)) == "uav123_10fps"
    with pytest.raises(layouts.LayoutError, match="anno/UAV20L"):
        benchmarks.load("uav20l", str(root10))


def test_uavdt_nfs_trackingnet_dtb70_layouts(tmp_path):
    u = tmp_path / "uavdt"
    write_frames(u / "UAV-benchmark-S" / "S0101", range(1, 4), "img{:06d}.jpg")
    write_rows(u / "UAV-benchmark-SOT_v1.0" / "anno" / "S0101_gt.txt", [[1, 2, 3, 4]] * 3)
    write_frames(u / "UAV-benchmark-S" / "S0102", [1, 2, 4], "img{:06d}.jpg")
    write_rows(u / "UAV-benchmark-SOT_v1.0" / "anno" / "S0102_gt.txt", [[1, 2, 3, 4]] * 3)
    seqs, problems = benchmarks.load(benchmarks.detect(str(u)), str(u))
    assert [s.name for s in seqs] == ["S0101"] and "img000003.jpg: missing frame" in problems["S0102"]
    nfs = tmp_path / "nfs"
    write_frames(nfs / "ball" / "30" / "ball", range(1, 5), "{:05d}.jpg")
    write_rows(nfs / "ball" / "30" / "ball.txt",
               [[0, 10 + i, 20, 40 + i, 60, i + 1, 0, 0, 0, '"ball"'] for i in range(32)], " ")
    (s,), _ = benchmarks.load("nfs30", str(nfs))
    assert len(s.gt) == 4 and s.gt[1].tolist() == [18, 20, 30, 40]  # every 8th 240 fps label
    assert benchmarks.detect(str(nfs)) == "nfs30"
    tn = tmp_path / "trackingnet"
    write_frames(tn / "TRAIN_0" / "frames" / "abc", range(0, 12), "{}.jpg")
    write_rows(tn / "TRAIN_0" / "anno" / "abc.txt", [[1, 2, 3, 4]] * 12)
    (s,), _ = benchmarks.load("trackingnet", str(tn))
    assert os.path.basename(s.frames[10]) == "10.jpg" and not s.init_only
    write_frames(tn / "TEST" / "frames" / "xyz", range(0, 5), "{}.jpg")
    write_rows(tn / "TEST" / "anno" / "xyz.txt", [[1, 2, 3, 4]])
    (s,), _ = benchmarks.load(benchmarks.detect(str(tn)), str(tn))
    assert s.name == "xyz" and s.init_only
    d = tmp_path / "dtb70"
    _otb(d, "Animal1", 3, {"groundtruth_rect.txt": [[1, 2, 3, 4]] * 3})
    (s,), _ = benchmarks.load("dtb70", str(d))
    assert s.name == "Animal1" and benchmarks.detect(str(d)) == "folder"


def test_tlp_lost_frames_are_absent(tmp_path):
    t = tmp_path / "tlp" / "Bike"
    write_frames(t / "img", range(1, 5), "{:05d}.jpg")
    write_rows(t / "groundtruth_rect.txt",
               [[1, 5, 5, 10, 10, 0], [2, 6, 5, 10, 10, 1], [3, 7, 5, 10, 10, 0], [4, 0, 0, 0, 0, 1]])
    (s,), _ = benchmarks.load("tlp", str(tmp_path / "tlp"))
    assert s.present.tolist() == [True, False, True, False]
    assert np.isnan(s.gt[[1, 3]]).all() and s.gt[2, 0] == 7
    recs = benchmarks.records("tlp", str(tmp_path / "tlp"))
    assert recs[0].valid.tolist() == [True, False, True, False]


def test_auto_names_what_it_looked_for(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(layouts.LayoutError, match="no benchmark layout recognised"):
        benchmarks.detect(str(tmp_path))
    with pytest.raises(ValueError, match="unknown benchmark 'otb'"):
        benchmarks.load("otb", str(tmp_path))


def test_vot_counts_must_align(tmp_path):
    shutil.copytree(os.path.join(REALDATA, "vot"), tmp_path / "vot")
    with open(tmp_path / "vot" / "bag" / "groundtruth.txt", "a") as f:
        f.write("1,2,3,4,5,6,7,8\n")
    seqs, problems = benchmarks.load("vot2019", str(tmp_path / "vot"))
    assert not seqs and "4 regions for 3 frames" in problems["bag"]


def test_prepare_a_store_from_own_videos_in_a_benchmark_layout(tmp_path):
    """Real 1280x720 frames (TinyTLP Bike) and an OTB-style folder of one's own: lost frames
    are never stored, bad inputs are skipped, counted and named, and two folders of one
    layout become two stores by name."""
    from clnet_jax.data import prepare as prep
    own = tmp_path / "own"
    shutil.copytree(os.path.join(REALDATA, "tlp", "Bike"), own / "Bike")
    with open(own / "Bike" / "groundtruth_rect.txt") as f:
        lines = f.read().splitlines()
    lines[1] = lines[1][:-1] + "1"  # frame 2 lost
    (own / "Bike" / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    store = prep.open_store("auto", str(tmp_path / "cache"), str(own), name="mine")
    assert store.names == ["Bike"] and len(store) == 2
    assert sorted(int(store[i]["frame"]) for i in range(2)) == [0, 2]
    assert store[0]["image"] and os.path.isdir(tmp_path / "cache" / "frames" / "mine")
    clips = tmp_path / "clips"
    _otb(clips, "good", 3, {"groundtruth_rect.txt": [[2, 2, 10, 10]] * 3})
    _otb(clips, "outside", 3, {"groundtruth_rect.txt": [[2, 2, 10, 10], [500, 2, 10, 10],
                                                        [2, 2, 10, 10]]})
    _otb(clips, "broken", 3, {"groundtruth_rect.txt": [[2, 2, 10, 10]] * 3})
    (clips / "broken" / "img" / "0002.jpg").write_bytes(b"not a jpeg")
    _otb(clips, "misaligned", 3, {"groundtruth_rect.txt": [[2, 2, 10, 10]] * 5})
    _otb(clips, "polygons", 3, {"groundtruth_rect.txt": [[0, 0, 9, 0, 9, 9, 0, 9]] * 3})
    store = prep.open_store("folder", str(tmp_path / "cache"), str(clips), name="clips")
    assert store.names == ["broken", "good", "outside"]
    assert [int(n) for n in store.lengths] == [2, 3, 2]
    skipped = "\n".join(store.skipped)
    assert "misaligned: " in skipped and "5 boxes for 3 frames" in skipped
    assert "polygons: " in skipped and "8 values, expected 4" in skipped
    assert "outside/img/0002.jpg: box" in skipped and "outside the 32x24 image" in skipped
    assert "broken/img/0002.jpg: not a decodable image" in skipped
