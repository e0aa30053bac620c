"""Orbax checkpoints of tracker weights (``model``, ``heads``, optional ``clnet``).

Layout of a weights directory: ``state/`` (orbax PyTree checkpoint) and ``arch.json``
(architecture numbers inferred by the converter or written by training).
"""
from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp

from clnet_jax.model import siamrpn as model_lib


class CheckpointError(ValueError):
    """A weights directory that is missing, corrupt or of the wrong kind."""


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
    m = model_lib.SiamRPN(width=arch["width"], blocks=tuple(arch["blocks"]),
                          used_layers=tuple(arch["used_layers"]),
                          neck_channels=arch["neck_channels"], hidden=arch["hidden"])
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


def _local_checkpointer() -> ocp.Checkpointer:
    """Weights are host NumPy trees written or read by one process (in a multi-process job
    by process 0 alone): no cross-process barrier."""
    me = jax.process_index()
    opts = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(multiprocessing_options=opts),
                            multiprocessing_options=opts)


def save(directory: str, tree: dict, arch: dict) -> None:
    """Writes atomically: a failed save never leaves a half-written directory in place."""
    directory = os.path.abspath(directory)
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with _local_checkpointer() as ckptr:
        ckptr.save(os.path.join(tmp, "state"), jax.tree.map(np.asarray, tree))
    with open(os.path.join(tmp, "arch.json"), "w") as f:
        json.dump(arch, f, indent=1)
    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.rename(tmp, directory)


def load(directory: str) -> tuple[dict, dict]:
    """Returns (tree of NumPy arrays, arch); clear errors for absent or corrupt data."""
    directory = os.path.abspath(directory)
    arch_file = os.path.join(directory, "arch.json")
    if not os.path.isfile(arch_file):
        raise CheckpointError(f"{directory}: not a clnet_jax weights directory (no arch.json)")
    try:
        with open(arch_file) as f:
            arch = json.load(f)
        with _local_checkpointer() as ckptr:
            tree = ckptr.restore(os.path.join(directory, "state"))
    except Exception as e:  # orbax raises many types for damaged files
        raise CheckpointError(f"{directory}: corrupt checkpoint ({type(e).__name__}: {e})") from e
    tree = jax.tree.map(np.asarray, tree)
    problems = missing_parts(tree, arch)
    if problems:
        raise CheckpointError(f"{directory}: incomplete checkpoint, missing " + "; ".join(problems))
    return tree, arch


def load_backbone(directory: str, width: int, blocks: list) -> dict:
    """A backbone checkpoint (``python -m clnet_jax.io.convert resnet50.model DIR``) as
    {'params': ..., 'batch_stats': ...}; a tracker checkpoint's backbone is accepted too."""
    tree, arch = load(directory)
    if arch.get("width") != width or list(arch.get("blocks", [])) != list(blocks):
        raise CheckpointError(f"{directory}: backbone width {arch.get('width')} blocks "
                              f"{arch.get('blocks')} do not match the config ({width}, {blocks})")
    model = tree["model"]
    return {"params": model["params"]["backbone"], "batch_stats": model["batch_stats"]["backbone"]}


def check_kind(tree: dict, want_clnet: bool, where: str = "checkpoint") -> None:
    """A CLNet checkpoint for the base tracker, or the reverse, is a clear error."""
    if want_clnet and "clnet" not in tree:
        raise CheckpointError(
            f"{where} has no CLNet part ('clnet': encoders and decoders); it is a base "
            "SiamRPN++ checkpoint. Use a base config or a CLNet checkpoint.")
    if not want_clnet and "clnet" in tree:
        raise CheckpointError(
            f"{where} is a CLNet checkpoint (has 'clnet'); the base tracker expects plain "
            "SiamRPN++ weights. Use a CLNet config, or set clnet.variant='none'.")
