"""Metrics against hand-computed cases and the got10k toolkit itself."""
import types

import numpy as np
import pytest

from clnet_jax.evaluate import metrics


def test_hand_computed_cases():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]])
    succ, prec, _ = metrics.curves(gt, pred, "got10k")
    # IoUs: 1, 1/3, 0, nan (counted as failure): above 0 -> 2/4; above 0.5 -> 1/4
    assert succ[0] == 0.5 and succ[10] == 0.25 and succ[-1] == 0.0
    # centre errors 0, 5, 70.7, nan: within 20 px -> 2/4
    assert prec[20] == 0.5 and prec[5] == 0.5 and prec[4] == 0.25
    succ_p, prec_p, nprec_p = metrics.curves(gt, pred, "pysot")
    assert succ_p[0] == 0.5  # NaN frame: IoU -1
    assert prec_p[20] == 0.75  # NaN frame, no absence label: centre error -1, precise
    succ_a, prec_a, _ = metrics.curves(gt, pred, "pysot", np.array([1, 1, 1, 0], bool))
    assert succ_a[0] == 0.5 and prec_a[20] == 0.5  # labelled absent: neither, still counted
    succ_u, prec_u, _ = metrics.curves(gt, pred, "uav")  # got10k's UAV123: frame dropped
    assert succ_u[0] == 2 / 3 and prec_u[20] == 2 / 3
    np.testing.assert_allclose(metrics.overlap_ratio(gt[1:2], pred[1:2]), [50 / 150])
    # all-zero ground truth: IoU -1 (failure) and centre error -1 (counted as precise)
    gt0 = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])  # pysot marks absence with zeros
    pred0 = np.array([[0, 0, 10, 10], [90, 90, 10, 10]])
    succ0, prec0, _ = metrics.curves(gt0, pred0, "pysot")
    assert succ0[0] == 0.5 and prec0[0] == 1.0
    # normalised precision: centre errors in units of the ground-truth size, at 0.2
    gt1 = np.array([[0, 0, 100, 50]] * 2)
    pred1 = np.array([[15, 0, 100, 50], [25, 0, 100, 50]])  # 0.15 and 0.25 widths off
    assert nprec_p is not None and metrics.curves(gt1, pred1, "pysot")[2][20] == 0.5


def test_equal_to_the_got10k_toolkit():
    got10k = pytest.importorskip("got10k.utils.metrics")
    from got10k.experiments.otb import ExperimentOTB
    rng = np.random.default_rng(0)
    exp = types.SimpleNamespace(nbins_iou=21, nbins_ce=51)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        gt = np.c_[rng.uniform(0, 200, (n, 2)), rng.uniform(5, 80, (n, 2))]
        pred = gt + rng.normal(0, 15, gt.shape)
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1
        succ, prec, _ = metrics.curves(gt, pred, "got10k")
        boxes = pred.copy()
        boxes[0] = gt[0]
        ref_s, ref_p = ExperimentOTB._calc_curves(exp, got10k.rect_iou(boxes, gt),
                                                  got10k.center_error(boxes, gt))
        np.testing.assert_allclose(succ, ref_s, atol=1e-12)
        np.testing.assert_allclose(prec, ref_p, atol=1e-12)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 result boxes for 4"):
        metrics.curves(np.ones((4, 4)), np.ones((3, 4)))
