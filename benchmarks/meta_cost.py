"""What a meta-learned adaptation costs: CLNet-stage step time and compiled memory per
variant, K and order, and the first-frame init cost in tracked frames.

    python benchmarks/meta_cost.py [--config demo] [--ks 1,3,5] [--out FILE.json]

Random weights and a synthetic batch (no data loading), the config's CLNet-stage batch
(``train.clnet.groups_per_batch`` groups of ``train.clnet.pairs_per_group`` pairs). Memory is
XLA's compiled temporary buffer size of the train step (``memory_analysis``): what grows
with K. Init cost = median first-frame ``init`` time over median per-frame ``step`` time of
the jitted tracker. Prints a table and writes JSON.
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
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax import distributed  # noqa: E402
from clnet_jax.adapt import variants as variants_lib  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.model import weights  # noqa: E402
from clnet_jax.track import tracker as tracker_lib  # noqa: E402
from clnet_jax.train import step as step_lib  # noqa: E402


def _batch(c, g: int, n: int) -> dict:
    rng = np.random.default_rng(0)
    t, s = c.track.exemplar_size, c.track.instance_size
    mid = s / 2
    return {"template": rng.integers(0, 256, (g, n, t, t, 3), dtype=np.uint8),
            "search": rng.integers(0, 256, (g, n, s, s, 3), dtype=np.uint8),
            "box": np.tile(np.array([mid - 20, mid - 16, mid + 20, mid + 16], np.float32),
                           (g, n, 1)),
            "negative": np.zeros((g, n), bool)}


def _weights(cfg, base: str | None) -> dict:
    """Trained base weights (``--base``), else random ones (whose untrained BN statistics
    can make a CPU step several times slower than a trained model's)."""
    if base:
        return jax.tree.map(jax.numpy.asarray, weights.load(base)[0])
    return model_lib.init_params(cfg, jax.random.key(0))


def train_cost(cfg, iters: int, base: str | None = None) -> dict:
    c = cfg
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    params = _weights(c, base)
    # placed as the trainer places them (an unplaced state costs a transfer per step)
    state = distributed.replicate(step_lib.init_state(c, "clnet", params, 0), mesh)
    batch = distributed.global_batch(_batch(c, c.train.clnet.groups_per_batch, c.train.clnet.pairs_per_group),
                                     mesh)
    step = step_lib.make_train_step(c, "clnet", mesh)
    compiled = step.program(0).lower(state, batch).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    state, aux = step(state, batch, 0)
    jax.block_until_ready(aux)
    t = time.perf_counter()
    for i in range(iters):
        state, aux = step(state, batch, i + 1)
    jax.block_until_ready(aux)
    return {"s_per_step": (time.perf_counter() - t) / iters, "temp_mib": temp / 2 ** 20,
            "loss": float(aux["loss"])}


def init_cost(cfg, iters: int, base: str | None = None) -> dict:
    fns = tracker_lib.make_tracker(cfg)
    params = dict(_weights(cfg, base))
    variant = variants_lib.get_variant(cfg.clnet.variant)
    if variant.init_params is not None:
        params["clnet"] = variant.init_params(jax.random.key(1), cfg)
    params = fns.prepare(params)
    frame = np.random.default_rng(0).integers(0, 256, (144, 192, 3), dtype=np.uint8)
    box = np.array([80.0, 60.0, 30.0, 24.0], np.float32)
    init, step = jax.jit(fns.init), jax.jit(fns.step)
    state = init(params, frame, box)
    t_init = common.time_call(init, params, frame, box, iters=iters)
    t_step = common.time_call(step, params, state, frame, iters=iters)
    return {"init_ms": 1e3 * t_init, "step_ms": 1e3 * t_step, "init_frames": t_init / t_step}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo")
    ap.add_argument("--ks", default="1,3,5")
    ap.add_argument("--variants", default="clnet,meta_sgd,maml,clnet_sgd")
    ap.add_argument("--orders", default="second,first", help="meta-gradient orders to time")
    ap.add_argument("--base", default=None, help="trained base weights (default: random)")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", default="results/bench/meta_cost.json")
    args = ap.parse_args(argv)
    rows = []
    for name in args.variants.split(","):
        ks = [None] if name == "clnet" else [int(k) for k in args.ks.split(",")]
        orders = [False] if name == "clnet" else [o == "first" for o in args.orders.split(",")]
        for k in ks:
            for first_order in orders:
                over = {"clnet.variant": name}
                if k is not None:
                    over.update({"clnet.meta_steps": k, "clnet.meta_first_order": first_order})
                cfg = config_lib.from_file(args.config, over)
                row = {"variant": name, "K": k, "order": "first" if first_order else "second",
                       **train_cost(cfg, args.iters, args.base),
                       **init_cost(cfg, args.iters, args.base)}
                rows.append(row)
                print(f"{name:<10} K={str(k):<4} {row['order']:<6} step {row['s_per_step']*1e3:8.1f} ms"
                      f"  temp {row['temp_mib']:8.1f} MiB  init {row['init_ms']:6.1f} ms"
                      f" = {row['init_frames']:4.2f} frames", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": common.machine(), "date": time.strftime("%Y-%m-%d"),
                   "config": args.config, "base": args.base, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
