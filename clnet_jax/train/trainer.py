"""The training loop: data, sharded steps, orbax checkpoints, logging, NaN stop, resume.

A stage's work directory holds ``ckpt/`` (orbax CheckpointManager: train state and the data
iterator position every ``checkpoint_every`` steps, last ``keep_checkpoints`` kept),
``weights/`` (tracker-loadable weights at the end), ``metrics.csv`` and TensorBoard event
files. Re-running the same command resumes from the newest checkpoint, exactly.
"""
from __future__ import annotations

import csv
import json
import os
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from clnet_jax import config as config_lib
from clnet_jax import distributed
from clnet_jax.data import benchmarks, frames, pipeline, videos
from clnet_jax.data import prepare as prep
from clnet_jax.io import checkpoint as ckpt_lib
from clnet_jax.train import step as ts


class TrainingError(RuntimeError):
    pass


def check_resumable(cfg, stage: str, workdir: str) -> None:
    """Refuses to resume a work directory whose recorded run settings
    (:func:`clnet_jax.config.run_settings`) differ from ``cfg``."""
    path = os.path.join(workdir, "run_settings.json")
    if not os.path.isfile(path):
        return
    now = config_lib.run_settings(cfg, stage)
    with open(path) as f:
        saved = json.load(f)
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {now.get(k)!r}"
                          for k in diff[:6])
        raise ValueError(f"{workdir} holds a {stage} run of other settings ({shown}"
                         f"{', …' if len(diff) > 6 else ''}); resuming would mix two runs. "
                         "Use another --workdir, or delete that one to start over.")


def _record_settings(cfg, stage: str, workdir: str) -> None:
    path = os.path.join(workdir, "run_settings.json")
    with open(path + ".tmp", "w") as f:
        json.dump(config_lib.run_settings(cfg, stage), f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def _folder_specs(cfg) -> list[tuple]:
    """A store spec per folder of ``data.dir`` that keeps a training video (each track
    once per mixture epoch)."""
    loaded = videos.dir_sequences(cfg)
    exclude = frozenset(videos.held_out_videos(cfg, loaded))
    return [("auto", f, "train", -1, prep.folder_store_name(f, exclude), exclude)
            for f, seqs in loaded.items() if {benchmarks.video_of(s) for s in seqs} - exclude]


def train_source(cfg) -> tuple[list[frames.FrameStore], list[int] | None]:
    """The frame-level stores to train on and their samples per mixture epoch:
    ``data.mixture`` (name -> samples, manual_dir) when set, else the one ``data.dataset``.

    Stores are prepared on first use by process 0 while the others wait (they share the
    data directory), then opened by every process.
    """
    d = cfg.data
    workers = d.prepare_workers or os.cpu_count() or 1
    # a mixture entry's ``dataset`` (default: its name) says what to read; an entry that
    # names one gets a store of the entry's name, so several folders of one layout (one's
    # own videos, say) join as separate stores; the others keep the dataset's store
    specs = [(spec.get("dataset", name), spec.get("manual_dir") or None,
              spec.get("split", "train"), int(spec["samples"]),
              name if "dataset" in spec else None, frozenset())
             for name, spec in d.mixture.items()]
    specs += _folder_specs(cfg) if d.dir else []
    mixture = bool(specs)
    if not specs:
        specs = [(d.dataset, d.manual_dir or None, "train", 0, None, frozenset())]
    storage = d.storage or None
    if distributed.is_main():
        for dataset, root, split, _, name, exclude in specs:
            prep.prepare(dataset, d.data_dir, root, split, storage, workers, d.builder_config,
                           name=name, exclude=exclude)
    distributed.barrier("frame stores prepared")
    stores = [frames.FrameStore(frames.store_dir(d.data_dir, dataset, split, storage,
                                                 d.builder_config, name))
              for dataset, _, split, _, name, _ in specs]
    if not mixture:
        return stores, None
    # -1: each track once per mixture epoch (upstream's "use all")
    return stores, [len(s.tracks) if spec[3] < 0 else spec[3] for s, spec in zip(stores, specs)]


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


def _data_state_path(workdir: str, step: int) -> str:
    """Each process's data-iterator position at a checkpoint step (beside orbax's files:
    orbax writes JSON items from process 0 only, and every process has its own)."""
    return os.path.join(workdir, "data_state", f"p{jax.process_index()}", f"{step}.json")


def _save_data_state(workdir: str, step: int, state: dict, keep: int) -> None:
    path = _data_state_path(workdir, step)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)
    steps = sorted(int(n[:-5]) for n in os.listdir(folder) if n.endswith(".json"))
    for old in steps[:-(keep + 1)]:  # pruned with the checkpoints (one spare)
        os.remove(os.path.join(folder, f"{old}.json"))


def train_stage(cfg, stage: str, workdir: str, init_params: dict,
                max_steps: int | None = None) -> dict:
    """Trains one stage from ``init_params`` (or resumes); returns tracker weights.

    Runs as one process or as every process of a ``jax.distributed`` job: the mesh spans all
    devices, each process feeds its block of the global batch, checkpoints are written and
    restored collectively, and only process 0 logs.
    """
    t, sc = cfg.train, cfg.train[stage]
    main = distributed.is_main()
    os.makedirs(workdir, exist_ok=True)
    mesh = distributed.data_mesh()
    n_dev = mesh.devices.size
    if sc.groups_per_batch % n_dev:
        raise ValueError(f"train.{stage}.groups_per_batch={sc.groups_per_batch} is not "
                         f"divisible by {n_dev} devices")
    total = sc.epochs * t.steps_per_epoch
    state = distributed.replicate(ts.init_state(cfg, stage, init_params, t.seed), mesh)
    stores, samples = train_source(cfg)

    def iterator(start_batch: int = 0):
        return pipeline.make_iterator(stores, cfg, t.seed, sc.groups_per_batch, total,
                                      jax.process_index(), jax.process_count(), start_batch,
                                      samples, pairs_per_group=sc.pairs_per_group)
    data = iterator()
    workers = cfg.data.workers
    mgr = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "ckpt")),
        options=ocp.CheckpointManagerOptions(max_to_keep=t.keep_checkpoints,
                                             save_interval_steps=t.checkpoint_every))
    start = mgr.latest_step() or 0
    if start:
        check_resumable(cfg, stage, workdir)
        restored = mgr.restore(start, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(state)))
        state = restored["state"]
        with open(_data_state_path(workdir, start)) as f:
            saved = json.load(f)
        if "grain" not in saved:  # a data state that holds the grain state alone
            data.set_state(saved)
        elif saved["workers"] == workers:
            data.set_state(saved["grain"])
        else:  # grain's state is per worker layout; the position gives the same batches
            data = iterator(saved["position"])
        if main:
            print(f"resumed {stage} from step {start} ({workdir})")
    elif main:
        _record_settings(cfg, stage, workdir)
    log = _Log(workdir, start) if main else None
    step_fn = ts.make_train_step(cfg, stage, mesh)
    end = total if max_steps is None else min(total, max_steps)
    pairs = sc.groups_per_batch * sc.pairs_per_group
    bar = tqdm(range(start, end), initial=start, total=end, desc=f"train {stage}", unit="step",
               disable=not main)
    tick = time.perf_counter()
    for step in bar:
        batch = distributed.global_batch(next(data), mesh)
        skipped = batch.pop("skipped")  # unusable sequences replaced, over the global batch
        state, aux = step_fn(state, batch, step)
        aux = {k: float(v) for k, v in distributed.to_host(aux).items()}
        if not np.isfinite(aux["loss"]):
            mgr.wait_until_finished()
            raise TrainingError(
                f"{stage}: loss is {aux['loss']} at step {step + 1}; stopped. Checkpoints are "
                f"intact (latest: step {mgr.latest_step()}) in {workdir}/ckpt")
        now = time.perf_counter()
        row = dict(aux, step=step + 1, pairs_per_s=pairs / max(now - tick, 1e-9),
                   skipped=int(distributed.to_host(_sum(skipped))))
        tick = now
        if main and ((step + 1) % t.log_every == 0 or step + 1 == end):
            log.write(row)
            bar.set_postfix(loss=f"{aux['loss']:.4f}", lr=f"{aux['lr']:.2g}")
        if mgr.save(step + 1, args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
                    force=step + 1 == end):
            _save_data_state(workdir, step + 1, {"position": step + 1, "workers": workers,
                                                 "grain": data.get_state()},
                             t.keep_checkpoints)
    # released with the stage, not at garbage collection (orbax's and grain's own close)
    mgr.close()
    data.close()
    if log is not None:
        log.close()
    params = distributed.to_host(ts.params_from_state(state, stage))
    if main:
        arch = dict(config_lib.arch_from_config(cfg), clnet=stage == "clnet")
        ckpt_lib.save(os.path.join(workdir, "weights"), params, arch)
    distributed.barrier(f"{workdir}/weights")
    return params


@jax.jit
def _sum(x):
    return jax.numpy.sum(x)
