"""The kernels under both training steps: one float32 matrix product and r50's largest
convolution, in PyTorch (oneDNN / MKL, what pysot runs on) and in XLA, on this CPU.

    python benchmarks/kernels_vs_torch.py --python_torch /path/to/torch/venv/bin/python \
        [--xla_flags= --xla_flags=--xla_cpu_experimental_ynn_fusion_type=] [--threads 2] \
        [--out results/bench/kernels_vs_torch.json]

Each side runs in its own process (``--python_torch`` for PyTorch, this interpreter for
JAX, once per ``--xla_flags`` given, XLA's defaults when none is) and reports the best
of five calls after one warm-up
in GFLOP/s: a 2048² × 2048² product, and layer4.0's 3×3 shortcut of the r50 search branch
at the training batch (4 × 1024 × 31 × 31 → 2048 channels, dilation 2) as each
framework's direct convolution. It explains how much of the training ratio against pysot
(``train_vs_pysot.py``) is the kernels themselves. ``--small`` runs tiny shapes (tests).
Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def shapes(small: bool) -> dict:
    n = 64 if small else 2048
    conv = (1, 16, 9, 32) if small else (4, 1024, 31, 2048)  # batch, in, side, out
    return {"n": n, "conv": conv}


def flops(s: dict) -> dict:
    b, c, h, o = s["conv"]
    return {"matmul": 2 * s["n"] ** 3, "conv": 2 * b * h * h * c * o * 9}


def best_s(fn, calls: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_torch(s: dict, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a, b = (torch.from_numpy(rng.random((s["n"], s["n"]), np.float32)) for _ in range(2))
    bt, c, h, o = s["conv"]
    x = torch.from_numpy(rng.random((bt, c, h, h), np.float32))
    w = torch.from_numpy((rng.random((o, c, 3, 3)) * 0.01).astype(np.float32))
    with torch.no_grad():
        return {"matmul": best_s(lambda: a @ b),
                "conv": best_s(lambda: torch.nn.functional.conv2d(x, w, padding=2, dilation=2))}


def run_jax(s: dict) -> dict:
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.random((s["n"], s["n"]), np.float32)) for _ in range(2))
    bt, c, h, o = s["conv"]
    x = jnp.asarray(rng.random((bt, h, h, c), np.float32))
    w = jnp.asarray((rng.random((3, 3, c, o)) * 0.01).astype(np.float32))
    mm = jax.jit(lambda p, q: p @ q)
    cv = jax.jit(lambda p, q: jax.lax.conv_general_dilated(
        p, q, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return {"matmul": best_s(lambda: mm(a, b).block_until_ready()),
            "conv": best_s(lambda: cv(x, w).block_until_ready())}


def child(python: str, side: str, args, xla_flags: str = "") -> dict:
    env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu")
    cmd = [python, os.path.abspath(__file__), f"--side={side}", f"--threads={args.threads}"]
    res = subprocess.run(cmd + (["--small"] if args.small else []), capture_output=True,
                         text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"{side}: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def rows_of(times: dict, s: dict) -> list[dict]:
    """GFLOP/s per kernel and side, with each XLA run's ratio to PyTorch's."""
    f = flops(s)
    out = []
    for kernel in ("matmul", "conv"):
        ref = f[kernel] / times["torch"][kernel] / 1e9
        for side, t in times.items():
            g = f[kernel] / t[kernel] / 1e9
            out.append({"kernel": kernel, "side": side, "ms": round(t[kernel] * 1e3, 2),
                        "gflops": round(g, 1), "vs_torch": round(g / ref, 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python_torch", default=sys.executable)
    ap.add_argument("--xla_flags", action="append", default=None,
                    help="XLA_FLAGS of one JAX run (repeat it for more; '--xla_flags=': "
                         "XLA's defaults); none given: one run with the defaults")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--small", action="store_true", help="tiny shapes (a quick check)")
    ap.add_argument("--side", default=None, choices=["torch", "jax"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default="results/bench/kernels_vs_torch.json")
    args = ap.parse_args()
    s = shapes(args.small)
    if args.side:
        print(json.dumps(run_torch(s, args.threads) if args.side == "torch" else run_jax(s)))
        return
    from benchmarks import common
    times = {"torch": child(args.python_torch, "torch", args)}
    for fl in args.xla_flags or [""]:
        times[f"xla {fl}".strip()] = child(sys.executable, "jax", args, fl)
    rows = rows_of(times, s)
    print(common.table(rows, list(rows[0])))
    common.write_json(args.out, {"rows": rows, "shapes": s, "threads": args.threads})


if __name__ == "__main__":
    main()
