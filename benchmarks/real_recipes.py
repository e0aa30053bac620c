"""The real-video base recipes compared: per split, each tracker's success AUC and the paired
differences with bootstrap CIs over the split's sequences.

    python benchmarks/real_recipes.py scratch=runs/real_scratch/eval.json \
        mixed=runs/real_mixed/eval.json synthetic=runs/real_synthetic/eval.json \
        [--demo docs/results/bench/.../real_toolkits_demo.json] [--out results/bench/real_recipes.json]

Each ``eval.json`` is what ``clnet-train --config real:<recipe>`` writes (per-sequence success
AUC of the base and of CLNet on the held-back videos); ``--demo`` adds the demo's weights,
trained on synthetic scenes only, scored by ``benchmarks/real_toolkits.py`` with the same
rule (frames 2.. where the target is present). The split is configs/real.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.experiments import report  # noqa: E402


def load(args) -> dict[str, dict[str, float]]:
    """tracker name -> sequence -> success AUC."""
    out = {}
    for spec in args.evals:
        recipe, path = spec.split("=", 1)
        with open(path) as f:
            rows = json.load(f)
        for name, r in rows.items():
            if "per_sequence_auc" in r:
                kind = "CLNet" if name.startswith("CLNet") else "base"
                out[f"{recipe} {kind}"] = r["per_sequence_auc"]
    if args.demo:
        with open(args.demo) as f:
            per = json.load(f)["per_sequence_auc"]
        for kind, key in (("base", "base"), ("CLNet", "clnet")):
            if key in per:
                out[f"synthetic only (demo) {kind}"] = {k.split("/", 1)[1]: v["testbed"]
                                                        for k, v in per[key].items()}
    return out


def paired(a: dict, b: dict, names: list[str]) -> tuple[float, float, float]:
    diff = np.array([[a[n] - b[n] for n in names]])
    return report.paired_bootstrap(diff)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evals", nargs="+", help="recipe=path/to/eval.json")
    ap.add_argument("--demo", default=None)
    ap.add_argument("--out", default="results/bench/real_recipes.json")
    args = ap.parse_args()
    import importlib.util  # the split lives in the config file
    spec = importlib.util.spec_from_file_location("real_cfg", config_lib.resolve_path("real"))
    split = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(split)
    trackers = load(args)
    payload = {"splits": {"validation": split.VALIDATION, "test": split.TEST}, "rows": {}}
    for split_name, names in (("validation", split.VALIDATION), ("test", split.TEST)):
        rows = []
        for t, per in trackers.items():
            here = [n for n in names if n in per]
            rows.append({"split": split_name, "tracker": t, "sequences": len(here),
                         "success_auc": f"{100 * np.mean([per[n] for n in here]):.1f}"})
        print(common.table(rows, ["split", "tracker", "sequences", "success_auc"]))
        diffs = []
        for a in trackers:
            for b in trackers:
                if a < b:
                    here = [n for n in names if n in trackers[a] and n in trackers[b]]
                    m, lo, hi = paired(trackers[a], trackers[b], here)
                    diffs.append({"a - b": f"{a} - {b}",
                                  "points": f"{100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]",
                                  "decided": "yes" if lo > 0 or hi < 0 else "no"})
        print(common.table(diffs, ["a - b", "points", "decided"]))
        payload["rows"][split_name] = {"trackers": rows, "paired": diffs}
    common.write_json(args.out, payload)


if __name__ == "__main__":
    main()
