"""Tracking speed of full-size SiamRPN++ r50 (random weights): batch 1 and vmapped batches.

    python benchmarks/track_speed.py [--config configs/siamrpn_r50.py] [--batches 1,2,4,8]

Prints a table (frames/s, ms/frame, GFLOP/frame from XLA's cost analysis, fraction of the
measured matmul peak) and writes JSON (default results/bench/track_speed.json).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.track import tracker as tracker_lib  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/siamrpn_r50.py")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--iters", type=int, default=20,
                    help="timed calls (median); 3 was too few on a GPU at batch 1")
    ap.add_argument("--frame", default="480,640", help="frame H,W")
    ap.add_argument("--compute_dtype", default="float32", help="track.compute_dtype")
    ap.add_argument("--out", default="results/bench/track_speed.json")
    args = ap.parse_args()
    cfg = config_lib.from_file(args.config, {"track.compute_dtype": args.compute_dtype})
    params = model_lib.init_params(cfg, jax.random.key(0))
    fns = tracker_lib.make_tracker(cfg)
    h, w = map(int, args.frame.split(","))
    rng = np.random.default_rng(0)
    peak = common.matmul_peak_flops(dtype=args.compute_dtype)
    rows = []
    for b in map(int, args.batches.split(",")):
        frames = jnp.asarray(rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8))
        boxes = jnp.tile(jnp.asarray([[w / 2 - 40, h / 2 - 30, 80, 60]], jnp.float32), (b, 1))
        init = jax.jit(jax.vmap(fns.init, in_axes=(None, 0, 0)))
        step = jax.jit(jax.vmap(fns.step, in_axes=(None, 0, 0)))
        state = init(params, frames, boxes)
        sec = common.time_call(step, params, state, frames, iters=args.iters)
        flops = common.flops_of(step, params, state, frames) / b
        rows.append({"batch": b, "frames_per_s": round(b / sec, 2),
                     "ms_per_frame": round(1000 * sec / b, 1),
                     "gflop_per_frame": round(flops / 1e9, 2),
                     "frac_of_matmul_peak": round(flops * b / sec / peak, 3)})
        print(rows[-1], flush=True)
    print(f"\n{args.compute_dtype} matmul peak: {peak / 1e9:.1f} GFLOP/s on {jax.devices()[0].platform}")
    print(common.table(rows, list(rows[0])))
    common.write_json(args.out, {"config": args.config, "frame": [h, w], "rows": rows,
                                 "compute_dtype": args.compute_dtype,
                                 "matmul_peak_gflops": peak / 1e9})


if __name__ == "__main__":
    main()
