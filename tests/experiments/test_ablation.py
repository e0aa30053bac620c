"""The testbed's plumbing (ablation:quick): every row trains, evaluates and is reported."""
import json
import os

import numpy as np
import pytest

from clnet_jax.experiments import ablation, cache, rows
from conftest import ROOT


def _main(tmp_path, rows=None, partial=False, bases=False, **overrides):
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py:quick", {
        "ablation.bases_dir": f"{tmp_path}/bases", "ablation.report_dir": f"{tmp_path}/docs",
        "data.data_dir": f"{tmp_path}/tfds", **overrides})
    ablation.run(cfg, partial, rows, bases)
    report = tmp_path / "docs" / "ablation.md"
    return report.read_text() if report.is_file() else None


def _check_report(tmp_path, report, rows, splits=("test", "transfer"),
                  levels=("all", "easy", "medium", "hard")):
    """The report's numbers agree with each other: the table's scores with the plotted
    curves (AUC = the success curve's mean, precision = its value at 20 px) and with the
    markdown, each paired difference with its CI, every row in the table and the plots.
    Returns ablation.json."""
    import cv2
    data = json.load(open(tmp_path / "docs" / "ablation.json"))
    assert list(data["splits"]) == list(splits)
    for split in splits:
        summary = data["splits"][split]
        table = summary["table"]
        assert set(rows) <= set(table)
        success = summary["plots"][f"ablation_{split}_success.png"]
        precision = summary["plots"][f"ablation_{split}_precision.png"]
        assert len(success["lines"]) == len(precision["lines"]) == len(table)
        for (label, ys), (plabel, pys), row in zip(success["lines"], precision["lines"], table):
            assert label == f"{row} [{np.mean(ys):.3f}]" and plabel.startswith(f"{row} [")
            np.testing.assert_allclose(np.mean(ys), table[row]["success_auc"], atol=1e-9)
            np.testing.assert_allclose(pys[20], table[row]["precision"], atol=1e-9)
            assert f"| {row} | {100 * table[row]['success_auc']:.1f} ± " in report
            init = table[row]["init_frames"]
            cells = next(line for line in report.split(f"## {split} split")[1].splitlines()
                         if line.startswith(f"| {row} | ")).split(" | ")
            assert cells[4] == ("–" if init is None else f"{init:.2f}")
        assert success["xlabel"] == "overlap threshold" and len(success["lines"][0][1]) == 21
        for kind in ("success", "precision"):
            img = cv2.imread(str(tmp_path / "docs" / f"ablation_{split}_{kind}.png"))
            assert img is not None and img.shape == (495, 715, 3)
        for ref, per_row in summary["paired_differences"].items():
            assert ref in ("BT", "RT", "DM", "sgd_tuned", "sgd_finetune") and ref in table
            for row, cis in per_row.items():
                assert set(cis) == set(levels)
                for m, lo, hi in cis.values():
                    assert lo <= m <= hi
                m, lo, hi = cis["all"]
                assert f"| {row} | {100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" in report
    seeds = data["seeds"]
    assert len(seeds) == 1 and set(data["row_train_s"]) == set(data["rows"]) >= set(rows)
    return data


@pytest.mark.slow
def test_testbed_reuses_bases_and_adds_a_variant(tmp_path):
    """Bases built once (--bases), rows on top, then a registered variant as a new row that
    trains only itself; the report regenerates from the saved results."""
    assert _main(tmp_path, bases=True) is None  # bases only: no report yet
    bases = list((tmp_path / "bases").iterdir())
    assert len(bases) == 1 and (bases[0] / "base" / "wall_s.json").is_file()
    stamp = os.path.getmtime(bases[0] / "base" / "wall_s.json")
    report = _main(tmp_path, **{"ablation.rows": ["BT", "RT", "DM"]})
    data = _check_report(tmp_path, report, ("BT", "RT", "DM"))
    assert data["splits"]["test"]["table"]["DM"]["init_frames"] > 0  # the first-frame cost
    assert os.path.getmtime(bases[0] / "base" / "wall_s.json") == stamp  # not retrained
    before = set(os.listdir(bases[0] / "rows"))
    report = _main(tmp_path, ["mlp_no_latent"], **{"ablation.rows": ["BT", "RT", "DM"]})
    assert "| mlp_no_latent |" in report
    new = set(os.listdir(bases[0] / "rows")) - before
    assert [n.split("-")[0] for n in new] == ["mlp_no_latent"]  # only the variant trained
    os.remove(tmp_path / "docs" / "ablation.md")
    again = _main(tmp_path, ["mlp_no_latent"], True, **{"ablation.rows": ["BT", "RT", "DM"]})
    assert again == report
    # a hand-written reading beside the report survives regeneration
    (tmp_path / "docs" / "ablation_reading.md").write_text("## Reading\n\nCLNet does not.\n")
    again = _main(tmp_path, ["mlp_no_latent"], True, **{"ablation.rows": ["BT", "RT", "DM"]})
    assert again.startswith(report.rstrip()) and again.rstrip().endswith("CLNet does not.")
    with pytest.raises(SystemExit, match="unknown row"):
        _main(tmp_path, ["nonexistent"])


@pytest.mark.slow
def test_quick_ablation_every_row(tmp_path):
    """Without the init-cost timing (one more compilation per row; the test above has it):
    the column says it was not measured."""
    report = _main(tmp_path, **{"ablation.init_cost": False})
    splits = _check_report(tmp_path, report, rows.ROWS)["splits"]
    assert all(r["init_frames"] is None for t in splits.values() for r in t["table"].values())


def test_keys_follow_what_decides_the_work():
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    real = (cfg.ablation.bases_dir, cache.report_dir(cfg))
    q = config_lib.from_file(f"{ROOT}/configs/ablation.py:quick")
    assert q.ablation.bases_dir != real[0] and cache.report_dir(q) != real[1]
    assert cache.report_dir(q).startswith(q.ablation.bases_dir)
    key = cache.base_key(cfg, 0)
    assert cache.base_key(cfg, 1) != key
    other = cfg.copy_and_resolve_references()
    other.train.clnet.epochs += 1  # a CLNet-stage setting: same base, other rows
    other.train.log_every += 1
    other.ablation.report_dir = "elsewhere"
    other.track.penalty_k += 0.01  # a tracking constant: same base
    assert cache.base_key(other, 0) == key
    crops = cfg.copy_and_resolve_references()
    crops.track.instance_size = 191  # training crops read it: another base
    assert cache.base_key(crops, 0) != key
    assert cache.eval_path(other, 0, "DM", "test") != cache.eval_path(cfg, 0, "DM", "test")
    assert cache.eval_path(other, 0, "BT", "test").startswith(cache.seed_dir(cfg, 0))
    steps = cfg.copy_and_resolve_references()
    steps.train.clnet.epochs += 1  # rows tracking with the base keep their evaluations
    for row, same in (("BT", True), ("sgd_finetune", True), ("RT", False), ("DM", False)):
        assert (cache.eval_path(steps, 0, row, "test")
                == cache.eval_path(cfg, 0, row, "test")) == same, row
    steps.clnet.sgd_steps = cfg.clnet.sgd_steps + 1  # sgd_finetune's own setting
    assert cache.eval_path(steps, 0, "BT", "test") == cache.eval_path(cfg, 0, "BT", "test")
    assert (cache.eval_path(steps, 0, "sgd_finetune", "test")
            != cache.eval_path(cfg, 0, "sgd_finetune", "test"))
    other.train.base.epochs += 1  # a base setting: another base
    assert cache.base_key(other, 0) != key
    sgd = cfg.copy_and_resolve_references()
    sgd.train.optimizer = "sgd"
    assert cache.base_key(sgd, 0) != key


def test_compiled_programs_are_cached_beside_the_bases_but_not_in_quick_runs():
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    d = cache.compilation_cache_dir(cfg)
    assert d == os.path.abspath(os.path.join(cfg.ablation.bases_dir, "xla_cache"))
    assert cache.compilation_cache_dir(config_lib.from_file(f"{ROOT}/configs/ablation.py:quick")) is None
    cfg.ablation.compilation_cache = False
    assert cache.compilation_cache_dir(cfg) is None


def test_levels_split_the_columns_by_difficulty():
    from clnet_jax.experiments import report
    lv = report.levels_of(["test_easy_00000", "test_medium_00001", "test_hard_00002", "test_easy_00003"])
    assert list(lv) == ["all", "easy", "medium", "hard"] and lv["easy"].tolist() == [1, 0, 0, 1]
    assert list(report.levels_of(["test_00000"])) == ["all"]


def test_meta_support_and_readapt_rows_reuse_the_training_they_track_with():
    """<row>_readapt tracks with <row>'s trained weights (same row directory) and
    track.readapt on; DM_support is DM trained with a support/query split (its own
    training); a registered meta variant is a row trained like DM with its own default
    support split; an unknown row is refused."""
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    job = lambda row: cache.row_stage(cfg, 0, row)
    assert job("DM_readapt")[2] == job("DM")[2]
    assert job("meta_sgd_readapt")[2] == job("meta_sgd")[2] != job("DM")[2]
    assert job("sgd_finetune_readapt") is None  # tracks with the base, like sgd_finetune
    tc = rows.tracking_config(cfg, "DM_readapt")
    assert tc.track.readapt and tc.clnet.variant == "clnet"
    assert not rows.tracking_config(cfg, "DM").track.readapt
    assert (cache.eval_path(cfg, 0, "DM_readapt", "test")
            != cache.eval_path(cfg, 0, "DM", "test"))
    sup = job("DM_support")
    assert sup[2] != job("DM")[2] and sup[0].clnet.support_pairs == 1
    assert rows.tracking_config(cfg, "DM_support").clnet.variant == "clnet"
    meta = job("meta_sgd")[0]
    assert meta.clnet.variant == "meta_sgd" and meta.train.diverse_mining
    assert meta.train.clnet.pairs_per_group == cfg.train.clnet.pairs_per_group
    for row in ("no_such_row", "no_such_row_readapt"):
        with pytest.raises(SystemExit, match="unknown row"):
            rows.row_of(row)
    assert cache.row_training_s(cfg, 0, "DM_readapt") == 0.0  # trains nothing itself


def test_sgd_tuned_tracks_the_base_at_the_validation_step_size():
    """sgd_tuned is sgd_finetune at ablation.sgd_tuned_lr: nothing trained, its own
    evaluations, and a config without the tuned value is refused before any work."""
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    cfg.ablation.sgd_tuned_lr = 0.123
    assert cache.row_stage(cfg, 0, "sgd_tuned") is None
    tc = rows.tracking_config(cfg, "sgd_tuned")
    assert tc.clnet.variant == "sgd_finetune" and tc.clnet.sgd_lr == 0.123
    assert rows.tracking_config(cfg, "sgd_finetune").clnet.sgd_lr == cfg.clnet.sgd_lr
    assert (cache.eval_path(cfg, 0, "sgd_tuned", "test")
            != cache.eval_path(cfg, 0, "sgd_finetune", "test"))
    other = cfg.copy_and_resolve_references()
    other.ablation.sgd_tuned_lr = 0.5  # another tuned value: re-evaluated, nothing else
    assert (cache.eval_path(other, 0, "sgd_tuned", "test")
            != cache.eval_path(cfg, 0, "sgd_tuned", "test"))
    assert cache.eval_path(other, 0, "DM", "test") == cache.eval_path(cfg, 0, "DM", "test")
    cfg.ablation.sgd_tuned_lr = None
    with pytest.raises(SystemExit, match="needs ablation.sgd_tuned_lr"):
        ablation.run(cfg, rows=["BT", "sgd_tuned"])


def _real(**overrides):
    """ablation:real_quick on the real fixtures (tests/golden/realdata) with a split of
    their videos: bag and horse held out for testing, Bike for validation."""
    from clnet_jax import config as config_lib
    from conftest import REALDATA
    folders = ",".join(os.path.join(REALDATA, f) for f in ("otb", "tlp", "vot", "vot_tir"))
    return config_lib.from_file(f"{ROOT}/configs/ablation.py:real_quick", {
        "data.dir": folders, "data.holdout": "bag,horse,Bike",
        "ablation.split_videos.test": "bag,horse", "ablation.split_videos.validation": "Bike",
        **overrides})


def test_real_testbed_splits_by_video_and_refuses_a_missing_one():
    """The real-video testbed reads its splits from the folders of data.dir by video name
    (VOT polygons as their bounding boxes); a named video no folder holds, or no data.dir at
    all, is an error that names what is missing. The shipped split is configs/real.py's,
    whose held-back videos (test and validation) the bases never train on."""
    import importlib.util

    from clnet_jax import config as config_lib
    from clnet_jax.experiments import tune
    cfg = _real()
    splits = ablation.load_splits(cfg, quick=False)
    assert list(splits) == ["test"] and [s.name for s in splits["test"]] == ["bag", "horse"]
    assert all(s.gt.shape[1] == 4 for s in splits["test"])
    assert [s.name for s in tune.validation_split(cfg)] == ["Bike"]
    # bag (VOT RGB) and horse (VOT thermal) differ in frame size: one sequence per batch
    assert ablation.batch_size(cfg, list(splits.values())) == 1
    with pytest.raises(ValueError, match="videos Zebra are in no folder of data.dir"):
        ablation.load_splits(_real(**{"ablation.split_videos.test": "bag,Zebra"}), False)
    with pytest.raises(ValueError, match="give the folders, --config.data.dir"):
        ablation.load_splits(_real(**{"data.dir": ""}), False)
    shipped = config_lib.from_file(f"{ROOT}/configs/ablation.py:real")
    spec = importlib.util.spec_from_file_location("real_split", f"{ROOT}/configs/real.py")
    split = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(split)
    assert shipped.ablation.split_videos.test.split(",") == split.TEST
    assert shipped.ablation.split_videos.validation.split(",") == split.VALIDATION
    assert set(shipped.data.holdout.split(",")) == set(split.TEST) | set(split.VALIDATION)
    assert not set(split.TRAIN) & (set(split.TEST) | set(split.VALIDATION))
    synthetic = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    assert shipped.ablation.bases_dir != synthetic.ablation.bases_dir
    with pytest.raises(ValueError, match="the config argument is one of quick, real"):
        config_lib.from_file(f"{ROOT}/configs/ablation.py:reel")


@pytest.mark.slow
def test_real_testbed_trains_scores_and_reports_on_real_frames(tmp_path):
    """Two rows of the real-video testbed end to end on real frames: the base (on the
    training video and the synthetic scenes), DM on it, both scored on the held-out
    videos of two frame sizes, and a report that says what it was scored on."""
    cfg = _real(**{"ablation.bases_dir": f"{tmp_path}/bases", "ablation.report_dir": f"{tmp_path}/docs",
                   "data.data_dir": f"{tmp_path}/tfds", "ablation.rows": ["BT", "DM"]})
    ablation.run(cfg)
    report = (tmp_path / "docs" / "ablation.md").read_text()
    assert "Data: real videos of `data.dir`" in report and "test: bag, horse" in report
    data = _check_report(tmp_path, report, ("BT", "DM"), splits=("test",),
                         levels=("all",))  # no difficulty levels in real video
    assert data["splits"]["test"]["sequences"] == 2
