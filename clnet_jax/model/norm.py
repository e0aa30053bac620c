"""Batch normalisation on batch statistics, with its gradient written as two passes.

Differentiated by ``jax.grad``, the normalisation ``(x - mean) * rsqrt(var + eps) * scale +
bias`` with ``mean`` and ``var`` taken over the batch becomes several passes over ``x``:
the cotangent of ``x`` arrives along three paths (directly, through the mean and through
the variance) and XLA's CPU backend reads and writes the map for each. The closed form

    dx = scale · inv · (dy − mean(dy) − x̂ · mean(dy · x̂)),   x̂ = (x − mean) · inv

needs one reduction pass (the sums of ``dy`` and ``dy · x̂``, which also give the scale's and
bias's gradients) and one elementwise pass. It is the same derivative: the forward pass is
unchanged, and gradients agree with ``jax.grad`` of the plain formula to float rounding
(tests/model/test_norm.py, in float64 to 1e-12).

With ``axis_name`` (synchronised BN inside ``shard_map``) the moments are averaged over
the mapped axis and so are the two sums of the backward pass, so that each shard's ``dx``
is the derivative of the sum of all shards' losses; the scale's and bias's gradients stay
the shard's own share, summed over shards with the other parameters' gradients.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

Array = jnp.ndarray


def _global_mean(x: Array, axes: tuple, axis_name: str | None) -> Array:
    m = jnp.mean(x, axes)
    return m if axis_name is None else jax.lax.pmean(m, axis_name)


def batch_moments(x: Array, axis_name: str | None = None) -> tuple[Array, Array]:
    """Mean and biased variance over every axis but the last (and over ``axis_name``)."""
    axes = tuple(range(x.ndim - 1))
    mean = _global_mean(x, axes, axis_name)
    return mean, _global_mean(jnp.square(x - mean), axes, axis_name)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm(x: Array, scale: Array, bias: Array, epsilon: float,
               axis_name: str | None = None) -> tuple[Array, Array, Array]:
    """(y, mean, var): ``x`` (…, C) normalised by its batch moments, then scaled and shifted.
    ``mean`` and ``var`` are returned for the running averages."""
    return _forward(x, scale, bias, epsilon, axis_name)[0]


def _forward(x, scale, bias, epsilon, axis_name):
    mean, var = batch_moments(x, axis_name)
    inv = jax.lax.rsqrt(var + epsilon)
    y = (x - mean) * (inv * scale) + bias
    return (y, mean, var), (x, mean, inv, scale)


def _backward(epsilon, axis_name, residuals, cotangents):
    del epsilon  # inside inv already
    x, mean, inv, scale = residuals
    dy, dmean, dvar = cotangents
    axes = tuple(range(x.ndim - 1))
    n = math.prod(x.shape[:-1])
    centred = x - mean
    sum_dy = jnp.sum(dy, axes)
    sum_dy_c = jnp.sum(dy * centred, axes)  # the scale's gradient, times 1 / inv
    # over the whole batch of N: the means of dy and dy·(x − mean), and the mean's and
    # variance's own cotangents / N (zero where only the running averages read them);
    # pmean(s) / n = psum(s) / N
    g_dy, g_dy_c, g_dmean, g_dvar = (
        (s / n) if axis_name is None else jax.lax.pmean(s, axis_name) / n
        for s in (sum_dy, sum_dy_c, dmean, dvar))
    k = scale * inv
    dx = (k * (dy - g_dy - centred * (inv * inv) * g_dy_c)
          + g_dmean + centred * (2.0 * g_dvar))
    return dx, sum_dy_c * inv, sum_dy


batch_norm.defvjp(_forward, _backward)
