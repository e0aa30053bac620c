"""The testbed's scoring: per-sequence scores and the paired bootstrap that decides."""
import numpy as np

from clnet_jax.evaluate import scoring


def test_paired_bootstrap_decides_only_when_the_ci_excludes_zero():
    rng = np.random.default_rng(0)
    clear = 0.05 + 0.01 * rng.normal(size=(5, 100))
    m, lo, hi = scoring.paired_bootstrap(clear)
    assert lo > 0 and scoring.verdict((m, lo, hi)) == "better"
    noise = 0.05 * rng.normal(size=(5, 100))
    assert scoring.verdict(scoring.paired_bootstrap(noise)).startswith("undecided")
    assert scoring.verdict(scoring.paired_bootstrap(-clear)) == "worse"


def test_scores_skip_the_first_and_absent_frames():
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [np.nan] * 4, [14, 10, 20, 20]], float)
    pred = np.array([[0, 0, 1, 1], [12, 10, 20, 20], [90, 90, 5, 5], [14 + 10, 10, 20, 20]], float)
    sc = scoring.sequence_scores(gt, pred)
    assert sc["first_iou"] == 1.0  # frame 2 (the first tracked one), not frame 1
    # frames 2 and 4 scored (IoU 1 and 1/3), the absent frame 3 not at all
    np.testing.assert_allclose(np.mean(sc["success"]), np.mean([np.mean(t < 1) + np.mean(t < 1 / 3)
                                                                 for t in [scoring.THRESHOLDS]]) / 2)
    assert scoring.sequence_scores(gt[:1], pred[:1]) is None
