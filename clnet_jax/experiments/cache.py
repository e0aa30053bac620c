"""The testbed's cache: bases once per seed, rows' training and evaluations below them,
each under a key of what decides it (:func:`clnet_jax.config.run_settings`, plus a revision
bumped when the code changes what the same settings give). Changing a row's settings
retrains that row only; changing the base's settings builds new bases."""
from __future__ import annotations

import hashlib
import json
import os
import time

import jax

from clnet_jax import config as config_lib
from clnet_jax.experiments import rows
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import weights
from clnet_jax.train import trainer


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def base_key(cfg, seed: int) -> str:
    """What decides a seed's base: its stage's run settings (clnet_jax.config.run_settings)
    with the seed."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    return _hash([config_lib.run_settings(c, "base"), BASE_REVISION])


def stage_key(c, stage: str = "clnet") -> str:
    return _hash([config_lib.run_settings(c, stage),
                  ROW_REVISION if stage == "clnet" else BASE_REVISION])


def seed_dir(cfg, seed: int) -> str:
    return os.path.join(cfg.ablation.bases_dir, base_key(cfg, seed))


# ------------------------------------------------------------------------ the work
def _initial(cfg, seed: int) -> dict:
    return jax.device_get(model_lib.init_params(cfg, jax.random.key(seed)))


def _timed_stage(c, stage: str, workdir: str, init) -> dict:
    """The stage's weights: read back when a finished run left them (its wall time is
    recorded beside), else trained (or resumed) by trainer.train_stage. ``init`` may be a
    function, called only when training is needed."""
    if os.path.isfile(wall_path(workdir)):
        return weights.load(os.path.join(workdir, "weights"))[0]
    t = time.perf_counter()
    w = trainer.train_stage(c, stage, workdir, init() if callable(init) else init)
    write_json(wall_path(workdir), time.perf_counter() - t)
    return w


def wall_path(workdir: str) -> str:
    """A finished stage's wall time; its presence marks the stage done."""
    return os.path.join(workdir, "wall_s.json")


def base_dir(cfg, seed: int) -> str:
    return os.path.join(seed_dir(cfg, seed), "base")


def build_base(cfg, seed: int) -> dict:
    """The seed's base tracker, trained once and then read from the cache."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    d = seed_dir(cfg, seed)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:  # for people browsing the cache
        json.dump({"seed": seed, "config": config_lib.run_settings(c, "base")}, f, indent=1)
    return _timed_stage(c, "base", base_dir(cfg, seed), lambda: _initial(c, seed))


def row_stage(cfg, seed: int, row: str):
    """(config, stage, work dir) of the training whose weights a row tracks with, or None
    for rows that track with the base itself."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    source = rows.weights_of(row)
    if source == "base":
        return None
    rc = rows.training_config(c, source)
    stage = rows.row_of(source).stage
    return rc, stage, os.path.join(seed_dir(cfg, seed), "rows",
                                   f"{source}-{stage_key(rc, stage)}")


def row_weights(cfg, seed: int, row: str, base: dict) -> dict:
    """A row's tracker weights (trained on the seed's base, cached by the row's config)."""
    job = row_stage(cfg, seed, row)
    return base if job is None else _timed_stage(*job, base)


def row_training_s(cfg, seed: int, row: str) -> float:
    """Wall time of a row's own training on one seed (0 for rows without, or that track with
    another row's weights, e.g. DM_official; NaN if unknown)."""
    job = row_stage(cfg, seed, row)
    if job is None or rows.row_of(row).stage is None:
        return 0.0
    p = wall_path(job[2])
    return read_json(p) if os.path.isfile(p) else float("nan")


# Cache revisions (docs/testbed.md has their history): bumped when the code gives other
# results for the same settings, which the keys cannot see, so that cached work is redone.
BASE_REVISION = 1       # bases
ROW_REVISION = 2        # CLNet-stage rows
EVALUATOR_REVISION = 5  # evaluations


def evaluation_settings(cfg, row: str) -> dict:
    """What decides a row's boxes: the run settings of the weights it tracks with, and every
    tracking constant. Rows that track with the base leave a CLNet-stage change (a variant
    sweep) out, so their cached evaluations stay."""
    tc = rows.tracking_config(cfg, row)
    on_base = rows.weights_of(row) == "base"
    d = config_lib.run_settings(tc, "base" if on_base else "clnet")
    if on_base and tc.clnet.variant != "none":  # sgd_finetune: its clnet.sgd_* settings
        d.update({f"clnet.{k}": v for k, v in tc.clnet.to_dict().items()})
    d.update({f"track.{k}": v for k, v in tc.track.to_dict().items()})
    return d


def eval_path(cfg, seed: int, row: str, split: str) -> str:
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    key = _hash([evaluation_settings(c, row), split, cfg.ablation.eval_batch, EVALUATOR_REVISION])
    return os.path.join(seed_dir(cfg, seed), "eval", f"{row}-{split}-{key}.json")


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def report_dir(cfg) -> str:
    """Where the report goes (``ablation.report_dir``; '': beside the bases)."""
    return cfg.ablation.report_dir or os.path.join(cfg.ablation.bases_dir, "report")


def compilation_cache_dir(cfg) -> str | None:
    """Where XLA's compiled programs are kept between runs (JAX's persistent compilation
    cache), or None. Every seed of a row runs the same programs (weights are arguments, not
    constants), so with the cache only the first seed compiles (docs/benchmarks.md,
    "Compilation cache"). Off in quick runs (plumbing in tests: no global state)."""
    if cfg.ablation.quick or not cfg.ablation.compilation_cache:
        return None
    return os.path.abspath(os.path.join(cfg.ablation.bases_dir, "xla_cache"))
