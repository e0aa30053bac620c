"""Each toolkit's score for absent targets: equal to the got10k toolkit's experiments (run on
the same result files) and to pysot's OPE statistics (tests/golden/pysot_ope)."""
import json
import os

import numpy as np
import pytest

from clnet_jax.data import benchmarks
from clnet_jax.evaluate import compare, metrics, protocols
from conftest import PARITY, write_frames, write_rows


def _noisy(rng, gt):
    pred = np.nan_to_num(gt, nan=50.0) + rng.normal(0, 6, gt.shape)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    return pred


def _results(folder, scored):
    os.makedirs(folder, exist_ok=True)
    for name, pred in scored.items():
        np.savetxt(os.path.join(folder, f"{name}.txt"), pred, fmt="%.6f", delimiter=",")


def _assert_equal_to(report, ours, names):
    overall = report["overall"]
    assert abs(ours["success_auc"] - overall["success_score"]) < 1e-9
    assert abs(ours["precision"] - overall["precision_score"]) < 1e-9
    np.testing.assert_allclose(ours["success_curve"], overall["success_curve"], atol=1e-9)
    assert set(report["seq_wise"]) == set(names)


def test_uav123_equals_experiment_uav123_and_differs_from_the_otb_rule(tmp_path):
    """NaN rows: dropped by ExperimentUAV123, failures under ExperimentOTB's rule."""
    from got10k.experiments import ExperimentUAV123
    rng = np.random.default_rng(0)
    root = tmp_path / "UAV123"
    meta = benchmarks.table("uav123")["UAV123"]
    preds = {}
    for name in ("uav6", "uav2"):
        n = meta[name]["end_frame"]
        write_frames(root / "data_seq" / "UAV123" / name, range(1, n + 1), "{:06d}.jpg", (8, 8))
        gt = np.c_[rng.uniform(10, 200, (n, 2)), rng.uniform(10, 60, (n, 2))]
        gt[rng.choice(np.arange(1, n), 15, replace=False)] = np.nan
        (root / "anno" / "UAV123").mkdir(parents=True, exist_ok=True)
        np.savetxt(root / "anno" / "UAV123" / f"{name}.txt", gt, fmt="%.3f", delimiter=",")
        preds[name] = _noisy(rng, gt)
    for extra in ("a", "b"):  # the toolkit wants more than 3 entries in its root
        (root / extra).mkdir()
    seqs, problems = benchmarks.load("uav123", str(root))
    assert not problems and len(seqs) == 2
    _results(tmp_path / "ours", preds)
    _results(tmp_path / "tk" / "UAV123" / "t", preds)
    exp = ExperimentUAV123(str(root), "UAV123", str(tmp_path / "tk"), str(tmp_path / "rep"))
    report = exp.report(["t"])["t"]
    scored = compare.read_results(str(tmp_path / "ours"), seqs)
    proto = protocols.protocol("uav123", "got10k")
    assert proto.experiment == "ExperimentUAV123" and proto.rule == "uav"
    ours = metrics.summarize(scored, proto.rule)
    _assert_equal_to(report, ours, preds)
    otb = metrics.summarize(scored, "otb")
    assert otb["success_auc"] < ours["success_auc"] - 0.05  # absent frames as failures


def test_otb_two_targets_and_ranges_equal_experiment_otb(tmp_path):
    from got10k.datasets import OTB
    from got10k.experiments import ExperimentOTB
    rng = np.random.default_rng(1)
    root = tmp_path / "OTB100"
    preds = {}
    for name, n_frames, targets in (("Jogging", 30, 2), ("David", 770, 1), ("Crossing", 40, 1)):
        write_frames(root / name / "img", range(1, n_frames + 1), size=(8, 8))
        n = 471 if name == "David" else n_frames
        for k in range(targets):
            gt = np.c_[rng.uniform(10, 200, (n, 2)), rng.uniform(10, 60, (n, 2))]
            gt[rng.choice(np.arange(1, n), 3, replace=False)] = np.nan
            fname = f"groundtruth_rect.{k + 1}.txt" if targets > 1 else "groundtruth_rect.txt"
            np.savetxt(root / name / fname, gt, fmt="%.3f", delimiter="\t" if k else ",")
            preds[f"{name}-{k + 1}" if targets > 1 else name] = _noisy(rng, gt)
    seqs, problems = benchmarks.load("otb100", str(root))
    assert {s.name for s in seqs} == set(preds)
    _results(tmp_path / "ours", preds)
    _results(tmp_path / "tk" / "OTB2015" / "t", {k.replace("-", "."): v for k, v in preds.items()})
    exp = ExperimentOTB.__new__(ExperimentOTB)  # the toolkit's own, without its download step
    exp.dataset = OTB(str(root), 2015, download=False)
    exp.result_dir, exp.report_dir = str(tmp_path / "tk" / "OTB2015"), str(tmp_path / "rep")
    exp.nbins_iou, exp.nbins_ce = 21, 51
    report = exp.report(["t"])["t"]
    proto = protocols.protocol("otb100", "got10k")
    ours = metrics.summarize(compare.read_results(str(tmp_path / "ours"), seqs), proto.rule)
    _assert_equal_to(report, ours, [k.replace("-", ".") for k in preds])


def test_pysot_ope_statistics_with_absent_frames():
    """pysot: absence labels masked with the full length as the denominator; NaN and zero
    rows scored as its statistics score them (IoU -1, centre error -1)."""
    with open(os.path.join(PARITY, "pysot_ope", "pysot_ope.json")) as f:
        cases = json.load(f)["cases"]
    assert any(c["present"] for c in cases) and any(c["present"] is None for c in cases)
    for c in cases:
        gt = np.array([[np.nan if v is None else v for v in r] for r in c["gt"]])
        present = None if c["present"] is None else np.array(c["present"])
        succ, prec, nprec = metrics.curves(gt, np.array(c["pred"]), "pysot", present)
        np.testing.assert_allclose(succ, c["success"], atol=1e-12)
        np.testing.assert_allclose(prec, c["precision"], atol=1e-12)
        np.testing.assert_allclose(nprec, c["norm_precision"], atol=1e-12)


def test_three_toolkit_rules_differ_only_through_absent_frames():
    rng = np.random.default_rng(3)
    gt = np.c_[rng.uniform(10, 200, (40, 2)), rng.uniform(10, 60, (40, 2))]
    pred = _noisy(rng, gt)
    pred[0] = gt[0]
    full = {r: metrics.summarize({"s": (gt, pred)}, r)["success_auc"] for r in metrics.RULES}
    assert max(full.values()) - min(full.values()) < 0.02  # thresholds' grid only
    gt_absent = gt.copy()
    gt_absent[10:20] = np.nan
    s = {r: metrics.summarize({"s": (gt_absent, pred)}, r)["success_auc"] for r in metrics.RULES}
    assert s["uav"] > s["otb"] + 0.1 and abs(s["pysot"] - s["otb"]) < 0.02
    # pysot without absence labels counts a NaN frame as precise; with them, as neither
    present = ~np.isnan(gt_absent).any(1)
    ce = metrics.center_error(pred, gt)
    unlabelled = metrics.summarize({"s": (gt_absent, pred)}, "pysot")["precision"]
    labelled = metrics.summarize({"s": (gt_absent, pred, present)}, "pysot")["precision"]
    assert unlabelled == (np.sum(ce[present] <= 20) + 10) / 40
    assert labelled == np.sum(ce[present] <= 20) / 40


def test_protocol_table():
    assert protocols.protocol("dtb70").experiment == "ExperimentDTB70"
    assert protocols.protocol("nfs240").experiment == "ExperimentNfS"
    assert protocols.protocol("got10k").rule == "got10k"
    assert protocols.protocol("got10k", "pysot").rule == "pysot"
    assert protocols.protocol("tlp").experiment.startswith("ExperimentOTB's rule")
    assert protocols.protocol("vot2019", "pysot").rule == "vot"
    with pytest.raises(ValueError, match="unknown toolkit 'mine'"):
        protocols.protocol("otb100", "mine")


def test_dtb70_and_nfs_read_as_the_got10k_datasets_read_them(tmp_path):
    """The same frames and boxes as got10k's DTB70 and NfS classes (whose experiments score
    by ExperimentOTB's rule), including NfS's 240 fps labels taken every 8th frame."""
    from got10k.datasets import DTB70, NfS
    rng = np.random.default_rng(4)
    d = tmp_path / "DTB70"
    for name, n in (("Animal1", 5), ("Car2", 7)):
        write_frames(d / name / "img", range(1, n + 1), "{:05d}.jpg", (8, 8))
        write_rows(d / name / "groundtruth_rect.txt", np.round(rng.uniform(1, 50, (n, 4)), 2))
    ref = DTB70(str(d))
    ours = {s.name: s for s in benchmarks.load("dtb70", str(d))[0]}
    for i, name in enumerate(ref.seq_names):
        frames, anno = ref[i]
        assert ours[name].frames == frames
        np.testing.assert_array_equal(ours[name].gt, anno)
    nfs = tmp_path / "NfS"
    for name, n in (("ball", 4), ("car", 5)):
        write_frames(nfs / name / "30" / name, range(1, n + 1), "{:05d}.jpg", (8, 8))
        corners = np.round(rng.uniform(1, 50, (8 * n + 1, 2)), 1)
        write_rows(nfs / name / "30" / f"{name}.txt",
                   [[0, x, y, x + 20, y + 30, i + 1, 0, 0, 0, '"obj"']
                    for i, (x, y) in enumerate(corners)], " ")
    ref = NfS(str(nfs), 30)
    ours = {s.name: s for s in benchmarks.load("nfs30", str(nfs))[0]}
    for i, name in enumerate(ref.seq_names):
        frames, anno = ref[i]
        assert ours[name].frames == frames
        np.testing.assert_array_equal(ours[name].gt, anno)
