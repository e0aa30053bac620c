"""Winograd F(m×m, 3×3) convolutions (m = 2: 2.25×, m = 4: 4× fewer multiplications per 3×3
convolution): the CPU tracker's 3×3 convolutions, and in training the wide ones of
``model/conv.py``, differentiated by ``jax.grad``.

The 3×3 stride-1 convolutions (dilated ones included) hold most of SiamRPN++ r50's tracking
FLOPs. With the kernels transformed once at load (:func:`kernel_transform`, 16/9 of the
weights' memory), a convolution becomes 16 matrix products of the transformed input tiles
— faster than XLA's CPU convolution on the r50 layer shapes (docs/benchmarks.md,
"Winograd convolutions"), with output errors of ~1e-6 relative (the transforms only add,
subtract and halve).

A dilated convolution is the undilated one on the d² interleaved sub-grids of its input;
tiles and sub-grids are both read and written through reshapes of the padded input and the
output, without transposed copies.
"""
from __future__ import annotations

import functools

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


def _mix(mat: np.ndarray, x: Array) -> Array:
    """``mat @ x`` over ``x``'s leading axis, ``mat`` a constant (float64, cast to ``x``'s
    dtype): one product, so one pass over ``x``, where :func:`_combine`'s rows become a
    fusion each, stacked (several times slower on r50's wide kernels and tiles; its
    transpose is one product too)."""
    y = jax.lax.dot_general(jnp.asarray(mat, x.dtype), x.reshape(x.shape[0], -1),
                            (((1,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST)
    return y.reshape(mat.shape[0], *x.shape[1:])


# Input channels from which F(4×4, 3×3) beats F(2×2, 3×3) on a CPU: its 36 products of
# (tiles × C) @ (C × O) save more than its larger input and output transforms cost only
# when C and O are wide (r50's layer3/4 shortcuts and layer4): the tracker's rule, its
# kernels transformed once at load for the template and the search crops alike
# (docs/benchmarks.md). Training has its own (:func:`train_tile_for`).
WIDE_CHANNELS = 512


def tile_for(setting: str, in_channels: int) -> int:
    """The output tile m of one convolution under ``track.winograd_tile``: '2' or '4' for
    every convolution, or 'auto': 4 from :data:`WIDE_CHANNELS` input channels, else 2."""
    if setting == "auto":
        return 4 if in_channels >= WIDE_CHANNELS else 2
    return int(setting)


# Training's 'auto' (model/conv.py, kernels transformed inside the step): F(4×4) from 256
# input channels (r50's layer3 and the heads too), where each sub-grid's output side holds
# two full 4×4 tiles. On smaller maps (the template's layer4 3×3s, the heads' 7×7 kernel maps)
# its padded tiles and transforms cost more than its products save (docs/benchmarks.md).
TRAIN_WIDE_CHANNELS = 256
TRAIN_MIN_SIDE = 8


def train_tile_for(setting: str, in_channels: int, out_side: int) -> int:
    """The output tile m of one training convolution under ``train.winograd_tile``: '2' or
    '4' for every convolution, or 'auto': 4 from :data:`TRAIN_WIDE_CHANNELS` input channels
    where each sub-grid's output side (``out_side``: :func:`sub_grid_outputs`) is at least
    :data:`TRAIN_MIN_SIDE`, else 2."""
    if setting == "auto":
        return 4 if in_channels >= TRAIN_WIDE_CHANNELS and out_side >= TRAIN_MIN_SIDE else 2
    return int(setting)


def tile_of(u) -> int:
    """Output tile side m of a transformed kernel ((m + 2)², C, O)."""
    return {16: 2, 36: 4}[u.shape[0]]


def kernel_transform(w, m: int = 2):
    """(3, 3, C, O) HWIO kernel -> ((m + 2)², C, O) transformed kernel G w Gᵀ (computed in
    float64 on the host when ``w`` is a NumPy array, then cast back).

    Traced (training, where the kernel changes every step), it is one product of the
    ((m + 2)², 9) matrix G ⊗ G with the kernel's nine taps (:func:`_mix`), and so is its
    transpose: one pass over the kernel each way (docs/benchmarks.md)."""
    _, g, _ = _MATRICES[m]
    g64 = np.asarray(g, np.float64)
    if isinstance(w, np.ndarray):
        u = np.einsum("ai,bj,ijco->abco", g64, g64, w.astype(np.float64))
        return u.reshape(-1, *w.shape[2:]).astype(w.dtype)
    return _mix(np.kron(g64, g64), w.reshape(9, *w.shape[2:]))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def sub_grid_outputs(size: int, d: int) -> int:
    """Valid outputs along one side of each of a dilation-``d`` convolution's sub-grids: a
    padded side of ``size`` holds ceil(size / d) sub-grid rows, of which all but 2 are
    valid outputs (what :func:`train_tile_for` calls ``out_side``)."""
    return _ceil_div(size, d) - 2


def _tiles_per_side(size: int, d: int, m: int) -> int:
    """Output tiles along one side of each sub-grid, m outputs per tile."""
    return _ceil_div(sub_grid_outputs(size, d), m)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _input_tiles(xp: Array, m: int, d: int, th: int, tw: int) -> Array:
    """The Winograd input transform Bᵀ X B of every (m + 2)² tile, taken in place from the
    padded input ``xp`` (n, d·m·(th + 1), d·m·(tw + 1), c): tile t of sub-grid p starts at row
    d·m·t + p, its element i at d·(m·t + i) + p. Returns ((m + 2)², n, th, d, tw, d, c)."""
    bt, _, _ = _MATRICES[m]
    n, _, _, c = xp.shape
    x8 = xp.reshape(n, th + 1, m, d, tw + 1, m, d, c)  # (tile, phase, sub-grid) per side
    rows = _combine(bt, [x8[:, i // m:i // m + th, i % m] for i in range(m + 2)])
    return jnp.stack([t for r in rows for t in _combine(
        bt, [r[:, :, :, j // m:j // m + tw, j % m] for j in range(m + 2)])])


def _input_tiles_fwd(xp, m, d, th, tw):
    return _input_tiles(xp, m, d, th, tw), xp.shape


def _input_tiles_bwd(m, d, th, tw, shape, dv):
    """The transform's transpose, written out: each tile's gradient B dV Bᵀ (one product of
    B ⊗ B with the (m + 2)² transformed tiles, :func:`_mix`), then the
    overlapping tiles added per phase (tiles t and t + 1 overlap by two rows: four shifted
    sums per phase). ``jax.grad`` of the forward pads every strided slice to the input's
    size and adds the 16 or 36 copies, which makes the backward of r50's 3×3 layers
    slower (docs/benchmarks.md)."""
    bt, _, _ = _MATRICES[m]
    a = m + 2
    b = np.asarray(bt, np.float64).T
    grad = _mix(np.kron(b, b), dv).reshape(a, a, *dv.shape[1:])
    phases = []
    for ri in range(m):
        row = []
        for rj in range(m):
            acc = None  # tile element i = m·qi + ri lands in tile t + qi, phase ri
            for qi in range(2):
                for qj in range(2):
                    i, j = m * qi + ri, m * qj + rj
                    if i < a and j < a:
                        t = jnp.pad(grad[i, j], ((0, 0), (qi, 1 - qi), (0, 0), (qj, 1 - qj),
                                                 (0, 0), (0, 0)))
                        acc = t if acc is None else acc + t
            row.append(acc)
        phases.append(jnp.stack(row, axis=4))  # (n, th + 1, d, tw + 1, m, d, c)
    return (jnp.stack(phases, axis=2).reshape(shape),)


_input_tiles.defvjp(_input_tiles_fwd, _input_tiles_bwd)


def conv3x3(x: Array, u: Array, padding: int, dilation: int = 1) -> Array:
    """``lax.conv`` of NHWC ``x`` with a 3×3 kernel given as ``kernel_transform(kernel)``:
    stride 1, symmetric ``padding``, ``dilation``. The tiles are read from the padded input
    and the output tiles written back by reshapes alone, the d² sub-grids interleaved in
    both, so no transposed copy is made."""
    m, d = tile_of(u), dilation
    a = m + 2
    n, h, w, c = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    ho, wo = hp - 2 * d, wp - 2 * d
    th, tw = _tiles_per_side(hp, d, m), _tiles_per_side(wp, d, m)
    xp = jnp.pad(x, ((0, 0), (padding, d * m * (th + 1) - h - padding),
                     (padding, d * m * (tw + 1) - w - padding), (0, 0)))
    v = _input_tiles(xp, m, d, th, tw)
    prod = jax.lax.dot_general(v.reshape(a * a, -1, c), u.astype(x.dtype),
                               (((2,), (1,)), ((0,), (0,))))
    prod = prod.reshape(a, a, n, th, d, tw, d, -1)
    _, _, at = _MATRICES[m]
    rows = _combine(at, [prod[i] for i in range(a)])
    y = jnp.stack([jnp.stack(_combine(at, [r[j] for j in range(a)]), axis=4) for r in rows],
                  axis=2)  # (n, th, m, d, tw, m, d, O)
    return y.reshape(n, th * m * d, tw * m * d, -1)[:, :ho, :wo]
