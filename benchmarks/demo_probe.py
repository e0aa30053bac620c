"""Why the demo's CLNet does what it does: CLNet-stage settings probed on one trained demo base.

    python benchmarks/demo_probe.py --base runs/demo/base/weights [--probes default,steps300,...]

Each probe trains the CLNet stage (or a variant) from the same demo base and evaluates it on
the demo's test split against that base; prints the paired success-AUC difference with its
bootstrap CI over sequences (one seed: this says what the settings do to this base, not in
general) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402

from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.data import builders  # noqa: E402
from clnet_jax.evaluate import base_vs_clnet, scoring  # noqa: E402
from clnet_jax.evaluate import datasets as eval_data  # noqa: E402
from clnet_jax.model import weights as weights_lib  # noqa: E402
from clnet_jax.train import trainer  # noqa: E402

PROBES = {
    "default": {},
    "steps300": {"train.clnet.epochs": 3},
    "lr_0.002": {"train.clnet.warmup_epochs": 0},
    "support1": {"clnet.support_pairs": 1},
    "no_mining": {"train.diverse_mining": False},
    "readapt": {"track.readapt": True},
    "meta_sgd": {"clnet.variant": "meta_sgd"},
    "maml": {"clnet.variant": "maml"},
    "clnet_sgd": {"clnet.variant": "clnet_sgd"},
    "sgd_finetune": {"clnet.variant": "sgd_finetune"},
}
TRACK_ONLY = {"readapt": "default"}  # probes that reuse another probe's trained weights


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo")
    ap.add_argument("--base", default="runs/demo/base/weights")
    ap.add_argument("--probes", default=",".join(PROBES))
    ap.add_argument("--workdir", default="runs/demo_probe")
    ap.add_argument("--out", default="results/bench/demo_probe.json")
    args = ap.parse_args(argv)
    base_params = weights_lib.load(args.base)[0]
    cfg0 = config_lib.from_file(args.config)
    d = cfg0.data
    src = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None, d.builder_config)
    seqs = eval_data.from_source(src.as_data_source()[cfg0.train.eval_split])
    base_cfg = config_lib.from_file(args.config, {"clnet.variant": "none"})
    base = base_vs_clnet.evaluate_split(base_cfg, base_params, seqs, "base")
    rows, weights = {}, {}
    for name in args.probes.split(","):
        cfg = config_lib.from_file(args.config, PROBES[name])
        t = time.perf_counter()
        if name in TRACK_ONLY and TRACK_ONLY[name] in weights:
            params = weights[TRACK_ONLY[name]]
        elif cfg.clnet.variant == "sgd_finetune":
            params = base_params
        else:
            params = trainer.train_stage(cfg, "clnet", os.path.join(args.workdir, name),
                                         base_params)
        weights[name] = params
        train_s = time.perf_counter() - t
        r = base_vs_clnet.evaluate_split(cfg, jax.tree.map(jax.numpy.asarray, params), seqs, name)
        mean, lo, hi, n = scoring.paired_difference(r, base)
        rows[name] = {"settings": PROBES[name], "success_auc": r["success_auc"],
                      "first_iou": r["first_iou"], "minus_base": [mean, lo, hi], "sequences": n,
                      "train_s": train_s}
        print(f"{name:<14} AUC {100 * r['success_auc']:5.1f}  - base {100 * mean:+5.1f} "
              f"[{100 * lo:+5.1f}, {100 * hi:+5.1f}]  train {train_s:5.0f} s", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "base_auc": base["success_auc"],
                   "base_first_iou": base["first_iou"], "rows": rows}, f, indent=1)
    print(f"base AUC {100 * base['success_auc']:.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
