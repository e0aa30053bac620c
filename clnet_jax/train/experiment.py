"""What ``train.py`` runs: the configured stages in order, then an optional evaluation."""
from __future__ import annotations

import json
import os

import jax
import ml_collections

from clnet_jax.io import checkpoint
from clnet_jax import config as config_lib
from clnet_jax import distributed
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.evaluate import runner as eval_runner
from clnet_jax.track import runner
from clnet_jax.train import trainer
from clnet_jax.data import builders


def initial_params(cfg) -> dict:
    """``train.init_checkpoint``, or a fresh model (neck and heads initialised as usual) whose
    backbone comes from ``train.pretrained_backbone`` when set (the upstream ImageNet start)."""
    if cfg.train.init_checkpoint:
        tree, arch = checkpoint.load(cfg.train.init_checkpoint)
        config_lib.check_arch(cfg, arch, cfg.train.init_checkpoint)
        return tree
    bb = None
    if cfg.train.pretrained_backbone:  # checked before the (slow) initialisation
        bb = checkpoint.load_backbone(cfg.train.pretrained_backbone, cfg.model.width,
                                      list(cfg.model.blocks))
    params = jax.device_get(model_lib.init_params(cfg, jax.random.key(cfg.train.seed)))
    if bb is not None:
        for coll in ("params", "batch_stats"):
            params["model"][coll] = dict(params["model"][coll], backbone=bb[coll])
    return params


def run(cfg) -> dict:
    """Trains every stage of ``cfg.train.stages``; returns {'params': ..., 'eval': ...}."""
    params = initial_params(cfg)
    base_params = params
    for stage in cfg.train.stages:
        if stage not in ("base", "clnet"):
            raise ValueError(f"unknown stage {stage!r} (expected 'base' or 'clnet')")
        workdir = os.path.join(cfg.train.workdir, stage)
        trained = trainer.train_stage(cfg, stage, workdir, params)
        if stage == "base":
            base_params = trained
            if "clnet" in params:  # a CLNet checkpoint's generator goes on training
                trained = dict(trained, clnet=params["clnet"])
        params = trained
        if distributed.is_main():
            print(f"{stage} stage done: weights in {workdir}/weights")
    result = {"params": params}
    if cfg.train.eval_after and distributed.is_main():
        result["eval"] = evaluate_base_vs_clnet(cfg, base_params, params)
    if cfg.name == "demo" and distributed.is_main():
        print(TESTBED_HINT)
    return result


TESTBED_HINT = """
This demo trains for minutes on scenes without the hard level. The research testbed
(docs/testbed.md) trains a base four times as long per seed on all three levels, once, and
compares every row with paired CIs over 5 seeds on a test and a transfer split:
  clnet-ablation --config ablation --bases  # ~20 min/seed
  clnet-ablation --config ablation          # ~2 min/row/seed
"""


def evaluate_split(cfg, params: dict, seqs: list, desc: str) -> dict:
    """One-pass evaluation of one tracker on EvalSequences, scored as the testbed scores
    (experiments/report.py): frames 2.. where the target is present (absent frames, where no
    box can overlap, are not counted as failures); success AUC, precision@20 px and the IoU
    of the first tracked frame averaged over sequences."""
    import numpy as np
    from tqdm import tqdm
    from clnet_jax.experiments import report
    trk = runner.SequenceTracker(cfg, jax.tree.map(jax.numpy.asarray, params))
    scores = [report.sequence_scores(s.gt, eval_runner.track_one(trk, s)[0])
              for s in tqdm(seqs, desc=desc)]
    kept = [(s.name, c) for s, c in zip(seqs, scores) if c is not None]
    scores = [c for _, c in kept]
    return {"success_auc": float(np.mean([np.mean(c["success"]) for c in scores])),
            "precision": float(np.mean([c["precision"][20] for c in scores])),
            "first_iou": float(np.nanmean([c["first_iou"] for c in scores])),
            "sequences": len(scores),
            "per_sequence_auc": {n: float(np.mean(c["success"])) for n, c in kept}}


def paired_difference(a: dict, b: dict) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the per-sequence success-AUC difference a - b over the sequences
    both scored, with a bootstrap 95 % CI over sequences (one seed)."""
    import numpy as np
    from clnet_jax.experiments import report
    names = sorted(set(a["per_sequence_auc"]) & set(b["per_sequence_auc"]))
    diff = np.array([[a["per_sequence_auc"][n] - b["per_sequence_auc"][n] for n in names]])
    return (*report.paired_bootstrap(diff), len(names))


ONE_SEED = ("One seed on these sequences shows how this run's two trackers compare on them; "
            "it cannot show whether CLNet beats its base in general (a difference whose CI "
            "contains 0 decides nothing, and another seed moves it by a few points): the "
            "testbed's paired CIs over 5 seeds and two splits can.")


def held_out_sequences(cfg) -> list:
    """The sequences of the videos ``data.dir`` holds back, as one-pass boxes (VOT polygons
    as their bounding rectangles)."""
    from clnet_jax.data import benchmarks
    loaded = trainer.dir_sequences(cfg)
    keep = set(trainer.held_out_videos(cfg, loaded))
    return sorted((s._replace(gt=benchmarks.as_boxes(s)) for seqs in loaded.values()
                   for s in seqs if benchmarks.video_of(s) in keep), key=lambda s: s.name)


def evaluation_sequences(cfg) -> tuple[list, str]:
    """What ``train.eval_after`` scores: the held-back videos of ``data.dir``, else the
    ``train.eval_split`` of ``data.dataset``."""
    d = cfg.data
    if d.dir:
        seqs = held_out_sequences(cfg)
        if not seqs:
            raise ValueError("train.eval_after with data.dir needs held-back videos: set "
                             "data.holdout (video names) or data.holdout_every")
        return seqs, f"{len(seqs)} held-back sequences of data.dir"
    builder = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                               d.builder_config if d.dataset == "synthetic" else None)
    return (eval_data.from_source(builder.as_data_source()[cfg.train.eval_split]),
            f"{d.dataset} / {cfg.train.eval_split}")


def evaluate_base_vs_clnet(cfg, base_params: dict, clnet_params: dict) -> dict:
    seqs, what = evaluation_sequences(cfg)
    base_cfg = ml_collections.ConfigDict(cfg.to_dict())
    base_cfg.clnet.variant = "none"
    rows = {"SiamRPN++ (base)": evaluate_split(
        base_cfg, {k: v for k, v in base_params.items() if k != "clnet"}, seqs, "eval base")}
    if "clnet" in clnet_params:
        rows[f"CLNet ({cfg.clnet.variant})"] = evaluate_split(cfg, clnet_params, seqs, "eval clnet")
    print(f"\n{what}: one-pass evaluation (frames 2.. where the target is present)")
    print(f"{'tracker':<24}{'success AUC':>12}{'precision@20':>14}{'1st IoU':>9}"
          f"{'sequences':>11}")
    for name, r in rows.items():
        print(f"{name:<24}{100 * r['success_auc']:>12.1f}{100 * r['precision']:>14.1f}"
              f"{r['first_iou']:>9.3f}{r['sequences']:>11d}")
    report = {k: {m: v for m, v in r.items() if not m.endswith("curve")}
              for k, r in rows.items()}
    if len(rows) == 2:
        base, clnet = rows.values()
        mean, lo, hi, n = paired_difference(clnet, base)
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "undecided (CI contains 0)"
        print(f"\nCLNet - base, success AUC, paired over {n} sequences: {100 * mean:+.1f} points, "
              f"95 % CI [{100 * lo:+.1f}, {100 * hi:+.1f}] (bootstrap over sequences): {verdict}")
        print(ONE_SEED)
        report["clnet_minus_base"] = {"mean": mean, "ci95": [lo, hi], "sequences": n,
                                      "verdict": verdict}
    out = os.path.join(cfg.train.workdir, "eval.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    return rows
