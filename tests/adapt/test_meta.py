"""Meta-learned gradient adaptation (clnet_jax.adapt.meta and its registry variants):
meta-gradients against finite differences, the degenerate settings, first vs second order,
the support/query split, memory with K."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.adapt import clnet as C
from clnet_jax.adapt import meta
from clnet_jax.adapt import variants as V
from clnet_jax.model import siamrpn as M
from clnet_jax.model import targets as T
from clnet_jax.train import step as TS
from conftest import config, golden_hidden, nhwc

META = ("meta_sgd", "maml", "clnet_sgd")


def _cfg(variant, **kw):
    return config("train_tiny", **{"clnet.variant": variant, **kw})


def _group_inputs(golden, params, dtype=jnp.float32):
    """The golden 2-pair training group of the tiny CLNet: hidden maps, mined labels,
    targets (the official code's own group, see tests/golden/README.md)."""
    g = golden["clnet_tiny_fixed"]
    cast = lambda t: jax.tree.map(lambda a: jnp.asarray(a, dtype)
                                  if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
                                  else jnp.asarray(a), t)
    params = cast(params)
    group = {"template": jnp.asarray(nhwc(g["train_template"])),
             "search": jnp.asarray(nhwc(g["train_search"]))}
    tg = T.Targets(jnp.asarray(g["train_label_cls_sampled"], jnp.int32),
                   cast(jnp.asarray(g["train_label_loc"])),
                   cast(jnp.asarray(g["train_label_loc_weight"])))
    return params, cast(group), tg


def _state_parts(cfg, params):
    variant = V.get_variant(cfg.clnet.variant)
    gen = variant.init_params(jax.random.key(1), cfg)
    frozen = {"model": params["model"], "heads": params["heads"],
              "gen_stats": gen["batch_stats"]}
    return gen["params"], frozen


def _first_frame(golden, params, cfg):
    """The first frame's hidden maps, mined labels and targets as the tracker builds them."""
    g = golden["clnet_tiny_fixed"]
    hidden = golden_hidden(M.model_from_config(cfg.model), params, g)
    labels = jnp.asarray(g["label_cls"], jnp.int32)[None]
    loc_w = jnp.where(labels == 1, 1.0 / jnp.maximum(jnp.sum(labels == 1), 1), 0.0)
    box = jnp.asarray([100.0, 110.0, 160.0, 150.0])  # a target near the crop centre
    loc_t = T.loc_targets(jnp.asarray(T.crop_anchors(cfg)), box)[None]
    pos, neg = C.sample_masks(labels[0])
    return hidden, (pos[None], neg[None]), (labels, loc_t, loc_w)


def _tree_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", META)
def test_zero_steps_return_the_start(golden, clnet_params, name):
    """K = 0: meta_sgd and maml (zero offset) give theta_0, clnet_sgd gives CLNet's heads."""
    cfg = _cfg(name, **{"clnet.meta_steps": 0})
    hidden, masks, tgt = _first_frame(golden, clnet_params, cfg)
    gen = V.get_variant(name).init_params(jax.random.key(0), cfg)
    heads = V.get_variant(name).generate(clnet_params["heads"], gen, hidden, masks, tgt, cfg)
    if name == "clnet_sgd":
        clnet_gen = {"params": gen["params"]["clnet"], "batch_stats": gen["batch_stats"]}
        want = V.generate_clnet(clnet_params["heads"], clnet_gen, hidden, masks, tgt, cfg)
    else:
        want = clnet_params["heads"]
    _tree_equal(heads, want)


def test_untrained_meta_sgd_is_sgd_finetune(golden, clnet_params):
    """Step sizes at clnet.sgd_lr, K = clnet.sgd_steps, the whole head adapting: the same
    heads as sgd_finetune (a fori_loop with a constant rate), to the bit."""
    cfg = _cfg("meta_sgd", **{"clnet.meta_steps": 5, "clnet.sgd_steps": 5})
    hidden, masks, tgt = _first_frame(golden, clnet_params, cfg)
    gen = V.get_variant("meta_sgd").init_params(jax.random.key(0), cfg)
    got = jax.jit(lambda h: V.generate_meta_sgd(h, gen, hidden, masks, tgt, cfg))(
        clnet_params["heads"])
    want = jax.jit(lambda h: V.generate_sgd_finetune(h, None, hidden, masks, tgt, cfg))(
        clnet_params["heads"])
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                zip(jax.tree.leaves(want), jax.tree.leaves(clnet_params["heads"])))
    assert moved > 1e-4  # the steps really change the heads
    _tree_equal(got, want)


def _query_loss(cfg, params, group, tg):
    net = M.model_from_config(cfg.model)
    _, frozen = _state_parts(cfg, params)
    return lambda gen: TS.clnet_group_loss(cfg, net, {"gen": gen}, frozen, group, tg)[0]


@pytest.mark.parametrize("name", META)
@pytest.mark.slow
def test_meta_gradient_matches_central_finite_differences_in_float64(golden, clnet_params, name):
    """d(query loss)/d(meta-parameters) through K = 2 second-order inner steps (support:
    pair 1, query: pair 2), against central differences along random directions."""
    with jax.enable_x64(True):
        cfg = _cfg(name, **{"clnet.meta_steps": 2, "train.clnet.pairs_per_group": 2})
        params, group, tg = _group_inputs(golden, clnet_params, jnp.float64)
        gen, _ = _state_parts(cfg, params)
        gen = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), gen)
        loss = jax.jit(_query_loss(cfg, params, group, tg))
        grad = jax.jit(jax.grad(_query_loss(cfg, params, group, tg)))(gen)
        rng = np.random.default_rng(0)
        errors = []
        for trial in range(3):
            v = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), gen)
            if trial == 0:  # along the step sizes only: the part plain CLNet does not have
                v = {k: (x if k == "lr" else jax.tree.map(jnp.zeros_like, x))
                     for k, x in v.items()}
            norm = float(jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(v))))
            v = jax.tree.map(lambda x: x / norm, v)
            eps = 1e-5
            shift = lambda s: jax.tree.map(lambda p, d: p + s * eps * d, gen, v)
            fd = (float(loss(shift(1.0))) - float(loss(shift(-1.0)))) / (2 * eps)
            an = float(sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grad),
                                                          jax.tree.leaves(v))))
            errors.append(abs(an - fd) / max(abs(an), abs(fd), 1e-12))
            assert abs(an) > 0
        assert max(errors) <= 1e-4, errors


def test_first_order_equals_second_order_for_a_linear_inner_loss():
    """The Hessian term vanishes when the inner loss is linear in theta: FOMAML is exact."""
    rng = np.random.default_rng(1)
    theta = {"w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
             "b": jnp.asarray(rng.normal(size=3), jnp.float32)}
    c = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32), theta)
    inner = lambda th: sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(th), jax.tree.leaves(c)))
    lr = {"w": jnp.full((4, 3), 0.1), "b": jnp.asarray(0.2)}

    def outer(th0, lr, first_order):
        th = meta.inner_loop(th0, lr, inner, 3, first_order)
        return sum(jnp.sum(jnp.sin(x) ** 2) for x in jax.tree.leaves(th))

    g2 = jax.grad(outer, argnums=(0, 1))(theta, lr, False)
    g1 = jax.grad(outer, argnums=(0, 1))(theta, lr, True)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_first_order_differs_from_second_order_on_the_rpn_loss(golden, clnet_params):
    """On the real inner loss the two meta-gradients differ (the amount is what the
    first-order option gives up; docs/variants.md quotes it)."""
    grads = {}
    for fo in (False, True):
        cfg = _cfg("maml", **{"clnet.meta_steps": 3, "clnet.meta_first_order": fo})
        params, group, tg = _group_inputs(golden, clnet_params)
        gen, _ = _state_parts(cfg, params)
        grads[fo] = jax.jit(jax.grad(_query_loss(cfg, params, group, tg)))(gen)
    a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads[False])])
    b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads[True])])
    rel = np.linalg.norm(a - b) / np.linalg.norm(a)
    print(f"FOMAML vs second order (maml, K=3): relative difference {rel:.3e}")
    assert np.all(np.isfinite(b)) and 1e-6 < rel < 1.0


def test_support_query_split_scores_the_adapted_heads_on_the_other_pairs(golden, clnet_params):
    cfg = _cfg("meta_sgd", **{"clnet.meta_steps": 1})
    params, group, tg = _group_inputs(golden, clnet_params)
    gen, frozen = _state_parts(cfg, params)
    net = M.model_from_config(cfg.model)
    split, _ = TS.clnet_group_loss(cfg, net, {"gen": gen}, frozen, group, tg)
    # by hand: adapt on pair 0's mined labels, score on pair 1
    hidden = net.apply(params["model"], group["template"], group["search"])
    cls0, _ = M.rpn_outputs(params["heads"], hidden)
    labels = TS.mined_labels(tg.labels, cls0, cfg.clnet.mining_negatives)
    first = lambda t: jax.tree.map(lambda a: a[:1], t)
    second = lambda t: jax.tree.map(lambda a: a[1:], t)
    heads = V.generate_meta_sgd(params["heads"], {"params": gen}, first(hidden), None,
                                first((labels, tg.loc, tg.loc_weight)), cfg)
    cls, loc = M.rpn_outputs(heads, second(hidden))
    from clnet_jax.model import losses as L
    want = L.rpn_loss(cls, loc, labels[1:], tg.loc[1:], tg.loc_weight[1:], labels.shape[1],
                      cfg.train.loc_weight)[0]
    np.testing.assert_allclose(float(split), float(want), rtol=1e-6)
    # all pairs both ways (the official recipe) is another loss
    both = _cfg("meta_sgd", **{"clnet.meta_steps": 1, "clnet.support_pairs": 0})
    together, _ = TS.clnet_group_loss(both, net, {"gen": gen}, frozen, group, tg)
    assert abs(float(together) - float(split)) > 1e-6
    too_many = _cfg("meta_sgd", **{"clnet.support_pairs": 2})
    with pytest.raises(ValueError, match="clnet.support_pairs=2"):
        TS.clnet_group_loss(too_many, net, {"gen": gen}, frozen, group, tg)


def test_clnet_keeps_the_official_all_pairs_recipe_by_default():
    assert V.support_pairs(_cfg("clnet"), V.get_variant("clnet")) == 0
    for name in META:
        assert V.support_pairs(_cfg(name), V.get_variant(name)) == 1
    assert V.support_pairs(_cfg("meta_sgd", **{"clnet.support_pairs": 0}),
                           V.get_variant("meta_sgd")) == 0


def test_remat_keeps_meta_gradient_memory_flat_in_k(golden, clnet_params):
    """jax.checkpoint per inner step: the compiled meta-gradient's temporary memory does
    not grow with K beyond the carried heads (without it, it grows by a step's activations
    per step)."""
    params, group, tg = _group_inputs(golden, clnet_params)

    def temp_bytes(k, remat):
        cfg = _cfg("meta_sgd", **{"clnet.meta_steps": k})
        gen, frozen = _state_parts(cfg, params)
        net = M.model_from_config(cfg.model)
        hidden = net.apply(params["model"], group["template"], group["search"])
        first = lambda t: jax.tree.map(lambda a: a[:1], t)
        tgt = first((tg.labels, tg.loc, tg.loc_weight))
        theta = params["heads"]

        def f(lr):
            loss = meta.support_loss(first(hidden), tgt, 5)
            out = meta.inner_loop(theta, lr, loss, k, remat=remat)
            return loss(out)

        compiled = jax.jit(jax.grad(f)).lower(gen["lr"]).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    flat = [temp_bytes(k, True) for k in (2, 16)]
    grown = [temp_bytes(k, False) for k in (2, 16)]
    assert flat[1] - flat[0] < 0.5 * (grown[1] - grown[0]), (flat, grown)


@pytest.mark.parametrize("name", META)
@pytest.mark.slow
def test_meta_variants_track_with_their_adapted_heads(clnet_params, synthetic_video, name):
    """A meta variant plugs into the same init/step: adapted once on the first frame."""
    from clnet_jax.track import runner
    frames, gt = synthetic_video
    cfg = config("clnet_tiny", **{"clnet.variant": name, "clnet.meta_steps": 2})
    gen = V.get_variant(name).init_params(jax.random.key(0), cfg)
    if name == "clnet_sgd":  # start from the golden CLNet generator
        gen = {"params": {"clnet": clnet_params["clnet"]["params"], "lr": gen["params"]["lr"]},
               "batch_stats": clnet_params["clnet"]["batch_stats"]}
    params = dict(clnet_params, clnet=gen)
    trk = runner.SequenceTracker(cfg, params)
    boxes, _ = trk.track(frames[:6], gt[0])
    assert bool(trk.state.adjusted) and np.all(np.isfinite(boxes))
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                zip(jax.tree.leaves(trk.state.heads), jax.tree.leaves(clnet_params["heads"])))
    assert moved > 1e-5
