"""Writes pysot_ope.json: pysot's OPE curves for seeded sequences with absent frames.

    python make.py PYSOT_CHECKOUT

Runs pysot's own ``toolkit/utils/statistics.py`` (``success_overlap``, ``success_error``)
with the per-video steps of ``toolkit/evaluation/ope_benchmark.py`` (the ``absent`` mask,
``n_frame`` = the full length, ``convert_bb_to_center`` / ``convert_bb_to_norm_center``), on
sequences with NaN rows, zero-size rows and absence labels. Needs only NumPy: the Cython
region module that statistics.py imports is stubbed out.
"""
import json
import os
import sys
import types

import numpy as np


def main(pysot: str) -> None:
    sys.modules["region"] = types.ModuleType("region")
    src = open(os.path.join(pysot, "toolkit", "utils", "statistics.py")).read()
    src = src.replace("from . import region", "import region")
    stats: dict = {}
    exec(compile(src, "statistics.py", "exec"), stats)
    center = lambda b: np.array([(b[:, 0] + (b[:, 2] - 1) / 2), (b[:, 1] + (b[:, 3] - 1) / 2)]).T
    rng = np.random.default_rng(7)
    cases = []
    for i in range(6):
        n = int(rng.integers(20, 60))
        gt = np.c_[rng.uniform(5, 300, (n, 2)), rng.uniform(10, 90, (n, 2))]
        pred = gt + rng.normal(0, 12, gt.shape)
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1
        pred[0] = gt[0]
        nan_rows = rng.choice(np.arange(1, n), 4, replace=False)
        gt[nan_rows[:2]] = np.nan          # UAV123's absent rows
        gt[nan_rows[2:]] = 0.0             # zero boxes (LaSOT marks absence this way)
        present = None
        if i % 2:                          # with absence labels, as pysot's LaSOT has
            present = np.ones(n, bool)
            present[rng.choice(np.arange(1, n), 5, replace=False)] = False
        g, p = (gt, pred) if present is None else (gt[present], pred[present])
        succ = stats["success_overlap"](g, p, n)
        prec = stats["success_error"](center(g), center(p), np.arange(0, 51, 1), n)
        wh = g[:, 2:4]
        nprec = stats["success_error"](center(g) / (wh + 1e-16), center(p) / (wh + 1e-16),
                                       np.arange(0, 51, 1) / 100, n)
        cases.append({"gt": np.where(np.isnan(gt), None, gt).tolist(), "pred": pred.tolist(),
                      "present": None if present is None else present.tolist(),
                      "success": succ.tolist(), "precision": prec.tolist(),
                      "norm_precision": nprec.tolist()})
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pysot_ope.json")
    with open(out, "w") as f:
        json.dump({"source": "STVIR/pysot d04028f toolkit/utils/statistics.py, "
                   "toolkit/evaluation/ope_benchmark.py", "cases": cases}, f)


if __name__ == "__main__":
    main(sys.argv[1])
