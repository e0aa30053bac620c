"""Operations with two equal formulations: XLA's fastest, and one that ONNX runtimes take.

Exported graphs (``clnet-export --format onnx``) must run where a convolution's kernel
cannot be a runtime tensor (TensorRT's parser) and where pooling has at most three spatial
axes (onnxruntime). Inside :func:`portable` the depthwise cross-correlation is a sum of
shifted products and the stem's max pool a maximum of strided slices. Both give the same
floats as the default path on every backend (a maximum is exact; the shifted sum is the CPU
path), so exported trackers keep the JAX tracker's boxes. Outside it nothing changes, and
training keeps ``reduce_window``'s gradient, which routes a tie to one input as PyTorch does.
"""
from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp

_STATE = threading.local()


@contextlib.contextmanager
def portable():
    """Traces inside it use the portable formulations (a trace-time switch, no runtime cost)."""
    before = getattr(_STATE, "portable", False)
    _STATE.portable = True
    try:
        yield
    finally:
        _STATE.portable = before


def is_portable() -> bool:
    return getattr(_STATE, "portable", False)


def max_pool_3x3_s2(x: jnp.ndarray) -> jnp.ndarray:
    """ResNet's stem pool: 3x3 window, stride 2, one pixel of -inf padding (NHWC)."""
    if not is_portable():
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                     ((0, 0), (1, 1), (1, 1), (0, 0)))
    _, h, w, _ = x.shape
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    out = None
    for i in range(3):
        for j in range(3):
            s = xp[:, i:i + 2 * ho - 1:2, j:j + 2 * wo - 1:2, :]
            out = s if out is None else jnp.maximum(out, s)
    return out


def top_k(x: jnp.ndarray, k: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``jax.lax.top_k`` with int32 indices in every graph. ONNX's TopK gives int64 indices
    and the converter does not cast them back, so inside :func:`portable` they pass through
    float32 (exact below 2**24) to int32; JAX elides a plain cast to the dtype it has."""
    values, idx = jax.lax.top_k(x, k)
    if is_portable():
        idx = idx.astype(jnp.float32).astype(jnp.int32)
    return values, idx
