"""pysot's crop geometry, written once for tracking, data preparation, the input pipeline,
anchor targets and the tracker's scale penalty.

A target of w×h is seen with context: the square around it has side
``s_z = sqrt((w + p)(h + p))`` with ``p = context·(w + h)``. The template is that square
resized to ``exemplar`` pixels, so the crop scale is ``exemplar / s_z``; the search region
keeps that scale over ``instance`` pixels, so its side is ``s_z · instance / exemplar``.

Each function takes NumPy or JAX values and answers in the same kind, so the host-side data
code and the jitted tracker share the arithmetic operation for operation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _xp(*values):
    return jnp if any(isinstance(v, jax.Array) for v in values) else np


def context_side(w, h, context: float):
    """``sqrt((w + p)(h + p))``, ``p = context·(w + h)``: pysot's s_z before rounding."""
    p = context * (w + h)
    return _xp(w, h).sqrt((w + p) * (h + p))


def crop_scale(s_z, exemplar: int):
    """Crop pixels per frame pixel: the template's ``s_z`` square becomes ``exemplar``."""
    return exemplar / s_z


def search_side(s_z, exemplar: int, instance: int):
    """The search region's side in frame pixels: ``instance`` crop pixels at the
    template's scale."""
    return s_z * (instance / exemplar)


def padded_side(s_z, exemplar: int, out: int):
    """The same side as :func:`search_side`, in the arithmetic of pysot's ``par_crop``
    (``s_z + 2·((out - exemplar)/2) / (exemplar/s_z)``), so that pre-crops match its
    pixels; the two differ by float rounding only."""
    return s_z + 2 * ((out - exemplar) / 2) / crop_scale(s_z, exemplar)


def centred_box(size, scale, out_size: int):
    """Corners (x1, y1, x2, y2) of a target of ``size`` (w, h) on an ``out_size`` crop
    centred on it at ``scale`` crop pixels per frame pixel (pysot's first-frame box)."""
    c = out_size // 2
    w, h = size[0] * scale, size[1] * scale
    return _xp(w, h).stack([c - w * 0.5, c - h * 0.5, c + w * 0.5, c + h * 0.5])
