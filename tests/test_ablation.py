"""The ablation command's plumbing (--quick): every row trains, evaluates and is reported."""
import json
import os

import numpy as np
import pytest

from clnet_jax.experiments import ablation
from conftest import ROOT


def test_quick_ablation_writes_the_report(tmp_path):
    ablation.main([f"--config={ROOT}/configs/ablation.py", "--quick",
                   f"--config.train.workdir={tmp_path}/runs",
                   f"--config.ablation.report_dir={tmp_path}/docs",
                   f"--config.data.data_dir={tmp_path}/tfds"])
    report = (tmp_path / "docs" / "ablation.md").read_text()
    for row in ("| BT |", "| RT |", "| AN |", "| LE |", "| OS |", "| DM |", "| mean_only |",
                "| sgd_finetune |", "| DM_official |", "| DM_running_bn |"):
        assert row in report
    assert "Paired difference against BT" in report and "Paired difference against RT" in report
    assert "ordering BT < AN < LE" in report
    for png in ("ablation_success.png", "ablation_precision.png"):
        assert os.path.getsize(tmp_path / "docs" / png) > 10_000
    data = json.load(open(tmp_path / "docs" / "ablation.json"))
    m, lo, hi = data["paired_differences"]["BT"]["DM"]
    assert lo <= m <= hi
    dm = data["table"]["DM"]
    assert 0 <= dm["success_auc"][0] <= 1 and dm["init_frames"][0] > 0
    # regenerated from the saved per-seed results, without training
    os.remove(tmp_path / "docs" / "ablation.md")
    ablation.main([f"--config={ROOT}/configs/ablation.py", "--quick", "--report_partial",
                   f"--config.train.workdir={tmp_path}/runs",
                   f"--config.ablation.report_dir={tmp_path}/docs",
                   f"--config.data.data_dir={tmp_path}/tfds"])
    assert (tmp_path / "docs" / "ablation.md").read_text() == report


def test_quick_mode_has_its_own_directories_and_results_need_the_same_config(tmp_path):
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    real = (cfg.train.workdir, cfg.ablation.report_dir)
    ablation.quick_paths(cfg, {})
    assert cfg.train.workdir != real[0] and cfg.ablation.report_dir != real[1]
    assert not cfg.ablation.report_dir.startswith("docs")
    # a work directory made by one configuration is refused to another, not reused
    full = config_lib.from_file(f"{ROOT}/configs/ablation.py")
    work = str(tmp_path / "seed0")
    ablation.check_workdir(work, ablation.config_hash(full, quick=True))
    ablation.check_workdir(work, ablation.config_hash(full, quick=True))  # same: fine
    with pytest.raises(SystemExit, match="another configuration"):
        ablation.check_workdir(work, ablation.config_hash(full, quick=False))
    full.train.epochs += 1
    with pytest.raises(SystemExit, match="another configuration"):
        ablation.check_workdir(work, ablation.config_hash(full, quick=True))


def test_paired_bootstrap_decides_only_when_the_ci_excludes_zero():
    from clnet_jax.experiments import report
    rng = np.random.default_rng(0)
    clear = 0.05 + 0.01 * rng.normal(size=(5, 100))
    m, lo, hi = report.paired_bootstrap(clear)
    assert lo > 0 and report._verdict((m, lo, hi)) == "better"
    noise = 0.05 * rng.normal(size=(5, 100))
    assert report._verdict(report.paired_bootstrap(noise)).startswith("undecided")
    assert report._verdict(report.paired_bootstrap(-clear)) == "worse"
