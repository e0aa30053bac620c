"""The configured training stages in order, from a checkpoint or a fresh model."""
from __future__ import annotations

import os

import jax

from clnet_jax import config as config_lib
from clnet_jax import distributed
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import weights
from clnet_jax.train import trainer


def initial_params(cfg) -> dict:
    """``train.init_checkpoint``, or a fresh model (neck and heads initialised as usual) whose
    backbone comes from ``train.pretrained_backbone`` when set (the upstream ImageNet start)."""
    if cfg.train.init_checkpoint:
        tree, arch = weights.load(cfg.train.init_checkpoint)
        config_lib.check_arch(cfg, arch, cfg.train.init_checkpoint)
        return tree
    bb = None
    if cfg.train.pretrained_backbone:  # checked before the (slow) initialisation
        bb = weights.load_backbone(cfg.train.pretrained_backbone, cfg.model.width,
                                      list(cfg.model.blocks))
    params = jax.device_get(model_lib.init_params(cfg, jax.random.key(cfg.train.seed)))
    if bb is not None:
        for coll in ("params", "batch_stats"):
            params["model"][coll] = dict(params["model"][coll], backbone=bb[coll])
    return params


def train_stages(cfg, workdir: str) -> tuple[dict, dict]:
    """Trains every stage of ``cfg.train.stages`` under ``workdir/<stage>``; returns (the
    base weights, the last stage's weights)."""
    params = initial_params(cfg)
    base_params = params
    for stage in cfg.train.stages:
        stage_dir = os.path.join(workdir, stage)
        trained = trainer.train_stage(cfg, stage, stage_dir, params)
        if stage == "base":
            base_params = trained
            if "clnet" in params:  # a CLNet checkpoint's generator goes on training
                trained = dict(trained, clnet=params["clnet"])
        params = trained
        if distributed.is_main():
            print(f"{stage} stage done: weights in {stage_dir}/weights")
    return base_params, params
