"""Evaluation: loaders on fixtures, eval.py against the Dudek goldens, reruns, batching."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from clnet_jax.evaluate import compare, metrics
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.evaluate import runner as eval_runner
from clnet_jax.track import runner
from conftest import DUDEK, PARITY, ROOT, config


def _seq(root, name, n, gt_lines, sep=",", ext="jpg"):
    d = root / name / "img"
    d.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(d / f"{i + 1:04d}.{ext}"), np.full((60, 80, 3), 40 + i, np.uint8))
    (root / name / "groundtruth_rect.txt").write_text(
        "".join(sep.join(str(v) for v in b) + "\n" for b in gt_lines))


def test_folder_loader_separators_init_only_and_problems(tmp_path):
    _seq(tmp_path, "comma", 3, [[1, 2, 20, 20]] * 3)
    _seq(tmp_path, "space", 3, [[1, 2, 20, 20]] * 3, sep=" ")
    _seq(tmp_path, "tabpng", 2, [[1, 2, 20, 20]] * 2, sep="\t", ext="png")
    _seq(tmp_path, "initonly", 4, [[1, 2, 20, 20]])
    _seq(tmp_path, "short", 4, [[1, 2, 20, 20]] * 2)
    (tmp_path / "empty").mkdir()
    seqs, problems = eval_data.folder(str(tmp_path))
    by = {s.name: s for s in seqs}
    assert set(by) == {"comma", "space", "tabpng", "initonly"}
    np.testing.assert_array_equal(by["space"].gt, [[1, 2, 20, 20]] * 3)
    assert by["initonly"].init_only and np.isnan(by["initonly"].gt[1:]).all()
    assert "2 boxes for 4 frames" in problems["short"]
    assert "groundtruth_rect.txt" in problems["empty"]


def test_frames_cannot_misalign_with_the_ground_truth(tmp_path):
    """A gap in numbered frames, or more boxes than frames, fails that sequence (naming the
    missing frame); the others still load. Unpadded numbers sort numerically."""
    _seq(tmp_path, "gap", 5, [[1, 2, 20, 20]] * 5)
    os.remove(tmp_path / "gap" / "img" / "0003.jpg")
    _seq(tmp_path, "extra", 3, [[1, 2, 20, 20]] * 4)
    _seq(tmp_path, "fine", 3, [[1, 2, 20, 20]] * 3)
    d = tmp_path / "unpadded" / "img"
    d.mkdir(parents=True)
    for i in range(1, 12):
        cv2.imwrite(str(d / f"{i}.jpg"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "unpadded" / "groundtruth_rect.txt").write_text("1,2,5,5\n" * 11)
    seqs, problems = eval_data.folder(str(tmp_path))
    assert {s.name for s in seqs} == {"fine", "unpadded"}
    assert "0003.jpg" in problems["gap"] and "missing frame" in problems["gap"]
    assert "4 boxes for 3 frames" in problems["extra"]
    unpadded = next(s for s in seqs if s.name == "unpadded")
    assert [os.path.basename(f) for f in unpadded.frames[8:11]] == ["9.jpg", "10.jpg", "11.jpg"]
    # the published layouts read for training and evaluation check the same
    g = tmp_path / "got" / "val"
    for name, drop in (("GOT-10k_Val_000001", None), ("GOT-10k_Val_000002", 2)):
        (g / name).mkdir(parents=True)
        for i in range(1, 4):
            if i != drop:
                cv2.imwrite(str(g / name / f"{i:08d}.jpg"), np.zeros((20, 20, 3), np.uint8))
        (g / name / "groundtruth.txt").write_text("1,2,5,5\n" * 3)
        _got10k_meta(g / name, [8, 8, 8], (20, 20))
    seqs, problems = eval_data.load("got10k", str(tmp_path / "got"))
    assert [s.name for s in seqs] == ["GOT-10k_Val_000001"]
    assert "00000002.jpg" in problems["GOT-10k_Val_000002"]


def _got10k_meta(d, cover, resolution):
    n = len(cover)
    (d / "cover.label").write_text("".join(f"{c}\n" for c in cover))
    (d / "absence.label").write_text("".join(f"{int(c == 0)}\n" for c in cover))
    (d / "cut_by_image.label").write_text("0\n" * n)
    (d / "meta_info.ini").write_text(f"[METAINFO]\nurl: x\nresolution: ({resolution[0]}, {resolution[1]})\n")


def test_got10k_protocol_equals_the_official_toolkit(tmp_path):
    """AO / SR over frames 2.. with cover labels and image clipping, exactly as
    got10k.experiments.ExperimentGOT10k.report computes them from the same result files."""
    from got10k.experiments import ExperimentGOT10k
    rng = np.random.default_rng(0)
    root, names, results = tmp_path / "GOT-10k", [], {}
    for i, n in enumerate((12, 7, 20)):
        name = f"GOT-10k_Val_{i + 1:06d}"
        d = root / "val" / name
        d.mkdir(parents=True)
        for t in range(n):
            cv2.imwrite(str(d / f"{t + 1:08d}.jpg"), np.zeros((8, 8, 3), np.uint8))
        gt = np.c_[rng.uniform(0, 300, (n, 2)), rng.uniform(20, 120, (n, 2))]
        np.savetxt(d / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        cover = rng.integers(0, 9, n)
        cover[0] = 8
        _got10k_meta(d, cover, (320, 240))
        pred = gt + rng.normal(0, 15, gt.shape)  # some boxes leave the 320x240 image
        pred[0] = gt[0]
        results[name] = pred
        names.append(name)
    (root / "val" / "list.txt").write_text("\n".join(names))
    seqs, problems = eval_data.load("got10k", str(root))
    assert not problems and all(s.meta is not None for s in seqs)
    ours_dir = tmp_path / "ours"
    ours_dir.mkdir()
    for name, pred in results.items():
        np.savetxt(ours_dir / f"{name}.txt", pred, fmt="%.6f", delimiter=",")
        tk = tmp_path / "tk_results" / "GOT-10k" / "t" / name
        tk.mkdir(parents=True)
        np.savetxt(tk / f"{name}_001.txt", pred, fmt="%.6f", delimiter=",")
        np.savetxt(tk / f"{name}_time.txt", np.full(len(pred), 0.01))  # the toolkit needs it
    ours = metrics.got10k_summary(compare.read_results(str(ours_dir), seqs, with_meta=True))
    exp = ExperimentGOT10k(str(root), subset="val", result_dir=str(tmp_path / "tk_results"),
                           report_dir=str(tmp_path / "tk_reports"))
    ref = exp.report(["t"])["t"]
    assert abs(ours["ao"] - ref["overall"]["ao"]) < 1e-9
    assert abs(ours["sr50"] - ref["overall"]["sr"]) < 1e-9
    np.testing.assert_allclose(ours["success_curve"], ref["overall"]["succ_curve"], atol=1e-9)
    assert abs(ours["sr75"] - ref["overall"]["succ_curve"][75]) < 1e-9
    for name in names:
        assert abs(ours["seq_wise"][name]["ao"] - ref["seq_wise"][name]["ao"]) < 1e-9
    # the one-pass OTB metric would also score frame 1 (IoU 1) and invisible frames
    otb = metrics.summarize({n: v[:2] for n, v in compare.read_results(str(ours_dir), seqs, True).items()})
    assert abs(otb["success_auc"] - ours["ao"]) > 1e-3


def test_pysot_json_loader(tmp_path):
    _seq(tmp_path, "Basketball", 2, [[1, 2, 20, 20]] * 2)
    meta = {"Basketball": {"img_names": ["Basketball/img/0001.jpg", "Basketball/img/0002.jpg"],
                           "gt_rect": [[1, 2, 20, 20], [2, 3, 20, 20]], "init_rect": [1, 2, 20, 20]}}
    (tmp_path / "OTB100.json").write_text(json.dumps(meta))
    seqs, _ = eval_data.load("otb100", str(tmp_path))
    assert seqs[0].frames[1].endswith("0002.jpg") and seqs[0].gt[1, 0] == 2


def test_got10k_test_split_is_tracked_not_scored(tmp_path, tiny_params):
    _seq(tmp_path / "test", "GOT-10k_Test_000001", 3, [[1, 2, 20, 20]])
    seqs, _ = eval_data.load("got10k_test", str(tmp_path))
    assert seqs[0].init_only
    eval_runner.run_dataset(config("siamrpn_tiny"), tiny_params, seqs, str(tmp_path / "r"),
                            "got10k_test", "t")
    sub = tmp_path / "r" / "got10k_test" / "t_submission" / "GOT-10k_Test_000001"
    assert np.loadtxt(sub / "GOT-10k_Test_000001_001.txt", delimiter=",").shape == (3, 4)
    assert len(np.loadtxt(sub / "GOT-10k_Test_000001_time.txt")) == 3
    assert not compare.read_results(str(tmp_path / "r" / "got10k_test" / "t"), seqs)


def _dudek_only(tmp_path):
    d = tmp_path / "seqs"
    shutil.copytree(DUDEK, d / "Dudek")
    return d


@pytest.mark.parametrize("cfg_name,ckpt,overrides,golden", [
    ("siamrpn_tiny", "siamrpn", {}, "dudek_siamrpn_tiny.txt"),
    ("clnet_tiny", "clnet", {"clnet.label_sampler": "official_numpy"}, "dudek_clnet_fixed_tiny.txt"),
])
@pytest.mark.slow
def test_eval_runner_reproduces_dudek_goldens(tmp_path, weights_dir, cfg_name, ckpt, overrides, golden):
    cfg = config(cfg_name, **overrides)
    params = runner.load_params(cfg, weights_dir[ckpt])
    seqs, problems = eval_data.load("folder", os.path.dirname(DUDEK))
    status = eval_runner.run_dataset(cfg, params, seqs, str(tmp_path), "folder", "t")
    assert status["Dudek"] == "done" and not problems
    ours = np.loadtxt(tmp_path / "folder" / "t" / "Dudek.txt", delimiter=",")
    ref = np.loadtxt(os.path.join(PARITY, golden), delimiter=",")
    assert metrics.iou_got10k(ours, ref).mean() >= 0.99
    # a rerun skips the finished sequence and keeps its file
    again = eval_runner.run_dataset(cfg, params, seqs, str(tmp_path), "folder", "t")
    assert again["Dudek"].startswith("skipped")


@pytest.mark.slow
def test_eval_py_official_layout_reproduces_golden(tmp_path, weights_dir):
    cmd = [sys.executable, "eval.py", f"--config={ROOT}/configs/clnet_tiny.py",
           "--config.clnet.label_layout=official", "--config.clnet.label_sampler=official_numpy",
           f"--checkpoint={weights_dir['clnet']}", "--dataset=folder",
           f"--data_dir={os.path.dirname(DUDEK)}", f"--results_dir={tmp_path}",
           "--tracker_name=clnet_official"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    ours = np.loadtxt(tmp_path / "folder" / "clnet_official" / "Dudek.txt", delimiter=",")
    ref = np.loadtxt(os.path.join(PARITY, "dudek_clnet_tiny.txt"), delimiter=",")
    assert metrics.iou_got10k(ours, ref).mean() >= 0.99
    summary = json.load(open(tmp_path / "folder" / "clnet_official" / "summary.json"))
    assert summary["sequences"]["Dudek"] == "done"
    assert "success AUC" in out.stdout


@pytest.mark.slow
def test_bad_sequences_fail_alone_and_batched_equals_sequential(tmp_path, tiny_params, synthetic_video):
    root = _dudek_only(tmp_path)
    shutil.copytree(os.path.join(PARITY, "synthetic_video"), root / "synth")
    shutil.copytree(root / "synth", root / "synth_broken")
    (root / "synth_broken" / "img" / "0005.png").write_bytes(b"garbage")
    _seq(root, "nanbox", 3, [[np.nan, 1, 2, 3]] * 3)
    cfg = config("siamrpn_tiny")
    seqs, _ = eval_data.load("folder", str(root))
    seq_status = eval_runner.run_dataset(cfg, tiny_params, seqs, str(tmp_path / "r1"), "f", "t")
    assert seq_status["Dudek"] == "done" and seq_status["synth"] == "done"
    assert "0005.png" in seq_status["synth_broken"] and "NaN" in seq_status["nanbox"]
    assert not os.path.exists(tmp_path / "r1" / "f" / "t" / "synth_broken.txt")
    bat_status = eval_runner.run_dataset(cfg, tiny_params, seqs, str(tmp_path / "r2"), "f", "t", batch=2)
    assert bat_status["Dudek"] == "done" and bat_status["synth"] == "done"
    assert "0005.png" in bat_status["synth_broken"]
    # Batched convolutions round differently; on Dudek the random-weight tiny model has
    # near-flat scores, so a near-tie in the argmax eventually flips and the two rollouts
    # part (after ~5 frames on Dudek, ~12 on synth); before that they agree.
    for name, frames in (("Dudek", 4), ("synth", 10)):
        a = np.loadtxt(tmp_path / "r1" / "f" / "t" / f"{name}.txt", delimiter=",")
        b = np.loadtxt(tmp_path / "r2" / "f" / "t" / f"{name}.txt", delimiter=",")
        assert a.shape == b.shape
        assert metrics.iou_got10k(a[:frames], b[:frames]).mean() > 0.99, name


def test_compare_plots_hold_each_trackers_curves_best_first(tmp_path):
    root = _dudek_only(tmp_path)
    seqs, _ = eval_data.load("folder", str(root))
    gt = seqs[0].gt
    for name, noise in (("good", 2.0), ("bad", 25.0)):
        d = tmp_path / "res" / name
        d.mkdir(parents=True)
        pred = gt + np.random.default_rng(0).normal(0, noise, gt.shape)
        np.savetxt(d / "Dudek.txt", pred, delimiter=",")
    shown = {}
    scores = compare.compare([str(tmp_path / "res" / "bad"), str(tmp_path / "res" / "good")],
                             seqs, str(tmp_path / "plots"), "Dudek", shown=shown)
    assert scores["good"]["success_auc"] > scores["bad"]["success_auc"]
    for kind, key, mark in (("success", "success_curve", "success_auc"),
                            ("precision", "precision_curve", "precision")):
        plot = shown[""][kind]
        assert [label for label, _, _ in plot["lines"]] == [
            f"{n} [{scores[n][mark]:.3f}]" for n in ("good", "bad")]  # best first
        for (_, xs, ys), n in zip(plot["lines"], ("good", "bad")):
            np.testing.assert_array_equal(ys, scores[n][key])
            assert len(xs) == len(ys)
        assert plot["ylim"] == (0.0, 1.0) and plot["title"] == f"{kind} plot: Dudek (1 sequences)"
        assert plot["xlabel"] == ("overlap threshold" if kind == "success"
                                  else "location error threshold (px)")
        img = cv2.imread(str(tmp_path / "plots" / f"{kind}_plot.png"))
        assert img.shape == (495, 715, 3)  # 6.5 x 4.5 in at 110 dpi


@pytest.mark.slow
def test_got10k_adapter_tracks(tiny_params, synthetic_video):
    pytest.importorskip("got10k")
    import glob

    from clnet_jax.evaluate.interop import got10k_tracker
    frames, gt = synthetic_video
    trk = got10k_tracker(config("siamrpn_tiny"), tiny_params)
    files = sorted(glob.glob(os.path.join(PARITY, "synthetic_video", "img", "*.png")))[:4]
    boxes, times = trk.track(files, gt[0])  # got10k reads them with PIL (RGB)
    ours, _ = runner.SequenceTracker(config("siamrpn_tiny"), tiny_params).track(frames[:4], gt[0])
    np.testing.assert_allclose(boxes, ours, rtol=1e-5, atol=1e-3)


def test_lasot_and_got10k_val_loaders(tmp_path):
    d = tmp_path / "lasot" / "cat" / "cat-1"
    (d / "img").mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(d / "img" / f"{i + 1:08d}.jpg"), np.zeros((20, 20, 3), np.uint8))
    (d / "groundtruth.txt").write_text("1,2,5,5\n2,3,5,5\n")
    (d / "full_occlusion.txt").write_text("0,1")
    (tmp_path / "lasot" / "testing_set.txt").write_text("cat-1\n")
    (seq,), _ = eval_data.load("lasot", str(tmp_path / "lasot"))
    assert seq.name == "cat-1" and np.isnan(seq.gt[1]).all() and seq.gt[0, 0] == 1
    g = tmp_path / "got" / "val" / "GOT-10k_Val_000001"
    g.mkdir(parents=True)
    cv2.imwrite(str(g / "00000001.jpg"), np.zeros((20, 20, 3), np.uint8))
    (g / "groundtruth.txt").write_text("1,2,5,5\n")
    _got10k_meta(g, [8], (20, 20))
    (seq,), _ = eval_data.load("got10k", str(tmp_path / "got"))
    assert not seq.init_only and len(seq.frames) == 1
    with pytest.raises(ValueError, match="unknown dataset"):
        eval_data.load("imaginary", str(tmp_path))


def test_track_py_writes_video_and_stills(tmp_path, weights_dir):
    out = subprocess.run(
        [sys.executable, "track.py", f"--config={ROOT}/configs/siamrpn_tiny.py",
         f"--checkpoint={weights_dir['siamrpn']}", f"--video={DUDEK}/img", "--init=123,87,132,176",
         f"--out={tmp_path}/out.mp4", f"--png={tmp_path}/png"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert os.path.getsize(tmp_path / "out.mp4") > 10_000
    assert len(os.listdir(tmp_path / "png")) == 20
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (480, 720, 3)


def test_compare_draws_per_attribute_plots_from_pysot_json(tmp_path):
    """OTB/UAV123/LaSOT JSON files carry attributes: one pair of plots per attribute."""
    rng = np.random.default_rng(0)
    meta = {}
    for name, attr in (("a", ["IV", "OCC"]), ("b", ["OCC"]), ("c", ["SV"])):
        _seq(tmp_path / "data", name, 4, [[10, 10, 30, 30]] * 4)
        meta[name] = {"img_names": [f"{name}/img/{i + 1:04d}.jpg" for i in range(4)],
                      "gt_rect": [[10, 10, 30, 30]] * 4, "attr": attr}
    (tmp_path / "data" / "OTB100.json").write_text(json.dumps(meta))
    seqs, _ = eval_data.load("otb100", str(tmp_path / "data"))
    for tracker, noise in (("good", 1.0), ("bad", 12.0)):
        d = tmp_path / "res" / tracker
        d.mkdir(parents=True)
        for s in seqs:
            np.savetxt(d / f"{s.name}.txt", s.gt + rng.normal(0, noise, s.gt.shape), delimiter=",")
    scores = compare.compare([str(tmp_path / "res" / "good"), str(tmp_path / "res" / "bad")],
                             seqs, str(tmp_path / "plots"), "OTB100")
    assert set(scores["good"]["attributes"]) == {"IV", "OCC", "SV"}
    assert scores["good"]["attributes"]["OCC"]["sequences"] == 2
    for attr in ("IV", "OCC", "SV"):
        for kind in ("success", "precision"):
            img = cv2.imread(str(tmp_path / "plots" / f"{kind}_plot_{attr}.png"))
            assert img is not None and img.shape == (495, 715, 3)


@pytest.mark.slow
def test_demo_evaluation_scores_present_frames_after_the_first(tiny_params, synthetic_video):
    """train.py's end-of-run table scores as the testbed does: marking frames absent
    removes them from the score instead of counting them as failures."""
    from clnet_jax.evaluate import base_vs_clnet
    frames, gt = synthetic_video
    frames, gt = frames[:8], np.asarray(gt[:8], float)
    enc = [cv2.imencode(".png", f)[1].tobytes() for f in frames]
    cfg = config("siamrpn_tiny")
    seq = eval_data.EvalSequence("v", enc, gt, False)
    full = base_vs_clnet.evaluate_split(cfg, tiny_params, [seq], "eval")
    assert full["sequences"] == 1 and 0 <= full["success_auc"] <= 1
    assert 0 <= full["first_iou"] <= 1
    boxes = eval_runner.track_one(runner.SequenceTracker(cfg, tiny_params), seq)[0]
    iou = metrics.iou_got10k(boxes, gt)
    worst = int(np.argmin(iou[1:])) + 1  # hide the worst-tracked frame: the score goes up
    hidden = gt.copy()
    hidden[worst] = np.nan
    part = base_vs_clnet.evaluate_split(cfg, tiny_params, [seq._replace(gt=hidden)], "eval")
    keep = np.ones(len(gt), bool)
    keep[[0, worst]] = False
    expect = np.mean(iou[keep][:, None] > np.linspace(0, 1, 21)[None])
    np.testing.assert_allclose(part["success_auc"], expect, atol=1e-9)


def test_batched_end_of_run_evaluation_matches_one_by_one(tiny_params, dudek):
    """train.eval_batch > 1 tracks sequences of one size together (two sizes here, grouped
    first): the same per-sequence scores as tracking them one by one."""
    from clnet_jax.evaluate import base_vs_clnet
    frames, gt = dudek
    frames, gt = frames[:6], np.asarray(gt[:6], float)
    small = [cv2.resize(f, (360, 240)) for f in frames]
    enc = lambda fs: [cv2.imencode(".png", f)[1].tobytes() for f in fs]
    seqs = [eval_data.EvalSequence("a", enc(frames), gt, False),
            eval_data.EvalSequence("b", enc(frames[:4]), gt[:4], False),
            eval_data.EvalSequence("c", enc(small), gt / 2, False)]
    one = base_vs_clnet.evaluate_split(config("siamrpn_tiny"), tiny_params, seqs, "eval")
    batched = base_vs_clnet.evaluate_split(
        config("siamrpn_tiny", **{"train.eval_batch": 2}), tiny_params, seqs, "eval")
    assert batched["sequences"] == one["sequences"] == 3
    for key in ("success_auc", "precision", "first_iou"):
        np.testing.assert_allclose(batched[key], one[key], atol=1e-6)
    assert batched["per_sequence_auc"].keys() == one["per_sequence_auc"].keys()
    for name, auc in one["per_sequence_auc"].items():
        np.testing.assert_allclose(batched["per_sequence_auc"][name], auc, atol=1e-6)
    assert one["per_sequence_auc"]["a"] > 0.3  # it tracks: the comparison has teeth


def test_demo_paired_difference_pairs_by_sequence_and_decides_only_outside_zero():
    from clnet_jax.evaluate import scoring
    rng = np.random.default_rng(0)
    names = [f"s{i}" for i in range(40)]
    base = {"per_sequence_auc": {n: float(v) for n, v in zip(names, rng.uniform(0.3, 0.7, 40))}}
    better = {"per_sequence_auc": {n: v + 0.05 for n, v in base["per_sequence_auc"].items()}}
    mean, lo, hi, n = scoring.paired_difference(better, base)
    assert n == 40 and abs(mean - 0.05) < 1e-12 and lo > 0  # a constant gain is decided
    noisy = {"per_sequence_auc": {n: v + rng.normal(0, 0.1) for n, v in
                                  base["per_sequence_auc"].items()}}
    mean, lo, hi, _ = scoring.paired_difference(noisy, base)
    assert lo < mean < hi and lo < 0 < hi          # noise around zero is undecided
    partial = {"per_sequence_auc": dict(list(better["per_sequence_auc"].items())[:10])}
    assert scoring.paired_difference(partial, base)[3] == 10  # only sequences both scored
