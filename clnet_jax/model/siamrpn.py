"""SiamRPN++ (dilated ResNet, neck, depthwise RPN heads) in Flax Linen, NHWC.

The module stops at the hidden map h0 of every head. The last 1x1 convolution of each head
(theta1 in the CLNet paper) and the fusion weights live in a separate, explicit pytree
``heads`` that :func:`apply_heads` consumes, so that CLNet and other weight generators can
produce head parameters as ordinary values.

``heads`` = {'rpn2': {'cls': {'w': (hidden, 2A), 'b': (2A,)}, 'loc': {...}}, 'rpn3': ...,
'cls_weight': (L,), 'loc_weight': (L,)}.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from clnet_jax.model import ops, winograd
from clnet_jax.model.conv import Conv, pointwise
from clnet_jax.model.xcorr import xcorr_depthwise

Array = jnp.ndarray
BRANCHES = ("cls", "loc")


class BatchNorm(nn.Module):
    """``torch.nn.BatchNorm2d`` semantics over the last axis.

    Normalises with the biased batch variance and folds the *unbiased* one into the running
    average with torch's momentum 0.1 (Flax's own BatchNorm keeps the biased one, which the
    golden running statistics tell apart). With ``axis_name`` the batch moments are averaged
    over that mapped axis (synchronised BN: equal to one device holding the whole batch).
    Variables are named like Flax's (params scale/bias, batch_stats mean/var).
    """
    axis_name: str | None = None
    momentum: float = 0.1
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,))
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,))
        dtype = x.dtype
        x = x.astype(jnp.promote_types(dtype, jnp.float32))  # statistics in >= float32
        if not train:
            mean, var = ra_mean.value, ra_var.value
        else:
            axes = tuple(range(x.ndim - 1))
            n = math.prod(x.shape[:-1])
            mean = jnp.mean(x, axes)
            if self.axis_name is not None:
                mean = jax.lax.pmean(mean, self.axis_name)
                n = n * jax.lax.psum(1, self.axis_name)
            var = jnp.mean(jnp.square(x - mean), axes)
            if self.axis_name is not None:
                var = jax.lax.pmean(var, self.axis_name)
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / jnp.maximum(n - 1, 1))
        y = (x - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
        return y.astype(dtype) if dtype == jnp.bfloat16 else y


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (torch semantics) (+ ReLU)."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    relu: bool = True
    axis_name: str | None = None
    winograd_min_channels: int = 0  # model/conv.py: 3x3 convolutions as products in training
    winograd_tile: str = "2"  # their Winograd tile (winograd.train_tile_for)

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        p = self.padding
        conv = Conv(self.features, self.kernel, self.stride, p, self.dilation,
                    self.winograd_min_channels, self.winograd_tile, name="conv")
        winograd_ok = self.kernel == 3 and self.stride == 1
        if winograd_ok and self.has_variable("winograd", "conv"):
            # inference params (tracker.prepare): the kernel transformed once at load
            x = winograd.conv3x3(x, self.get_variable("winograd", "conv"), p, self.dilation)
        else:
            x = conv(x)
            if (winograd_ok and self.is_mutable_collection("winograd")
                    and not self.is_initializing()):  # only tracker.prepare asks for it
                self.put_variable("winograd", "conv", winograd.kernel_transform(
                    conv.variables["params"]["kernel"]))
        x = BatchNorm(self.axis_name, name="bn")(x, train)
        return nn.relu(x) if self.relu else x


class Bottleneck(nn.Module):
    """pysot's atrous bottleneck; ``shortcut`` = (kernel, padding, dilation) or None."""
    planes: int
    stride: int = 1
    dilation: int = 1
    shortcut: tuple | None = None
    axis_name: str | None = None
    winograd_min_channels: int = 0
    winograd_tile: str = "2"

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        dilation, padding = self.dilation, 2 - self.stride
        if self.shortcut is not None and dilation > 1:
            dilation = dilation // 2
            padding = dilation
        if dilation > 1:
            padding = dilation
        ax = self.axis_name
        wino = dict(winograd_min_channels=self.winograd_min_channels,
                    winograd_tile=self.winograd_tile)
        out = ConvBN(self.planes, 1, axis_name=ax, name="conv1")(x, train)
        out = ConvBN(self.planes, 3, self.stride, padding, dilation, axis_name=ax,
                     **wino, name="conv2")(out, train)
        out = ConvBN(self.planes * 4, 1, relu=False, axis_name=ax, name="conv3")(out, train)
        if self.shortcut is not None:
            k, p, d = self.shortcut
            x = ConvBN(self.planes * 4, k, self.stride, p, d, relu=False, axis_name=ax,
                       **wino, name="downsample")(x, train)
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


BACKBONE_LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")


class ResNet(nn.Module):
    """Dilated ResNet: layer2 stride 2, layer3/4 stride 1 with dilation 2/4.

    ``train`` is a bool (every BN alike) or a collection of the names in
    ``BACKBONE_LAYERS`` whose BN uses batch statistics (pysot's trainable layers); the
    others stay in inference mode, and with such a collection no gradient flows into the
    frozen layers before the first trainable one (they get none anyway: this saves their
    backward pass).
    """
    width: int = 64
    blocks: Sequence[int] = (3, 4, 6, 3)
    used_layers: Sequence[int] = (2, 3, 4)
    axis_name: str | None = None
    winograd_min_channels: int = 0
    winograd_tile: str = "2"

    @nn.compact
    def __call__(self, x: Array, train: bool | frozenset = False) -> list[Array]:
        layers = set(BACKBONE_LAYERS) if train is True else set(train or ())
        # only an explicit layer set freezes (a plain False keeps gradients: inference-mode
        # BN is also used to differentiate the whole model); frozen_prefix: every layer so
        # far is frozen, so the gradient stops at the next layer's input
        frozen_prefix = not isinstance(train, bool) and "stem" not in layers
        x = ConvBN(self.width, 7, 2, 0, axis_name=self.axis_name, name="stem")(
            x, "stem" in layers)
        x = ops.max_pool_3x3_s2(x)
        in_ch, feats = self.width, []
        plan = [(1, 1), (2, 1), (1, 2), (1, 4)]  # (stride, dilation) of layers 1..4
        for layer in range(1, max(self.used_layers) + 1):
            name = f"layer{layer}"
            if frozen_prefix:
                x = jax.lax.stop_gradient(x)
            if name in layers:
                frozen_prefix = False
            stride, dilation = plan[layer - 1]
            planes = self.width * 2 ** (layer - 1)
            for j in range(self.blocks[layer - 1]):
                spec = _shortcut_spec(stride, dilation, in_ch, planes * 4) if j == 0 else None
                x = Bottleneck(planes, stride if j == 0 else 1, dilation, spec, self.axis_name,
                               self.winograd_min_channels, self.winograd_tile,
                               name=f"layer{layer}_{j}")(x, name in layers)
                in_ch = planes * 4
            if layer in self.used_layers:
                feats.append(jax.lax.stop_gradient(x) if frozen_prefix else x)
        return feats


class DepthwiseHidden(nn.Module):
    """A depthwise-xcorr RPN head up to its hidden map h0 (theta1 is applied elsewhere)."""
    hidden: int
    axis_name: str | None = None
    winograd_min_channels: int = 0
    winograd_tile: str = "2"

    def setup(self):
        ax = self.axis_name
        wino = dict(winograd_min_channels=self.winograd_min_channels,
                    winograd_tile=self.winograd_tile)
        self.conv_kernel = ConvBN(self.hidden, 3, axis_name=ax, **wino)
        self.conv_search = ConvBN(self.hidden, 3, axis_name=ax, **wino)
        self.head0 = ConvBN(self.hidden, 1, axis_name=self.axis_name)

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
    axis_name: str | None = None  # BN statistics synchronised over this mapped axis
    dtype: str = "float32"  # compute dtype of convolutions ('bfloat16': params stay float32;
    # 'float64': everything in float64, needs jax_enable_x64)
    winograd_min_channels: int = 0  # the 3x3 convolutions (backbone, heads) this wide as
    # matrix products inside the program (training on CPUs; model/conv.py), 0: never
    winograd_tile: str = "2"  # their Winograd output tile (winograd.train_tile_for)

    def setup(self):
        ax = self.axis_name
        self.backbone = ResNet(self.width, tuple(self.blocks), tuple(self.used_layers), ax,
                               self.winograd_min_channels, self.winograd_tile)
        # Flax names dict members "<attr>_<key>": neck_2, rpn_2_cls, ...
        self.neck = {str(l): ConvBN(self.neck_channels, 1, relu=False, axis_name=ax)
                     for l in self.used_layers}
        self.rpn = {f"{l}_{b}": DepthwiseHidden(self.hidden, ax, self.winograd_min_channels,
                                                self.winograd_tile)
                    for l in self.used_layers for b in BRANCHES}

    def features(self, img: Array, train: bool = False,
                 backbone_train: bool | frozenset | None = None) -> list[Array]:
        """Neck outputs per level; template maps narrower than 20 keep their centre.

        ``train``: BN of neck and heads on batch statistics; ``backbone_train`` (default
        ``train``): the same for the backbone, or the names of its layers that do.
        """
        bt = train if backbone_train is None else backbone_train
        feats = self.backbone(img.astype(jnp.float32 if self.dtype == "float32" else self.dtype), bt)
        outs = []
        for l, f in zip(self.used_layers, feats):
            f = self.neck[str(l)](f, train)
            if f.shape[2] < 20:
                lo = (f.shape[2] - self.center_size) // 2
                f = f[:, lo:lo + self.center_size, lo:lo + self.center_size]
            outs.append(f)
        return outs

    def template_kernels(self, z: Array, train: bool = False, backbone_train=None) -> dict:
        zf = self.features(z, train, backbone_train)
        return {f"rpn{l}": {b: self.rpn[f"{l}_{b}"].conv_kernel(f, train) for b in BRANCHES}
                for l, f in zip(self.used_layers, zf)}

    def search_hidden(self, kernels: dict, x: Array, train: bool = False,
                      backbone_train=None) -> dict:
        xf = self.features(x, train, backbone_train)
        out = {}
        for l, f in zip(self.used_layers, xf):
            out[f"rpn{l}"] = {}
            for b in BRANCHES:
                # hidden maps leave in float32: theta_1, CLNet and the losses run in float32
                k = kernels[f"rpn{l}"][b]
                h = self.rpn[f"{l}_{b}"](k.astype(f.dtype) if self.dtype == "bfloat16" else k,
                                         f, train)
                out[f"rpn{l}"][b] = h.astype(jnp.promote_types(h.dtype, jnp.float32))
        return out

    def __call__(self, z: Array, x: Array, train: bool = False, backbone_train=None) -> dict:
        """Template then search, as upstream: each BN sees the templates, then the searches."""
        return self.search_hidden(self.template_kernels(z, train, backbone_train), x, train,
                                  backbone_train)


def level_names(heads: dict) -> list[str]:
    return sorted(k for k in heads if k.startswith("rpn"))


def apply_head(theta: dict, hidden: Array) -> Array:
    """theta1: the last 1x1 convolution of one head, (B, H, W, hidden) -> (B, H, W, out)."""
    return pointwise(hidden, theta["w"]) + theta["b"]


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


ARCH_FIELDS = ("width", "blocks", "used_layers", "neck_channels", "hidden")


def model_fields(model_cfg) -> dict:
    """The :class:`SiamRPN` fields that ``cfg.model`` (or a checkpoint's ``arch.json``)
    holds, as keyword arguments: the architecture is written once, in ``cfg.model``."""
    return {k: tuple(model_cfg[k]) if isinstance(model_cfg[k], (list, tuple)) else model_cfg[k]
            for k in ARCH_FIELDS}


def model_from_config(cfg, axis_name: str | None = None, dtype: str = "float32",
                      winograd_min_channels: int = 0, winograd_tile: str = "2") -> SiamRPN:
    """The network of ``cfg.model`` (``axis_name``: BN synchronised over that mapped axis;
    ``winograd_min_channels``, ``winograd_tile``: see :class:`SiamRPN`)."""
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("compute_dtype='float64' needs JAX's 64-bit mode: set JAX_ENABLE_X64=1 "
                         "in the environment (or jax.config.update('jax_enable_x64', True) "
                         "before building the model); without it every array would silently "
                         "stay float32")
    return SiamRPN(**model_fields(cfg), axis_name=axis_name, dtype=dtype,
                   winograd_min_channels=winograd_min_channels, winograd_tile=winograd_tile)


def init_params(cfg, key) -> dict:
    """Random weights for a config: {'model': {'params', 'batch_stats'}, 'heads': ...}."""
    net = model_from_config(cfg.model)
    k_model, k_heads = jax.random.split(key)
    z = jnp.zeros((1, cfg.track.exemplar_size, cfg.track.exemplar_size, 3), jnp.float32)
    x = jnp.zeros((1, cfg.track.instance_size, cfg.track.instance_size, 3), jnp.float32)
    variables = jax.jit(net.init)(k_model, z, x)
    shapes = heads_shapes(cfg)
    hidden = cfg.model.hidden
    heads = {}
    for level in (f"rpn{l}" for l in cfg.model.used_layers):  # the keys' split order
        heads[level] = {}
        for branch in BRANCHES:
            k_heads, k = jax.random.split(k_heads)
            w, b = shapes[level][branch]["w"], shapes[level][branch]["b"]
            heads[level][branch] = {"w": jax.random.normal(k, w) * (1.0 / hidden) ** 0.5,
                                    "b": jnp.zeros(b)}
    heads["cls_weight"] = jnp.ones(shapes["cls_weight"])
    heads["loc_weight"] = jnp.ones(shapes["loc_weight"])
    return {"model": dict(variables), "heads": heads}


def heads_shapes(cfg) -> dict:
    """Shapes of a config's heads tree: theta_1 (w, b) per level and branch, fusion weights."""
    a = len(cfg.anchor.ratios) * len(cfg.anchor.scales)
    h = cfg.model.hidden
    shapes = {f"rpn{l}": {"cls": {"w": (h, 2 * a), "b": (2 * a,)},
                          "loc": {"w": (h, 4 * a), "b": (4 * a,)}}
              for l in cfg.model.used_layers}
    n = len(cfg.model.used_layers)
    shapes["cls_weight"] = (n,)
    shapes["loc_weight"] = (n,)
    return shapes
