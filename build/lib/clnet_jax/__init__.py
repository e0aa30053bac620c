"""clnet_jax: SiamRPN++ and CLNet in JAX, exact to the upstream PyTorch code.

The package follows the pipeline, one subpackage per stage:

    io        .pth reader, converter, orbax checkpoints
    model     SiamRPN++ (backbone, neck, heads), anchors, xcorr, targets, losses
    adapt     first-frame adaptation: CLNet and the variant registry
    track     crops, the pure init/step tracker, the sequence loop
    train     the sharded step, the training loop, what ``clnet-train`` runs
    evaluate  datasets, metrics, result files, comparisons, VOT
    data      training stores, input pipeline, synthetic benchmarks
    experiments  the research testbed (ablation, tuning, reports)

The names most users need are importable from here (loaded on first use, so that
``import clnet_jax`` stays light):

    from clnet_jax import SequenceTracker, load_params, make_tracker, from_file
    from clnet_jax import REGISTRY, Variant, get_variant
"""
from __future__ import annotations

import importlib

__version__ = "0.3.0"

_EXPORTS = {
    "SequenceTracker": "clnet_jax.track.runner",
    "load_params": "clnet_jax.track.runner",
    "make_tracker": "clnet_jax.track.tracker",
    "Tracker": "clnet_jax.track.tracker",
    "from_file": "clnet_jax.config",
    "REGISTRY": "clnet_jax.adapt.variants",
    "Variant": "clnet_jax.adapt.variants",
    "get_variant": "clnet_jax.adapt.variants",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clnet_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
