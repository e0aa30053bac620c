"""Winograd F(m×m, 3×3) convolutions for inference (m = 2: 2.25×, m = 4: 4× fewer
multiplications per 3×3 convolution).

The 3×3 stride-1 convolutions (dilated ones included) hold most of SiamRPN++ r50's tracking
FLOPs. With the kernels transformed once at load (:func:`kernel_transform`, 16/9 of the
weights' memory), a convolution becomes 16 matrix products of the transformed input tiles
— faster than XLA's CPU convolution on the r50 layer shapes (docs/benchmarks.md,
"Winograd convolutions"), with output errors of ~1e-6 relative (the transforms only add,
subtract and halve).

A dilated convolution is the undilated one on the d² interleaved sub-grids of its input.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


# Transform matrices (Lavin & Gray 2016). F(2×2, 3×3): 16 products per 2×2 outputs, exact
# up to halving; F(4×4, 3×3): 36 per 4×4 outputs (4× fewer multiplications than direct),
# interpolation points 0, ±1, ±2, ∞, so its rounding error is ~10× larger.
_MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def enabled(mode: str) -> bool:
    """A ``winograd`` setting ('auto' | 'on' | 'off') resolved: 'auto' is on a CPU backend,
    where these products beat XLA's convolution (docs/benchmarks.md)."""
    return mode == "on" or (mode == "auto" and jax.default_backend() == "cpu")


def _combine(mat, xs: list) -> list:
    """``mat @ xs`` for a list of arrays, skipping zeros and multiplications by ±1 (the
    transforms are mostly additions)."""
    out = []
    for row in mat:
        acc = None
        for c, x in zip(row, xs):
            if c == 0:
                continue
            if acc is None:
                acc = x if c == 1 else -x if c == -1 else x * c
            else:
                acc = acc + x if c == 1 else acc - x if c == -1 else acc + x * c
        out.append(acc)
    return out


# Input channels from which F(4×4, 3×3) beats F(2×2, 3×3) on a CPU: its 36 products of
# (tiles × C) @ (C × O) save more than its larger input and output transforms cost only
# when C and O are wide (r50's layer3/4 shortcuts and layer4; docs/benchmarks.md).
WIDE_CHANNELS = 512


def tile_for(setting: str, in_channels: int) -> int:
    """The output tile m of one convolution under a ``track.winograd_tile`` setting: '2' or
    '4' for every convolution, or 'auto': 4 from :data:`WIDE_CHANNELS` input channels, else 2."""
    if setting == "auto":
        return 4 if in_channels >= WIDE_CHANNELS else 2
    return int(setting)


def tile_of(u) -> int:
    """Output tile side m of a transformed kernel ((m + 2)², C, O)."""
    return {16: 2, 36: 4}[u.shape[0]]


def kernel_transform(w, m: int = 2):
    """(3, 3, C, O) HWIO kernel -> ((m + 2)², C, O) transformed kernel G w Gᵀ (computed in
    float64 on the host when ``w`` is a NumPy array, then cast back)."""
    _, g, _ = _MATRICES[m]
    if isinstance(w, np.ndarray):
        g64 = np.asarray(g, np.float64)
        u = np.einsum("ai,bj,ijco->abco", g64, g64, w.astype(np.float64))
        return u.reshape(-1, *w.shape[2:]).astype(w.dtype)
    rows = _combine(g, [w[i] for i in range(3)])
    return jnp.stack([v for r in rows for v in _combine(g, [r[j] for j in range(3)])])


def _valid_conv(x: Array, u: Array) -> Array:
    """Valid 3×3 convolution of (M, H, W, C) with a transformed kernel -> (M, H-2, W-2, O)."""
    m = tile_of(u)
    bt, _, at = _MATRICES[m]
    a = m + 2
    n, h, w, c = x.shape
    ho, wo = h - 2, w - 2
    th, tw = -(-ho // m), -(-wo // m)
    x = jnp.pad(x, ((0, 0), (0, m * th + 2 - h), (0, m * tw + 2 - w), (0, 0)))
    rows = _combine(bt, [x[:, i:i + m * th:m] for i in range(a)])
    v = jnp.stack([t for r in rows for t in _combine(bt, [r[:, :, j:j + m * tw:m] for j in range(a)])])
    prod = jax.lax.dot_general(v.reshape(a * a, n * th * tw, c), u.astype(x.dtype),
                               (((2,), (1,)), ((0,), (0,))))
    prod = prod.reshape(a, a, n, th, tw, -1)
    y = jnp.stack([jnp.stack(_combine(at, [r[j] for j in range(a)]))
                   for r in _combine(at, [prod[i] for i in range(a)])])
    return y.transpose(2, 3, 0, 4, 1, 5).reshape(n, m * th, m * tw, -1)[:, :ho, :wo]


def conv3x3(x: Array, u: Array, padding: int, dilation: int = 1) -> Array:
    """``lax.conv`` of NHWC ``x`` with a 3×3 kernel given as ``kernel_transform(kernel)``:
    stride 1, symmetric ``padding``, ``dilation``."""
    n, h, w, c = x.shape
    d = dilation
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    hp, wp = h + 2 * padding, w + 2 * padding
    ho, wo = hp - 2 * d, wp - 2 * d
    if d == 1:
        return _valid_conv(x, u)
    eh, ew = (-hp) % d, (-wp) % d
    x = jnp.pad(x, ((0, 0), (0, eh), (0, ew), (0, 0)))
    hs, ws = (hp + eh) // d, (wp + ew) // d
    sub = x.reshape(n, hs, d, ws, d, c).transpose(0, 2, 4, 1, 3, 5).reshape(n * d * d, hs, ws, c)
    y = _valid_conv(sub, u)
    y = y.reshape(n, d, d, hs - 2, ws - 2, -1).transpose(0, 3, 1, 4, 2, 5)
    return y.reshape(n, (hs - 2) * d, (ws - 2) * d, -1)[:, :ho, :wo]
