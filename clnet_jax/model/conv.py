"""The network's convolution: ``flax.linen.Conv``'s parameters and initialisation, with the
1×1 case computed as a matrix product (strided: on the pixels the stride keeps).

XLA's CPU convolution is slow in the weight gradient of 1×1 convolutions (4–5× pysot's
oneDNN at the r50 training shapes); as a matrix product (:func:`pointwise`) the forward pass is
the same sum (equal floats on the r50 shapes compared) and both gradients are matrix products,
3–5× faster in the weight gradient (docs/benchmarks.md, "Training step against pysot").

With ``winograd_min_channels`` set, the 3×3 convolutions of at least that many input
channels run as matrix products, differentiated by ``jax.grad`` so that all three passes
are matrix products too: stride 1 as Winograd F(m×m, 3×3) (``model/winograd.py``, the
kernel transformed inside the program so that gradients reach it; ``winograd_tile`` picks
m), strided ones as nine products of strided slices (:func:`shifted_products`). On XLA's
CPU backend both are faster than its convolution for r50's convolutions from 256 channels
on, above all in the weight gradient (not for the narrower ones; figures in
docs/benchmarks.md); outputs and gradients differ from the direct convolution by ~1e-6
relative with m = 2, ~2e-5 with m = 4. Every other convolution is XLA's.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from clnet_jax.model import winograd

Array = jnp.ndarray


def as_products(x: Array, kernel: Array, min_channels: int) -> bool:
    """Whether :func:`conv2d` computes a convolution as matrix products: a 3×3 float32 (or
    float64) convolution of at least ``min_channels`` (> 0) input channels; bfloat16 keeps
    XLA's, whose accumulation the transforms' rounding would not survive."""
    return (min_channels > 0 and kernel.shape[0] == 3 and x.shape[-1] >= min_channels
            and x.dtype in (jnp.float32, jnp.float64))


def use_winograd(x: Array, kernel: Array, stride: int, min_channels: int) -> bool:
    """Whether :func:`conv2d` takes the Winograd path: :func:`as_products` and stride 1."""
    return stride == 1 and as_products(x, kernel, min_channels)


def pointwise(x: Array, w: Array) -> Array:
    """A 1×1 convolution, (..., C) @ (C, O), as one 2-D matrix product over the flattened
    pixels. Written over 2-D operands so that JAX's transpose gives a weight gradient of two
    row-major operands contracted over their rows: from an ``einsum`` over (n, h, w) it gives
    one that XLA's CPU backend feeds with a transposed copy of the output gradient, fused into
    the BN backward before it (1.6× slower at a layer4 block's shapes; docs/benchmarks.md)."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def shifted_products(x: Array, kernel: Array, stride: int, padding: int,
                     dilation: int) -> Array:
    """A k×k convolution as the sum of k² 2-D matrix products, one per kernel tap, each of the
    input's pixels that tap sees (a strided slice) with that tap's (C, O) weights. Its weight
    gradient is k² products of two row-major operands over the pixels, where XLA's CPU
    backend runs the convolution's weight gradient as a convolution over transposed copies
    (3–5× slower at r50's strided shapes; docs/benchmarks.md)."""
    k = kernel.shape[0]
    n, h, w, _ = x.shape
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = None
    for i in range(k):
        for j in range(k):
            tap = x[:, i * dilation:i * dilation + stride * (ho - 1) + 1:stride,
                    j * dilation:j * dilation + stride * (wo - 1) + 1:stride]
            y = pointwise(tap, kernel[i, j])
            out = y if out is None else out + y
    return out


def conv2d(x: Array, kernel: Array, stride: int = 1, padding: int = 0,
           dilation: int = 1, winograd_min_channels: int = 0,
           winograd_tile: str = "2") -> Array:
    """NHWC ``x`` with an HWIO ``kernel``: square stride, symmetric padding, dilation.
    ``winograd_tile``: the Winograd output tile, a ``winograd.train_tile_for`` setting."""
    k = kernel.shape[0]
    if k == 1 and padding == 0:  # strided: the same products on the kept pixels
        return pointwise(x[:, ::stride, ::stride] if stride > 1 else x, kernel[0, 0])
    if use_winograd(x, kernel, stride, winograd_min_channels):
        out_side = winograd.sub_grid_outputs(min(x.shape[1:3]) + 2 * padding, dilation)
        m = winograd.train_tile_for(winograd_tile, x.shape[-1], out_side)
        return winograd.conv3x3(x, winograd.kernel_transform(kernel, m), padding, dilation)
    if as_products(x, kernel, winograd_min_channels):  # strided
        return shifted_products(x, kernel, stride, padding, dilation)
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
        rhs_dilation=(dilation, dilation), dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv(nn.Module):
    """``nn.Conv(features, (k, k), (s, s), padding=((p, p), (p, p)), kernel_dilation=d,
    use_bias=False)``: the same parameter (``kernel``, HWIO, LeCun-normal), so weights and
    initial values do not change. Runs in the input's dtype when that is bfloat16 (weights
    stay float32); otherwise in the wider of the two dtypes, as ``nn.Conv``.
    ``winograd_min_channels``, ``winograd_tile``: see :func:`conv2d` (0: never)."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    winograd_min_channels: int = 0
    winograd_tile: str = "2"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        w = self.param("kernel", nn.initializers.lecun_normal(),
                       (self.kernel, self.kernel, x.shape[-1], self.features))
        dtype = jnp.bfloat16 if x.dtype == jnp.bfloat16 else jnp.result_type(x, w)
        return conv2d(x.astype(dtype), w.astype(dtype), self.stride, self.padding,
                      self.dilation, self.winograd_min_channels, self.winograd_tile)
