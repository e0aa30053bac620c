"""CLNet's cost on full-size r50 (random weights), measured in one run.

    python benchmarks/clnet_overhead.py [--config configs/clnet_r50.py]

Reports the per-frame time of the CLNet tracker / the base tracker (goal <= 1.01), the
first-frame ``init`` cost in tracking frames (goal <= 2) for base, CLNet and sgd_finetune,
as a table and JSON (default results/bench/clnet_overhead.json).
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
from clnet_jax.adapt import variants as variants_lib  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.track import tracker as tracker_lib  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/clnet_r50.py")
    ap.add_argument("--iters", type=int, default=9)
    ap.add_argument("--frame", default="480,640")
    ap.add_argument("--compute_dtype", default="float32", help="track.compute_dtype")
    ap.add_argument("--out", default="results/bench/clnet_overhead.json")
    args = ap.parse_args()
    h, w = map(int, args.frame.split(","))
    frame = jnp.asarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
    box = jnp.asarray([w / 2 - 40, h / 2 - 30, 80, 60], jnp.float32)
    dtype = {"track.compute_dtype": args.compute_dtype}
    cfg = config_lib.from_file(args.config, dtype)
    params = model_lib.init_params(cfg, jax.random.key(0))
    params["clnet"] = variants_lib.get_variant("clnet").init_params(jax.random.key(1), cfg)
    timings, steps, hlo = {}, {}, {}
    for variant in ("none", "clnet", "sgd_finetune"):
        c = config_lib.from_file(args.config, {"clnet.variant": variant, **dtype})
        fns = tracker_lib.make_tracker(c)
        init, step = jax.jit(fns.init), jax.jit(fns.step)
        state = init(params, frame, box)
        timings[variant] = {"init": common.time_call(init, params, frame, box, iters=args.iters),
                            "step": []}
        steps[variant] = (step, state)
        hlo[variant] = step.lower(params, state, frame).as_text()
        print(variant, "init", timings[variant]["init"], flush=True)
    # Per-frame time: variants interleaved round by round so machine drift cancels out.
    for _ in range(args.iters):
        for variant, (step, state) in steps.items():
            timings[variant]["step"].append(common.time_call(step, params, state, frame,
                                                             iters=1, warmup=0))
    for t in timings.values():
        t["step"] = float(np.median(t["step"]))
    same_program = hlo["none"] == hlo["clnet"]
    print("per-frame program of CLNet identical to the base tracker's:", same_program)
    base_step = timings["none"]["step"]
    rows = [{"tracker": v, "ms_per_frame": round(1000 * t["step"], 1),
             "step_vs_base": round(t["step"] / base_step, 3),
             "init_ms": round(1000 * t["init"], 1),
             "init_in_frames": round(t["init"] / base_step, 2)} for v, t in timings.items()]
    print(common.table(rows, list(rows[0])))
    common.write_json(args.out, {"config": args.config, "frame": [h, w], "rows": rows,
                                 "sgd_steps": cfg.clnet.sgd_steps,
                                 "clnet_step_program_identical_to_base": same_program})


if __name__ == "__main__":
    main()
