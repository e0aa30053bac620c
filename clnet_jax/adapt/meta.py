"""Meta-learned gradient adaptation: the inner loop as one pure function, and the rules built
on it.

CLNet *generates* the head change from first-frame statistics. The published alternative
*learns how to take gradient steps* on the first frame's samples:

* Meta-SGD (Li et al. 2017; Meta-Tracker, Park & Berg 2018): K steps from theta_0 with a
  learned step size per element, ``theta <- theta - alpha * grad``.
* MAML (Finn et al. 2017; tracking by instance detection, Wang et al. 2020): a learned
  initialisation (here an offset added to theta_0, so that it starts at the base tracker)
  and a learned step size per tensor.
* CLNet + steps (the hybrid): theta_0 + delta from CLNet, then K learned-rate steps.

Everything is a pure function of explicit pytrees, so the meta-gradient is ``jax.grad``
through :func:`inner_loop` (a ``lax.scan``), nothing hand-derived. Second order by default;
``first_order=True`` stops the gradient at the inner gradients (FOMAML). Each inner step is
wrapped in ``jax.checkpoint``, so the backward pass keeps one step's activations and the
carried heads per step, not K steps' activations.

What adapts (``clnet.meta_adapt``): 'head' — every tensor of the heads tree the variant
interface returns (theta_1 of each level and branch and the fusion weights, as
``sgd_finetune`` does); 'theta1' — theta_1 alone. The hidden layers h0 stay those of the
base: the adaptation works on the first frame's hidden maps, which is what keeps the
per-frame cost at zero.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from clnet_jax.model import losses as losses_lib
from clnet_jax.model import siamrpn as model_lib

Array = jnp.ndarray


class MetaSettings(NamedTuple):
    steps: int          # K inner steps
    first_order: bool   # FOMAML: no second-order terms in the meta-gradient
    inner_loss: str     # 'rpn' (cls + 1.2 loc) or 'cls'
    adapt: str          # 'head' (theta_1 and fusion weights) or 'theta1'


def meta_settings(cfg) -> MetaSettings:
    """The meta-learned variants' settings from ``cfg.clnet`` (validated at load)."""
    c = cfg.clnet
    return MetaSettings(int(c.meta_steps), bool(c.meta_first_order), c.meta_inner_loss,
                        c.meta_adapt)


def split_heads(heads: dict, adapt: str) -> tuple[dict, dict]:
    """(the tensors that adapt, the rest): 'head' adapts every leaf, 'theta1' the per-level
    w and b (the fusion weights stay)."""
    if adapt == "head":
        return heads, {}
    levels = model_lib.level_names(heads)
    return ({l: heads[l] for l in levels}, {k: v for k, v in heads.items() if k not in levels})


def support_loss(hidden_maps: dict, targets: tuple, num_anchors: int, kind: str = "rpn",
                 rest: dict | None = None) -> Callable[[dict], Array]:
    """The inner loss of the adapted tensors on the support samples: the RPN loss (cls NLL +
    1.2 x weighted L1, as ``sgd_finetune``) or its classification term alone."""
    labels, loc_target, loc_weight = targets
    rest = rest or {}

    def loss(theta: dict) -> Array:
        cls, loc = model_lib.rpn_outputs({**rest, **theta}, hidden_maps)
        total, c, _ = losses_lib.rpn_loss(cls, loc, labels, loc_target, loc_weight, num_anchors)
        return total if kind == "rpn" else c

    return loss


def inner_loop(theta: dict, step_sizes: dict, loss_fn: Callable[[dict], Array], steps: int,
               first_order: bool = False, remat: bool = True) -> dict:
    """K gradient steps ``theta <- theta - alpha * grad loss(theta)``.

    ``step_sizes`` has theta's structure; each leaf is an array of the tensor's shape (per
    element) or a scalar (per tensor). Differentiable in theta, the step sizes and anything
    ``loss_fn`` closes over; ``first_order`` treats each inner gradient as a constant.
    """
    def one_step(th, _):
        g = jax.grad(loss_fn)(th)
        if first_order:
            g = jax.lax.stop_gradient(g)
        return jax.tree.map(lambda p, a, d: p - a * d, th, step_sizes, g), None

    if remat:
        one_step = jax.checkpoint(one_step)
    theta, _ = jax.lax.scan(one_step, theta, None, length=steps)
    return theta


def adapt_heads(start: dict, step_sizes: dict, hidden_maps: dict, targets: tuple, cfg,
                num_anchors: int) -> dict:
    """The heads after K steps from ``start`` on the support samples, by ``cfg.clnet``'s
    meta settings (only the tensors that adapt move)."""
    steps, first_order, kind, adapt = meta_settings(cfg)
    theta, rest = split_heads(start, adapt)
    loss = support_loss(hidden_maps, targets, num_anchors, kind, rest)
    return {**rest, **inner_loop(theta, step_sizes, loss, steps, first_order)}


def _filled(cfg, per_element: bool, value: float) -> dict:
    """A tree of the adapted tensors' structure: full arrays, or one scalar per tensor."""
    adapt = meta_settings(cfg).adapt
    shapes, _ = split_heads(model_lib.heads_shapes(cfg), adapt)
    is_shape = lambda s: isinstance(s, tuple)
    return jax.tree.map(lambda s: jnp.full(s if per_element else (), value, jnp.float32),
                        shapes, is_leaf=is_shape)


def init_step_sizes(cfg, per_element: bool) -> dict:
    """Step sizes that start at ``clnet.sgd_lr`` (where ``sgd_finetune`` stands)."""
    return _filled(cfg, per_element, float(cfg.clnet.sgd_lr))


def init_offsets(cfg) -> dict:
    """MAML's learned initialisation, as an offset from theta_0: zero at the start."""
    return _filled(cfg, True, 0.0)
