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
    """FLOPs of one call, counted from the jaxpr (convolutions and matmuls, 2 per MAC).

    XLA's own cost analysis is used on CPU only as a cross-check: on a GPU it does not see
    inside cuDNN convolution calls and reports a small fraction of the real count.
    """
    return float(model_flops(jax.make_jaxpr(jitted)(*args).jaxpr))


def xla_flops_of(jitted, *args) -> float:
    """XLA's cost-analysis FLOPs of the compiled program (complete on CPU only)."""
    cost = jitted.lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            if hasattr(item, "jaxpr") and hasattr(item, "consts"):  # ClosedJaxpr
                yield item.jaxpr
            elif hasattr(item, "eqns"):  # Jaxpr
                yield item


def model_flops(jaxpr) -> int:
    """2 × multiply-accumulates of every conv and dot_general in ``jaxpr`` (loops multiplied
    by their trip count, both branches of a cond counted at the larger one)."""
    import math
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            lhs, rhs = (v.aval for v in eqn.invars[:2])
            out = eqn.outvars[0].aval
            dn = eqn.params["dimension_numbers"]
            k_in = rhs.shape[dn.rhs_spec[1]]  # input features per group
            window = math.prod(rhs.shape[d] for d in dn.rhs_spec[2:])
            total += 2 * math.prod(out.shape) * k_in * window
        elif name == "dot_general":
            (lc, _), (lb, _) = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            contract = math.prod(lhs.shape[d] for d in lc)
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * contract
        elif name == "cond":
            total += max(model_flops(b.jaxpr) for b in eqn.params["branches"])
        else:
            inner = sum(model_flops(j) for j in _subjaxprs(eqn))
            if name == "scan":
                inner *= eqn.params["length"]
            total += inner
    return total


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
