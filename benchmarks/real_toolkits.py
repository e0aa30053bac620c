"""A base tracker and its CLNet on real benchmark folders, scored by every toolkit's rule.

    python benchmarks/real_toolkits.py --config demo --base runs/demo/base/weights \
        --clnet runs/demo/clnet/weights --data_dir /data/otb,/data/tlp,/data/vot \
        [--out results/bench/real_toolkits.json]

Each folder is read as the layout detected from its contents (VOT polygons become their
bounding boxes: this is one-pass tracking, not VOT's protocol). Both trackers' results are
written in the pysot layout under ``--results_dir`` (a rerun skips finished sequences) and
scored four ways on the same files: got10k's ``ExperimentOTB`` rule, its
``ExperimentUAV123`` rule, pysot's ``OPEBenchmark``, and the testbed's (frames 2.. where the
target is present). Prints the table, the paired CLNet - base difference with its bootstrap
CI over sequences, and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.data import benchmarks as bench  # noqa: E402
from clnet_jax.evaluate import compare, metrics  # noqa: E402
from clnet_jax.evaluate import runner as eval_runner  # noqa: E402
from clnet_jax.experiments import report  # noqa: E402
from clnet_jax.track import runner  # noqa: E402


def sequences(folders: list[str]) -> dict[str, list]:
    out = {}
    for folder in folders:
        name = bench.detect(folder)
        seqs, problems = bench.load(name, folder)
        for k, v in problems.items():
            if not bench.is_missing(v):
                print(f"FAILED {k}: {v}")
        key = os.path.basename(os.path.normpath(folder))
        out[key] = [s._replace(gt=bench.as_boxes(s)) for s in seqs if not s.init_only]
    return out


def scores(results_dir: str, family: str, tracker: str, seqs: list) -> dict:
    scored = compare.read_results(os.path.join(results_dir, family, tracker), seqs)
    per = {}
    for n, (gt, pred, present) in scored.items():
        row = {rule: float(np.mean(metrics.curves(gt, pred, rule, present)[0]))
               for rule in metrics.RULES}
        tb = report.sequence_scores(gt, pred)
        row["testbed"] = float(np.mean(tb["success"])) if tb else float("nan")
        per[n] = row
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo")
    ap.add_argument("--base", required=True, help="the base tracker's weights")
    ap.add_argument("--clnet", default=None, help="the CLNet tracker's weights")
    ap.add_argument("--data_dir", required=True, help="benchmark folders, comma-separated")
    ap.add_argument("--results_dir", default="results/real_toolkits")
    ap.add_argument("--out", default="results/bench/real_toolkits.json")
    a = ap.parse_args()
    cfg = config_lib.from_file(a.config)
    base_cfg = ml_collections.ConfigDict(cfg.to_dict())
    base_cfg.clnet.variant = "none"
    trackers = {"base": (base_cfg, a.base)}
    if a.clnet:
        trackers["clnet"] = (cfg, a.clnet)
    fams = sequences([f for f in a.data_dir.split(",") if f])
    per: dict[str, dict] = {t: {} for t in trackers}
    for t, (c, weights) in trackers.items():
        params = runner.load_params(c, weights)
        for fam, seqs in fams.items():
            eval_runner.run_dataset(c, params, seqs, a.results_dir, fam, t)
            per[t].update({f"{fam}/{n}": v for n, v in
                           scores(a.results_dir, fam, t, seqs).items()})
    rules = [*metrics.RULES, "testbed"]
    rows = []
    for t in trackers:
        names = sorted(per[t])
        rows.append({"tracker": t, "sequences": len(names),
                     **{r: f"{100 * np.mean([per[t][n][r] for n in names]):.1f}" for r in rules}})
    print(common.table(rows, ["tracker", "sequences", *rules]))
    payload = {"config": a.config, "weights": {t: w for t, (_, w) in trackers.items()},
               "per_sequence_auc": per, "mean_auc": rows}
    if "clnet" in trackers:
        names = sorted(set(per["base"]) & set(per["clnet"]))
        diff = np.array([[per["clnet"][n]["testbed"] - per["base"][n]["testbed"] for n in names]])
        mean, lo, hi = report.paired_bootstrap(diff)
        wins = int(np.sum(diff > 0))
        print(f"CLNet - base (testbed rule), paired over {len(names)} sequences: "
              f"{100 * mean:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] points; CLNet ahead on "
              f"{wins} of {len(names)}")
        payload["clnet_minus_base"] = {"mean": mean, "ci95": [lo, hi], "wins": wins,
                                       "sequences": len(names)}
    common.write_json(a.out, payload)


if __name__ == "__main__":
    main()
