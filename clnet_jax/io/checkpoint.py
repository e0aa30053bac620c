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


class CheckpointError(ValueError):
    """A weights directory that is missing, corrupt or of the wrong kind."""


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
    """Returns (tree of NumPy arrays, arch); clear errors for absent or corrupt data.
    Whether the tree is complete for its architecture is the model's to say
    (:func:`clnet_jax.model.weights.load`)."""
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
    return jax.tree.map(np.asarray, tree), arch


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
