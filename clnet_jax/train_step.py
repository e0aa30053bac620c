"""Losses and the sharded, jitted train step of both stages.

Stage ``base``: SiamRPN++ with the upstream loss; BN uses each group's batch statistics.
Stage ``clnet``: the base is frozen (BN in inference mode, theta_0 detached unless
``train.clnet_train_theta0``); the weight generator of ``clnet.variant`` and the fusion
weights train. Each group yields one latent and one delta applied to all of its pairs;
diverse mining runs per pair inside the step.

Data parallel: ``jax.shard_map`` over a 1-D mesh ('data'): each device takes a slice of
the groups, gradients are averaged with ``pmean``; pairs of a group are ``vmap``-ed.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from clnet_jax import clnet as clnet_lib
from clnet_jax import losses as losses_lib
from clnet_jax import model as model_lib
from clnet_jax import targets as targets_lib
from clnet_jax import variants as variants_lib

Array = jnp.ndarray


def group_targets(cfg, key, box: Array, negative: Array) -> targets_lib.Targets:
    """Anchor targets for the n pairs of a group: (n, A, S, S) ..."""
    anchors = jnp.asarray(targets_lib.crop_anchors(cfg))
    keys = jax.random.split(key, box.shape[0])
    fn = lambda k, b, neg: targets_lib.anchor_targets(
        k, anchors, b, neg, cfg.anchor.stride, cfg.track.instance_size)
    return jax.vmap(fn)(keys, box, negative)


def base_group_loss(cfg, net, trainable: dict, batch_stats: dict, group: dict,
                    tg: targets_lib.Targets, train_bn: bool = True):
    """Upstream loss of one group; returns (loss, (aux, new batch stats))."""
    variables = {"params": trainable["model"], "batch_stats": batch_stats}
    z = group["template"].astype(jnp.float32)
    x = group["search"].astype(jnp.float32)
    if train_bn:
        hidden, upd = net.apply(variables, z, x, True, mutable=["batch_stats"])
        new_stats = upd["batch_stats"]
    else:
        hidden, new_stats = net.apply(variables, z, x), batch_stats
    cls, loc = model_lib.rpn_outputs(trainable["heads"], hidden)
    a = tg.labels.shape[1]
    total, c, l = losses_lib.rpn_loss(cls, loc, tg.labels, tg.loc, tg.loc_weight, a,
                                      cfg.train.loc_weight)
    return total, ({"loss": total, "cls_loss": c, "loc_loss": l}, new_stats)


def mined_labels(labels: Array, cls_base: Array, num: int) -> Array:
    """Diverse mining per pair: labels (n, A, S, S), base cls (n, S, S, 2A)."""
    return jax.vmap(lambda lb, c: clnet_lib.mine_negatives(lb, c, num))(labels, cls_base)


def clnet_group_loss(cfg, net, trainable: dict, frozen: dict, group: dict,
                     tg: targets_lib.Targets):
    """CLNet-stage loss of one group; returns (loss, (aux, new generator BN stats))."""
    variant = variants_lib.get_variant(cfg.clnet.variant)
    base = frozen["model"]
    z = group["template"].astype(jnp.float32)
    x = group["search"].astype(jnp.float32)
    hidden = jax.lax.stop_gradient(net.apply(base, z, x))
    heads0 = frozen["heads"]
    if not cfg.train.clnet_train_theta0:
        heads0 = jax.lax.stop_gradient(heads0)
    heads0 = dict(heads0, cls_weight=trainable["fusion"]["cls_weight"],
                  loc_weight=trainable["fusion"]["loc_weight"])
    cls0, _ = model_lib.rpn_outputs(jax.lax.stop_gradient(heads0), hidden)
    labels = mined_labels(tg.labels, cls0, cfg.clnet.mining_negatives) \
        if cfg.train.diverse_mining else tg.labels
    masks = jax.vmap(lambda lb: clnet_lib.sample_masks(lb, "corrected"))(labels)
    gen = {"params": trainable["gen"], "batch_stats": frozen["gen_stats"]}
    heads, new_stats = variant.train_generate(heads0, gen, hidden, masks,
                                              (labels, tg.loc, tg.loc_weight), cfg)
    cls, loc = model_lib.rpn_outputs(heads, hidden)
    a = labels.shape[1]
    total, c, l = losses_lib.rpn_loss(cls, loc, labels, tg.loc, tg.loc_weight, a,
                                      cfg.train.loc_weight)
    return total, ({"loss": total, "cls_loss": c, "loc_loss": l}, new_stats)


# ------------------------------------------------------------------------- optimiser
def epoch_learning_rates(cfg) -> np.ndarray:
    """Upstream schedule per epoch: geometric warm-up, then log-spaced decay."""
    t = cfg.train
    warm = t.warmup_epochs
    rates = []
    if warm:
        mult = (t.lr / t.warmup_start_lr) ** (1.0 / warm)
        rates += [t.warmup_start_lr * mult ** e for e in range(warm)]
    rates += list(np.logspace(np.log10(t.lr), np.log10(t.lr_end), t.epochs - warm))
    return np.asarray(rates, np.float32)


def make_optimizer(cfg, stage: str) -> optax.GradientTransformation:
    t = cfg.train
    rates = jnp.asarray(epoch_learning_rates(cfg))
    epoch = lambda step: jnp.minimum(step // t.steps_per_epoch, len(rates) - 1)
    schedule = lambda step: rates[epoch(step)]

    def sgd(scale_fn):
        return optax.chain(optax.add_decayed_weights(t.weight_decay),
                           optax.sgd(scale_fn, momentum=t.momentum))

    if stage != "base":
        return optax.chain(optax.clip_by_global_norm(t.grad_clip), sgd(schedule))

    def backbone_schedule(step):
        on = epoch(step) >= t.backbone_train_epoch
        return jnp.where(on, schedule(step) * t.backbone_lr_mult, 0.0)

    def split_backbone(tree):
        tag = lambda name: (lambda _: name)
        return {"model": {k: jax.tree.map(tag("backbone" if k == "backbone" else "rest"), v)
                          for k, v in tree["model"].items()},
                "heads": jax.tree.map(tag("rest"), tree["heads"])}

    return optax.chain(optax.clip_by_global_norm(t.grad_clip),
                       optax.multi_transform({"backbone": sgd(backbone_schedule),
                                              "rest": sgd(schedule)}, split_backbone))


# ------------------------------------------------------------------------- the step
def make_train_step(cfg, stage: str, mesh: Mesh) -> Callable:
    """Returns jitted ``step(state, batch) -> (state, metrics)`` sharded over ``mesh``.

    state = {'step', 'rng', 'trainable', 'frozen', 'opt_state'}; batch leaves have a
    leading group axis, split over the 'data' axis.
    """
    net = model_lib.model_from_config(cfg.model)
    opt = make_optimizer(cfg, stage)

    def group_loss(trainable, frozen, group, key):
        tg = group_targets(cfg, key, group["box"], group["negative"])
        if stage == "base":
            return base_group_loss(cfg, net, trainable, frozen["batch_stats"], group, tg)
        return clnet_group_loss(cfg, net, trainable, frozen, group, tg)

    def local(state, batch, keys):
        def loss_fn(trainable):
            loss, (aux, stats) = jax.vmap(group_loss, in_axes=(None, None, 0, 0))(
                trainable, state["frozen"], batch, keys)
            return jnp.mean(loss), (jax.tree.map(jnp.mean, aux),
                                    jax.tree.map(lambda s: jnp.mean(s, 0), stats))
        (_, (aux, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["trainable"])
        grads = jax.lax.pmean(grads, "data")
        aux = jax.lax.pmean(aux, "data")
        stats = jax.lax.pmean(stats, "data")
        aux["grad_norm"] = optax.global_norm(grads)
        updates, opt_state = opt.update(grads, state["opt_state"], state["trainable"])
        trainable = optax.apply_updates(state["trainable"], updates)
        frozen = dict(state["frozen"])
        frozen["batch_stats" if stage == "base" else "gen_stats"] = stats
        return dict(state, trainable=trainable, frozen=frozen, opt_state=opt_state), aux

    def step(state, batch):
        rng, sub = jax.random.split(jax.random.wrap_key_data(state["rng"]))
        n = jax.tree.leaves(batch)[0].shape[0]
        keys = jax.random.split(jax.random.fold_in(sub, 0), n)
        sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data"), P("data")),
                                out_specs=(P(), P()), check_vma=False)
        new_state, aux = sharded(state, batch, keys)
        aux["lr"] = epoch_learning_rates_jnp(cfg)[jnp.minimum(
            state["step"] // cfg.train.steps_per_epoch, cfg.train.epochs - 1)]
        return dict(new_state, step=state["step"] + 1, rng=jax.random.key_data(rng)), aux

    return jax.jit(step)


def epoch_learning_rates_jnp(cfg) -> Array:
    return jnp.asarray(epoch_learning_rates(cfg))


def init_state(cfg, stage: str, params: dict, seed: int) -> dict[str, Any]:
    """Train state from weights: the trainable/frozen split depends on the stage."""
    rng = jax.random.key(seed)
    if stage == "base":
        trainable = {"model": params["model"]["params"], "heads": params["heads"]}
        frozen = {"batch_stats": params["model"]["batch_stats"]}
    else:
        variant = variants_lib.get_variant(cfg.clnet.variant)
        if variant.train_generate is None:
            raise ValueError(f"clnet.variant={cfg.clnet.variant!r} has nothing to train; "
                             "choose clnet, mean_only or mlp_no_latent")
        gen = params.get("clnet") or variant.init_params(jax.random.fold_in(rng, 1), cfg)
        heads = params["heads"]
        trainable = {"gen": gen["params"],
                     "fusion": {"cls_weight": heads["cls_weight"], "loc_weight": heads["loc_weight"]}}
        frozen = {"model": params["model"], "heads": heads, "gen_stats": gen["batch_stats"]}
    opt = make_optimizer(cfg, stage)
    return {"step": jnp.zeros((), jnp.int32), "rng": jax.random.key_data(rng),
            "trainable": trainable, "frozen": frozen, "opt_state": opt.init(trainable)}


def params_from_state(state: dict, stage: str, base_params: dict | None = None) -> dict:
    """Tracker weights ({'model', 'heads'[, 'clnet']}) from a train state."""
    tr, fr = state["trainable"], state["frozen"]
    if stage == "base":
        return {"model": {"params": tr["model"], "batch_stats": fr["batch_stats"]},
                "heads": tr["heads"]}
    heads = dict(fr["heads"], **tr["fusion"])
    return {"model": fr["model"], "heads": heads,
            "clnet": {"params": tr["gen"], "batch_stats": fr["gen_stats"]}}
