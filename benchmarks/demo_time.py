"""Where the demo's time goes: each phase of ``train.py --config configs/demo.py``, and the
base step split into input and compute.

    python benchmarks/demo_time.py [--config demo] [--set key=value,...] [--probe_steps 30]
        [--no_run] [--out results/bench/demo_time.json]

``--config`` names another config that runs as the demo does (both stages, then the final
table), e.g. ``--config real --set data.dir=/data/otb,/data/vot`` for the real-video one.

1. **Probe** (unless ``--probe_steps 0``): on the demo's own store and config, times
   ``--probe_steps`` base steps three ways in one process, after the compile: the input
   alone (``next()`` on the pipeline), the step alone (the same batch again and again), and
   the trainer's loop (both, as ``train_stage`` runs them). Loop time near the sum of the two
   means input and compute do not overlap; near the larger, that they do.
2. **Run** (unless ``--no_run``): the demo command itself in a fresh work folder, its output
   read line by line with timestamps: start-up and data, the base stage's compile (to its
   first step) and steps, the same for the CLNet stage, and the evaluation, to the final
   table. The data must be present (the demo prepares it on first use, and that time is
   reported as its own phase).

``--set`` applies config overrides to both (e.g. ``data.workers=1``). Prints a table and
writes JSON, so the figure can be checked on any machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _overrides(text: str) -> dict:
    out = {}
    # pairs split at commas that start another key=, so a value may hold commas (data.dir)
    for kv in (p for p in re.split(r",(?=[\w.]+=)", text) if p):
        k, v = kv.split("=", 1)
        out[k] = json.loads(v) if re.fullmatch(r"-?[\d.]+(e-?\d+)?|true|false", v) else v
    return out


def probe(overrides: dict, steps: int, config: str = "demo") -> dict:
    """Input alone, step alone and the loop, ``steps`` each, after a compile."""
    import jax
    import numpy as np

    from clnet_jax import config as config_lib
    from clnet_jax import distributed
    from clnet_jax.data import pipeline
    from clnet_jax.model import siamrpn
    from clnet_jax.train import step as ts
    from clnet_jax.train import trainer
    cfg = config_lib.from_file(config, overrides)
    sc = cfg.train.base
    mesh = distributed.data_mesh()
    stores, samples = trainer.train_source(cfg)
    data = pipeline.make_iterator(stores, cfg, cfg.train.seed, sc.groups_per_batch, 10 * steps,
                                  samples=samples, pairs_per_group=sc.pairs_per_group)
    state = distributed.replicate(ts.init_state(cfg, "base", siamrpn.init_params(
        cfg, jax.random.key(0)), 0), mesh)
    step_fn = ts.make_train_step(cfg, "base", mesh)
    t = time.perf_counter()
    first = next(data)
    first_batch_s = time.perf_counter() - t

    def run(batch_of, n):
        nonlocal state
        t = time.perf_counter()
        for i in range(n):
            batch = distributed.global_batch(batch_of(), mesh)
            batch.pop("skipped")
            state, aux = step_fn(state, batch, i)
            {k: float(v) for k, v in distributed.to_host(aux).items()}  # the trainer's sync
        return (time.perf_counter() - t) / n

    t = time.perf_counter()
    run(lambda: dict(first), 1)
    compile_s = time.perf_counter() - t
    # the input alone from a fresh iterator: the first one's buffer filled during the compile
    fresh = pipeline.make_iterator(stores, cfg, cfg.train.seed + 1, sc.groups_per_batch,
                                   10 * steps, samples=samples, pairs_per_group=sc.pairs_per_group)
    t = time.perf_counter()
    for _ in range(steps):
        next(fresh)
    input_s = (time.perf_counter() - t) / steps
    step_s = run(lambda: dict(first), steps)
    loop_s = run(lambda: next(data), steps)
    pairs = sc.groups_per_batch * sc.pairs_per_group
    return {"steps": steps, "pairs_per_step": pairs, "first_batch_s": first_batch_s,
            "compile_and_first_step_s": compile_s, "input_s_per_step": input_s,
            "step_s_per_step": step_s, "loop_s_per_step": loop_s,
            "loop_steps_per_s": 1 / loop_s, "pure_steps_per_s": 1 / step_s,
            "overlap": float(np.clip((input_s + step_s - loop_s) / max(min(input_s, step_s), 1e-9),
                                     0, 1))}


_MARKS = [  # (phase that ends at the first line matching, pattern)
    ("startup_and_data", re.compile(r"train base:\s+0%")),
    ("base_compile", re.compile(r"train base:.*\s1/\d+")),
    ("base_steps", re.compile(r"base stage done")),
    ("clnet_compile", re.compile(r"train clnet:.*\s1/\d+")),
    ("clnet_steps", re.compile(r"clnet stage done")),
    ("eval_data", re.compile(r"eval base:\s+0%")),  # the test split, prepared on first use
    ("evaluation", re.compile(r"CLNet\s*[−-]\s*base, success AUC")),  # both trackers
]


def run_demo(overrides: dict, config: str = "demo") -> dict:
    work = tempfile.mkdtemp(prefix="demo_time_")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--config", config,
           f"--workdir={work}"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    marks, tail, buf = {}, [], ""
    pending = list(_MARKS)
    while True:
        ch = proc.stdout.read(1)
        if not ch:
            break
        if ch not in "\r\n":
            buf += ch
            continue
        line, buf = buf, ""
        tail = (tail + [line])[-40:]
        while pending and pending[0][1].search(line):
            marks[pending.pop(0)[0]] = time.perf_counter() - t0
    proc.wait()
    total = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError("the demo failed:\n" + "\n".join(tail))
    phases, last = {}, 0.0
    for name, _ in _MARKS:
        if name in marks:
            phases[name] = marks[name] - last
            last = marks[name]
    phases["after_last_mark"] = total - last
    with open(os.path.join(work, "eval.json")) as f:
        table = json.load(f)
    return {"total_s": total, "phases_s": phases, "workdir": work, "tail": tail[-12:],
            "eval": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo", help="a config run as the demo is")
    ap.add_argument("--set", default="", help="config overrides key=value,...")
    ap.add_argument("--probe_steps", type=int, default=30)
    ap.add_argument("--no_run", action="store_true")
    ap.add_argument("--out", default="results/bench/demo_time.json")
    a = ap.parse_args()
    from benchmarks import common
    overrides = _overrides(a.set)
    out = {"config": a.config, "overrides": overrides, "cores": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d")}
    if a.probe_steps:
        out["probe"] = probe(overrides, a.probe_steps, a.config)
        print(common.table([{k: (f"{v:.3f}" if isinstance(v, float) else v)
                             for k, v in out["probe"].items()}], list(out["probe"])), flush=True)
    if not a.no_run:
        out["run"] = run_demo(overrides, a.config)
        rows = [{"phase": k, "seconds": f"{v:.1f}"} for k, v in out["run"]["phases_s"].items()]
        rows.append({"phase": "total", "seconds": f"{out['run']['total_s']:.1f}"})
        print(common.table(rows, ["phase", "seconds"]))
        print("\n".join(out["run"]["tail"]))
    common.write_json(a.out, out)


if __name__ == "__main__":
    main()
