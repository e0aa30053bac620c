"""Which weights a model needs, and loading them: a checkpoint is complete when it holds
every leaf of the network its architecture describes (``arch.json``: the ``cfg.model``
fields, written by the converter or by training)."""
from __future__ import annotations

import os

import jax
import numpy as np

from clnet_jax.io import checkpoint as ckpt_lib
from clnet_jax.io import convert
from clnet_jax.io.checkpoint import CheckpointError
from clnet_jax.model import siamrpn as model_lib


def _paths(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in tree.items():
        p = f"{prefix}/{k}" if prefix else str(k)
        out |= _paths(v, p) if isinstance(v, dict) else {p}
    return out


def expected_model_paths(arch: dict) -> set[str]:
    """Every leaf path a checkpoint of this architecture must hold (base model + heads, or
    the backbone alone for ``arch['kind'] == 'backbone'``)."""
    if arch.get("kind") == "backbone":
        net = model_lib.ResNet(arch["width"], tuple(arch["blocks"]),
                               tuple(l for l in range(1, 5) if arch["blocks"][l - 1]))
        img = jax.ShapeDtypeStruct((1, 127, 127, 3), np.float32)
        shapes = jax.eval_shape(lambda a: net.init(jax.random.key(0), a), img)
        return {f"model/{coll}/backbone/{p}" for coll, sub in shapes.items()
                for p in _paths(sub)}
    m = model_lib.SiamRPN(**model_lib.model_fields(arch))
    z = jax.ShapeDtypeStruct((1, 127, 127, 3), np.float32)
    x = jax.ShapeDtypeStruct((1, 255, 255, 3), np.float32)
    shapes = jax.eval_shape(lambda a, b: m.init(jax.random.key(0), a, b), z, x)
    paths = {"model/" + p for p in _paths(shapes)}
    for l in arch["used_layers"]:
        for b in model_lib.BRANCHES:
            paths |= {f"heads/rpn{l}/{b}/w", f"heads/rpn{l}/{b}/b"}
    return paths | {"heads/cls_weight", "heads/loc_weight"}


def missing_parts(tree: dict, arch: dict) -> list[str]:
    """Human-readable list of what a tree lacks for its architecture (empty if complete)."""
    have = _paths(tree)
    missing = sorted(expected_model_paths(arch) - have)
    out = []
    if missing:
        what = "backbone" if arch.get("kind") == "backbone" else "base-model"
        out.append(f"{len(missing)} {what} entries, e.g. {', '.join(missing[:5])}")
    if arch.get("clnet") and "clnet" not in tree:
        out.append("the CLNet encoders/decoders ('clnet')")
    return out


def load(directory: str) -> tuple[dict, dict]:
    """(tree, arch) of a weights directory, refused where it lacks part of its network."""
    tree, arch = ckpt_lib.load(directory)
    problems = missing_parts(tree, arch)
    if problems:
        raise CheckpointError(f"{os.path.abspath(directory)}: incomplete checkpoint, "
                              "missing " + "; ".join(problems))
    return tree, arch


def load_backbone(directory: str, width: int, blocks: list) -> dict:
    """A backbone checkpoint (``clnet-convert resnet50.model DIR``) as
    {'params': ..., 'batch_stats': ...}; a tracker checkpoint's backbone is accepted too."""
    tree, arch = load(directory)
    if arch.get("width") != width or list(arch.get("blocks", [])) != list(blocks):
        raise CheckpointError(f"{directory}: backbone width {arch.get('width')} blocks "
                              f"{arch.get('blocks')} do not match the config ({width}, {blocks})")
    model = tree["model"]
    return {"params": model["params"]["backbone"], "batch_stats": model["batch_stats"]["backbone"]}


def convert_checkpoint(src: str, out_dir: str, allow_unmapped: bool = False) -> list[str]:
    """Converts ``src`` (an upstream .pth) into a weights directory; returns what to report.
    Unreadable input raises ValueError; unmapped keys (unless ``allow_unmapped``) and a
    network part missing raise :class:`clnet_jax.io.convert.UnmappedKeys` (nothing is
    written)."""
    sd = convert.flatten_state_dict(convert.load_pth(src))
    tree, arch, unmapped = convert.convert_state_dict(sd)
    lines = []
    ignored = convert.classifier_keys(sd)
    if ignored:
        lines.append(f"backbone-only file: ignored the ImageNet classifier ({', '.join(ignored)})")
    if unmapped:
        msg = f"{len(unmapped)} unmapped keys: " + ", ".join(unmapped[:20])
        if not allow_unmapped:
            raise convert.UnmappedKeys(msg)
        lines.append(msg)
    problems = missing_parts(tree, arch)
    if problems:
        raise convert.UnmappedKeys("missing: " + "; ".join(problems))
    ckpt_lib.save(out_dir, tree, arch)
    n = sum(np.size(v) for v in jax.tree.leaves(tree))
    lines.append(f"wrote {out_dir}: {n:,} parameters, architecture {arch}")
    return lines
