"""Each 3×3 stride-1 convolution of an r50 tracking frame: XLA's direct convolution against
Winograd F(2×2, 3×3) and F(4×4, 3×3), the evidence behind ``track.winograd_tile='auto'``.

    python benchmarks/winograd_tiles.py [--iters 10] [--scale 1]
        [--out results/bench/winograd_tiles.json]

The shapes are those of the r50-l234 tracker at batch 1 (the 255² search crop, 31×31 maps
from layer2 on; the 127² template's, which run once per sequence, are left out), each with
how often a frame runs it. Per shape: the best of three medians of ``--iters`` calls,
random inputs and kernels, and each Winograd output's largest error relative to the direct
one. ``--scale`` divides every channel count (a quick run on small shapes; the tests use
it). Prints a table with the tile 'auto' picks, the fastest per shape and the frame's total
for each setting, and writes JSON.
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
from clnet_jax.model import winograd  # noqa: E402

# (where, count per frame, map side, input channels, output channels, dilation, padding)
SHAPES = [
    ("layer1 conv2", 3, 63, 64, 64, 1, 1),
    ("layer2 conv2 (blocks 1-3)", 3, 31, 128, 128, 1, 1),
    ("layer3.0 shortcut", 1, 31, 512, 1024, 1, 1),
    ("layer3.0 conv2", 1, 31, 256, 256, 1, 1),
    ("layer3 conv2 (blocks 1-5)", 5, 31, 256, 256, 2, 2),
    ("layer4.0 shortcut", 1, 31, 1024, 2048, 2, 2),
    ("layer4.0 conv2", 1, 31, 512, 512, 2, 2),
    ("layer4 conv2 (blocks 1-2)", 2, 31, 512, 512, 4, 4),
    ("head conv_search (x6)", 6, 31, 256, 256, 1, 0),
]


def direct(x, w, padding: int, dilation: int):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), [(padding, padding)] * 2, rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def best_median_ms(fn, *args, iters: int) -> float:
    return 1e3 * min(common.time_call(fn, *args, iters=iters) for _ in range(3))


def measure(iters: int, scale: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for where, count, side, c, o, d, p in SHAPES:
        c, o = max(c // scale, 1), max(o // scale, 1)
        x = jnp.asarray(rng.normal(size=(1, side, side, c)), jnp.float32)
        w = (rng.normal(size=(3, 3, c, o)) / np.sqrt(9 * c)).astype(np.float32)
        f_direct = jax.jit(lambda x, w, p=p, d=d: direct(x, w, p, d))
        ref = f_direct(x, jnp.asarray(w))
        row = {"where": where, "per_frame": count, "map": side, "in": c, "out": o,
               "dilation": d, "direct_ms": round(best_median_ms(f_direct, x, jnp.asarray(w),
                                                                 iters=iters), 3)}
        for m in (2, 4):
            u = jnp.asarray(winograd.kernel_transform(w, m))
            f = jax.jit(lambda x, u, p=p, d=d: winograd.conv3x3(x, u, p, d))
            err = float(jnp.abs(f(x, u) - ref).max() / jnp.abs(ref).max())
            row[f"f{m}_ms"] = round(best_median_ms(f, x, u, iters=iters), 3)
            row[f"f{m}_rel_err"] = float(f"{err:.1e}")
        row["auto_tile"] = winograd.tile_for("auto", c)
        row["fastest"] = min(("direct", "f2", "f4"), key=lambda k: row[f"{k}_ms"])
        rows.append(row)
    return rows


def frame_totals(rows: list[dict]) -> dict:
    """ms per frame of these convolutions under each setting (count-weighted)."""
    tot = {k: sum(r["per_frame"] * r[f"{k}_ms"] for r in rows) for k in ("direct", "f2", "f4")}
    tot["auto"] = sum(r["per_frame"] * r[f"f{r['auto_tile']}_ms"] for r in rows)
    return {k: round(v, 2) for k, v in tot.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--scale", type=int, default=1, help="divide every channel count")
    ap.add_argument("--out", default="results/bench/winograd_tiles.json")
    args = ap.parse_args()
    rows = measure(args.iters, args.scale)
    print(common.table(rows, list(rows[0])))
    totals = frame_totals(rows)
    print("per frame (ms): " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    common.write_json(args.out, {"rows": rows, "frame_ms": totals, "iters": args.iters,
                                 "scale": args.scale,
                                 "wide_channels": winograd.WIDE_CHANNELS})


if __name__ == "__main__":
    main()
