"""Upstream (pysot / CLNet) state dicts -> our param pytree (``clnet-convert`` writes it,
checked against the model: :func:`clnet_jax.model.weights.convert_checkpoint`).

The pytree has up to four parts: ``params`` and ``batch_stats`` of the Flax model, ``heads``
(theta1 and fusion weights, see :mod:`clnet_jax.model.siamrpn`) and, for CLNet checkpoints,
``clnet`` (encoders and decoders, see :mod:`clnet_jax.adapt.clnet`). Architecture numbers (width,
block counts, hidden size) are inferred from the keys and written next to the weights.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from clnet_jax.io.pth import flatten_state_dict, load_pth

_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
       "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # OIHW -> HWIO


def _convbn(path: list[str], idx: str, leaf: str, value: np.ndarray):
    """Sequential(conv, bn) member ``idx`` -> (collection, path, value)."""
    if idx == "0" and leaf == "weight":
        return "params", path + ["conv", "kernel"], _conv_kernel(value)
    if idx == "1" and leaf in _BN:
        coll, name = _BN[leaf]
        return coll, path + ["bn", name], value
    return None


def map_key(key: str, value: np.ndarray):
    """One upstream key -> (collection, path, value); 'skip' for counters; None if unknown."""
    if key.endswith("num_batches_tracked"):
        return "skip"
    m = re.fullmatch(r"backbone\.(conv1|bn1)\.(\w+)", key)
    if m:
        return _convbn(["backbone", "stem"], "0" if m[1] == "conv1" else "1", m[2], value)
    m = re.fullmatch(r"backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)", key)
    if m:
        return _convbn(["backbone", f"layer{m[1]}_{m[2]}", f"conv{m[4]}"],
                       "0" if m[3] == "conv" else "1", m[5], value)
    m = re.fullmatch(r"backbone\.layer(\d)\.(\d+)\.downsample\.(\d)\.(\w+)", key)
    if m:
        return _convbn(["backbone", f"layer{m[1]}_{m[2]}", "downsample"], m[3], m[4], value)
    m = re.fullmatch(r"neck\.downsample(\d)\.downsample\.(\d)\.(\w+)", key)
    if m:
        return _convbn([f"neck_{m[1]}"], m[2], m[3], value)
    m = re.fullmatch(r"rpn_head\.(cls|loc)_weight", key)
    if m:
        return "heads", [f"{m[1]}_weight"], value
    m = re.fullmatch(r"rpn_head\.rpn(\d)\.(cls|loc)\.(conv_kernel|conv_search|head)\.(\d)\.(\w+)", key)
    if m:
        lvl, br, part, idx, leaf = m.groups()
        if part == "head" and idx == "3":
            return "heads", [f"rpn{lvl}", br, "w" if leaf == "weight" else "b"], (
                value[:, :, 0, 0].T if leaf == "weight" else value)
        name = "head0" if part == "head" else part
        return _convbn([f"rpn_{lvl}_{br}", name], idx, leaf, value)
    m = re.fullmatch(r"rpn_head\.rpn(\d)\.(cls|loc)\.last_(weights|bias)0", key)
    if m:
        return "heads", [f"rpn{m[1]}", m[2], "w" if m[3] == "weights" else "b"], (
            value[:, :, 0, 0].T if m[3] == "weights" else value)
    m = re.fullmatch(r"rpn_head\.rpn(\d)\.(cls|loc)\.encoder\.encoder_mu\.conv1x1(_\d)?\.(\d)\.(\w+)", key)
    if m:
        block = {None: "block1", "_2": "block2", "_3": "block3"}[m[3]]
        r = _convbn([f"rpn{m[1]}", m[2], "encoder", block], m[4], m[5], value)
        return None if r is None else ("clnet_" + r[0], r[1], r[2])
    m = re.fullmatch(r"rpn_head\.rpn(\d)\.(cls|loc)\.decoder\.decoder_mu\."
                     r"(deconv1|deconv1_2|deconv2)\.0\.weight", key)
    if m:
        fc = {"deconv1": "fc1", "deconv1_2": "fc2", "deconv2": "fc3"}[m[3]]
        return "clnet_params", [f"rpn{m[1]}", m[2], "decoder", fc], value[:, :, 0, 0].T
    return None


def _set(tree: dict, path: list[str], value: Any):
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


_TRACKER_PREFIXES = ("backbone.", "neck.", "rpn_head.")


def is_backbone_only(sd: dict) -> bool:
    """An ImageNet ResNet state dict (pysot's ``pretrained_models/resnet50.model``)."""
    return "conv1.weight" in sd and not any(k.startswith(_TRACKER_PREFIXES) for k in sd)


def classifier_keys(sd: dict) -> list[str]:
    """The ImageNet classifier (``fc.*``) of a backbone-only file: not used, reported."""
    return sorted(k for k in sd if k.startswith("fc.")) if is_backbone_only(sd) else []


def convert_state_dict(sd: dict[str, np.ndarray]) -> tuple[dict, dict, list[str]]:
    """Returns (tree, architecture info, unmapped keys).

    A backbone-only ResNet file gives ``{'model': {'params': {'backbone'}, 'batch_stats':
    {'backbone'}}}`` and ``arch['kind'] = 'backbone'``; its ``fc.*`` keys are left out (see
    :func:`classifier_keys`), not counted as unmapped.
    """
    if is_backbone_only(sd):
        ignored = set(classifier_keys(sd))
        sd = {f"backbone.{k}": v for k, v in sd.items() if k not in ignored}
    tree: dict = {}
    unmapped = []
    for key, value in sd.items():
        r = map_key(key, np.asarray(value))
        if r == "skip":
            continue
        if r is None:
            unmapped.append(key)
            continue
        coll, path, v = r
        coll_path = {"params": ["model", "params"], "batch_stats": ["model", "batch_stats"],
                     "heads": ["heads"], "clnet_params": ["clnet", "params"],
                     "clnet_batch_stats": ["clnet", "batch_stats"]}[coll]
        _set(tree, coll_path + path, np.asarray(v, np.float32))
    return tree, infer_architecture(sd), unmapped


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
    """Width, block counts, used layers, neck and hidden sizes from the key set."""
    arch: dict = {}
    if "backbone.conv1.weight" in sd:
        arch["width"] = int(sd["backbone.conv1.weight"].shape[0])
    blocks = []
    for layer in range(1, 5):
        ids = {int(m[1]) for k in sd if (m := re.match(rf"backbone\.layer{layer}\.(\d+)\.", k))}
        blocks.append(max(ids) + 1 if ids else 0)
    arch["blocks"] = blocks
    levels = sorted({int(m[1]) for k in sd if (m := re.match(r"rpn_head\.rpn(\d)\.", k))})
    arch["used_layers"] = levels
    neck = [k for k in sd if re.fullmatch(r"neck\.downsample\d\.downsample\.0\.weight", k)]
    if neck:
        arch["neck_channels"] = int(sd[neck[0]].shape[0])
    head0 = [k for k in sd if k.endswith("cls.head.0.weight")]
    if head0:
        arch["hidden"] = int(sd[head0[0]].shape[0])
    arch["clnet"] = any(".encoder." in k for k in sd)
    if not any(k.startswith(("neck.", "rpn_head.")) for k in sd):
        arch["kind"] = "backbone"
    return arch


def expected_keys(tree: dict) -> set[str]:
    """Paths a complete checkpoint of this kind must have (for missing-key reports)."""
    out = set()

    def walk(t, prefix):
        for k, v in t.items():
            if isinstance(v, dict):
                walk(v, prefix + [k])
            else:
                out.add("/".join(prefix + [k]))
    walk(tree, [])
    return out


def convert_file(src: str) -> tuple[dict, dict, list[str]]:
    return convert_state_dict(flatten_state_dict(load_pth(src)))


class UnmappedKeys(ValueError):
    """A state dict with keys that map to no parameter of the JAX model."""
