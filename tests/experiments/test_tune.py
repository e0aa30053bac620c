"""Choosing the miniature's tracking constants on the validation split."""
import numpy as np

from clnet_jax.evaluate.datasets import EvalSequence
from clnet_jax.experiments import tune


def _seq(name, n=6):
    gt = np.tile(np.array([[10.0, 10.0, 20.0, 20.0]]), (n, 1))
    gt[3] = np.nan  # an absent frame: not scored
    return EvalSequence(name=name, frames=[None] * n, gt=gt, init_only=False)


def test_grid_points_cover_the_product():
    pts = tune.points({"a": [1, 2], "b": [3, 4, 5]})
    assert len(pts) == 6 and {"a": 2, "b": 5} in pts


def test_per_sequence_auc_scores_present_frames_only():
    seqs = [_seq("s0"), _seq("s1")]
    perfect = {q.name: np.nan_to_num(q.gt, nan=0.0) for q in seqs}
    off = {q.name: perfect[q.name] + [40.0, 0.0, 0.0, 0.0] for q in seqs}
    off["s1"][3] = perfect["s1"][3]  # changing an absent frame changes nothing
    np.testing.assert_allclose(tune.per_sequence_auc(perfect, seqs), 20 / 21)  # IoU 1 > 20 thresholds
    np.testing.assert_allclose(tune.per_sequence_auc(off, seqs), 0.0)


def test_table_sorts_by_auc_and_differences_against_the_reference():
    ref = {"penalty_k": 0.05, "window_influence": 0.42, "lr": 0.38}
    better = dict(ref, lr=0.7)
    rows = [{"point": ref, "auc": [0.4, 0.5, 0.6]}, {"point": better, "auc": [0.5, 0.6, 0.7]}]
    lines = tune.table(rows, ref)
    assert lines[2].startswith("| 0.05 | 0.42 | 0.7 | 60.0 | +10.0 [+10.0, +10.0]")
    assert lines[3].endswith("+0.0 [+0.0, +0.0] |")


def test_table_pools_seeds_and_compares_with_the_named_reference():
    ref = {"penalty_k": 0.2, "window_influence": 0.3, "lr": 0.38}
    other = dict(ref, window_influence=0.15)
    # 2 seeds x 3 sequences; the third sequence has no scored frame in seed 1: left out
    rows = [{"point": ref, "auc": [[0.4, 0.5, 0.6], [0.3, 0.4, np.nan]]},
            {"point": other, "auc": [[0.5, 0.5, 0.9], [0.3, 0.6, 0.1]]}]
    lines = tune.table(rows, ref, "config")
    assert "− config (points)" in lines[0]
    first = lines[2].split("|")
    assert first[1:4] == [" 0.2 ", " 0.15 ", " 0.38 "]
    # paired over the 2 sequences present in both seeds: (+10, 0, 0, +20) / 4 = +7.5
    assert first[5].strip().startswith("+7.5 [")


def test_grid_points_always_include_the_extra_points_once():
    grid = {"penalty_k": [0.2], "window_influence": [0.3], "lr": [0.38, 0.55]}
    up = {"penalty_k": 0.05, "window_influence": 0.42, "lr": 0.38}
    pts = tune.with_points(grid, up, {"penalty_k": 0.2, "window_influence": 0.3, "lr": 0.38})
    assert len(pts) == 3 and pts[-1] == up


def test_table_of_a_one_setting_grid_names_its_column():
    """--what sgd_lr: the table's columns follow the point's keys."""
    rows = [{"point": {"sgd_lr": 0.01}, "auc": [0.4, 0.5]},
            {"point": {"sgd_lr": 0.04}, "auc": [0.45, 0.5]}]
    lines = tune.table(rows, {"sgd_lr": 0.01}, "config")
    assert lines[0] == "| sgd_lr | val AUC (%) | − config (points) |" and lines[1] == "|---|---|---|"
    assert lines[2].startswith("| 0.04 | 47.5 | +2.5 [")
    pts = tune.with_points(tune.SGD_GRID, {"sgd_lr": 0.01})
    assert {"sgd_lr": 0.01} in pts and len(pts) == len(tune.SGD_GRID["sgd_lr"])
