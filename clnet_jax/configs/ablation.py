"""The research testbed: the paper's Table 3 in miniature on the realistic scenes benchmark
(clnet_jax/data/scenes.py: 3 difficulty levels, a transfer split no training split resembles).

    clnet-ablation --config ablation --bases   # once
    clnet-ablation --config ablation           # rows
    clnet-ablation --config ablation --rows mine
    clnet-ablation --config ablation:real --config.data.dir=<folders> --bases   # on real video

The base of each seed is trained once and cached under ablation.bases_dir by a key of its
config; a row (or a new variant) then costs its generator training and evaluation only.
Same model, crops (79/175) and tracking constants as configs/demo.py; the base schedule is
longer (docs/testbed.md).

``ablation:real`` is the same testbed on real video: the bases are configs/real.py's
default recipe (half synthetic scenes, half the training videos of its split), the rows
are scored on the split's test videos (its validation videos tune ``sgd_tuned``'s step
size), read from the folders of ``data.dir`` in their published layouts.
"""
import importlib.util
import os

import ml_collections

from clnet_jax.config import from_file

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = ("quick", "real", "real_quick")


def get_config(arg: str | None = None):
    """``ablation``, ``ablation:real`` (on real video), or either with ``quick``
    (``ablation:quick``, ``ablation:real_quick``: plumbing only, every row for a few steps
    on tiny data, one seed, in its own directories)."""
    if arg not in (None, *ARGS):
        raise ValueError(f"ablation:{arg}: the config argument is one of {', '.join(ARGS)}")
    if arg in ("real", "real_quick"):
        return real(arg == "real_quick")
    c = from_file(os.path.join(HERE, "demo.py"))
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
    c.ablation = testbed(
        rows=("BT", "RT", "AN", "LE", "OS", "DM", "mean_only", "sgd_finetune", "sgd_tuned",
              "DM_official", "DM_running_bn", "DM_support", "meta_sgd", "maml", "clnet_sgd",
              "DM_readapt"),
        # sgd_finetune's step size chosen on the validation split with the base of seed 0
        # (clnet-tune --what sgd_lr; docs/benchmarks.md)
        sgd_tuned_lr=0.02,
        eval_splits=("test", "transfer"),
        eval_batch=24,
        bases_dir="runs/bases",
        report_dir="docs/results/testbed")
    if arg == "quick":
        quick(c)
    return c


def testbed(**fields) -> ml_collections.ConfigDict:
    """The ``ablation`` sub-config: which rows, seeds and splits, where the cache and the
    report go (``fields`` sets the testbed's own)."""
    return ml_collections.ConfigDict({**dict(
        # tuples, not lists: the command line overrides tuples
        # (--config.ablation.seeds='(0, 1)'), not lists
        seeds=(0, 1, 2, 3, 4),
        # each row's first-frame cost in tracking frames (a single-sequence tracker timed on
        # the first split's first sequence: one more compilation per row and seed)
        init_cost=True,
        # XLA's compiled programs kept in <bases_dir>/xla_cache: later seeds, rows and runs
        # skip compiling (experiments/cache.py)
        compilation_cache=True,
        # split -> its videos (comma-separated) among the folders of data.dir; empty: the
        # splits of data.dataset
        split_videos={},
        quick=False), **fields})  # report_dir '': <bases_dir>/report


def real(quick_run: bool = False) -> ml_collections.ConfigDict:
    """The testbed on real video. Bases: configs/real.py's default recipe (600 steps, half
    synthetic scenes, half the split's training videos; data.holdout keeps the validation
    and test videos out of every store). Rows as on the synthetic scenes: 100 CLNet steps
    without warm-up. Scored on the split's 10 test videos; its 3 validation videos are
    ``clnet-tune``'s."""
    spec = importlib.util.spec_from_file_location("_real_split", os.path.join(HERE, "real.py"))
    split = importlib.util.module_from_spec(spec)  # its TEST and VALIDATION videos
    spec.loader.exec_module(split)
    c = from_file(os.path.join(HERE, "real.py"))
    c.name = "ablation_real"
    c.train.eval_after = False
    c.train.clnet.epochs = 1
    c.train.clnet.warmup_epochs = 0
    c.train.checkpoint_every = 200
    c.train.log_every = 50
    c.ablation = testbed(
        rows=("BT", "RT", "AN", "LE", "OS", "DM", "sgd_tuned", "maml", "clnet_sgd"),
        # sgd_finetune's step size chosen on the validation videos with the base of seed 0
        # (clnet-tune --config ablation:real --what sgd_lr --seeds 0: the grid's best mean;
        # docs/results/testbed_real/tune_sgd.json, docs/testbed.md)
        sgd_tuned_lr=0.04,
        eval_splits=("test",),
        eval_batch=10,
        split_videos={"test": ",".join(split.TEST), "validation": ",".join(split.VALIDATION)},
        bases_dir="runs/bases_real",
        report_dir="docs/results/testbed_real")
    if quick_run:
        quick(c)
        c.data.mixture.synthetic.samples = 2
        c.ablation.bases_dir = "runs/bases_real_quick"
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
