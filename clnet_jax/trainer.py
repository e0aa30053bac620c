"""The training loop: data, sharded steps, orbax checkpoints, logging, NaN stop, resume.

A stage's work directory holds ``ckpt/`` (orbax CheckpointManager: train state and the data
iterator position every ``checkpoint_every`` steps, last ``keep_checkpoints`` kept),
``weights/`` (tracker-loadable weights at the end), ``metrics.csv`` and TensorBoard event
files. Re-running the same command resumes from the newest checkpoint, exactly.
"""
from __future__ import annotations

import csv
import os
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm import tqdm

from clnet_jax import checkpoint as ckpt_lib
from clnet_jax import config as config_lib
from clnet_jax import train_step as ts
from clnet_jax.data import builders, pipeline


class TrainingError(RuntimeError):
    pass


def stage_config(cfg, stage: str):
    """The clnet stage draws its groups as the paper does (n pairs from one sequence)."""
    c = cfg.copy_and_resolve_references()
    if stage == "clnet":
        c.train.pairs_per_group = cfg.train.clnet_pairs_per_group
        if cfg.train.clnet_epochs:
            c.train.epochs = cfg.train.clnet_epochs
            c.train.warmup_epochs = min(cfg.train.warmup_epochs, cfg.train.clnet_epochs)
    return c


def train_source(cfg):
    d = cfg.data
    builder = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                               d.builder_config if d.dataset == "synthetic" else None)
    return builder.as_data_source()["train"]


class _Log:
    """metrics.csv (truncated to the resumed step) and TensorBoard event files."""

    def __init__(self, workdir: str, start_step: int):
        self.path = os.path.join(workdir, "metrics.csv")
        rows = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        self.fields = ["step", "loss", "cls_loss", "loc_loss", "lr", "grad_norm",
                       "pairs_per_s", "skipped"]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(rows)
        try:
            from tensorboardX import SummaryWriter
            self.tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=start_step + 1)
        except ImportError:  # optional: CSV always works
            self.tb = None

    def write(self, row: dict):
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow({k: row[k] for k in self.fields})
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(f"train/{k}", v, row["step"])

    def close(self):
        if self.tb is not None:
            self.tb.close()


def train_stage(cfg, stage: str, workdir: str, init_params: dict,
                max_steps: int | None = None) -> dict:
    """Trains one stage from ``init_params`` (or resumes); returns tracker weights."""
    cfg = stage_config(cfg, stage)
    t = cfg.train
    os.makedirs(workdir, exist_ok=True)
    devices = np.array(jax.devices())
    if t.groups_per_batch % len(devices):
        raise ValueError(f"train.groups_per_batch={t.groups_per_batch} is not divisible by "
                         f"{len(devices)} devices")
    mesh = Mesh(devices, ("data",))
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    total = t.epochs * t.steps_per_epoch
    state = jax.device_put(ts.init_state(cfg, stage, init_params, t.seed), replicated)
    source = train_source(cfg)
    data = pipeline.make_iterator(source, cfg, t.seed, t.groups_per_batch, total)
    mgr = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "ckpt")),
        options=ocp.CheckpointManagerOptions(max_to_keep=t.keep_checkpoints,
                                             save_interval_steps=t.checkpoint_every))
    start = mgr.latest_step() or 0
    if start:
        restored = mgr.restore(start, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(state), data=ocp.args.JsonRestore()))
        state = jax.device_put(restored["state"], replicated)
        data.set_state(restored["data"])
        print(f"resumed {stage} from step {start} ({workdir})")
    log = _Log(workdir, start)
    step_fn = ts.make_train_step(cfg, stage, mesh)
    end = total if max_steps is None else min(total, max_steps)
    pairs = t.groups_per_batch * t.pairs_per_group
    bar = tqdm(range(start, end), initial=start, total=end, desc=f"train {stage}", unit="step")
    tick = time.perf_counter()
    for step in bar:
        batch = next(data)
        skipped = int(np.sum(batch.pop("skipped")))
        state, aux = step_fn(state, jax.device_put(batch, sharded), step)
        aux = {k: float(v) for k, v in jax.device_get(aux).items()}
        if not np.isfinite(aux["loss"]):
            mgr.wait_until_finished()
            raise TrainingError(
                f"{stage}: loss is {aux['loss']} at step {step + 1}; stopped. Checkpoints are "
                f"intact (latest: step {mgr.latest_step()}) in {workdir}/ckpt")
        now = time.perf_counter()
        row = dict(aux, step=step + 1, pairs_per_s=pairs / max(now - tick, 1e-9), skipped=skipped)
        tick = now
        if (step + 1) % t.log_every == 0 or step + 1 == end:
            log.write(row)
            bar.set_postfix(loss=f"{aux['loss']:.4f}", lr=f"{aux['lr']:.2g}")
        mgr.save(step + 1, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data.get_state())),
            force=step + 1 == end)
    mgr.wait_until_finished()
    log.close()
    params = jax.device_get(ts.params_from_state(state, stage))
    arch = dict(config_lib.arch_from_config(cfg), clnet=stage == "clnet")
    ckpt_lib.save(os.path.join(workdir, "weights"), params, arch)
    return params
