"""SiamRPN++ r50 trained end to end on real frames on this machine: store, base stage with a
SIGKILL and a resume, CLNet stage, and what each costs.

    python benchmarks/r50_real.py --data_dir /data/otb,/data/tlp,/data/vot \
        [--steps 200 --kill_at 130 --clnet_steps 50 --groups 4] [--out results/bench/r50_real.json]

1. The crop511 stores of the folders (``data.dir``, at the frames' native resolution).
2. The r50 base stage with pysot's recipe (``configs/siamrpn_r50.py``: momentum SGD, warm-up,
   backbone frozen with BN in inference mode until its epoch 10) for ``--steps`` steps,
   killed with SIGKILL once ``--kill_at`` steps are logged, then resumed by the same command:
   the rows of ``metrics.csv`` logged before the kill and recomputed after the resume (from
   the last checkpoint) must be equal.
3. The CLNet stage on that base for ``--clnet_steps`` steps.
4. Checkpoint save and restore time and size of the r50 train state, the peak RSS of the
   training processes, and the whole loop's pairs/s against the pure step's
   (``benchmarks/train_speed.py`` on a synthetic batch of the same size).
Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def rows(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def train(args, stage: str, workdir: str, steps: int, extra: list[str],
          kill_at: int | None = None) -> tuple[float, bool]:
    """Runs one stage (a fresh process); with ``kill_at``, SIGKILLs it once that many steps
    are logged. Returns (seconds, killed)."""
    cfg_file = os.path.join(args.work, f"{stage}_config.py")
    with open(cfg_file, "w") as f:  # the stage alone (a list key has no command-line form)
        f.write(f"import ml_collections\nfrom clnet_jax.config import from_file\n\n\n"
                f"def get_config():\n    c = from_file({args.config!r})\n"
                f"    c.train.stages = [{stage!r}]\n"
                f"    c.data.mixture = ml_collections.ConfigDict()  # data.dir alone\n"
                f"    return c\n")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--config", cfg_file,
           f"--config.data.dir={args.data_dir}", f"--config.data.data_dir={args.cache}",
           f"--workdir={workdir}",
           f"--config.train.base.groups_per_batch={args.groups}",
           "--config.train.clnet.groups_per_batch=2", "--config.train.clnet.pairs_per_group=2",
           f"--config.train.steps_per_epoch={steps // 4 if stage == 'base' else steps}",
           "--config.train.base.epochs=4", "--config.train.base.warmup_epochs=1",
           f"--config.train.checkpoint_every={args.checkpoint_every}", "--config.train.log_every=1",
           "--config.train.clnet.epochs=1", "--config.train.clnet.warmup_epochs=1",
           "--config.clnet.variant=clnet", f"--config.train.compute_dtype={args.compute_dtype}",
           f"--config.data.workers={args.workers}", *extra]
    log = open(os.path.join(args.work, f"{stage}.log"), "a")
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=args.work,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    killed = False
    while p.poll() is None:
        time.sleep(2)
        done = rows(os.path.join(workdir, stage, "metrics.csv"))
        if kill_at and done and int(done[-1]["step"]) >= kill_at:
            p.send_signal(signal.SIGKILL)
            p.wait()
            killed = True
    if p.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"{stage} stage failed: see {log.name}")
    return time.perf_counter() - t, killed


def checkpoint_cost(work: str, config: str) -> dict:
    """Save / restore seconds and bytes of the r50 base train state (params + SGD state)."""
    import jax
    import orbax.checkpoint as ocp

    from clnet_jax import config as config_lib
    from clnet_jax.model import siamrpn as model_lib
    from clnet_jax.train import step as ts
    cfg = config_lib.from_file(config)
    state = ts.init_state(cfg, "base", model_lib.init_params(cfg, jax.random.key(0)), 0)
    path = os.path.join(work, "ckpt_probe")
    shutil.rmtree(path, ignore_errors=True)
    ckpt = ocp.StandardCheckpointer()
    t = time.perf_counter()
    ckpt.save(path, state)
    ckpt.wait_until_finished()
    save = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    t = time.perf_counter()
    restored = ckpt.restore(path, jax.tree.map(ocp.utils.to_shape_dtype_struct, state))
    jax.block_until_ready(restored)
    restore = time.perf_counter() - t
    shutil.rmtree(path, ignore_errors=True)
    return {"save_s": save, "restore_s": restore, "bytes": size}


def config_path(name: str) -> str:
    from clnet_jax import config as config_lib
    return config_lib.resolve_path(name)


def main() -> None:
    from benchmarks import common, train_speed
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="folders of real videos, comma-separated")
    ap.add_argument("--config", default="siamrpn_r50", help="(siamrpn_tiny: a quick check)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--kill_at", type=int, default=130,
                    help="kill after this step (between two checkpoints: the resume recomputes "
                         "the steps since the last one)")
    ap.add_argument("--clnet_steps", type=int, default=50)
    ap.add_argument("--groups", type=int, default=4, help="pairs per base step")
    ap.add_argument("--checkpoint_every", type=int, default=50)
    ap.add_argument("--compute_dtype", default="float32", help="train.compute_dtype")
    ap.add_argument("--workers", type=int, default=0, help="data.workers (grain processes)")
    ap.add_argument("--work", default="results/r50_real")
    ap.add_argument("--out", default="results/bench/r50_real.json")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    args.cache = os.path.join(args.work, "data_cache")
    os.makedirs(args.work, exist_ok=True)
    runs = os.path.join(args.work, "runs")
    shutil.rmtree(runs, ignore_errors=True)
    out: dict = {"steps": args.steps, "kill_at": args.kill_at, "groups": args.groups,
                 "compute_dtype": args.compute_dtype, "workers": args.workers}
    first, killed = train(args, "base", runs, args.steps, [], kill_at=args.kill_at)
    before = rows(os.path.join(runs, "base", "metrics.csv"))
    ckpts = os.path.join(runs, "base", "ckpt")
    resumed_from = max((int(d) for d in os.listdir(ckpts) if d.isdigit()), default=None)
    again, _ = train(args, "base", runs, args.steps, [])
    after = rows(os.path.join(runs, "base", "metrics.csv"))
    redone = {r["step"]: r for r in after}
    # the rows the resume recomputed (after its checkpoint), against those logged before the kill
    overlap = [r for r in before if r["step"] in redone and int(r["step"]) > (resumed_from or 0)]
    equal = all(r["loss"] == redone[r["step"]]["loss"] for r in overlap)
    out["base"] = {"killed": killed, "first_run_s": first, "resumed_run_s": again,
                   "steps_logged_before_kill": len(before), "steps_after_resume": len(after),
                   "rows_compared": len(overlap), "loss_column_equal": equal,
                   "final_loss": float(after[-1]["loss"]), "first_loss": float(after[0]["loss"]),
                   "resumed_from_step": resumed_from}
    loop = sorted(float(r["pairs_per_s"]) for r in after[len(after) // 4:] if r.get("pairs_per_s"))
    out["base"]["loop_pairs_per_s"] = loop[len(loop) // 2] if loop else float("nan")
    base_w = os.path.join(runs, "base", "weights")
    t, _ = train(args, "clnet", runs, args.clnet_steps, [f"--config.train.init_checkpoint={base_w}"])
    clnet = rows(os.path.join(runs, "clnet", "metrics.csv"))
    out["clnet"] = {"run_s": t, "steps": len(clnet), "first_loss": float(clnet[0]["loss"]),
                    "final_loss": float(clnet[-1]["loss"])}
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["stores"] = {}
    for d in os.listdir(os.path.join(args.cache, "frames")):
        for split in os.listdir(os.path.join(args.cache, "frames", d)):
            idx = json.load(open(os.path.join(args.cache, "frames", d, split, "index.json")))
            out["stores"][d] = {"records": idx["num_records"], "tracks": idx["num_tracks"],
                                "bytes": sum(idx["shard_bytes"]), "skipped": idx["num_skipped"]}
    pure = train_speed.measure(config_path(args.config), "base", 1, args.groups, 1, 3,
                               args.compute_dtype)
    out["pure_step_pairs_per_s"] = pure.get("pairs_per_s", float("nan"))
    out["loop_over_pure"] = out["base"]["loop_pairs_per_s"] / out["pure_step_pairs_per_s"]
    out["checkpoint"] = checkpoint_cost(args.work, args.config)
    table = [{"what": "base stage, first run (killed)", "value": f"{first:.0f} s, {len(before)} steps"},
             {"what": "base stage, resumed", "value": f"{again:.0f} s, to step {len(after)}"},
             {"what": "loss column equal after resume", "value": f"{equal} ({len(overlap)} rows)"},
             {"what": "base loss first -> last",
              "value": f"{out['base']['first_loss']:.3f} -> {out['base']['final_loss']:.3f}"},
             {"what": "CLNet stage", "value": f"{t:.0f} s, {len(clnet)} steps"},
             {"what": "loop pairs/s (median)", "value": f"{out['base']['loop_pairs_per_s']:.2f}"},
             {"what": "pure step pairs/s", "value": f"{out['pure_step_pairs_per_s']:.2f}"},
             {"what": "loop / pure", "value": f"{out['loop_over_pure']:.2f}"},
             {"what": "checkpoint save / restore",
              "value": f"{out['checkpoint']['save_s']:.1f} s / {out['checkpoint']['restore_s']:.1f} s, "
                       f"{out['checkpoint']['bytes'] / 2 ** 20:.0f} MiB"},
             {"what": "peak RSS (training processes)", "value": f"{out['peak_rss_mib']:.0f} MiB"}]
    print(common.table(table, ["what", "value"]))
    common.write_json(args.out, out)


if __name__ == "__main__":
    main()
