"""The benchmark helpers that turn timings into figures (the timings themselves are not tested)."""
import jax
import jax.numpy as jnp

from benchmarks import common


def test_model_flops_counts_convs_and_matmuls_exactly():
    def f(x, w_dense, w_depth, m):
        y = jax.lax.conv_general_dilated(x, w_dense, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.lax.conv_general_dilated(y, w_depth, (1, 1), "VALID", feature_group_count=8,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def body(c, _):
            return c @ m, None
        z, _ = jax.lax.scan(body, y.reshape(-1, 8), None, length=3)
        return jnp.sum(z)

    x = jnp.ones((2, 10, 10, 4))
    w_dense, w_depth, m = jnp.ones((3, 3, 4, 8)), jnp.ones((3, 3, 1, 8)), jnp.ones((8, 8))
    dense = 2 * (2 * 8 * 8 * 8) * (3 * 3 * 4)    # out elements × (kh·kw·cin)
    depth = 2 * (2 * 6 * 6 * 8) * (3 * 3 * 1)    # one input channel per group
    loop = 3 * 2 * (2 * 6 * 6 * 8) * 8           # 3 trips of a (72,8)@(8,8) product
    assert common.flops_of(jax.jit(f), x, w_dense, w_depth, m) == dense + depth + loop
    # XLA's cost analysis counts a loop body once (and on GPU misses cuDNN convolutions),
    # which is why the figures count from the jaxpr.
    assert common.xla_flops_of(jax.jit(f), x, w_dense, w_depth, m) < dense + depth + loop
