"""The research testbed: the paper's Table 3 in miniature on the realistic scenes benchmark
(clnet_jax/data/scenes.py: 3 difficulty levels, a transfer split no training split resembles).

    clnet-ablation --config ablation --bases   # once
    clnet-ablation --config ablation           # rows
    clnet-ablation --config ablation --rows mine

The base of each seed is trained once and cached under ablation.bases_dir by a key of its
config; a row (or a new variant) then costs its generator training and evaluation only.
Same model, crops (79/175) and tracking constants as configs/demo.py; the base schedule is
longer (docs/testbed.md).
"""
import os

import ml_collections

from clnet_jax.config import from_file


def get_config(arg: str | None = None):
    """``ablation`` or ``ablation:quick`` (plumbing only: every row for a few steps on tiny
    data, one seed, in its own directories)."""
    if arg not in (None, "quick"):
        raise ValueError(f"ablation:{arg}: the only config argument is 'quick'")
    c = from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py"))
    c.name = "ablation"
    c.data.builder_config = "scenes"
    c.train.eval_after = False
    # The base: 3,200 steps x 16 pairs, four times the demo's, same schedule shape (one
    # warm-up epoch, AdamW log decay 0.002 -> 0.0002). Rows: 100 CLNet steps of 8 groups x
    # 4, as in the demo, without warm-up (a one-epoch stage with the base's warm-up epoch
    # would run wholly at the warm-up rate). RT continues the base for as many steps at the
    # final rate. docs/benchmarks.md has why these sizes.
    c.train.steps_per_epoch = 100
    c.train.base.epochs = 32
    c.train.clnet.epochs = 1
    c.train.clnet.warmup_epochs = 0
    c.train.checkpoint_every = 200
    c.train.log_every = 50
    c.ablation = ml_collections.ConfigDict(dict(
        seeds=[0, 1, 2, 3, 4],
        rows=["BT", "RT", "AN", "LE", "OS", "DM", "mean_only", "sgd_finetune", "sgd_tuned",
              "DM_official", "DM_running_bn", "DM_support", "meta_sgd", "maml", "clnet_sgd",
              "DM_readapt"],
        # sgd_finetune's step size chosen on the validation split with the base of seed 0
        # (clnet-tune --what sgd_lr; docs/benchmarks.md)
        sgd_tuned_lr=0.02,
        eval_splits=["test", "transfer"],
        eval_batch=24,
        # each row's first-frame cost in tracking frames (a single-sequence tracker timed on
        # the first split's first sequence: one more compilation per row and seed)
        init_cost=True,
        bases_dir="runs/bases",
        report_dir="docs/results/testbed",  # '': <bases_dir>/report
        # XLA's compiled programs kept in <bases_dir>/xla_cache: later seeds, rows and runs
        # skip compiling (experiments/cache.py)
        compilation_cache=True,
        quick=False,
    ))
    if arg == "quick":
        quick(c)
    return c


def quick(c) -> None:
    t = c.train
    t.steps_per_epoch, t.checkpoint_every, t.log_every = 2, 2, 1
    t.base.epochs, t.base.warmup_epochs, t.clnet.epochs, t.clnet.warmup_epochs = 1, 0, 1, 0
    t.base.groups_per_batch, t.clnet.pairs_per_group = 2, 2
    c.data.builder_config = "scenes_tiny"
    c.ablation.quick = True
    c.ablation.bases_dir = "runs/bases_quick"
    c.ablation.report_dir = ""
