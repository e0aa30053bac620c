"""Tracking constants of the miniature, chosen on the validation split.

The upstream constants (penalty_k 0.05, window_influence 0.42, lr 0.38) were tuned for the
full-size r50 on real video; pysot tunes them per benchmark the same way. Here the base of
one seed tracks the validation split (never the test or transfer splits) for every point of
a small grid; the table (success AUC, paired difference against the upstream constants with
a bootstrap 95 % CI over sequences) and a JSON go to the report directory. The chosen point
is then written into the testbed config by hand, with this file as its provenance.

    python -m clnet_jax.experiments.tune --config configs/ablation.py [--seed 0]
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time

import numpy as np

from clnet_jax import config as config_lib
from clnet_jax import eval_data
from clnet_jax.experiments import ablation, report

GRID = {"penalty_k": [0.05, 0.2], "window_influence": [0.3, 0.42, 0.55], "lr": [0.38, 0.7]}
UPSTREAM = {"penalty_k": 0.05, "window_influence": 0.42, "lr": 0.38}


def validation_split(cfg) -> list:
    return eval_data.from_source(ablation.eval_sources(cfg)["validation"])


def per_sequence_auc(boxes: dict, seqs: list) -> np.ndarray:
    """Success AUC of each sequence that has scored frames (NaN where none)."""
    out = []
    for q in seqs:
        s = report.sequence_scores(q.gt, boxes[q.name])
        out.append(np.nan if s is None else float(np.mean(s["success"])))
    return np.array(out)


def points(grid: dict) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, v)) for v in itertools.product(*(grid[k] for k in keys))]


def tune(cfg, weights: dict, seqs: list, grid: dict = GRID) -> list[dict]:
    """Every grid point's per-sequence AUC on ``seqs`` (BT: the base tracker alone)."""
    rows = []
    for p in points(grid):
        c = cfg.copy_and_resolve_references()
        for k, v in p.items():
            c.track[k] = v
        t = time.perf_counter()
        res = ablation.evaluate(c, "BT", weights, seqs, cost=False)
        rows.append({"point": p, "auc": per_sequence_auc(res["boxes"], seqs).tolist(),
                     "wall_s": time.perf_counter() - t})
    return rows


def table(rows: list[dict], reference: dict) -> list[str]:
    ref = next(np.array(r["auc"]) for r in rows if r["point"] == reference)
    lines = ["| penalty_k | window_influence | lr | val AUC (%) | − upstream (points) |",
             "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -np.nanmean(r["auc"])):
        a = np.array(r["auc"])
        ok = np.isfinite(a) & np.isfinite(ref)
        m, lo, hi = report.paired_bootstrap(100 * (a - ref)[ok][None])
        p = r["point"]
        lines.append(f"| {p['penalty_k']} | {p['window_influence']} | {p['lr']} | "
                     f"{100 * np.nanmean(a):.1f} | {m:+.1f} [{lo:+.1f}, {hi:+.1f}] |")
    return lines


def main(argv: list[str]) -> None:
    path, seed = "configs/ablation.py", 0
    for arg in argv:
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg.startswith("--seed="):
            seed = int(arg.split("=", 1)[1])
        else:
            sys.exit(f"error: unknown argument {arg!r} (--config=PATH, --seed=N)")
    cfg = config_lib.from_file(path)
    grid = dict(GRID)
    for k in grid:  # the config's own constants are always a grid point
        if cfg.track[k] not in grid[k]:
            grid[k] = sorted(grid[k] + [cfg.track[k]])
    weights = ablation.build_base(cfg, seed)
    seqs = validation_split(cfg)
    rows = tune(cfg, weights, seqs, grid)
    lines = table(rows, UPSTREAM)
    print("\n".join(lines))
    out = os.path.join(cfg.ablation.report_dir, "tune_tracking.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump({"seed": seed, "base_key": ablation.base_key(cfg, seed), "grid": grid,
                   "upstream": UPSTREAM, "rows": rows, "table": lines}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
