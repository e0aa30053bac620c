"""SiamRPN++ (dilated ResNet, neck, depthwise RPN heads) in Flax Linen, NHWC.

The module stops at the hidden map h0 of every head. The last 1x1 convolution of each head
(theta1 in the CLNet paper) and the fusion weights live in a separate, explicit pytree
``heads`` that :func:`apply_heads` consumes, so that CLNet and other weight generators can
produce head parameters as ordinary values.

``heads`` = {'rpn2': {'cls': {'w': (hidden, 2A), 'b': (2A,)}, 'loc': {...}}, 'rpn3': ...,
'cls_weight': (L,), 'loc_weight': (L,)}.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from clnet_jax.xcorr import xcorr_depthwise

Array = jnp.ndarray
BRANCHES = ("cls", "loc")


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (+ ReLU); torch's momentum 0.1 is Flax's 0.9."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    relu: bool = True

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        p = self.padding
        x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                    padding=((p, p), (p, p)), kernel_dilation=self.dilation, use_bias=False,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         name="bn")(x)
        return nn.relu(x) if self.relu else x


class Bottleneck(nn.Module):
    """pysot's atrous bottleneck; ``shortcut`` = (kernel, padding, dilation) or None."""
    planes: int
    stride: int = 1
    dilation: int = 1
    shortcut: tuple | None = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        dilation, padding = self.dilation, 2 - self.stride
        if self.shortcut is not None and dilation > 1:
            dilation = dilation // 2
            padding = dilation
        if dilation > 1:
            padding = dilation
        out = ConvBN(self.planes, 1, name="conv1")(x, train)
        out = ConvBN(self.planes, 3, self.stride, padding, dilation, name="conv2")(out, train)
        out = ConvBN(self.planes * 4, 1, relu=False, name="conv3")(out, train)
        if self.shortcut is not None:
            k, p, d = self.shortcut
            x = ConvBN(self.planes * 4, k, self.stride, p, d, relu=False,
                       name="downsample")(x, train)
        return nn.relu(out + x)


def _shortcut_spec(stride: int, dilation: int, in_ch: int, out_ch: int) -> tuple | None:
    """Upstream rule: 1x1 shortcut when nothing changes but width, else a 3x3 one."""
    if stride == 1 and in_ch == out_ch:
        return None
    if stride == 1 and dilation == 1:
        return (1, 0, 1)
    if dilation > 1:
        return (3, dilation // 2, dilation // 2)
    return (3, 0, 1)


class ResNet(nn.Module):
    """Dilated ResNet: layer2 stride 2, layer3/4 stride 1 with dilation 2/4."""
    width: int = 64
    blocks: Sequence[int] = (3, 4, 6, 3)
    used_layers: Sequence[int] = (2, 3, 4)

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> list[Array]:
        x = ConvBN(self.width, 7, 2, 0, name="stem")(x, train)
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        in_ch, feats = self.width, []
        plan = [(1, 1), (2, 1), (1, 2), (1, 4)]  # (stride, dilation) of layers 1..4
        for layer in range(1, max(self.used_layers) + 1):
            stride, dilation = plan[layer - 1]
            planes = self.width * 2 ** (layer - 1)
            for j in range(self.blocks[layer - 1]):
                spec = _shortcut_spec(stride, dilation, in_ch, planes * 4) if j == 0 else None
                x = Bottleneck(planes, stride if j == 0 else 1, dilation, spec,
                               name=f"layer{layer}_{j}")(x, train)
                in_ch = planes * 4
            if layer in self.used_layers:
                feats.append(x)
        return feats


class DepthwiseHidden(nn.Module):
    """A depthwise-xcorr RPN head up to its hidden map h0 (theta1 is applied elsewhere)."""
    hidden: int

    def setup(self):
        self.conv_kernel = ConvBN(self.hidden, 3)
        self.conv_search = ConvBN(self.hidden, 3)
        self.head0 = ConvBN(self.hidden, 1)

    def __call__(self, kernel: Array, search: Array, train: bool = False) -> Array:
        corr = xcorr_depthwise(self.conv_search(search, train), kernel)
        return self.head0(corr, train)


class SiamRPN(nn.Module):
    """Backbone + neck + the hidden part of the depthwise RPN heads.

    Methods (use with ``model.apply(variables, ..., method=...)``):
      ``template_kernels(z)``: per level/branch correlation kernels from a 127 crop;
      ``search_hidden(kernels, x)``: per level/branch hidden maps h0 (B, 25, 25, hidden).
    """
    width: int = 64
    blocks: Sequence[int] = (3, 4, 6, 3)
    used_layers: Sequence[int] = (2, 3, 4)
    neck_channels: int = 256
    hidden: int = 256
    center_size: int = 7

    def setup(self):
        self.backbone = ResNet(self.width, tuple(self.blocks), tuple(self.used_layers))
        # Flax names dict members "<attr>_<key>": neck_2, rpn_2_cls, ...
        self.neck = {str(l): ConvBN(self.neck_channels, 1, relu=False) for l in self.used_layers}
        self.rpn = {f"{l}_{b}": DepthwiseHidden(self.hidden)
                    for l in self.used_layers for b in BRANCHES}

    def features(self, img: Array, train: bool = False) -> list[Array]:
        """Neck outputs per level; template maps narrower than 20 keep their centre."""
        feats = self.backbone(img.astype(jnp.float32), train)
        outs = []
        for l, f in zip(self.used_layers, feats):
            f = self.neck[str(l)](f, train)
            if f.shape[2] < 20:
                lo = (f.shape[2] - self.center_size) // 2
                f = f[:, lo:lo + self.center_size, lo:lo + self.center_size]
            outs.append(f)
        return outs

    def template_kernels(self, z: Array, train: bool = False) -> dict:
        zf = self.features(z, train)
        return {f"rpn{l}": {b: self.rpn[f"{l}_{b}"].conv_kernel(f, train) for b in BRANCHES}
                for l, f in zip(self.used_layers, zf)}

    def search_hidden(self, kernels: dict, x: Array, train: bool = False) -> dict:
        xf = self.features(x, train)
        out = {}
        for l, f in zip(self.used_layers, xf):
            out[f"rpn{l}"] = {}
            for b in BRANCHES:
                out[f"rpn{l}"][b] = self.rpn[f"{l}_{b}"](kernels[f"rpn{l}"][b], f, train)
        return out

    def __call__(self, z: Array, x: Array, train: bool = False) -> dict:
        return self.search_hidden(self.template_kernels(z, train), x, train)


def level_names(heads: dict) -> list[str]:
    return sorted(k for k in heads if k.startswith("rpn"))


def apply_head(theta: dict, hidden: Array) -> Array:
    """theta1: the last 1x1 convolution of one head, (B, H, W, hidden) -> (B, H, W, out)."""
    return jnp.einsum("bhwc,co->bhwo", hidden, theta["w"]) + theta["b"]


def apply_heads(heads: dict, hidden: dict) -> tuple[dict, dict]:
    """Per-level (cls, loc) outputs from hidden maps and explicit head params."""
    cls = {l: apply_head(heads[l]["cls"], hidden[l]["cls"]) for l in level_names(heads)}
    loc = {l: apply_head(heads[l]["loc"], hidden[l]["loc"]) for l in level_names(heads)}
    return cls, loc


def fuse_levels(outputs: dict, weights: Array) -> Array:
    """Softmax-weighted sum of per-level maps (levels in sorted name order)."""
    w = jax.nn.softmax(weights, axis=0)
    return sum(w[i] * outputs[l] for i, l in enumerate(sorted(outputs)))


def rpn_outputs(heads: dict, hidden: dict) -> tuple[Array, Array]:
    """Fused (cls, loc) maps (B, 25, 25, 2A) and (B, 25, 25, 4A)."""
    cls, loc = apply_heads(heads, hidden)
    return fuse_levels(cls, heads["cls_weight"]), fuse_levels(loc, heads["loc_weight"])


def model_from_config(cfg) -> SiamRPN:
    return SiamRPN(width=cfg.width, blocks=tuple(cfg.blocks), used_layers=tuple(cfg.used_layers),
                   neck_channels=cfg.neck_channels, hidden=cfg.hidden)


def init_params(cfg, key) -> dict:
    """Random weights for a config: {'model': {'params', 'batch_stats'}, 'heads': ...}."""
    net = model_from_config(cfg.model)
    k_model, k_heads = jax.random.split(key)
    z = jnp.zeros((1, cfg.track.exemplar_size, cfg.track.exemplar_size, 3), jnp.float32)
    x = jnp.zeros((1, cfg.track.instance_size, cfg.track.instance_size, 3), jnp.float32)
    variables = jax.jit(net.init)(k_model, z, x)
    a = len(cfg.anchor.ratios) * len(cfg.anchor.scales)
    hidden = cfg.model.hidden
    heads = {}
    for level in cfg.model.used_layers:
        heads[f"rpn{level}"] = {}
        for branch, out in (("cls", 2 * a), ("loc", 4 * a)):
            k_heads, k = jax.random.split(k_heads)
            heads[f"rpn{level}"][branch] = {
                "w": jax.random.normal(k, (hidden, out)) * (1.0 / hidden) ** 0.5,
                "b": jnp.zeros(out)}
    n = len(cfg.model.used_layers)
    heads["cls_weight"] = jnp.ones(n)
    heads["loc_weight"] = jnp.ones(n)
    return {"model": dict(variables), "heads": heads}
