"""Depthwise cross-correlation, the Siamese matching operator."""
import jax
import jax.numpy as jnp

from clnet_jax.model import ops


def xcorr_depthwise(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """Correlates every channel of ``search`` with the same channel of ``kernel``.

    search (B, Hs, Ws, C), kernel (B, Hk, Wk, C) -> (B, Hs-Hk+1, Ws-Wk+1, C). Each batch
    element uses its own kernel. On a CPU backend it is a sum of shifted products
    (``xcorr_shift_sum``); elsewhere a single grouped convolution with the batch folded into
    the channel axis, as the upstream code does with ``groups=B*C`` (cuDNN's path). Inside
    ``ops.portable()`` always the shifted sum: exported graphs hold no convolution whose
    kernel is a runtime tensor.
    """
    if jax.default_backend() == "cpu" or ops.is_portable():
        return xcorr_shift_sum(search, kernel)
    return xcorr_grouped_conv(search, kernel)


def xcorr_grouped_conv(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    b, hs, ws, c = search.shape
    _, hk, wk, _ = kernel.shape
    x = jnp.transpose(search, (1, 2, 0, 3)).reshape(1, hs, ws, b * c)
    k = jnp.transpose(kernel, (1, 2, 0, 3)).reshape(hk, wk, 1, b * c)
    out = jax.lax.conv_general_dilated(
        x, k, window_strides=(1, 1), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=b * c)
    ho, wo = out.shape[1:3]
    return jnp.transpose(out.reshape(ho, wo, b, c), (2, 0, 1, 3))


def xcorr_shift_sum(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """The same correlation as Hk*Wk shifted elementwise products, which XLA fuses into one
    loop: on CPUs XLA's grouped convolution is slow at these shapes (docs/benchmarks.md,
    "Cross-correlation on CPUs"). Sums in float32 (bfloat16 inputs too), like a
    convolution's accumulator. Its gradient is written out (:func:`_shift_sum_bwd`), so
    reverse mode (any order) differentiates it and forward mode (``jax.jvp``) does not;
    inside ``ops.portable()`` it is the plain sum, which exporters trace as they find it."""
    acc = jnp.promote_types(search.dtype, jnp.float32)
    s, k = search.astype(acc), kernel.astype(acc)
    out = shifted_products(s, k) if ops.is_portable() else _shift_sum(s, k)
    return out.astype(search.dtype)


def shifted_products(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """sum over taps (i, j) of search[:, i:i + Ho, j:j + Wo] * kernel[:, i, j]."""
    _, hs, ws, _ = search.shape
    _, hk, wk, _ = kernel.shape
    ho, wo = hs - hk + 1, ws - wk + 1
    return sum(search[:, i:i + ho, j:j + wo, :] * kernel[:, i:i + 1, j:j + 1, :]
               for i in range(hk) for j in range(wk))


@jax.custom_vjp
def _shift_sum(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    return shifted_products(search, kernel)


def _shift_sum_fwd(search, kernel):
    return shifted_products(search, kernel), (search, kernel)


def _shift_sum_bwd(res, g):
    """Both gradients as shifted sums, so that each is one fused loop on XLA's CPU backend.
    ``jax.grad`` of the forward sum makes the kernel's gradient Hk*Wk reductions, each over a
    slice of the search map that XLA writes out first, recomputing the BN and ReLU that
    produce the map in every slice: the bulk of the heads' time in a training step
    (docs/benchmarks.md, "The correlation's gradient as shifted sums")."""
    search, kernel = res
    _, hk, wk, _ = kernel.shape
    ho, wo = g.shape[1:3]
    # search: the output gradient, padded to "full", correlated with the flipped kernel
    gp = jnp.pad(g, ((0, 0), (hk - 1, hk - 1), (wk - 1, wk - 1), (0, 0)))
    d_search = shifted_products(gp, kernel[:, ::-1, ::-1, :])
    # kernel: d[i, j] = sum_y sum_x search[i + y, j + x] g[y, x]; the sum over x as Wo
    # shifted products giving (B, Ho, Wk, C) per row offset i, then the sum over y
    rows = jnp.stack([sum(search[:, i:i + ho, x:x + wk, :] * g[:, :, x:x + 1, :]
                          for x in range(wo)) for i in range(hk)], 1)
    return d_search, jnp.sum(rows, axis=2)


_shift_sum.defvjp(_shift_sum_fwd, _shift_sum_bwd)
