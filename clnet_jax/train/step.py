"""Losses and the sharded, jitted train step of both stages.

Stage ``base`` follows pysot's ``build_opt_lr``: neck and heads train with BN on batch
statistics; the backbone is frozen with its BN in inference mode until
``train.backbone_train_epoch``, then ``train.backbone_train_layers`` (layer2-4) train at
``lr * backbone_lr_mult`` with BN on batch statistics, stem and layer1 staying frozen; until
then the backbone takes no update, and at the switch every momentum buffer restarts
(:func:`restart_momentum`), as pysot builds a new optimiser there. BN
statistics are taken over the whole batch, synchronised across devices
(``train.bn_sync='global'``), or per device as pysot's per-GPU BN (``'per_device'``); the
loss divides by the counts of the global batch, so one device holding every pair gives the
same step.
Stage ``clnet``: the base is frozen (BN in inference mode, theta_0 detached unless
``clnet.train_theta0``); only the weight generator of ``clnet.variant`` trains (the
base fusion weights too with ``clnet.train_fusion``, a research option: the official
code freezes them and learns only their per-video change). Each group yields one latent
and one delta applied to all of its pairs; its encoder BN uses the group's statistics;
diverse mining runs per pair inside the step.

Data parallel: ``jax.shard_map`` over a 1-D mesh ('data'): each device takes a slice of
the groups; pairs of a group are ``vmap``-ed in the CLNet stage.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from clnet_jax.adapt import clnet as clnet_lib
from clnet_jax.adapt import variants as variants_lib
from clnet_jax.model import losses as losses_lib
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import targets as targets_lib
from clnet_jax.model import winograd

Array = jnp.ndarray


def group_targets(cfg, key, box: Array, negative: Array) -> targets_lib.Targets:
    """Anchor targets for the n pairs of a group: (n, A, S, S) ..."""
    anchors = jnp.asarray(targets_lib.crop_anchors(cfg))
    keys = jax.random.split(key, box.shape[0])
    fn = lambda k, b, neg: targets_lib.anchor_targets(
        k, anchors, b, neg, cfg.anchor.stride, cfg.track.instance_size)
    return jax.vmap(fn)(keys, box, negative)


def backbone_train_layers(cfg, step: int) -> frozenset:
    """Backbone layers that train (and run BN on batch statistics) at a given step."""
    t = cfg.train
    if step < t.backbone_train_epoch * t.steps_per_epoch:
        return frozenset()
    return frozenset(t.backbone_train_layers)


def base_group_loss(cfg, net, trainable: dict, batch_stats: dict, group: dict,
                    tg: targets_lib.Targets, train_bn: bool = True,
                    backbone_train: frozenset | bool | None = None,
                    axis_name: str | None = None):
    """Upstream loss of a batch of pairs; returns (loss, (aux, new batch stats)).

    ``train_bn``: neck/head BN on batch statistics; ``backbone_train``: backbone layers that
    do too (default: all of them when ``train_bn``); ``axis_name``: the loss is this shard's
    share of the global batch's loss.
    """
    variables = {"params": trainable["model"], "batch_stats": batch_stats}
    z = group["template"].astype(jnp.float32)
    x = group["search"].astype(jnp.float32)
    if train_bn:
        hidden, upd = net.apply(variables, z, x, True, backbone_train, mutable=["batch_stats"])
        new_stats = upd["batch_stats"]
    else:
        hidden, new_stats = net.apply(variables, z, x), batch_stats
    cls, loc = model_lib.rpn_outputs(trainable["heads"], hidden)
    a = tg.labels.shape[1]
    total, c, l = losses_lib.rpn_loss(cls, loc, tg.labels, tg.loc, tg.loc_weight, a,
                                      cfg.train.loc_weight, axis_name)
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
    if not cfg.clnet.train_theta0:
        heads0 = jax.lax.stop_gradient(heads0)
    if "fusion" in trainable:  # clnet.train_fusion (research option)
        heads0 = dict(heads0, **trainable["fusion"])
    cls0, _ = model_lib.rpn_outputs(jax.lax.stop_gradient(heads0), hidden)
    labels = mined_labels(tg.labels, cls0, cfg.clnet.mining_negatives) \
        if cfg.train.diverse_mining else tg.labels
    masks = jax.vmap(lambda lb: clnet_lib.sample_masks(lb, "corrected"))(labels)
    gen = {"params": trainable["gen"], "batch_stats": frozen["gen_stats"]}
    support, query = support_query(variants_lib.support_pairs(cfg, variant), labels.shape[0])
    targets = (labels, tg.loc, tg.loc_weight)
    heads, new_stats = variant.train_generate(heads0, gen, support(hidden), support(masks),
                                              support(targets), cfg)
    cls, loc = model_lib.rpn_outputs(heads, query(hidden))
    q_labels, q_loc, q_loc_weight = query(targets)
    total, c, l = losses_lib.rpn_loss(cls, loc, q_labels, q_loc, q_loc_weight, labels.shape[1],
                                      cfg.train.loc_weight)
    return total, ({"loss": total, "cls_loss": c, "loc_loss": l}, new_stats)


def support_query(k: int, n: int) -> tuple[Callable, Callable]:
    """Functions taking a group's first k pairs (support: what the adaptation sees) and the
    other n - k (query: where the adapted heads are scored). k = 0: all pairs both ways,
    as the official CLNet code trains; at tracking time the adaptation sees the first frame
    only and is judged on later ones, which k >= 1 imitates."""
    if k == 0:
        return (lambda t: t), (lambda t: t)
    if not 0 < k < n:
        raise ValueError(f"clnet.support_pairs={k} needs groups of more pairs than that "
                         f"(train.clnet.pairs_per_group is {n}): the query would be empty")
    take = lambda sl: (lambda t: jax.tree.map(lambda a: a[sl], t))
    return take(slice(0, k)), take(slice(k, None))


# ------------------------------------------------------------------------- optimiser
def epoch_learning_rates(t) -> np.ndarray:
    """Upstream schedule per epoch of a stage (``cfg.train.base`` or ``cfg.train.clnet``):
    geometric warm-up, then log-spaced decay."""
    warm = t.warmup_epochs
    rates = []
    if warm:
        mult = (t.lr / t.warmup_start_lr) ** (1.0 / warm)
        rates += [t.warmup_start_lr * mult ** e for e in range(warm)]
    rates += list(np.logspace(np.log10(t.lr), np.log10(t.lr_end), t.epochs - warm))
    return np.asarray(rates, np.float32)


def _backbone_layer(name: str) -> str:
    """'layer3_1' -> 'layer3'; 'stem' -> 'stem'."""
    return name.split("_")[0]


def base_param_labels(cfg, tree: dict) -> dict:
    """Optimiser group of every base-stage parameter: 'backbone' (the layers of
    ``train.backbone_train_layers``), 'frozen' (the other backbone layers: pysot never
    trains the stem and layer1) or 'rest' (neck, heads, fusion weights)."""
    train_layers = set(cfg.train.backbone_train_layers)
    unknown = train_layers - set(model_lib.BACKBONE_LAYERS)
    if unknown:
        raise ValueError(f"train.backbone_train_layers: unknown {sorted(unknown)}; "
                         f"valid: {list(model_lib.BACKBONE_LAYERS)}")
    tag = lambda name: (lambda _: name)
    model = {}
    for k, v in tree["model"].items():
        if k == "backbone":
            model[k] = {b: jax.tree.map(tag("backbone" if _backbone_layer(b) in train_layers
                                            else "frozen"), sub) for b, sub in v.items()}
        else:
            model[k] = jax.tree.map(tag("rest"), v)
    return {"model": model, "heads": jax.tree.map(tag("rest"), tree["heads"])}


def make_optimizer(cfg, stage: str) -> optax.GradientTransformation:
    t = cfg.train
    rates = jnp.asarray(epoch_learning_rates(t[stage]))
    epoch = lambda step: jnp.minimum(step // t.steps_per_epoch, len(rates) - 1)
    schedule = lambda step: rates[epoch(step)]

    def update_rule(scale_fn):
        if t.optimizer == "adamw":
            # research option for models trained from scratch (the miniature testbed):
            # decoupled weight decay, scaled by the learning rate as in AdamW
            return optax.adamw(scale_fn, weight_decay=t.weight_decay)
        return optax.chain(optax.add_decayed_weights(t.weight_decay),
                           optax.sgd(scale_fn, momentum=t.momentum))

    if stage != "base":
        return optax.chain(optax.clip_by_global_norm(t.grad_clip), update_rule(schedule))

    # Before the backbone epoch pysot's optimiser does not hold the backbone's layers: their
    # updates (weight decay included) are zero, so they keep their values bit for bit. The
    # scaling comes after the rule, as weight decay would otherwise move them; the momentum
    # the decay leaves behind is cleared with every other at the switch (restart_momentum).
    on = lambda step: (epoch(step) >= t.backbone_train_epoch).astype(jnp.float32)
    backbone = optax.chain(update_rule(lambda step: schedule(step) * t.backbone_lr_mult),
                           optax.scale_by_schedule(on))
    return optax.chain(optax.clip_by_global_norm(t.grad_clip),
                       optax.multi_transform({"backbone": backbone, "rest": update_rule(schedule),
                                              "frozen": optax.set_to_zero()},
                                             lambda tree: base_param_labels(cfg, tree)))


def restart_step(cfg, stage: str) -> int | None:
    """The step at which the base stage's optimiser starts afresh: pysot's ``tools/train.py``
    builds a new SGD (``build_opt_lr``) when the backbone starts training, so every momentum
    buffer, the neck's and heads' included, restarts from zero there. None: no restart (the
    CLNet stage, or a backbone that trains from the first step)."""
    t = cfg.train
    if stage != "base" or t.backbone_train_epoch <= 0:
        return None
    return t.backbone_train_epoch * t.steps_per_epoch


def restart_momentum(opt_state, restart: Array):
    """``opt_state`` with its floating-point state (the momentum buffers; Adam's moments)
    zeroed where ``restart`` holds. Its integer counts, which drive the learning-rate
    schedules, go on: pysot's new optimiser starts at the epoch's rate."""
    clear = lambda v: (jnp.where(restart, jnp.zeros_like(v), v)
                       if jnp.issubdtype(v.dtype, jnp.floating) else v)
    return jax.tree.map(clear, opt_state)


# ------------------------------------------------------------------------- the step
class TrainSetup(NamedTuple):
    """What a config fixes about one stage's step: built once, closed over when jitted."""
    cfg: Any
    stage: str           # 'base' or 'clnet'
    net: model_lib.SiamRPN
    opt: optax.GradientTransformation
    mesh: Mesh
    rates: Array         # the learning rate of every epoch of the stage


def winograd_min_channels(cfg) -> int:
    """The training model's ``winograd_min_channels``: ``train.winograd_min_channels`` where
    ``train.winograd`` is 'on', or 'auto' on a CPU backend; else 0 (XLA's convolutions)."""
    return cfg.train.winograd_min_channels if winograd.enabled(cfg.train.get("winograd", "off")) else 0


def winograd_settings(cfg) -> dict:
    """The training model's Winograd fields (:class:`model.siamrpn.SiamRPN`): which 3×3
    convolutions run as products, and their tile (``train.winograd_tile``)."""
    return {"winograd_min_channels": winograd_min_channels(cfg),
            "winograd_tile": cfg.train.get("winograd_tile", "2")}


def setup(cfg, stage: str, mesh: Mesh) -> TrainSetup:
    t = cfg.train
    # BN over the whole batch ('global') synchronises across the mesh's 'data' axis
    bn_axis = "data" if stage == "base" and t.bn_sync == "global" else None
    net = model_lib.model_from_config(cfg.model, bn_axis, t.compute_dtype,
                                      **winograd_settings(cfg))
    return TrainSetup(cfg, stage, net, make_optimizer(cfg, stage), mesh,
                      jnp.asarray(epoch_learning_rates(cfg.train[stage])))


def base_local_loss(ts: TrainSetup, trainable, frozen, batch, keys, layers):
    """One device's share of the global base loss over all of its pairs."""
    cfg = ts.cfg
    tg = jax.vmap(lambda k, g: group_targets(cfg, k, g["box"], g["negative"]))(keys, batch)
    flat = lambda a: a.reshape((-1,) + a.shape[2:])
    tg = jax.tree.map(flat, tg)
    pairs = {k: flat(v) for k, v in batch.items()}
    return base_group_loss(cfg, ts.net, trainable, frozen["batch_stats"], pairs, tg, True,
                           layers, "data")


def clnet_local_loss(ts: TrainSetup, trainable, frozen, batch, keys):
    """One device's share of the CLNet-stage loss: the mean over its groups, divided by the
    device count (the sum over devices follows)."""
    def group_loss(group, key):
        tg = group_targets(ts.cfg, key, group["box"], group["negative"])
        return clnet_group_loss(ts.cfg, ts.net, trainable, frozen, group, tg)
    loss, (aux, stats) = jax.vmap(group_loss)(batch, keys)
    n_dev = jax.lax.psum(1, "data")
    share = lambda v: jnp.mean(v) / n_dev
    return share(loss), (jax.tree.map(share, aux), jax.tree.map(lambda s: jnp.mean(s, 0), stats))


def local_update(ts: TrainSetup, state: dict, batch, keys, layers) -> tuple[dict, dict]:
    """One device: gradients of its share, summed over devices, then the optimiser step."""
    def loss_fn(trainable):
        if ts.stage == "base":
            return base_local_loss(ts, trainable, state["frozen"], batch, keys, layers)
        return clnet_local_loss(ts, trainable, state["frozen"], batch, keys)
    (_, (aux, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["trainable"])
    # each device holds its share of the global loss: the sums are the global values
    grads = jax.lax.psum(grads, "data")
    aux = jax.lax.psum(aux, "data")
    stats = jax.lax.pmean(stats, "data")  # identical already when BN is synchronised
    aux["grad_norm"] = optax.global_norm(grads)
    opt_state = state["opt_state"]
    restart = restart_step(ts.cfg, ts.stage)
    # only the program of the phase that holds the restart step compares the step with it
    if restart is not None and layers == backbone_train_layers(ts.cfg, restart):
        opt_state = restart_momentum(opt_state, state["step"] == restart)
    updates, opt_state = ts.opt.update(grads, opt_state, state["trainable"])
    trainable = optax.apply_updates(state["trainable"], updates)
    frozen = dict(state["frozen"])
    frozen["batch_stats" if ts.stage == "base" else "gen_stats"] = stats
    return dict(state, trainable=trainable, frozen=frozen, opt_state=opt_state), aux


def train_step(ts: TrainSetup, state: dict, batch, layers: frozenset) -> tuple[dict, dict]:
    """One step of the stage, sharded over the mesh; ``layers``: the backbone layers that
    train in this phase (static)."""
    rng, sub = jax.random.split(jax.random.wrap_key_data(state["rng"]))
    n = jax.tree.leaves(batch)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(sub, 0), n)
    sharded = jax.shard_map(lambda st, b, k: local_update(ts, st, b, k, layers), mesh=ts.mesh,
                            in_specs=(P(), P("data"), P("data")), out_specs=(P(), P()),
                            check_vma=False)
    new_state, aux = sharded(state, batch, keys)
    epoch = jnp.minimum(state["step"] // ts.cfg.train.steps_per_epoch, len(ts.rates) - 1)
    aux["lr"] = ts.rates[epoch]
    return dict(new_state, step=state["step"] + 1, rng=jax.random.key_data(rng)), aux


class TrainStep:
    """``step(state, batch, step_index=None) -> (state, metrics)``, jitted once per backbone
    phase: ``step_index`` (the host's step counter, read from the state if omitted) says
    which layers train, which is static.

    state = {'step', 'rng', 'trainable', 'frozen', 'opt_state'}; batch leaves have a
    leading group axis, split over the 'data' axis.
    """

    def __init__(self, cfg, stage: str, mesh: Mesh):
        self.setup = setup(cfg, stage, mesh)
        self._programs: dict[frozenset, Callable] = {}

    def program(self, step_index: int) -> Callable:
        """The jitted step of the phase that ``step_index`` is in (also what benchmarks
        trace to count FLOPs)."""
        ts = self.setup
        layers = backbone_train_layers(ts.cfg, step_index) if ts.stage == "base" else frozenset()
        if layers not in self._programs:
            self._programs[layers] = jax.jit(functools.partial(train_step, ts, layers=layers))
        return self._programs[layers]

    def __call__(self, state: dict, batch, step_index: int | None = None):
        if step_index is None:
            step_index = int(jax.device_get(state["step"]))
        return self.program(step_index)(state, batch)


def make_train_step(cfg, stage: str, mesh: Mesh) -> TrainStep:
    return TrainStep(cfg, stage, mesh)


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
                             "choose one of " + ", ".join(
                                 n for n, v in variants_lib.REGISTRY.items() if v.train_generate))
        gen = params.get("clnet") or variant.init_params(jax.random.fold_in(rng, 1), cfg)
        heads = params["heads"]
        trainable = {"gen": gen["params"]}
        if cfg.clnet.train_fusion:
            trainable["fusion"] = {k: heads[k] for k in ("cls_weight", "loc_weight")}
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
    heads = dict(fr["heads"], **tr.get("fusion", {}))
    return {"model": fr["model"], "heads": heads,
            "clnet": {"params": tr["gen"], "batch_stats": fr["gen_stats"]}}
