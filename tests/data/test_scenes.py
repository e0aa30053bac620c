"""The testbed's scene generator: deterministic, levels that differ in what they should,
a transfer family unlike the training one, and the builder/store plumbing."""
import numpy as np

from clnet_jax.data import generators, scenes
from clnet_jax.data import prepare as prep


def test_scenes_are_deterministic_and_boxes_stay_in_the_frame():
    a = scenes.make_sequence(5, "hard", "scenes", 20)
    b = scenes.make_sequence(5, "hard", "scenes", 20)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames, scenes.make_sequence(6, "hard", "scenes", 20).frames)
    h, w = scenes.FAMILIES["scenes"].size
    assert a.frames.shape == (20, h, w, 3)
    v = a.boxes[a.valid]
    assert np.all(v[:, :2] >= 0) and np.all(v[:, 0] + v[:, 2] <= w) and np.all(v[:, 1] + v[:, 3] <= h)
    assert np.all(v[:, 2:] >= 4)


def _stats(level, n=24):
    absent, ranges = [], []
    for i in range(n):
        s = scenes.make_sequence(100 + i, level, "scenes", 50)
        absent.append(1 - s.valid.mean())
        area = s.boxes[s.valid, 2] * s.boxes[s.valid, 3]
        ranges.append(np.sqrt(area.max() / area.min()))
    return np.mean(absent), np.median(ranges)


def test_levels_differ_in_absence_and_scale_change():
    easy, hard = _stats("easy"), _stats("hard")
    assert easy[0] == 0.0  # no occlusion or out-of-view on the easy level
    assert hard[0] > 0.03  # some frames with the target absent
    assert hard[1] > easy[1] * 1.3  # wider scale change


def test_the_target_is_drawn_where_its_box_is():
    s = scenes.make_sequence(11, "easy", "scenes", 12)
    for t in range(1, 12):  # the target moves: frame differences concentrate around the boxes
        if not (s.valid[t] and s.valid[t - 1]):
            continue
        x0 = np.minimum(s.boxes[t, :2], s.boxes[t - 1, :2]).astype(int)
        x1 = np.maximum(s.boxes[t, :2] + s.boxes[t, 2:], s.boxes[t - 1, :2] + s.boxes[t - 1, 2:]).astype(int)
        diff = np.abs(s.frames[t].astype(int) - s.frames[t - 1]).sum(-1)
        inside = diff[x0[1]:x1[1], x0[0]:x1[0]].mean()
        assert inside > 2 * diff.mean() - 1e-9


def test_transfer_family_and_level_names():
    t = scenes.make_sequence(3, "medium", "transfer", 6)
    assert t.frames.shape[1:3] == scenes.FAMILIES["transfer"].size != scenes.FAMILIES["scenes"].size
    assert set(scenes.FAMILIES["transfer"].kinds).isdisjoint(scenes.FAMILIES["scenes"].kinds)
    names = [generators.sequence_name("scenes", "test", i) for i in range(6)]
    assert [generators.level_of_name(n) for n in names] == ["easy", "medium", "hard"] * 2
    assert generators.level_of_name("test_00003") is None
    name, seq = generators.make("scenes", "transfer", 4, 0, 6)
    assert name == "transfer_medium_00004" and seq.frames.shape[1:3] == (176, 144)


def test_scene_store_lists_levels(tmp_path):
    tracks, problems = prep.list_tracks("synthetic", None, "train", "scenes_tiny")
    assert not problems and len(tracks) == 6
    assert [generators.level_of_name(t.name) for t in tracks[:3]] == ["easy", "medium", "hard"]
    store = prep.open_store("synthetic", str(tmp_path), split="train", workers=1,
                              builder_config="scenes_tiny")
    assert 0 < len(store) <= 6 * 12


def test_demo_generator_leaves_out_the_hard_level():
    names = [generators.sequence_name("scenes_easy_medium", "test", i) for i in range(4)]
    assert [generators.level_of_name(n) for n in names] == ["easy", "medium"] * 2
    # same seed and level as the testbed's sequence of that index: the same scene
    a = generators.make("scenes_easy_medium", "test", 0, 0, 6)[1]
    b = generators.make("scenes", "test", 0, 0, 6)[1]
    np.testing.assert_array_equal(a.frames, b.frames)
    tracks, _ = prep.list_tracks("synthetic", None, "test", "scenes_demo")
    assert len(tracks) == 60 and "hard" not in {generators.level_of_name(t.name) for t in tracks}
