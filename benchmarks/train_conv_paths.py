"""Each 3×3 convolution of the r50 training step: XLA's convolution against the matrix-product
path that ``train.winograd`` takes on CPUs, the evidence behind ``train.winograd_min_channels``.

    python benchmarks/train_conv_paths.py [--pairs 8] [--iters 3] [--scale 1]
        [--out results/bench/train_conv_paths.json]

The shapes are those of the r50-l234 base stage at ``--pairs`` pairs (255² search crops,
127² templates), each with how often a step runs it. Per shape, both paths of
``model.conv.conv2d`` (``winograd_min_channels`` 0: XLA's convolution; 1: Winograd
F(2×2, 3×3) products at stride 1, products of strided slices otherwise), the forward pass
alone and the forward pass with both gradients (``jax.vjp``), medians of ``--iters`` calls,
random inputs. The step totals weigh each shape by its count and by what each phase runs:
at epoch 0 the backbone is frozen (its forward pass only) and the heads train; at epoch 10
layer1 stays frozen and everything after it trains. ``--scale`` divides every channel count
(a quick run on small shapes; the tests use it). Prints a table and the totals per setting
(XLA everywhere, products everywhere, and the configured bound), and writes JSON.
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
from clnet_jax.model import conv  # noqa: E402

# (where, count per step, input side, input channels, output channels, stride, padding,
# dilation); s: the search crops' maps, z: the templates'
SHAPES = [
    ("s layer1 conv2", 3, 63, 64, 64, 1, 1, 1),
    ("s layer2.0 conv2", 1, 63, 128, 128, 2, 0, 1),
    ("s layer2.0 shortcut", 1, 63, 256, 512, 2, 0, 1),
    ("s layer2 conv2 (blocks 1-3)", 3, 31, 128, 128, 1, 1, 1),
    ("s layer3.0 conv2", 1, 31, 256, 256, 1, 1, 1),
    ("s layer3.0 shortcut", 1, 31, 512, 1024, 1, 1, 1),
    ("s layer3 conv2 (blocks 1-5)", 5, 31, 256, 256, 1, 2, 2),
    ("s layer4.0 conv2", 1, 31, 512, 512, 1, 2, 2),
    ("s layer4.0 shortcut", 1, 31, 1024, 2048, 1, 2, 2),
    ("s layer4 conv2 (blocks 1-2)", 2, 31, 512, 512, 1, 4, 4),
    ("s head conv_search", 6, 31, 256, 256, 1, 0, 1),
    ("z layer1 conv2", 3, 31, 64, 64, 1, 1, 1),
    ("z layer2.0 conv2", 1, 31, 128, 128, 2, 0, 1),
    ("z layer2.0 shortcut", 1, 31, 256, 512, 2, 0, 1),
    ("z layer2 conv2 (blocks 1-3)", 3, 15, 128, 128, 1, 1, 1),
    ("z layer3.0 conv2", 1, 15, 256, 256, 1, 1, 1),
    ("z layer3.0 shortcut", 1, 15, 512, 1024, 1, 1, 1),
    ("z layer3 conv2 (blocks 1-5)", 5, 15, 256, 256, 1, 2, 2),
    ("z layer4.0 conv2", 1, 15, 512, 512, 1, 2, 2),
    ("z layer4.0 shortcut", 1, 15, 1024, 2048, 1, 2, 2),
    ("z layer4 conv2 (blocks 1-2)", 2, 15, 512, 512, 1, 4, 4),
    ("z head conv_kernel", 6, 7, 256, 256, 1, 0, 1),
]
PATHS = {"xla": 0, "products": 1}  # winograd_min_channels


def trains(where: str, phase: str) -> bool:
    """Whether a phase runs the shape's backward pass (pysot's freezing rules)."""
    return "head" in where or (phase == "epoch10" and "layer1" not in where)


def measure(pairs: int, iters: int, scale: int, shapes: list | None = None) -> list[dict]:
    """One row per shape of ``shapes`` (default: :data:`SHAPES`)."""
    rng = np.random.default_rng(0)
    rows = []
    for where, count, side, c, o, s, p, d in shapes or SHAPES:
        c, o = max(c // scale, 1), max(o // scale, 1)
        x = jnp.asarray(rng.normal(size=(pairs, side, side, c)), jnp.float32)
        w = jnp.asarray(rng.normal(size=(3, 3, c, o)) / np.sqrt(9 * c), jnp.float32)
        row = {"where": where, "per_step": count, "in": c, "out": o, "stride": s,
               "dilation": d}
        outs = {}
        y_shape = jax.eval_shape(lambda x, w: conv.conv2d(x, w, s, p, d), x, w).shape
        dy = jnp.asarray(rng.normal(size=y_shape), jnp.float32)  # one cotangent for both
        for name, wmin in PATHS.items():
            f = lambda x, w, wmin=wmin: conv.conv2d(x, w, s, p, d, wmin)
            fwd = jax.jit(f)
            fwd_bwd = jax.jit(lambda x, w, dy, f=f: (f(x, w), jax.vjp(f, x, w)[1](dy)))
            outs[name] = fwd_bwd(x, w, dy)  # (output, (input grad, weight grad))
            row[f"{name}_fwd_ms"] = round(1e3 * common.time_call(fwd, x, w, iters=iters), 2)
            row[f"{name}_fwd_bwd_ms"] = round(
                1e3 * common.time_call(fwd_bwd, x, w, dy, iters=iters), 2)
        rel = lambda a, b: float(f"{float(jnp.abs(a - b).max() / jnp.abs(b).max()):.1e}")
        row["out_rel_err"] = rel(outs["products"][0], outs["xla"][0])
        row["wgrad_rel_err"] = rel(outs["products"][1][1], outs["xla"][1][1])
        rows.append(row)
    return rows


def step_totals(rows: list[dict], bound: int) -> dict:
    """ms per step of these convolutions per phase and setting: 'xla', 'products' (every
    shape), 'bound' (products where the input has at least ``bound`` channels)."""
    out = {}
    for phase in ("epoch0", "epoch10"):
        ms = lambda r, path: r[f"{path}_fwd_bwd_ms" if trains(r["where"], phase) else
                               f"{path}_fwd_ms"] * r["per_step"]
        out[phase] = {
            "xla": round(sum(ms(r, "xla") for r in rows), 1),
            "products": round(sum(ms(r, "products") for r in rows), 1),
            "bound": round(sum(ms(r, "products" if r["in"] >= bound else "xla")
                               for r in rows), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1, help="divide every channel count")
    ap.add_argument("--out", default="results/bench/train_conv_paths.json")
    args = ap.parse_args()
    bound = config_lib.from_file("siamrpn_r50").train.winograd_min_channels // args.scale
    rows = measure(args.pairs, args.iters, args.scale)
    print(common.table(rows, list(rows[0])))
    totals = step_totals(rows, bound)
    for phase, t in totals.items():
        print(f"{phase} (ms per step): " + ", ".join(f"{k} {v}" for k, v in t.items())
              + f" (bound: {bound} channels)")
    common.write_json(args.out, {"rows": rows, "step_ms": totals, "bound": bound,
                                 "pairs": args.pairs, "iters": args.iters,
                                 "scale": args.scale})


if __name__ == "__main__":
    main()
