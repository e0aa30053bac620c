"""The figures table in one command: tracker fps at several batch sizes, CLNet's per-frame
overhead, training pairs/s of both stages, and model FLOP utilisation.

    python benchmarks/figures.py [--reduced] [--out results/bench/figures.json]

On an accelerator it measures the full-size r50 models (tracker batch 1 / 8 / 32, every
local device for training). On a CPU (or with ``--reduced``) it measures the tiny models
at small batches so that it finishes within minutes. It runs the individual benchmark
scripts (each also usable alone), then prints one table and writes JSON with theirs inside.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _run(script: str, args: list[str], out: str) -> dict:
    """Runs one benchmark script; its JSON lands at ``out`` (kept even if a later one fails)."""
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", script), *args, f"--out={out}"]
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=path))
    print(res.stdout, flush=True)
    if res.returncode != 0:
        return {"error": res.stderr[-500:]}
    with open(out) as f:
        return json.load(f)


def main() -> None:
    import jax

    from benchmarks import common
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true", help="tiny models (default on CPU)")
    ap.add_argument("--compute_dtype", default="float32",
                    help="float32 or bfloat16 (the accelerator speed path)")
    ap.add_argument("--parts", default="track,clnet,train", help="which benchmarks to run")
    ap.add_argument("--out", default="results/bench/figures.json")
    args = ap.parse_args()
    reduced = args.reduced or jax.default_backend() == "cpu"
    n_dev = len(jax.local_devices())
    if reduced:
        plan = {"track": ["--config=configs/siamrpn_tiny.py", "--batches=1,8", "--frame=240,320"],
                "clnet": ["--config=configs/clnet_tiny.py", "--iters=3", "--frame=240,320"],
                "train": ["--configs=configs/demo.py", "--devices=1", "--iters=2"]}
    else:
        plan = {"track": ["--config=configs/siamrpn_r50.py", "--batches=1,8,32"],
                "clnet": ["--config=configs/clnet_r50.py"],
                "train": ["--configs=configs/clnet_r50.py", f"--devices={n_dev}",
                          "--groups=16", "--pairs=2", "--iters=5"]}
    dtype = [f"--compute_dtype={args.compute_dtype}"]
    parts = args.parts.split(",")
    skipped = {"skipped": True}
    stem = os.path.splitext(args.out)[0]
    track, clnet, train = (
        _run(script, plan[name] + dtype, f"{stem}.{name}.json") if name in parts else skipped
        for name, script in (("track", "track_speed.py"), ("clnet", "clnet_overhead.py"),
                             ("train", "train_speed.py")))
    rows = []
    for r in track.get("rows", []):
        rows.append({"figure": f"tracker fps, batch {r['batch']}", "value": r["frames_per_s"],
                     "note": f"MFU {r['frac_of_matmul_peak']:.2f} of measured matmul peak, "
                             f"{r['gflop_per_frame']} GFLOP/frame"})
    for r in clnet.get("rows", []):
        rows.append({"figure": f"{r['tracker']} ms/frame", "value": r["ms_per_frame"],
                     "note": ", ".join(f"{k} {v}" for k, v in r.items()
                                       if k not in ("tracker", "ms_per_frame"))})
    for r in train.get("rows", []):
        rows.append({"figure": f"train {r['stage']} pairs/s ({r['config']}, {r['devices']} dev)",
                     "value": r["pairs_per_s"],
                     "note": r.get("error", "")[:60] or
                     f"MFU {r['frac_of_matmul_peak']:.2f}, {r['gflop_per_pair']} GFLOP/pair"})
    for name, res in (("track", track), ("clnet", clnet), ("train", train)):
        if "error" in res:
            rows.append({"figure": f"{name} benchmark failed", "value": "-",
                         "note": res["error"].strip().splitlines()[-1][:80]})
    print(f"{'reduced (tiny models)' if reduced else 'full size (r50)'} on "
          f"{jax.default_backend()} ({n_dev} local devices), compute {args.compute_dtype}")
    print(common.table(rows, ["figure", "value", "note"]))
    common.write_json(args.out, {"reduced": reduced, "compute_dtype": args.compute_dtype,
                                 "rows": rows, "track_speed": track,
                                 "clnet_overhead": clnet, "train_speed": train})


if __name__ == "__main__":
    main()
