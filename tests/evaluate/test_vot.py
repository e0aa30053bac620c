"""VOT protocol: overlaps against got10k's poly_iou, re-initialisation, A / R / EAO."""
import numpy as np
import pytest

from clnet_jax.evaluate import vot


def _rotated(rng):
    cx, cy = rng.uniform(20, 180), rng.uniform(20, 120)
    w, h, a = rng.uniform(5, 60), rng.uniform(5, 60), rng.uniform(0, np.pi)
    c, s = np.cos(a), np.sin(a)
    pts = [(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in
           ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]
    return np.array(pts).ravel()


def test_region_iou_equals_got10k_poly_iou():
    metrics = pytest.importorskip("got10k.utils.metrics")
    rng = np.random.default_rng(0)
    for _ in range(200):
        gt = _rotated(rng)
        rect = np.r_[rng.uniform(0, 180, 2), rng.uniform(2, 80, 2)]
        bound = (rng.uniform(100, 220), rng.uniform(80, 150))
        ref = metrics.poly_iou(gt, rect, bound=bound)[0]
        assert abs(vot.region_iou(gt, rect, bound) - ref) < 1e-9
        rect2 = np.r_[rng.uniform(0, 180, 2), rng.uniform(2, 80, 2)]
        assert abs(vot.region_iou(rect2, rect) - metrics.poly_iou(rect2, rect)[0]) < 1e-9


def test_region_to_rect_equals_got10k():
    pytest.importorskip("got10k")
    from got10k.datasets.vot import VOT
    rng = np.random.default_rng(1)
    polys = np.stack([_rotated(rng) for _ in range(20)])
    ref = VOT._corner2rect(None, polys)
    np.testing.assert_allclose(np.stack([vot.region_to_rect(p) for p in polys]), ref, atol=1e-9)


class _Scripted:
    """Returns prepared boxes; counts (re-)initialisations."""

    def __init__(self, boxes):
        self.boxes, self.inits, self.t = boxes, [], 0

    def init(self, frame, box):
        self.inits.append(frame)

    def update(self, frame):
        return np.asarray(self.boxes[frame]), 1.0


def test_failure_skip_and_reinitialisation():
    gt = [[10, 10, 20, 20]] * 20
    boxes = {f: [10, 10, 20, 20] for f in range(20)}
    boxes[3] = [100, 100, 5, 5]  # no overlap: failure at frame 3
    trk = _Scripted(boxes)
    rec = vot.run_supervised(trk, list(range(20)), gt, (200, 200))
    assert rec[0] == [1.0] and rec[3] == [2.0]
    assert rec[4:8] == [[0.0]] * 4 and rec[8] == [1.0] and len(rec[9]) == 4
    assert trk.inits == [0, 8]
    ov = vot.overlaps(rec, gt, (200, 200), burnin=vot.BURNIN)
    assert np.isnan(ov[:3]).all() and np.isnan(ov[8:18]).all() and ov[18] == 1.0


def test_eao_hand_cases():
    n = 300
    gt = [[0, 0, 10, 10]] * n
    half = [[1.0]] + [[0, 0, 10, 5]] * (n - 1)  # IoU 0.5 on every tracked frame
    assert abs(vot.expected_average_overlap([(half, gt, (100, 100))], 46, 291) - 0.5) < 1e-9
    failed = list(half)
    failed[20] = [2.0]  # a failure: the fragment up to it counts zeros afterwards
    for i in range(21, 25):
        failed[i] = [0.0]
    failed[25] = [1.0]
    eao = vot.expected_average_overlap([(failed, gt, (100, 100))], 46, 291)
    assert eao < 0.5
    s = vot.summarize([(failed, gt, (100, 100))])
    assert s["lost_number"] == 1 and abs(s["accuracy"] - 0.5) < 1e-9


def test_vot_layout_and_protocol_with_the_tracker(tmp_path, tiny_params, synthetic_video):
    import cv2

    from clnet_jax.evaluate import datasets as eval_data
    from clnet_jax.evaluate import runner as eval_runner
    from conftest import config
    frames, gt = synthetic_video
    seq = tmp_path / "synth"
    (seq / "color").mkdir(parents=True)
    for i, f in enumerate(frames[:15]):
        cv2.imwrite(str(seq / "color" / f"{i + 1:08d}.jpg"), f)
    with open(seq / "groundtruth.txt", "w") as fh:
        for x, y, w, h in gt[:15]:
            fh.write(",".join(f"{v:.2f}" for v in (x, y, x + w, y, x + w, y + h, x, y + h)) + "\n")
    (tmp_path / "list.txt").write_text("synth\n")
    seqs, problems = eval_data.load("vot2019", str(tmp_path))
    assert not problems and seqs[0].gt.shape == (15, 8)
    status, runs = eval_runner.run_vot(config("siamrpn_tiny"), tiny_params, seqs,
                                       str(tmp_path / "res"), "vot2019", "t")
    assert status["synth"] == "done"
    rec = runs[0][0]
    assert rec[0] == [1.0] and len(rec) == 15
    for i in vot.failures(rec):  # every failure: 4 skipped frames, then re-initialisation
        assert rec[i + 1:i + 5] == [[0.0]] * 4 and (i + 5 >= 15 or rec[i + 5] == [1.0])
    tracked = [i for i, r in enumerate(rec) if len(r) == 4]
    assert tracked and all(vot.region_iou(seqs[0].gt[i], rec[i], (256, 192)) > 0 for i in tracked)
    s = vot.summarize(runs)
    assert 0 <= s["accuracy"] <= 1
    assert np.isnan(s["eao"])  # no sequence reaches the VOT2019 EAO range (46..291 frames)
    again, runs2 = eval_runner.run_vot(config("siamrpn_tiny"), tiny_params, seqs,
                                       str(tmp_path / "res"), "vot2019", "t")
    assert again["synth"].startswith("skipped")
    for a, b in zip(runs2[0][0], runs[0][0]):  # read back from the file (4 decimals)
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_trax_request_handling(tmp_path, tiny_params, synthetic_video):
    import cv2

    from clnet_jax.evaluate import vot_integration
    from clnet_jax.track import runner
    from conftest import config
    frames, gt = synthetic_video
    paths = []
    for i, f in enumerate(frames[:3]):
        p = str(tmp_path / f"{i}.png")
        cv2.imwrite(p, f)
        paths.append(p)
    trk = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
    x, y, w, h = gt[0]
    poly = [x, y, x + w, y, x + w, y + h, x, y + h]
    box0 = vot_integration.handle(trk, "initialize", paths[0], poly)
    np.testing.assert_allclose(box0, vot.region_to_rect(np.array(poly)))
    boxes = [vot_integration.handle(trk, "frame", p) for p in paths[1:]]
    ref = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params)
    expect, _ = ref.track(frames[:3], box0)
    np.testing.assert_allclose(np.stack(boxes), expect[1:], rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="unexpected"):
        vot_integration.handle(trk, "hello", paths[0])
