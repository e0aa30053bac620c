"""The table that ends a training run (``train.eval_after``, the demo): the base and the
CLNet tracker on held-out sequences, scored as the testbed scores
(:mod:`clnet_jax.evaluate.scoring`), with the paired bootstrap CI of their difference."""
from __future__ import annotations

import json

import jax
import ml_collections
from tqdm import tqdm

from clnet_jax.data import builders, videos
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.evaluate import runner as eval_runner
from clnet_jax.evaluate import scoring
from clnet_jax.track import runner

ONE_SEED = ("One seed on these sequences shows how this run's two trackers compare on them; "
            "it cannot show whether CLNet beats its base in general (a difference whose CI "
            "contains 0 decides nothing, and another seed moves it by a few points): the "
            "testbed's paired CIs over 5 seeds and two splits can.")


def evaluate_split(cfg, params: dict, seqs: list, desc: str) -> dict:
    """One-pass evaluation of one tracker: :func:`clnet_jax.evaluate.scoring.summary`.
    ``train.eval_batch`` > 1 tracks that many sequences of one frame size at once."""
    params = jax.tree.map(jax.numpy.asarray, params)
    if cfg.train.eval_batch > 1:
        out = eval_runner.track_batched(cfg, params, seqs, cfg.train.eval_batch, desc)
        bad = {k: v for k, v in out.items() if isinstance(v, str)}
        if bad:
            raise RuntimeError(f"{desc}: sequences failed: {bad}")
        return scoring.summary({s.name: scoring.sequence_scores(s.gt, out[s.name][0])
                                for s in seqs})
    trk = runner.SequenceTracker(cfg, params)
    return scoring.summary({s.name: scoring.sequence_scores(s.gt, eval_runner.track_one(trk, s)[0])
                            for s in tqdm(seqs, desc=desc)})


def evaluation_sequences(cfg) -> tuple[list, str]:
    """What ``train.eval_after`` scores: the held-back videos of ``data.dir``, else the
    ``train.eval_split`` of ``data.dataset``."""
    d = cfg.data
    if d.dir:
        seqs = videos.held_out_sequences(cfg)
        if not seqs:
            raise ValueError("train.eval_after with data.dir needs held-back videos: set "
                             "data.holdout (video names) or data.holdout_every")
        return seqs, f"{len(seqs)} held-back sequences of data.dir"
    builder = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                               d.builder_config if d.dataset == "synthetic" else None)
    return (eval_data.from_source(builder.as_data_source()[cfg.train.eval_split]),
            f"{d.dataset} / {cfg.train.eval_split}")


def compare(cfg, base_params: dict, clnet_params: dict, out: str) -> dict:
    """Scores both trackers, prints the table and the paired difference, writes ``out``
    (JSON); returns the rows."""
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
    report = dict(rows)
    if len(rows) == 2:
        base, clnet = rows.values()
        mean, lo, hi, n = scoring.paired_difference(clnet, base)
        verdict = scoring.verdict((mean, lo, hi))
        print(f"\nCLNet - base, success AUC, paired over {n} sequences: {100 * mean:+.1f} points, "
              f"95 % CI [{100 * lo:+.1f}, {100 * hi:+.1f}] (bootstrap over sequences): {verdict}")
        print(ONE_SEED)
        report["clnet_minus_base"] = {"mean": mean, "ci95": [lo, hi], "sequences": n,
                                      "verdict": verdict}
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    return rows
