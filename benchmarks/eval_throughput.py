"""Evaluation throughput: B sequences at once (vmapped) vs one at a time.

    python benchmarks/eval_throughput.py [--config configs/siamrpn_tiny.py] [--batches 4,8]

Random weights, synthetic sequences of one frame size, frames decoded from JPEG bytes as in
a real evaluation. Prints frames/s per mode and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.data import synthetic  # noqa: E402
from clnet_jax.evaluate import runner as eval_runner  # noqa: E402
from clnet_jax.evaluate.datasets import EvalSequence  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/siamrpn_tiny.py")
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--batches", default="4,8")
    ap.add_argument("--out", default="results/bench/eval_throughput.json")
    args = ap.parse_args()
    cfg = config_lib.from_file(args.config)
    params = model_lib.init_params(cfg, jax.random.key(0))
    seqs = []
    for i in range(args.sequences):
        s = synthetic.make_sequence(1000 + i, args.length, (240, 320))
        frames = [cv2.imencode(".jpg", f)[1].tobytes() for f in s.frames]
        seqs.append(EvalSequence(f"s{i}", frames, s.boxes.astype(np.float64), False))
    total = sum(len(s.frames) for s in seqs)
    rows = []
    from clnet_jax.track import runner
    trk = runner.SequenceTracker(cfg, params)
    eval_runner.track_one(trk, seqs[0])  # compile
    t = time.perf_counter()
    for s in seqs:
        eval_runner.track_one(trk, s)
    rows.append({"mode": "one at a time", "batch": 1,
                 "frames_per_s": round(total / (time.perf_counter() - t), 1)})
    print(rows[-1], flush=True)
    for b in map(int, args.batches.split(",")):
        bt = runner.BatchTracker(cfg, params, b)
        bt.run(seqs[:b])  # compile
        t = time.perf_counter()
        bt.run(seqs)
        rows.append({"mode": "vmapped", "batch": b,
                     "frames_per_s": round(total / (time.perf_counter() - t), 1)})
        print(rows[-1], flush=True)
    for r in rows:
        r["vs_sequential"] = round(r["frames_per_s"] / rows[0]["frames_per_s"], 2)
    print(common.table(rows, ["mode", "batch", "frames_per_s", "vs_sequential"]))
    common.write_json(args.out, {"config": args.config, "rows": rows, "frames": total})


if __name__ == "__main__":
    main()
