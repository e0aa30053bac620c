"""Training throughput (pairs/s) for both stages, tiny and r50, on 1 and 2 devices.

    python benchmarks/train_speed.py [--configs configs/demo.py,configs/clnet_r50.py]

Random weights and a synthetic batch (no data loading). On a CPU machine the 2-device
rows use ``--xla_force_host_platform_device_count=2`` (two halves of the same cores).
Prints a table and writes JSON (default results/bench/train_speed.json).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORKER = """
import json, os, sys, time
import jax, numpy as np
from jax.sharding import Mesh
sys.path.insert(0, ROOT)
from benchmarks import common
from clnet_jax import config as C
from clnet_jax.model import siamrpn as M
from clnet_jax.train import step as TS
c = C.from_file(CONFIG, {f'train.{STAGE}.groups_per_batch': GROUPS,
                         f'train.{STAGE}.pairs_per_group': PAIRS, 'train.compute_dtype': DTYPE})
mesh = Mesh(np.array(jax.devices()[:DEVICES]), ('data',))
params = M.init_params(c, jax.random.key(0))
state = TS.init_state(c, STAGE, params, 0)
rng = np.random.default_rng(0)
g, n = GROUPS, PAIRS
batch = {'template': rng.integers(0, 256, (g, n, 127, 127, 3), dtype=np.uint8),
         'search': rng.integers(0, 256, (g, n, 255, 255, 3), dtype=np.uint8),
         'box': np.tile(np.array([100, 100, 160, 150], np.float32), (g, n, 1)),
         'negative': np.zeros((g, n), bool)}
step = TS.make_train_step(c, STAGE, mesh)
state, aux = step(state, batch); state, aux = step(state, batch); jax.block_until_ready(aux)
t = time.perf_counter()
for _ in range(ITERS):
    state, aux = step(state, batch)
jax.block_until_ready(aux)
dt = (time.perf_counter() - t) / ITERS
flops = common.flops_of(step.program(int(state['step'])), state, batch)
peak = common.matmul_peak_flops(dtype=DTYPE) * DEVICES
print(json.dumps({'pairs_per_s': g * n / dt, 's_per_step': dt, 'gflop_per_pair': flops / g / n / 1e9,
                  'frac_of_matmul_peak': flops / dt / peak}))
"""


def measure(config: str, stage: str, devices: int, groups: int, pairs: int, iters: int,
            dtype: str = "float32") -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    code = (f"ROOT={ROOT!r}; CONFIG={config!r}; STAGE={stage!r}; DEVICES={devices}; "
            f"GROUPS={groups}; PAIRS={pairs}; ITERS={iters}; DTYPE={dtype!r}\n" + WORKER)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from benchmarks import common
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="configs/demo.py,configs/clnet_r50.py")
    ap.add_argument("--devices", default="1,2")
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--compute_dtype", default="float32", help="train.compute_dtype")
    ap.add_argument("--out", default="results/bench/train_speed.json")
    args = ap.parse_args()
    rows = []
    for config in args.configs.split(","):
        for stage in ("base", "clnet"):
            for d in map(int, args.devices.split(",")):
                r = measure(os.path.join(ROOT, config), stage, d, args.groups, args.pairs, args.iters,
                            args.compute_dtype)
                rows.append({"config": os.path.basename(config), "stage": stage, "devices": d,
                             "pairs_per_s": round(r.get("pairs_per_s", float("nan")), 2),
                             "s_per_step": round(r.get("s_per_step", float("nan")), 3),
                             "gflop_per_pair": round(r.get("gflop_per_pair", float("nan")), 2),
                             "frac_of_matmul_peak": round(r.get("frac_of_matmul_peak",
                                                                float("nan")), 3),
                             "error": r.get("error", "")})
                print(rows[-1], flush=True)
    print(common.table(rows, ["config", "stage", "devices", "pairs_per_s", "s_per_step",
                             "gflop_per_pair", "frac_of_matmul_peak"]))
    common.write_json(args.out, {"rows": rows, "groups": args.groups, "pairs": args.pairs,
                                 "compute_dtype": args.compute_dtype})


if __name__ == "__main__":
    main()
