"""What ``train.py`` runs: the configured stages in order, then an optional evaluation."""
from __future__ import annotations

import json
import os

import jax
import ml_collections

from clnet_jax import checkpoint
from clnet_jax import config as config_lib
from clnet_jax import model as model_lib
from clnet_jax import trainer
from clnet_jax.data import builders


def _initial_params(cfg) -> dict:
    if cfg.train.init_checkpoint:
        tree, arch = checkpoint.load(cfg.train.init_checkpoint)
        config_lib.check_arch(cfg, arch, cfg.train.init_checkpoint)
        return tree
    return jax.device_get(model_lib.init_params(cfg, jax.random.key(cfg.train.seed)))


def run(cfg) -> dict:
    """Trains every stage of ``cfg.train.stages``; returns {'params': ..., 'eval': ...}."""
    params = _initial_params(cfg)
    base_params = params
    for stage in cfg.train.stages:
        if stage not in ("base", "clnet"):
            raise ValueError(f"unknown stage {stage!r} (expected 'base' or 'clnet')")
        workdir = os.path.join(cfg.train.workdir, stage)
        params = trainer.train_stage(cfg, stage, workdir, params)
        if stage == "base":
            base_params = params
        print(f"{stage} stage done: weights in {workdir}/weights")
    result = {"params": params}
    if cfg.train.eval_after:
        result["eval"] = evaluate_base_vs_clnet(cfg, base_params, params)
    return result


def evaluate_base_vs_clnet(cfg, base_params: dict, clnet_params: dict) -> dict:
    from clnet_jax import evaluate
    d = cfg.data
    builder = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                               d.builder_config if d.dataset == "synthetic" else None)
    source = builder.as_data_source()[cfg.train.eval_split]
    rows = {}
    base_cfg = ml_collections.ConfigDict(cfg.to_dict())
    base_cfg.clnet.variant = "none"
    rows["SiamRPN++ (base)"] = evaluate.evaluate_split(
        base_cfg, jax.tree.map(jax.numpy.asarray, {k: v for k, v in base_params.items()
                                                   if k != "clnet"}), source, "eval base")
    if "clnet" in clnet_params:
        rows[f"CLNet ({cfg.clnet.variant})"] = evaluate.evaluate_split(
            cfg, jax.tree.map(jax.numpy.asarray, clnet_params), source, "eval clnet")
    print(f"\n{cfg.data.dataset} / {cfg.train.eval_split}: one-pass evaluation")
    print(f"{'tracker':<24}{'success AUC':>12}{'precision@20':>14}{'sequences':>11}")
    for name, r in rows.items():
        print(f"{name:<24}{100 * r['success_auc']:>12.1f}{100 * r['precision']:>14.1f}"
              f"{r['sequences']:>11d}")
    out = os.path.join(cfg.train.workdir, "eval.json")
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"wrote {out}")
    return rows
