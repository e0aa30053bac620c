"""Depthwise cross-correlation, the Siamese matching operator."""
import jax
import jax.numpy as jnp


def xcorr_depthwise(search: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """Correlates every channel of ``search`` with the same channel of ``kernel``.

    search (B, Hs, Ws, C), kernel (B, Hk, Wk, C) -> (B, Hs-Hk+1, Ws-Wk+1, C). Each batch
    element uses its own kernel: the batch is folded into the channel axis so that a single
    grouped convolution does the work (as the upstream code does with ``groups=B*C``).
    """
    b, hs, ws, c = search.shape
    _, hk, wk, _ = kernel.shape
    x = jnp.transpose(search, (1, 2, 0, 3)).reshape(1, hs, ws, b * c)
    k = jnp.transpose(kernel, (1, 2, 0, 3)).reshape(hk, wk, 1, b * c)
    out = jax.lax.conv_general_dilated(
        x, k, window_strides=(1, 1), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=b * c)
    ho, wo = out.shape[1:3]
    return jnp.transpose(out.reshape(ho, wo, b, c), (2, 0, 1, 3))
