"""Square crops with mean padding, resized exactly as OpenCV's uint8 bilinear resize.

The upstream tracker cuts a ``side``-pixel square around the target (parts outside the
frame take the first frame's mean colour) and resizes it with ``cv2.resize``. OpenCV works
in 11-bit fixed point for uint8 images; we reproduce its integer arithmetic so that the
network sees bit-identical crops. The crop side is a traced value, the output side static,
so a single compiled function serves every frame.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


def quotient_f32(num: jnp.ndarray, den: int) -> jnp.ndarray:
    """``num / den`` rounded once to float32 (to nearest, ties to even), by long division.

    A float division cannot be trusted to round once: XLA rewrites division by a broadcast
    scalar into multiplication by its reciprocal (under ``vmap`` even an opaque denominator
    becomes a broadcast), and on a GPU (H100) it did not round like NumPy's even unbatched.
    Both moved OpenCV's resize taps by one weight step. Here |num| // den is exact in int32
    and the 25 significant bits after it come from a remainder that stays below ``den``; the
    float result is the rounded 24-bit significand times a power of two, both exact. Needs
    |num| / den < 2**24.
    """
    a = jnp.abs(num).astype(jnp.int32)
    m, r = a // den, a % den
    e = jnp.zeros_like(m)

    def bit(_, carry):  # one more binary digit while the significand has fewer than 25
        m, r, e = carry
        more = m < (1 << 24)
        r2 = 2 * r
        b = (r2 >= den).astype(jnp.int32)
        return (jnp.where(more, 2 * m + b, m), jnp.where(more, r2 - b * den, r),
                jnp.where(more, e + 1, e))

    # 24 + 1 bits, plus up to log2(den) leading zeros of a quotient below 1. A Python loop
    # writes the digits out as straight-line integer ops: a rolled loop costs a kernel launch
    # and a host sync per digit on a GPU, and ONNX converters take plain ops (no scan).
    carry, digits = (m, r, e), 26 + den.bit_length()
    for i in range(digits):
        carry = bit(i, carry)
    m, r, e = carry
    guard, m = m & 1, m >> 1
    m = m + (guard & ((r != 0) | (m & 1)).astype(jnp.int32))  # to nearest, ties to even
    # m <= 2**24 here (a carry out of 24 bits is still exact); scale by 2**-(e - 1), an exact
    # product. The powers come from a table: jnp.ldexp works on the bits (a bitcast), which
    # ONNX cannot express.
    powers = jnp.asarray(np.ldexp(1.0, 1 - np.arange(digits + 1)), jnp.float32)
    mag = m.astype(jnp.float32) * powers[e]
    return jnp.where(num < 0, -mag, mag)


def _source_taps(out_size: int, in_size: jnp.ndarray):
    """Per output index: first source index, and its (w0, w1) fixed-point weights.

    OpenCV computes ``f = float((d + 0.5) * in / out - 0.5)``; the exact rational
    ((2d + 1) in - out) / (2 out) rounded once to float32 gives the same float.
    """
    d = jnp.arange(out_size, dtype=jnp.int32)
    f = quotient_f32((2 * d + 1) * in_size - out_size, 2 * out_size)
    s = jnp.floor(f)
    t = f - s
    w0 = jnp.round((jnp.float32(1.0) - t) * _COEF_SCALE).astype(jnp.int32)
    return s.astype(jnp.int32), w0


def resize_weights(out_size: int, in_size: jnp.ndarray):
    """Horizontal and vertical taps: ((x0, x1, wx0, wx1), (y0, y1, wy0, wy1))."""
    s, w0 = _source_taps(out_size, in_size)
    # Horizontal: OpenCV clamps both the index and the fraction at the borders.
    border = (s < 0) | (s >= in_size - 1)
    xs = jnp.clip(s, 0, in_size - 1)
    wx0 = jnp.where(border, _COEF_SCALE, w0)
    x1 = jnp.minimum(xs + 1, in_size - 1)
    # Vertical: only the row indices are clamped; the weights are kept as computed.
    y0 = jnp.clip(s, 0, in_size - 1)
    y1 = jnp.clip(s + 1, 0, in_size - 1)
    return (xs, x1, wx0, _COEF_SCALE - wx0), (y0, y1, w0, _COEF_SCALE - w0)


def crop_and_resize(frame: jnp.ndarray, center: jnp.ndarray, side: jnp.ndarray,
                    out_size: int, fill: jnp.ndarray, frame_size: jnp.ndarray | None = None
                    ) -> jnp.ndarray:
    """pysot's ``get_subwindow``: a (out_size, out_size, C) uint8 crop of ``frame``.

    frame (H, W, C) uint8; center (2,) float (cx, cy); side: crop side in pixels (integer
    valued); fill (C,) uint8 colour for parts outside the frame. ``frame_size`` (2,) int
    (height, width): the image fills only that top-left part of ``frame`` (a canvas shared
    by frames of several sizes, so one compilation serves them all); pixels beyond it are
    outside the image, exactly as beyond the border of a frame of that size.
    """
    h, w = frame_extent(frame, frame_size)
    side = jnp.asarray(side).astype(jnp.int32)
    c = (side.astype(jnp.float32) + 1.0) / 2.0
    xmin = jnp.floor(center[0] - c + 0.5).astype(jnp.int32)
    ymin = jnp.floor(center[1] - c + 0.5).astype(jnp.int32)
    (x0, x1, wx0, wx1), (y0, y1, wy0, wy1) = resize_weights(out_size, side)

    def gather(rows, cols):
        r = rows + ymin
        q = cols + xmin
        inside = ((r >= 0) & (r < h))[:, None] & ((q >= 0) & (q < w))[None, :]
        vals = frame[jnp.clip(r, 0, h - 1)][:, jnp.clip(q, 0, w - 1)]
        return jnp.where(inside[..., None], vals, fill.astype(frame.dtype)).astype(jnp.int32)

    def row_pass(rows):
        return gather(rows, x0) * wx0[None, :, None] + gather(rows, x1) * wx1[None, :, None]

    r0, r1 = row_pass(y0), row_pass(y1)
    v0, v1 = wy0[:, None, None], wy1[:, None, None]
    out = ((v0 * (r0 >> 4)) >> 16) + ((v1 * (r1 >> 4)) >> 16)
    return ((out + 2) >> 2).astype(jnp.uint8)


def frame_extent(frame: jnp.ndarray, frame_size: jnp.ndarray | None = None):
    """(height, width) of the image in ``frame``: its shape, or ``frame_size`` on a canvas."""
    if frame_size is None:
        return frame.shape[0], frame.shape[1]
    frame_size = jnp.asarray(frame_size, jnp.int32)
    return frame_size[0], frame_size[1]


def frame_mean_fill(frame: jnp.ndarray, frame_size: jnp.ndarray | None = None) -> jnp.ndarray:
    """Per-channel mean truncated to uint8, exactly (integer sums, no float rounding).

    Upstream stores the float64 mean into a uint8 array, i.e. truncates it. Integer sums in
    int32 are exact for frames up to 8.4 megapixels (3840x2160 fits); int32 rather than
    uint32 because ONNX runtimes have no unsigned sum. ``frame_size``: as in
    :func:`crop_and_resize`, the mean of that top-left part alone.
    """
    n = frame.shape[0] * frame.shape[1]
    if n * 255 >= 2 ** 31:
        raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} pixels: the exact mean "
                         "colour needs at most 8.4 megapixels")
    pixels = frame.astype(jnp.int32)
    if frame_size is not None:
        h, w = frame_extent(frame, frame_size)
        inside = ((jnp.arange(frame.shape[0]) < h)[:, None]
                  & (jnp.arange(frame.shape[1]) < w)[None, :])
        pixels = jnp.where(inside[..., None], pixels, 0)
        n = h * w
    total = jnp.sum(pixels, axis=(0, 1), dtype=jnp.int32)
    return (total // jnp.int32(n)).astype(jnp.uint8)
