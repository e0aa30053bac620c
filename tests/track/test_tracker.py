"""The jitted tracker against the upstream rollouts, under vmap, and on bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.track import runner
from clnet_jax.track import tracker as T
from clnet_jax.track.inputs import FrameError, read_frame, to_bgr_uint8
from conftest import PARITY, config, iou


def test_teacher_forced_rollout(golden, tiny_params, synthetic_video):
    g = golden["siamrpn_tiny"]
    frames, _ = synthetic_video
    fns = T.make_tracker(config("siamrpn_tiny"))
    state = jax.jit(fns.init)(tiny_params, frames[0], g["init_box"])
    step = jax.jit(fns.step)
    for i in range(1, len(frames)):
        forced = state._replace(center=jnp.asarray(g["track_pre_center"][i - 1], jnp.float32),
                      size=jnp.asarray(g["track_pre_size"][i - 1], jnp.float32))
        _, box, score = step(tiny_params, forced, frames[i])
        assert iou(box, g["track_boxes"][i - 1]) >= 0.999, f"frame {i + 1}"
        assert abs(float(score) - g["track_best_score"][i - 1]) < 1e-4


@pytest.mark.slow
def test_free_rollouts_synthetic_and_dudek(golden, tiny_params, synthetic_video, dudek):
    g = golden["siamrpn_tiny"]
    trk = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
    frames, _ = synthetic_video
    boxes, _ = trk.track(frames, g["init_box"])
    assert iou(boxes[1:], g["track_boxes"]).mean() >= 0.99
    frames, gt = dudek
    boxes, _ = trk.track(frames, gt[0])
    ref = np.loadtxt(f"{PARITY}/dudek_siamrpn_tiny.txt", delimiter=",")
    assert iou(boxes, ref).mean() >= 0.99


@pytest.mark.slow
def test_vmap_over_sequences_equals_one_at_a_time(tiny_params, synthetic_video):
    frames, gt = synthetic_video
    fns = T.make_tracker(config("siamrpn_tiny"))
    # two "sequences": the video and its mirror image, different initial boxes
    seqs = np.stack([np.stack(frames[:6]), np.stack(frames[:6])[:, :, ::-1]])
    w = frames[0].shape[1]
    boxes0 = np.stack([gt[0], [w - gt[0][0] - gt[0][2], gt[0][1], gt[0][2], gt[0][3]]])
    vinit = jax.jit(jax.vmap(fns.init, in_axes=(None, 0, 0)))
    vstep = jax.jit(jax.vmap(fns.step, in_axes=(None, 0, 0)))
    state = vinit(tiny_params, seqs[:, 0], boxes0)
    batched = []
    for t in range(1, 6):
        state, box, _ = vstep(tiny_params, state, seqs[:, t])
        batched.append(np.asarray(box))
    for s in range(2):
        trk = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
        single, _ = trk.track(list(seqs[s]), boxes0[s])
        # batched convolutions sum in another order: equal up to float32 rounding, which
        # a free rollout compounds (0.02 px after 5 frames here)
        overlap = iou(np.stack(batched)[:, s], single[1:])
        assert overlap.mean() >= 0.999 and overlap.min() >= 0.99


def test_batch_tracker_groups_mixed_frame_sizes_and_keeps_the_order(tiny_params, synthetic_video):
    """One call takes sequences of two frame sizes and a broken one: each size is tracked
    in its own chunks, exactly as a call with that size alone, and the broken sequence
    gets its error without stopping the others."""
    import types

    import cv2
    frames, gt = synthetic_video
    big = [cv2.imencode(".png", f)[1].tobytes() for f in frames[:5]]
    small = [cv2.imencode(".png", cv2.resize(f, None, fx=0.75, fy=0.75))[1].tobytes()
             for f in frames[:5]]
    seq = lambda name, fs, box: types.SimpleNamespace(name=name, frames=fs, gt=np.asarray([box]))
    a = seq("a", big, gt[0])
    b = seq("b", small, gt[0] * 0.75)
    c = seq("c", big[::-1], gt[0] + [4, 2, 0, 0])
    broken = seq("broken", [b"garbage"] + big[1:], gt[0])
    bt = runner.BatchTracker(config("siamrpn_tiny"), tiny_params, 2)
    out = bt.run([b, broken, a, c])
    assert list(out) == ["b", "broken", "a", "c"]
    assert isinstance(out["broken"], str) and "broken/0" in out["broken"]
    alone = {**bt.run([a, c]), **bt.run([b])}
    for name in "abc":
        assert out[name][0].shape == (5, 4)
        np.testing.assert_array_equal(out[name][0], alone[name][0])


def test_batch_tracker_on_a_canvas_tracks_every_size_as_alone(tiny_params, synthetic_video):
    """canvas=True: sequences of three frame sizes (one larger than the others in both
    directions, so the canvas is not any one of them) share chunks and one compilation of
    ``step``, and each gets the boxes the per-size grouping gives it: the canvas changes
    nothing the tracker sees. A frame that changes size is still refused."""
    import types

    import cv2
    frames, gt = synthetic_video
    enc = lambda fs: [cv2.imencode(".png", f)[1].tobytes() for f in fs]
    seq = lambda name, fs, box: types.SimpleNamespace(name=name, frames=fs, gt=np.asarray([box]))
    tall = [np.concatenate([f, f[:40]], 0) for f in frames[:6]]
    a = seq("a", enc(frames[:6]), gt[0])
    b = seq("b", enc([cv2.resize(f, None, fx=0.75, fy=0.75) for f in frames[:4]]), gt[0] * 0.75)
    c = seq("c", enc(tall), gt[0] + [4, 2, 0, 0])
    d = seq("d", enc([cv2.resize(f, None, fx=1.25, fy=0.8) for f in frames[:5]]),
            gt[0] * [1.25, 0.8, 1.25, 0.8])
    grown = seq("grown", a.frames[:2] + c.frames[2:4], gt[0])
    cfg = config("siamrpn_tiny")
    canvas = runner.BatchTracker(cfg, tiny_params, 3, canvas=True)
    out = canvas.run([a, b, grown, c, d])
    assert list(out) == ["a", "b", "grown", "c", "d"]
    assert isinstance(out["grown"], str) and "frame size changed" in out["grown"]
    assert canvas.step._cache_size() == 1
    per_size = runner.BatchTracker(cfg, tiny_params, 3).run([a, b, c, d])
    for name in "abcd":
        assert out[name][0].shape == per_size[name][0].shape
        np.testing.assert_array_equal(out[name][0], per_size[name][0])


@pytest.mark.parametrize("box", [[10, 10, 0, 20], [10, 10, 20, -3], [np.nan, 1, 2, 3],
                                 [5000, 5000, 20, 20], [-100, 10, 50, 20], [1, 2, 3]])
def test_bad_initial_boxes_raise_value_error(tiny_params, synthetic_video, box):
    frames, _ = synthetic_video
    trk = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
    with pytest.raises(ValueError, match="box"):
        trk.init(frames[0], box)


def test_gray_rgba_and_16bit_frames_are_converted(tiny_params, synthetic_video, tmp_path):
    import cv2
    frames, gt = synthetic_video
    gray = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(frames[0], cv2.COLOR_BGR2BGRA)
    deep = frames[0].astype(np.uint16) * 257
    np.testing.assert_array_equal(to_bgr_uint8(bgra), frames[0])
    np.testing.assert_array_equal(to_bgr_uint8(deep), frames[0])
    assert to_bgr_uint8(gray).shape == frames[0].shape
    trk = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
    boxes, scores = trk.track([gray, bgra, deep, frames[3]], gt[0])
    assert np.all(np.isfinite(boxes)) and boxes.shape == (4, 4)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(read_frame(tmp_path / "deep.png"), frames[0])
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(FrameError, match="bad.jpg"):
        read_frame(tmp_path / "bad.jpg")
    with pytest.raises(FrameError, match="float"):
        to_bgr_uint8(np.zeros((4, 4, 3), np.float32))


@pytest.mark.slow
def test_nonfinite_outputs_keep_the_previous_box_and_are_counted(tiny_params, synthetic_video):
    """Random or broken weights must never put a NaN box in the state or the results."""
    frames, gt = synthetic_video
    cfg = config("siamrpn_tiny")
    bad = jax.tree.map(lambda a: a, tiny_params)
    bad["heads"] = dict(bad["heads"], rpn3=dict(bad["heads"]["rpn3"]))
    bad["heads"]["rpn3"]["cls"] = dict(bad["heads"]["rpn3"]["cls"],
                                       b=jnp.full_like(bad["heads"]["rpn3"]["cls"]["b"], jnp.nan))
    trk = runner.SequenceTracker(cfg, bad)
    boxes, scores = trk.track(frames[:5], gt[0])
    assert np.all(np.isfinite(boxes))
    # the state's centre is x + (w - 1) / 2, so the unchanged box reads x - 0.5 (as upstream)
    held = boxes[0] - np.array([0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(boxes[1:], np.repeat(held[None], 4, 0), atol=1e-3)
    np.testing.assert_array_equal(scores[1:], 0.0)
    assert trk.nonfinite_frames == 4
    # overflowing box deltas on some anchors: those anchors cannot win, the box stays finite
    big = jax.tree.map(lambda a: a, tiny_params)
    big["heads"] = dict(big["heads"], rpn2=dict(big["heads"]["rpn2"]))
    big["heads"]["rpn2"]["loc"] = dict(big["heads"]["rpn2"]["loc"],
                                       w=big["heads"]["rpn2"]["loc"]["w"] * 1e4)
    trk = runner.SequenceTracker(cfg, big)
    boxes, _ = trk.track(frames[:5], gt[0])
    assert np.all(np.isfinite(boxes))
    good = runner.SequenceTracker(cfg, tiny_params)
    good.track(frames[:5], gt[0])
    assert good.nonfinite_frames == 0


@pytest.mark.slow
def test_bfloat16_tracking_stays_close_to_float32(tiny_params, dudek):
    """track.compute_dtype='bfloat16': convolutions in bf16, heads/state in float32. The
    random-weight tiny model has near-flat scores, so rollouts part after a few frames;
    the first tracked frames agree."""
    frames, gt = dudek
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = config("siamrpn_tiny", **{"track.compute_dtype": dtype})
        out[dtype], _ = runner.SequenceTracker(cfg, tiny_params).track(frames[:3], gt[0])
    assert np.all(np.isfinite(out["bfloat16"]))
    assert iou(out["bfloat16"][1:], out["float32"][1:]).min() >= 0.99


def test_float64_tracking_needs_x64_and_says_so():
    cfg = config("clnet_tiny", **{"track.compute_dtype": "float64"})
    with pytest.raises(ValueError, match="JAX_ENABLE_X64"):
        T.make_tracker(cfg)
    with pytest.raises(ValueError, match="float64"):
        T.make_tracker(config("clnet_tiny", **{"track.compute_dtype": "float16"}))


@pytest.mark.parametrize("layout,golden_name,dudek_file", [
    ("corrected", "clnet_tiny_fixed", "dudek_clnet_fixed_tiny.txt"),
    ("official", "clnet_tiny", "dudek_clnet_tiny.txt")])
@pytest.mark.slow
def test_float64_clnet_tracker_follows_upstream_and_float32(clnet_params, synthetic_video, dudek,
                                                            golden, layout, golden_name,
                                                            dudek_file):
    """track.compute_dtype='float64' (under x64): state, adapted heads and boxes in float64;
    the rollouts follow the upstream goldens and the float32 tracker. The mining boundary
    of these fixtures does not tie in float32 (the margin at the 16th and 17th candidates
    differs), so float32 and float64 pick the same anchors."""
    frames, gt = dudek
    common = {"clnet.label_layout": layout, "clnet.label_sampler": "official_numpy"}
    f32 = runner.SequenceTracker(config("clnet_tiny", **common), clnet_params)
    b32, _ = f32.track(frames, gt[0])
    with jax.enable_x64(True):
        cfg = config("clnet_tiny", **common, **{"track.compute_dtype": "float64"})
        trk = runner.SequenceTracker(cfg, clnet_params)
        b64, _ = trk.track(frames, gt[0])
        assert trk.state.center.dtype == jnp.float64
        assert trk.state.heads["rpn2"]["cls"]["w"].dtype == jnp.float64
        assert bool(trk.state.adjusted)
        s64, _ = trk.track(synthetic_video[0], synthetic_video[1][0])
    ref = np.loadtxt(f"{PARITY}/{dudek_file}", delimiter=",")
    assert np.abs(b64 - ref).max() <= 1e-3      # upstream float32 golden, 4 decimals
    assert np.abs(b64 - b32).max() <= 1e-3
    assert iou(s64[1:], golden[golden_name]["track_boxes"]).min() >= 0.999


def _readapt_cfg(**kw):
    return config("clnet_tiny", **{"clnet.label_sampler": "jax", "track.readapt": True, **kw})


@pytest.mark.slow
def test_readaptation_off_by_default_and_inert_when_never_due(clnet_params, synthetic_video):
    """Off: the state's re-adaptation fields are there but empty (samples of length 0). On
    with an unreachable score: the same boxes as off, and a counter at zero."""
    frames, gt = synthetic_video
    off = runner.SequenceTracker(config("clnet_tiny", **{"clnet.label_sampler": "jax"}),
                                 clnet_params)
    b_off, _ = off.track(frames[:10], gt[0])
    assert all(a.shape[0] == 0 for a in jax.tree.leaves(off.state.readapt.samples))
    assert int(off.state.readapt.count) == 0
    never = runner.SequenceTracker(_readapt_cfg(**{"track.readapt_score": 1.01}), clnet_params)
    b_never, _ = never.track(frames[:10], gt[0])
    np.testing.assert_array_equal(b_never, b_off)
    assert int(never.state.readapt.count) == 0


def test_readaptation_runs_every_n_frames_inside_one_jitted_step(clnet_params, synthetic_video):
    """Score threshold 0, every 3 frames: re-adapted at steps 3, 6 and 9 of 10, from theta_0
    on the first frame's samples plus the current frame's; the heads change then only."""
    frames, gt = synthetic_video
    cfg = _readapt_cfg(**{"track.readapt_score": 0.0, "track.readapt_every": 3})
    fns = T.make_tracker(cfg)
    params = fns.prepare(clnet_params)
    state = jax.jit(fns.init)(params, frames[0], gt[0])
    step = jax.jit(fns.step)
    first_heads = state.heads
    changed = []
    for i in range(1, 11):
        prev = state.heads
        state, box, _ = step(params, state, frames[i])
        moved = max(float(jnp.max(jnp.abs(a - b)))
                    for a, b in zip(jax.tree.leaves(state.heads), jax.tree.leaves(prev)))
        changed.append(moved > 0)
        assert np.all(np.isfinite(np.asarray(box)))
    assert changed == [False, False, True] * 3 + [False]
    assert int(state.readapt.count) == 3
    # the re-adapted heads are not the first frame's, and differ from theta_0 as well
    assert any(float(jnp.max(jnp.abs(a - b))) > 0 for a, b in
               zip(jax.tree.leaves(state.heads), jax.tree.leaves(first_heads)))


@pytest.mark.slow
def test_readaptation_under_vmap_equals_one_at_a_time(clnet_params, synthetic_video):
    frames, gt = synthetic_video
    cfg = _readapt_cfg(**{"track.readapt_score": 0.0, "track.readapt_every": 2})
    fns = T.make_tracker(cfg)
    params = fns.prepare(clnet_params)
    boxes0 = np.stack([gt[0], gt[0] + np.array([3, 2, 0, 0])]).astype(np.float32)
    states = jax.jit(jax.vmap(fns.init, in_axes=(None, None, 0)))(params, frames[0], boxes0)
    vstep = jax.jit(jax.vmap(fns.step, in_axes=(None, 0, None)))
    for i in range(1, 5):
        states, vb, _ = vstep(params, states, frames[i])
    one = jax.jit(fns.init)(params, frames[0], boxes0[1])
    for i in range(1, 5):
        one, b, _ = jax.jit(fns.step)(params, one, frames[i])
    np.testing.assert_allclose(np.asarray(vb[1]), np.asarray(b), atol=1e-3)
    assert int(states.readapt.count[1]) == int(one.readapt.count) == 2
