import os

import jax.numpy as jnp
import numpy as np

from clnet_jax.model import anchors as A
from clnet_jax.model.xcorr import xcorr_depthwise, xcorr_grouped_conv, xcorr_shift_sum
from conftest import ROOT, config


def test_anchor_and_window_match_golden(golden):
    g = golden["siamrpn_tiny"]
    cfg = config("siamrpn_tiny")
    anchors = A.generate_anchors(cfg.anchor.stride, cfg.anchor.ratios, cfg.anchor.scales, 25)
    np.testing.assert_array_equal(anchors, g["anchors"])
    np.testing.assert_allclose(A.cosine_window(25, 5), g["window"], atol=0)
    np.testing.assert_array_equal(A.anchor_shapes(8, cfg.anchor.ratios, [8]),
                                  [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]])


def test_encode_decode_roundtrip_and_iou():
    anchors = jnp.asarray(A.generate_anchors(8, [0.33, 0.5, 1, 2, 3], [8], 25))
    rng = np.random.default_rng(0)
    boxes = jnp.asarray(np.c_[rng.uniform(-50, 50, (3125, 2)), rng.uniform(10, 150, (3125, 2))],
                        jnp.float32)
    np.testing.assert_allclose(A.decode_boxes(A.encode_boxes(boxes, anchors), anchors), boxes,
                               rtol=1e-5, atol=1e-3)
    # hand-computed: half overlap, disjoint, identical
    a = jnp.asarray([[0, 0, 10, 10], [0, 0, 10, 10], [3, 3, 4, 5]], jnp.float32)
    b = jnp.asarray([[5, 0, 10, 10], [20, 20, 5, 5], [3, 3, 4, 5]], jnp.float32)
    np.testing.assert_allclose(A.xywh_iou(a, b), [1 / 3, 0.0, 1.0], rtol=1e-6)


def test_penalty_is_one_for_unchanged_box_and_below_one_otherwise():
    pred = jnp.asarray([[40.0, 20.0], [80.0, 20.0], [20.0, 40.0]])
    p = A.scale_ratio_penalty(pred, jnp.asarray([40.0, 20.0]), 0.05)
    assert abs(float(p[0]) - 1.0) < 1e-6 and float(p[1]) < 1 and float(p[2]) < float(p[1])


def test_xcorr_depthwise_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8, 3)).astype(np.float32)
    k = rng.normal(size=(2, 3, 2, 3)).astype(np.float32)
    ref = np.zeros((2, 7, 7, 3), np.float32)
    for b in range(2):
        for i in range(7):
            for j in range(7):
                ref[b, i, j] = np.sum(x[b, i:i + 3, j:j + 2] * k[b], axis=(0, 1))
    # the backend's choice (shift sum on this CPU) and both implementations
    for fn in (xcorr_depthwise, xcorr_grouped_conv, xcorr_shift_sum):
        out = np.asarray(fn(jnp.asarray(x), jnp.asarray(k)))
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_xcorr_implementations_have_the_same_gradients_and_dtype():
    import jax
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(3, 11, 11, 4)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 5, 5, 4)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 7, 7, 4)), jnp.float32)

    def grads(fn):
        return jax.grad(lambda a, b: jnp.sum(w * fn(a, b)), argnums=(0, 1))(x, k)

    for a, b in zip(grads(xcorr_grouped_conv), grads(xcorr_shift_sum)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    out = xcorr_shift_sum(x.astype(jnp.bfloat16), k.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16


def test_shift_sum_written_out_gradients_equal_jax_grad_first_and_second_order():
    """The correlation's hand-written backward (search and kernel gradients as shifted sums)
    against ``jax.grad`` of the plain forward sum, in float64 on a map that is neither square
    nor square-kernelled; also differentiated once more, as MAML's meta-gradient does."""
    import jax

    from clnet_jax.model import ops
    from clnet_jax.model.xcorr import shifted_products
    with jax.enable_x64():
        rng = np.random.default_rng(2)
        x = jnp.asarray(rng.normal(size=(2, 9, 12, 3)))
        k = jnp.asarray(rng.normal(size=(2, 4, 3, 3)))
        w = jnp.asarray(rng.normal(size=(2, 6, 10, 3)))

        def loss(fn):
            return lambda a, b: jnp.sum(w * jnp.tanh(fn(a, b)))

        ours, ref = loss(xcorr_shift_sum), loss(shifted_products)
        for a, b in zip(jax.grad(ours, (0, 1))(x, k), jax.grad(ref, (0, 1))(x, k)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)

        def meta(fn):  # the gradient of a loss after one gradient step on the kernel
            return lambda a, b: fn(a, b - 0.1 * jax.grad(fn, 1)(a, b))

        for a, b in zip(jax.grad(meta(ours), (0, 1))(x, k), jax.grad(meta(ref), (0, 1))(x, k)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
        with ops.portable():  # exporters trace the plain sum: the same floats
            np.testing.assert_array_equal(np.asarray(xcorr_shift_sum(x, k)),
                                          np.asarray(shifted_products(x, k)))
        assert jax.make_jaxpr(xcorr_shift_sum)(x, k).eqns[0].primitive.name.startswith("custom_vjp")
        with ops.portable():  # a new function: traces are cached per function
            assert "custom_vjp" not in str(jax.make_jaxpr(lambda a, b: xcorr_shift_sum(a, b))(x, k))
        # forward mode is not defined for it (docs/variants.md says so)
        import pytest
        with pytest.raises(TypeError, match="forward-mode"):
            jax.jvp(lambda a: xcorr_shift_sum(a, k), (x,), (x,))


def test_miniature_score_map_is_odd_and_matches_the_model():
    """The demo/testbed crops give the score side the formula says (the model's hidden maps),
    and an even side, which would put every anchor half a stride off its cell, is refused."""
    import jax
    import pytest

    from clnet_jax import config as config_lib
    from clnet_jax.model import siamrpn as model_lib
    cfg = config_lib.from_file(os.path.join(ROOT, "configs", "demo.py"))
    s = config_lib.score_size(cfg)
    assert s % 2 == 1
    params = model_lib.init_params(cfg, jax.random.key(0))
    net = model_lib.model_from_config(cfg.model)
    z = np.zeros((1, cfg.track.exemplar_size, cfg.track.exemplar_size, 3), np.float32)
    x = np.zeros((1, cfg.track.instance_size, cfg.track.instance_size, 3), np.float32)
    hidden = net.apply(params["model"], z, x)
    assert {h.shape[1:3] for lv in hidden.values() for h in lv.values()} == {(s, s)}
    cfg.track.instance_size = 167  # 20x20 search map -> 14x14 scores
    with pytest.raises(ValueError, match="even"):
        config_lib.score_size(cfg)
