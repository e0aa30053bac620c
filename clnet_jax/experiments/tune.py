"""Tracking constants of the miniature, chosen on the validation split.

The upstream constants (penalty_k 0.05, window_influence 0.42, lr 0.38) were tuned for the
full-size r50 on real video; pysot tunes them per benchmark the same way. Here the bases of
the testbed's seeds track the validation split (never the test or transfer splits) for every
point of a small grid (the upstream and the config's own constants always among them); the
table (success AUC, paired difference against the config's constants with a bootstrap 95 %
CI over sequences and seeds) and a JSON go to the report directory. The chosen point is then
written into the testbed config by hand, with this file as its provenance.

    clnet-tune --config ablation [--seeds 0,1,2,3,4] [--what tracking|sgd_lr]

``--what sgd_lr`` tunes the gradient baseline's step size the same way (``sgd_finetune``'s
``clnet.sgd_lr``, its K steps on the first frame; ``docs/results/testbed/tune_sgd.json``): the chosen value
goes into the testbed config as ``ablation.sgd_tuned_lr``, tracked as the row ``sgd_tuned``.
"""
from __future__ import annotations

import itertools
import json
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.evaluate import scoring
from clnet_jax.experiments import ablation, cache

# Around the point chosen first (0.2 / 0.3 / 0.38, at the grid's edge in window_influence).
GRID = {"penalty_k": [0.2, 0.35], "window_influence": [0.15, 0.22, 0.3], "lr": [0.25, 0.38, 0.55]}
UPSTREAM = {"penalty_k": 0.05, "window_influence": 0.42, "lr": 0.38}
# sgd_finetune's step size (config: 0.01), a factor ~2 apart on both sides
SGD_GRID = {"sgd_lr": [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08]}


def validation_split(cfg) -> list:
    """The validation sequences: of ``ablation.split_videos`` where it is set (real video),
    else of ``data.dataset``."""
    if cfg.ablation.split_videos:
        return ablation.split_sequences(cfg, ablation.real_videos(cfg), "validation")
    return eval_data.from_source(ablation.eval_sources(cfg)["validation"])


def per_sequence_auc(boxes: dict, seqs: list) -> np.ndarray:
    """Success AUC of each sequence that has scored frames (NaN where none)."""
    out = []
    for q in seqs:
        s = scoring.sequence_scores(q.gt, boxes[q.name])
        out.append(np.nan if s is None else float(np.mean(s["success"])))
    return np.array(out)


def points(grid: dict) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, v)) for v in itertools.product(*(grid[k] for k in keys))]


def tune_points(cfg, bases: list[dict], seqs: list, pts: list[dict], row: str = "BT",
                section: str = "track") -> list[dict]:
    """Every grid point's per-sequence AUC on ``seqs`` for each base, tracked as ``row`` (BT:
    the base tracker alone) with the point's values set in config ``section``: ``auc`` is a
    (bases, sequences) nested list."""
    rows = []
    for p in tqdm(pts, unit="point", desc="grid"):
        c = cfg.copy_and_resolve_references()
        for k, v in p.items():
            c[section][k] = v
        # one chunk for the whole split (the batch does not change a sequence's boxes)
        c.ablation.eval_batch = len(seqs)
        t = time.perf_counter()
        trk = ablation.row_tracker(c, row, bases[0], ablation.batch_size(c, [seqs]))  # once per point
        auc = [per_sequence_auc(ablation.evaluate(c, row, w, seqs, False, trk)["boxes"],
                                seqs).tolist() for w in bases]
        rows.append({"point": p, "auc": auc, "wall_s": time.perf_counter() - t})
    return rows


def table(rows: list[dict], reference: dict, name: str = "upstream") -> list[str]:
    """Sorted by mean AUC; each point's paired difference against ``reference`` with a
    bootstrap CI over seeds and sequences (``auc`` per row: (sequences,) or (seeds, sequences))."""
    ref = next(np.atleast_2d(r["auc"]) for r in rows if r["point"] == reference)
    keys = list(reference)
    lines = ["| " + " | ".join(keys) + f" | val AUC (%) | − {name} (points) |",
             "|---" * (len(keys) + 2) + "|"]
    for r in sorted(rows, key=lambda r: -np.nanmean(r["auc"])):
        a = np.atleast_2d(r["auc"])
        ok = (np.isfinite(a) & np.isfinite(ref)).all(axis=0)  # same sequences in every seed
        m, lo, hi = scoring.paired_bootstrap(100 * (a - ref)[:, ok])
        lines.append("| " + " | ".join(str(r["point"][k]) for k in keys) + " | "
                     f"{100 * np.nanmean(a):.1f} | {m:+.1f} [{lo:+.1f}, {hi:+.1f}] |")
    return lines


def with_points(grid: dict, *extra: dict) -> list[dict]:
    """The grid's points plus ``extra`` points (the upstream and the config's constants)."""
    pts = points(grid)
    return pts + [p for p in extra if p not in pts]


def run(cfg, seeds: list[int] | None = None, what: str = "tracking") -> str:
    """Tunes on the validation split with the bases of ``seeds``; writes the table's JSON
    beside the testbed report and returns its path."""
    seeds = list(cfg.ablation.seeds) if seeds is None else seeds
    current = {k: cfg.track[k] for k in UPSTREAM}
    xla_cache = cache.compilation_cache_dir(cfg)
    if xla_cache:  # every point is one program per seed; the seeds share it
        jax.config.update("jax_compilation_cache_dir", xla_cache)
    bases = [cache.build_base(cfg, s) for s in seeds]
    seqs = validation_split(cfg)
    if what == "sgd_lr":
        current = {"sgd_lr": cfg.clnet.sgd_lr}
        rows = tune_points(cfg, bases, seqs, with_points(SGD_GRID, current), "sgd_finetune",
                           "clnet")
        grid, upstream, name = SGD_GRID, None, "tune_sgd.json"
    else:
        rows = tune_points(cfg, bases, seqs, with_points(GRID, UPSTREAM, current))
        grid, upstream, name = GRID, UPSTREAM, "tune_tracking.json"
    lines = table(rows, current, "config")
    print("\n".join(lines))
    out = os.path.join(cache.report_dir(cfg), name)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump({"seeds": seeds, "base_keys": [cache.base_key(cfg, s) for s in seeds],
                   "grid": grid, "upstream": upstream, "config": current, "rows": rows,
                   "table": lines}, f, indent=1)
    print(f"wrote {out}")
    return out
