"""model/norm.py: batch normalisation whose gradient is the two-pass closed form, against
``jax.grad`` of the plain formula."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.model import norm
from clnet_jax.model import siamrpn as model_lib


def plain(x, scale, bias, eps=1e-5, axis_name=None):
    """The formula as BatchNorm wrote it before: differentiated by jax.grad."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axes)
    if axis_name is not None:
        mean = jax.lax.pmean(mean, axis_name)
    var = jnp.mean(jnp.square(x - mean), axes)
    if axis_name is not None:
        var = jax.lax.pmean(var, axis_name)
    return (x - mean) * (jax.lax.rsqrt(var + eps) * scale) + bias, mean, var


def inputs(dtype, shape=(3, 5, 4, 6), seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(2.0, 3.0, shape), dtype)
    scale = jnp.asarray(rng.normal(1.0, 0.5, shape[-1]), dtype)
    bias = jnp.asarray(rng.normal(0.0, 0.5, shape[-1]), dtype)
    weights = [jnp.asarray(rng.normal(size=s), dtype) for s in (shape, shape[-1:], shape[-1:])]
    return x, scale, bias, weights


def loss_of(f, weights):
    """A loss that reads y, and mean and var too (their cotangents are not zero)."""
    def loss(x, scale, bias):
        y, mean, var = f(x, scale, bias)
        return (jnp.sum(jnp.sin(y) * weights[0]) + jnp.sum(mean * weights[1])
                + jnp.sum(var * weights[2]))
    return loss


def test_forward_is_the_plain_formula_bit_for_bit():
    x, scale, bias, _ = inputs(jnp.float32)
    for a, b in zip(jax.jit(norm.batch_norm, static_argnums=(3, 4))(x, scale, bias, 1e-5),
                    jax.jit(plain)(x, scale, bias)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_gradients_equal_jax_grad_of_the_plain_formula_in_float64():
    """In float64 the closed form and autodiff agree to 1e-12: the same derivative, with
    the mean's and variance's own cotangents included."""
    with jax.enable_x64(True):
        x, scale, bias, w = inputs(jnp.float64)
        ours = jax.grad(loss_of(lambda *a: norm.batch_norm(*a, 1e-5), w), (0, 1, 2))(x, scale, bias)
        ref = jax.grad(loss_of(plain, w), (0, 1, 2))(x, scale, bias)
        for a, b in zip(ours, ref):
            assert a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradients_in_float32_to_rounding():
    x, scale, bias, w = inputs(jnp.float32, (4, 9, 9, 16), seed=1)
    ours = jax.jit(jax.grad(loss_of(lambda *a: norm.batch_norm(*a, 1e-5), w), (0, 1, 2)))(
        x, scale, bias)
    ref = jax.jit(jax.grad(loss_of(plain, w), (0, 1, 2)))(x, scale, bias)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max()))


def test_synchronised_over_a_mapped_axis_equals_the_whole_batch():
    """Shards under a mapped axis, each differentiating its own loss as the training step
    does inside shard_map: each shard's dx is the whole batch's rows (the derivative of
    the sum of all shards' losses), and the scale's and bias's gradients, summed over
    shards, are the whole batch's; the same as jax.grad of the plain formula there."""
    with jax.enable_x64(True):
        x, scale, bias, w = inputs(jnp.float64, (4, 5, 3, 6), seed=2)
        wy = w[0]

        def loss(f, axis_name=None):
            return lambda x, wy, s, b: jnp.sum(jnp.sin(f(x, s, b, 1e-5, axis_name)[0]) * wy)

        ref = jax.grad(loss(norm.batch_norm), (0, 2, 3))(x, wy, scale, bias)
        shards = lambda a: a.reshape(2, 2, *a.shape[1:])
        for f in (norm.batch_norm, plain):
            dx, ds, db = jax.vmap(jax.grad(loss(f, "data"), (0, 2, 3)), in_axes=(0, 0, None, None),
                                  axis_name="data")(shards(x), shards(wy), scale, bias)
            np.testing.assert_allclose(dx.reshape(x.shape), ref[0], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(ds.sum(0), ref[1], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(db.sum(0), ref[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_module_keeps_torch_running_statistics(train):
    """The module on batch statistics folds the unbiased variance into its running average
    (torch's rule); in inference mode it reads the running statistics and changes nothing."""
    x, _, _, _ = inputs(jnp.float32, (2, 4, 4, 3), seed=3)
    bn = model_lib.BatchNorm()
    v = bn.init(jax.random.key(0), x, train)
    y, upd = bn.apply(v, x, train, mutable=["batch_stats"])
    stats = upd["batch_stats"]
    if train:
        xs = np.asarray(x, np.float64).reshape(-1, 3)
        np.testing.assert_allclose(stats["mean"], 0.1 * xs.mean(0), rtol=1e-5)
        np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * xs.var(0, ddof=1), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(y).reshape(-1, 3).mean(0), 0, atol=1e-5)
    else:
        np.testing.assert_array_equal(stats["mean"], 0)
        np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-6)
