"""The testbed's rows as data: one entry of :data:`ROWS` per row, in the big_vision evals
style. Adding a row is one entry.

A row trains something on its seed's base (``stage``: a CLNet-stage generator, or the base
trained further) or nothing (``weights_from``: the base's or another row's weights), then
tracks with ``track`` overrides. Any variant registered in
:data:`clnet_jax.adapt.variants.REGISTRY` is a row too (trained as DM is), and
``<row>_readapt`` tracks a row's weights with re-adaptation.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from clnet_jax.adapt import variants


class Row(NamedTuple):
    doc: str
    stage: str | None = "clnet"  # what the row trains: 'clnet', 'base' (RT) or None
    variant: str = "clnet"       # the generator the CLNet stage trains
    groups: str = "grouped"      # 'grouped': train.clnet groups of one sequence; 'single':
    #                              the same pairs per step, one pair per group
    mining: bool = True          # diverse mining in training
    train: dict = {}             # further training overrides (dotted keys)
    weights_from: str | None = None  # stage None: 'base' or the row whose weights it tracks
    track: dict = {}             # tracking overrides; a value may be a function of the config
    reference: bool = False      # every other row is compared with it
    paper: tuple[float, float] | None = None  # the paper's Table 3 (P %, AUC %), DTB70+NFS30+UAV123


ROWS: dict[str, Row] = {
    "BT": Row("base tracker", stage=None, weights_from="base",
              track={"clnet.variant": "none"}, reference=True, paper=(73.3, 57.7)),
    "RT": Row("base trained further on same-sequence groups (the CLNet stage's steps, the "
              "base stage's pairs per step)", stage="base", track={"clnet.variant": "none"},
              reference=True, paper=(74.3, 57.4)),
    "AN": Row("mlp_no_latent, single-pair groups", variant="mlp_no_latent", groups="single",
              mining=False, paper=(73.8, 58.2)),
    "LE": Row("clnet latent, single-pair groups (no OS)", groups="single", mining=False,
              paper=(75.5, 60.1)),
    "OS": Row("clnet, same-sequence groups", mining=False, paper=(76.6, 60.2)),
    "DM": Row("OS + diverse mining in training (the paper)", reference=True,
              paper=(77.2, 61.1)),
    "mean_only": Row("DM without sigma", variant="mean_only"),
    "sgd_tuned": Row("sgd_finetune at ablation.sgd_tuned_lr, the step size chosen on the "
                     "validation split", stage=None, weights_from="base",
                     track={"clnet.variant": "sgd_finetune",
                            "clnet.sgd_lr": lambda cfg: cfg.ablation.sgd_tuned_lr},
                     reference=True),
    "sgd_finetune": Row("K gradient steps on the first frame", stage=None, weights_from="base",
                        track={"clnet.variant": "sgd_finetune"}, reference=True),
    "DM_official": Row("DM weights, official (defective) label layout at tracking time",
                       stage=None, weights_from="DM", track={"clnet.label_layout": "official"}),
    "DM_running_bn": Row("DM weights, encoder BN on running statistics at the first-frame "
                         "adaptation (the official tracker uses the first crop's batch "
                         "statistics)", stage=None, weights_from="DM",
                         track={"clnet.encoder_bn": "running"}),
    "DM_support": Row("DM trained with a support/query split (the adaptation sees a group's "
                      "first pair, the loss is scored on the others)",
                      train={"clnet.support_pairs": 1}),
}
READAPT = "_readapt"  # suffix: a row's weights, tracked with re-adaptation


def readapt_of(name: str) -> str | None:
    """The row that ``<row>_readapt`` re-adapts, or None for a name without the suffix."""
    return name[:-len(READAPT)] if name.endswith(READAPT) and name != READAPT else None


def row_of(name: str) -> Row:
    """The row called ``name``; SystemExit naming the valid ones for an unknown name."""
    inner = readapt_of(name)
    if inner:
        r = row_of(inner)
        return r._replace(doc=f"{inner}, re-adapting while tracking", stage=None,
                          weights_from=weights_of(inner), track={**r.track, "track.readapt": True})
    if name in ROWS:
        return ROWS[name]
    if name in variants.REGISTRY:
        return Row(f"the registered variant {name}, trained as DM is", variant=name)
    raise SystemExit(f"error: unknown row {name!r}: neither one of {list(ROWS)} nor a variant "
                     "registered in clnet_jax.adapt.variants.REGISTRY")


def weights_of(name: str) -> str:
    """Whose weights a row tracks with: 'base', or the row that trains them."""
    r = row_of(name)
    return name if r.stage else r.weights_from


def _set(cfg, overrides: dict[str, Any]):
    from clnet_jax import config as config_lib
    for key, value in overrides.items():
        config_lib.set_dotted(cfg, key, value(cfg) if isinstance(value, Callable) else value)
    return cfg


def training_config(cfg, name: str):
    """The config of a training row's stage (``row_of(name).stage``)."""
    r = row_of(name)
    c = cfg.copy_and_resolve_references()
    if r.stage == "base":  # RT: the base continued at its final rate, the CLNet protocol
        base, n = c.train.base, cfg.train.clnet.pairs_per_group
        base.pairs_per_group = n
        base.groups_per_batch = max(cfg.train.base.groups_per_batch // n, 1)
        base.epochs = cfg.train.clnet.epochs
        base.warmup_epochs = 0
        base.lr = base.lr_end
        return _set(c, r.train)
    n, groups = cfg.train.clnet.pairs_per_group, cfg.train.clnet.groups_per_batch
    c.clnet.variant = r.variant
    if r.groups == "single":
        c.train.clnet.pairs_per_group, c.train.clnet.groups_per_batch = 1, groups * n
    c.train.diverse_mining = r.mining
    return _set(c, r.train)


def tracking_config(cfg, name: str):
    """The config a row tracks with: its weights' training config, its tracking overrides."""
    source = weights_of(name)
    c = cfg.copy_and_resolve_references() if source == "base" else training_config(cfg, source)
    return _set(c, row_of(name).track)


def paper_rows() -> list[str]:
    return [n for n, r in ROWS.items() if r.paper]


def references() -> list[str]:
    return [n for n, r in ROWS.items() if r.reference]
