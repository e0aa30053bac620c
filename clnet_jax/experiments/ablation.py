"""Table 3 of the paper in miniature: BT / RT / +AN / +LE / +OS / +DM, plus mean_only,
sgd_finetune and +DM tracked with the official label layout; mean ± std over seeds.

    python -m clnet_jax.experiments.ablation --config configs/ablation.py [--quick]
    [--report_partial]   # the report from the seeds finished so far, no training

Rows (all on the same trained base of each seed; tracking-time mining as the official
tracker does for every CLNet row):
  BT  base tracker                      RT  base trained further on same-sequence groups
                                            (CLNet stage's steps, base stage's pairs/step)
  AN  mlp_no_latent, single-pair groups LE  clnet latent, single-pair groups (no OS)
  OS  clnet, same-sequence groups       DM  OS + diverse mining in training (the paper)
  mean_only  DM without sigma           sgd_finetune  K gradient steps on the first frame
  DM_official  DM weights, official (defective) label layout at tracking time
  DM_running_bn  DM weights, encoder BN on running statistics at the first-frame adaptation
                 (the official tracker uses the first crop's batch statistics)
Writes ``<report_dir>/ablation.md`` with the table, plots and a distractor figure.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import jax

from clnet_jax import config as config_lib
from clnet_jax import eval_data, eval_runner, metrics, runner, trainer
from clnet_jax import model as model_lib
from clnet_jax.data import builders

PAPER = {"BT": (73.3, 57.7), "RT": (74.3, 57.4), "AN": (73.8, 58.2), "LE": (75.5, 60.1),
         "OS": (76.6, 60.2), "DM": (77.2, 61.1)}  # P / AUC %, DTB70+NFS30+UAV123


def row_config(cfg, row: str):
    """Config of a row's training stage ('clnet' stage unless BT/RT/sgd)."""
    c = cfg.copy_and_resolve_references()
    n = cfg.train.clnet_pairs_per_group
    single = dict(pairs=1, groups=cfg.train.groups_per_batch * n)
    grouped = dict(pairs=n, groups=cfg.train.groups_per_batch)
    spec = {"AN": ("mlp_no_latent", single, False), "LE": ("clnet", single, False),
            "OS": ("clnet", grouped, False), "DM": ("clnet", grouped, True),
            "mean_only": ("mean_only", grouped, True)}
    if row in spec:
        variant, g, mining = spec[row]
        c.clnet.variant = variant
        c.train.clnet_pairs_per_group = g["pairs"]
        c.train.groups_per_batch = g["groups"]
        c.train.diverse_mining = mining
    return c


def train_rows(cfg, seed: int, workdir: str, rows: list[str]) -> dict:
    """Trains the base and every trained row for one seed; returns row -> weights."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    init = jax.device_get(model_lib.init_params(c, jax.random.key(seed)))
    base = trainer.train_stage(c, "base", os.path.join(workdir, "base"), init)
    weights = {"BT": base, "sgd_finetune": base}
    if "RT" in rows:  # more base training with the CLNet stage's protocol: same-sequence
        rt = c.copy_and_resolve_references()  # groups and steps, the base stage's pairs/step
        n = c.train.clnet_pairs_per_group
        rt.train.pairs_per_group = n
        rt.train.groups_per_batch = max(c.train.groups_per_batch // n, 1)
        rt.train.epochs = c.train.clnet_epochs or c.train.epochs
        rt.train.warmup_epochs = 0
        rt.train.lr = rt.train.lr_end
        weights["RT"] = trainer.train_stage(rt, "base", os.path.join(workdir, "RT"), base)
    for row in ("AN", "LE", "OS", "DM", "mean_only"):
        if row in rows or (row == "DM" and ({"DM_official", "DM_running_bn"} & set(rows))):
            rc = row_config(c, row)
            weights[row] = trainer.train_stage(rc, "clnet", os.path.join(workdir, row), base)
    weights["DM_official"] = weights["DM_running_bn"] = weights.get("DM")
    return weights


def tracking_config(cfg, row: str):
    c = row_config(cfg, row)
    c.clnet.variant = {"BT": "none", "RT": "none", "sgd_finetune": "sgd_finetune",
                       "DM_official": "clnet", "DM_running_bn": "clnet"}.get(row, c.clnet.variant)
    if row == "DM_official":
        c.clnet.label_layout = "official"
    if row == "DM_running_bn":
        c.clnet.encoder_bn = "running"
    return c


def init_cost(cfg, params, seq) -> tuple[float, float]:
    """(init ms, init cost in tracking frames) on a sequence's first frames, jit warm."""
    trk = runner.SequenceTracker(cfg, params)
    f0, f1 = (eval_runner.load_frame(f) for f in seq.frames[:2])
    trk.init(f0, seq.gt[0])
    jax.block_until_ready(trk.state)
    t = time.perf_counter()
    for _ in range(3):
        trk.init(f0, seq.gt[0])
        jax.block_until_ready(trk.state)
    t_init = (time.perf_counter() - t) / 3
    trk.update(f1)
    t = time.perf_counter()
    for _ in range(3):
        trk.update(f1)
    t_step = (time.perf_counter() - t) / 3
    return 1000 * t_init, t_init / t_step


def evaluate_rows(cfg, weights: dict, rows: list[str], seqs) -> dict:
    out = {}
    for row in rows:
        c = tracking_config(cfg, row)
        params = jax.tree.map(jax.numpy.asarray, weights[row])
        if c.clnet.variant in ("none", "sgd_finetune"):
            params = {k: v for k, v in params.items() if k != "clnet"}
        trk = runner.SequenceTracker(c, params)
        results = {s.name: (s.gt, eval_runner.track_one(trk, s)[0]) for s in seqs}
        summary = metrics.summarize(results)
        summary["init_ms"], summary["init_frames"] = init_cost(c, params, seqs[0])
        summary["boxes"] = {k: v[1].tolist() for k, v in results.items()}
        out[row] = summary
        print(f"  {row:<13} AUC {100 * summary['success_auc']:.1f}  P {100 * summary['precision']:.1f}"
              f"  init {summary['init_frames']:.2f} frames", flush=True)
    return out


def run(cfg, quick: bool = False, partial: bool = False) -> dict:
    """Trains and evaluates every seed (resuming: finished stages and seeds are reused).

    ``partial``: no training; the report from the seeds already evaluated.
    """
    a = cfg.ablation
    seeds = list(a.seeds)[:1] if quick else list(a.seeds)
    d = cfg.data
    src = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                           d.builder_config if d.dataset == "synthetic" else None)
    seqs = eval_data.from_source(src.as_data_source()[cfg.train.eval_split])
    if quick:
        seqs = seqs[:2]
    per_seed = {}
    key = config_hash(cfg, quick)
    for seed in seeds:
        workdir = os.path.join(cfg.train.workdir, f"seed{seed}")
        if partial and not os.path.isdir(workdir):
            continue
        check_workdir(workdir, key)
        done = os.path.join(workdir, "eval.json")
        if os.path.isfile(done):
            with open(done) as f:
                per_seed[seed] = json.load(f)
            continue
        if partial:
            continue
        print(f"seed {seed}: training", flush=True)
        weights = train_rows(cfg, seed, workdir, list(a.rows))
        print(f"seed {seed}: evaluating {len(seqs)} sequences", flush=True)
        per_seed[seed] = evaluate_rows(cfg, weights, list(a.rows), seqs)
        with open(done + ".tmp", "w") as f:
            json.dump(per_seed[seed], f)
        os.replace(done + ".tmp", done)
    if not per_seed:
        sys.exit("error: no seed has been evaluated yet")
    from clnet_jax.experiments import report
    return report.write(cfg, per_seed, seqs, PAPER)


def config_hash(cfg, quick: bool) -> str:
    """What decides a seed's results: the whole config except where they are written."""
    c = cfg.to_dict()
    c["train"] = {k: v for k, v in c["train"].items() if k != "workdir"}
    c["ablation"] = {k: v for k, v in c["ablation"].items() if k not in ("report_dir", "seeds")}
    c["quick"] = quick
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_workdir(workdir: str, key: str) -> None:
    """Saved stages and results are reused only by the configuration that made them."""
    path = os.path.join(workdir, "config_hash")
    if os.path.isfile(path):
        have = open(path).read().strip()
        if have != key:
            sys.exit(f"error: {workdir} holds runs of another configuration (hash {have}, this "
                     f"one is {key}); nothing was reused. Remove it or choose another "
                     "--config.train.workdir.")
        return
    if os.path.isdir(workdir) and os.listdir(workdir):
        sys.exit(f"error: {workdir} holds runs without a configuration hash (made by an older "
                 "version); nothing was reused. Remove it or choose another --config.train.workdir.")
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        f.write(key + "\n")


def quick_paths(cfg, overrides: dict) -> None:
    """--quick never touches the real runs or report: its own work and report directories
    unless they are given explicitly."""
    if "train.workdir" not in overrides:
        cfg.train.workdir = cfg.train.workdir.rstrip("/") + "_quick"
    if "ablation.report_dir" not in overrides:
        cfg.ablation.report_dir = os.path.join(cfg.train.workdir, "report")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    partial = "--report_partial" in argv
    argv = [x for x in argv if x not in ("--quick", "--report_partial")]
    path, overrides = "configs/ablation.py", {}
    if "--config" in argv:  # "--config PATH" -> "--config=PATH"
        i = argv.index("--config")
        argv = argv[:i] + [f"--config={argv[i + 1]}"] + argv[i + 2:]
    for arg in argv:
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg.startswith("--config."):
            k, v = arg[len("--config."):].split("=", 1)
            overrides[k] = json.loads(v) if v[:1] in "[{0123456789-" or v in ("true", "false") else v
        else:
            sys.exit(f"error: unknown argument {arg!r}")
    cfg = config_lib.from_file(path, overrides)
    if quick:  # plumbing only: every row for a few steps
        quick_paths(cfg, overrides)
        t = cfg.train
        t.epochs, t.warmup_epochs, t.steps_per_epoch, t.clnet_epochs = 1, 0, 2, 1
        t.groups_per_batch, t.clnet_pairs_per_group = 2, 2
        t.checkpoint_every, t.log_every = 2, 1
        cfg.data.builder_config = "tiny"
    run(cfg, quick, partial)


if __name__ == "__main__":
    main(sys.argv[1:])
