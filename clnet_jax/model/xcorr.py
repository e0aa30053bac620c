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
    convolution's accumulator."""
    _, hs, ws, _ = search.shape
    _, hk, wk, _ = kernel.shape
    ho, wo = hs - hk + 1, ws - wk + 1
    acc = jnp.promote_types(search.dtype, jnp.float32)
    s, k = search.astype(acc), kernel.astype(acc)
    out = sum(s[:, i:i + ho, j:j + wo, :] * k[:, i:i + 1, j:j + 1, :]
              for i in range(hk) for j in range(wk))
    return out.astype(search.dtype)
