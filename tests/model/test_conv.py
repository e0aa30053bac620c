"""model/conv.py: nn.Conv's parameters and values, the 1x1 case as a matrix product."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.model import conv


@pytest.mark.parametrize("k,s,p,d", [(1, 1, 0, 1), (3, 1, 2, 2), (3, 2, 0, 1), (1, 2, 0, 1)])
def test_conv_is_flax_conv(k, s, p, d):
    """Same parameter tree and initial values as nn.Conv, the same outputs and gradients
    (to float32 rounding: the 1x1 case sums in another order)."""
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
    ours = conv.Conv(16, k, s, p, d)
    ref = nn.Conv(16, (k, k), (s, s), padding=((p, p), (p, p)), kernel_dilation=d,
                  use_bias=False)
    v, rv = ours.init(jax.random.key(1), x), ref.init(jax.random.key(1), x)
    assert jax.tree.structure(v) == jax.tree.structure(rv)
    np.testing.assert_array_equal(v["params"]["kernel"], rv["params"]["kernel"])
    np.testing.assert_allclose(ours.apply(v, x), ref.apply(rv, x), rtol=1e-5, atol=1e-5)
    loss = lambda m: (lambda v, x: jnp.sum(jnp.sin(m.apply(v, x))))
    g, rg = jax.grad(loss(ours), (0, 1))(v, x), jax.grad(loss(ref), (0, 1))(rv, x)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_one_by_one_is_a_matrix_product():
    """A 1x1 stride-1 convolution leaves no convolution in the program (nor in its
    gradient): XLA's CPU weight gradient of one is the slow case."""
    x = jnp.ones((1, 4, 4, 8))
    w = jnp.ones((1, 1, 8, 3))
    fwd = jax.make_jaxpr(conv.conv2d)(x, w)
    bwd = jax.make_jaxpr(jax.grad(lambda w: jnp.sum(conv.conv2d(x, w))))(w)
    for jaxpr in (fwd, bwd):
        names = {e.primitive.name for e in jaxpr.jaxpr.eqns}
        assert "conv_general_dilated" not in names and "dot_general" in names
    three = jax.make_jaxpr(lambda x, w: conv.conv2d(x, w, 1, 1))(x, jnp.ones((3, 3, 8, 3)))
    assert "conv_general_dilated" in {e.primitive.name for e in three.jaxpr.eqns}


def test_bfloat16_inputs_compute_in_bfloat16_with_float32_weights():
    x = jnp.ones((1, 5, 5, 4), jnp.bfloat16)
    m = conv.Conv(6, 3, 1, 1)
    v = m.init(jax.random.key(0), x)
    assert v["params"]["kernel"].dtype == jnp.float32
    assert m.apply(v, x).dtype == jnp.bfloat16
