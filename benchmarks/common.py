"""Helpers for the benchmark scripts: timing, matmul peak, JSON output, machine info."""
from __future__ import annotations

import json
import os
import platform
import time

import jax
import jax.numpy as jnp


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()]}


def time_call(fn, *args, iters: int = 5, warmup: int = 1) -> float:
    """Median seconds per call of an already-jitted function (blocks on the result)."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def matmul_peak_flops(n: int | None = None, iters: int = 5, dtype: str = "float32") -> float:
    """Measured matmul throughput (FLOP/s) in ``dtype``: the 'peak' we compare against.

    2048² on a CPU; 8192² on an accelerator, where a smaller product is too short to time.
    """
    n = n or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jnp.ones((n, n), jnp.dtype(dtype))
    f = jax.jit(lambda x: x @ x)
    return 2 * n ** 3 / time_call(f, a, iters=iters)


def flops_of(jitted, *args) -> float:
    cost = jitted.lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(payload, machine=machine()), f, indent=1)
    print(f"wrote {path}")


def table(rows: list[dict], cols: list[str]) -> str:
    widths = {c: max(len(c), *(len(f"{r[c]}") for r in rows)) for c in cols}
    line = "  ".join(c.ljust(widths[c]) for c in cols)
    out = [line, "-" * len(line)]
    out += ["  ".join(f"{r[c]}".ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(out)
