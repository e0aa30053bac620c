"""Weight-generation variants: one interface, chosen by name (``cfg.clnet.variant``).

A variant is a pure function

    generate(base_heads, gen_params, hidden_maps, masks, targets) -> head params

with ``hidden_maps`` {level: {'cls'|'loc': (n, S, S, C)}} of the first frame (or of a
training group), ``masks`` = (pos, neg) position masks (n, S, S) and ``targets`` the
anchor labels / loc targets / loc weights (for variants that fit the samples directly).
It is registered with a parameter initialiser. Adding one is a function plus one line in
``REGISTRY``:

    def generate_mine(base_heads, gen_params, hidden_maps, masks, targets, cfg): ...
    REGISTRY["mine"] = Variant(generate_mine, init_params=None)

Meta-learned gradient rules (``meta_sgd``, ``maml``, ``clnet_sgd``) are built on
:func:`clnet_jax.adapt.meta.inner_loop`; their training form is the same function, so the
CLNet stage differentiates through the K inner steps (docs/variants.md).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from clnet_jax.adapt import clnet as clnet_lib
from clnet_jax.adapt import meta
from clnet_jax.model import siamrpn as model_lib


class Variant(NamedTuple):
    generate: Callable
    init_params: Optional[Callable]  # (key, cfg) -> generator params, or None
    uses_checkpoint_generator: bool = False  # True: params['clnet'] comes from the weights
    # Training form: same arguments -> (heads, new generator batch_stats); encoder BN uses
    # the group's batch statistics. None: nothing to train (none, sgd_finetune).
    train_generate: Optional[Callable] = None
    # Pairs of a training group the adaptation sees (support); the loss is scored on the
    # others (query). 0: all pairs both ways, as the official CLNet code trains.
    # clnet.support_pairs (>= 0) overrides it; -1 keeps this default.
    support_pairs: int = 0


def _levels(cfg) -> list[int]:
    return list(cfg.model.used_layers)


def _num_anchors(cfg) -> int:
    return len(cfg.anchor.ratios) * len(cfg.anchor.scales)


def generate_none(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """The base tracker: theta_0 unchanged."""
    return base_heads


def train_clnet(base_heads, gen_params, hidden_maps, masks, targets, cfg, stats="mean_std"):
    return clnet_lib.adjust_head_params(base_heads, gen_params, hidden_maps, masks, True,
                                        stats=stats)


def encoder_batch_stats(cfg) -> bool:
    """Whether g_a's BN uses batch statistics at the first-frame adaptation.

    The official tracker switches the encoder BN to training mode for the adaptation, so
    the codes are normalised over the first crop's own hidden map ('batch', the default).
    """
    return cfg.clnet.encoder_bn == "batch"


def generate_clnet(base_heads, gen_params, hidden_maps, masks, targets, cfg, stats="mean_std"):
    """The paper: latent statistics of g_a codes -> g_delta -> theta_0 + delta."""
    return clnet_lib.adjust_head_params(base_heads, gen_params, hidden_maps, masks,
                                        encoder_batch_stats(cfg), stats=stats)[0]


def generate_mean_only(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """Ablation: the latent keeps the means and drops the standard deviations."""
    return generate_clnet(base_heads, gen_params, hidden_maps, masks, targets, cfg, "mean")


def train_mean_only(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    return train_clnet(base_heads, gen_params, hidden_maps, masks, targets, cfg, stats="mean")


def _init_clnet(key, cfg, latent_scale=(4, 2)):
    c = cfg.clnet
    return clnet_lib.init_generator_params(
        key, _levels(cfg), cfg.model.hidden, _num_anchors(cfg), c.encoder_channels_cls,
        c.encoder_channels_loc, c.decoder_hidden, latent_scale)


def generate_mlp_no_latent(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """The paper's AN: g_delta fed the raw hidden map, averaged over the whole crop.

    No encoder and no positive/negative split: what the latent statistics add is
    measured against this.
    """
    heads = dict(base_heads)
    deltas = {"cls": [], "loc": []}
    for level in model_lib.level_names(base_heads):
        heads[level] = {}
        for branch in model_lib.BRANCHES:
            h = hidden_maps[level][branch]
            latent = jnp.mean(h.reshape(-1, h.shape[-1]), axis=0)
            theta = base_heads[level][branch]
            d_layer, d_b, d_w = clnet_lib.predict_delta(
                gen_params["params"][level][branch]["decoder"], latent, *theta["w"].shape)
            heads[level][branch] = {"w": theta["w"] + d_w, "b": theta["b"] + d_b}
            deltas[branch].append(d_layer)
    heads["cls_weight"] = base_heads["cls_weight"] + jnp.stack(deltas["cls"])
    heads["loc_weight"] = base_heads["loc_weight"] + jnp.stack(deltas["loc"])
    return heads


def _init_mlp(key, cfg):
    p = clnet_lib.init_generator_params(key, _levels(cfg), cfg.model.hidden, _num_anchors(cfg),
                                        cfg.model.hidden, cfg.model.hidden,
                                        cfg.clnet.decoder_hidden, (1, 1))
    for level in p["params"].values():  # the encoder is not used
        for branch in level.values():
            branch.pop("encoder")
    p["batch_stats"] = {}
    return p


def generate_sgd_finetune(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """Retrain the heads on the first-frame samples: ``clnet.sgd_steps`` plain gradient steps
    at the hand-set rate ``clnet.sgd_lr`` (the meta-learned rules' inner loop, untrained)."""
    loss = meta.support_loss(hidden_maps, targets, _num_anchors(cfg))
    rate = jax.tree.map(lambda p: jnp.asarray(cfg.clnet.sgd_lr, p.dtype), base_heads)
    return meta.inner_loop(base_heads, rate, loss, cfg.clnet.sgd_steps, remat=False)


def train_mlp_no_latent(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    return generate_mlp_no_latent(base_heads, gen_params, hidden_maps, masks, targets, cfg), {}


def generate_meta_sgd(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """Meta-SGD: K steps from theta_0 on the first frame's samples, a learned step size per
    element (theta_0 itself is not learned)."""
    return meta.adapt_heads(base_heads, gen_params["params"]["lr"], hidden_maps, targets, cfg,
                            _num_anchors(cfg))


def generate_maml(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """MAML: a learned offset of the initialisation, then K steps with a learned step size
    per tensor."""
    p = gen_params["params"]
    theta, rest = meta.split_heads(base_heads, meta.meta_settings(cfg).adapt)
    start = {**rest, **jax.tree.map(jnp.add, theta, p["offset"])}
    return meta.adapt_heads(start, p["lr"], hidden_maps, targets, cfg, _num_anchors(cfg))


def _clnet_part(gen_params) -> dict:
    return {"params": gen_params["params"]["clnet"], "batch_stats": gen_params["batch_stats"]}


def generate_clnet_sgd(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    """The hybrid: CLNet's theta_0 + delta, then K steps with a learned step size per
    tensor."""
    start = generate_clnet(base_heads, _clnet_part(gen_params), hidden_maps, masks, targets, cfg)
    return meta.adapt_heads(start, gen_params["params"]["lr"], hidden_maps, targets, cfg,
                            _num_anchors(cfg))


def train_clnet_sgd(base_heads, gen_params, hidden_maps, masks, targets, cfg):
    start, stats = train_clnet(base_heads, _clnet_part(gen_params), hidden_maps, masks, targets,
                               cfg)
    return meta.adapt_heads(start, gen_params["params"]["lr"], hidden_maps, targets, cfg,
                            _num_anchors(cfg)), stats


def _without_stats(generate: Callable) -> Callable:
    """The training form of a variant without BN statistics: (heads, {})."""
    return lambda *args: (generate(*args), {})


def _init_meta_sgd(key, cfg):
    return {"params": {"lr": meta.init_step_sizes(cfg, per_element=True)}, "batch_stats": {}}


def _init_maml(key, cfg):
    return {"params": {"offset": meta.init_offsets(cfg),
                       "lr": meta.init_step_sizes(cfg, per_element=False)}, "batch_stats": {}}


def _init_clnet_sgd(key, cfg):
    c = _init_clnet(key, cfg)
    return {"params": {"clnet": c["params"], "lr": meta.init_step_sizes(cfg, per_element=False)},
            "batch_stats": c["batch_stats"]}


REGISTRY: dict[str, Variant] = {
    "none": Variant(generate_none, init_params=None),
    "clnet": Variant(generate_clnet, init_params=_init_clnet, uses_checkpoint_generator=True,
                     train_generate=train_clnet),
    "mean_only": Variant(generate_mean_only, init_params=lambda k, c: _init_clnet(k, c, (2, 1)),
                         train_generate=train_mean_only),
    "mlp_no_latent": Variant(generate_mlp_no_latent, init_params=_init_mlp,
                             train_generate=train_mlp_no_latent),
    "sgd_finetune": Variant(generate_sgd_finetune, init_params=None),
    "meta_sgd": Variant(generate_meta_sgd, init_params=_init_meta_sgd,
                        train_generate=_without_stats(generate_meta_sgd), support_pairs=1),
    "maml": Variant(generate_maml, init_params=_init_maml,
                    train_generate=_without_stats(generate_maml), support_pairs=1),
    "clnet_sgd": Variant(generate_clnet_sgd, init_params=_init_clnet_sgd,
                         train_generate=train_clnet_sgd, support_pairs=1),
}


def support_pairs(cfg, variant: Variant) -> int:
    """How many pairs of a training group the adaptation sees (0: all, scored on all)."""
    k = cfg.clnet.support_pairs
    return variant.support_pairs if k < 0 else k


def get_variant(name: str) -> Variant:
    if name not in REGISTRY:
        raise ValueError(f"unknown weight-generation variant {name!r}; "
                         f"choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]
