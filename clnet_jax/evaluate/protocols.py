"""Which rule scores which benchmark, in each toolkit.

The toolkits score absent targets differently, so the same result files give different
numbers (:mod:`clnet_jax.evaluate.metrics` has the rules). A :class:`Protocol` names the
toolkit's own code that a score reproduces; ``clnet-eval --toolkit`` chooses the toolkit,
the benchmark chooses its experiment, and ``summary.json`` and the printed table name it.

* ``got10k``: the experiment of the got10k toolkit (0.1.3) for the benchmark:
  ``ExperimentUAV123`` (UAV123, UAV20L; UAV123@10fps is scored by the same class),
  ``ExperimentDTB70``, ``ExperimentNfS``, ``ExperimentOTB`` (OTB), ``ExperimentGOT10k``.
  Benchmarks the toolkit has no experiment for (LaSOT in 0.1.3, TLP, UAVDT, TrackingNet, a
  plain folder) are scored by ``ExperimentOTB``'s rule, their absent frames as failures.
* ``pysot``: pysot's ``OPEBenchmark`` for every one-pass benchmark, with the benchmark's
  absence labels as pysot's ``absent`` (LaSOT's occlusion and out-of-view labels, TLP's
  ``isLost``; NaN rows of UAV123 are not labels: pysot scores them as they are).
"""
from __future__ import annotations

from typing import NamedTuple

TOOLKITS = ("got10k", "pysot")


class Protocol(NamedTuple):
    toolkit: str
    experiment: str   # the toolkit's code that the score reproduces
    rule: str         # metrics rule: otb, uav, pysot, got10k (AO/SR), vot
    description: str


_OTB = ("one-pass: success AUC (21 IoU thresholds), precision@20px, normalised "
        "precision@0.2, averaged over sequences; first box = ground truth")
_GOT10K = {
    "uav": ("ExperimentUAV123", "uav", _OTB + "; frames whose ground truth is NaN are dropped"),
    "dtb70": ("ExperimentDTB70", "otb", _OTB + "; frames without ground truth count as failures"),
    "nfs": ("ExperimentNfS", "otb", _OTB + "; frames without ground truth count as failures"),
    "otb": ("ExperimentOTB", "otb", _OTB + "; frames without ground truth count as failures"),
    "other": ("ExperimentOTB's rule (the toolkit has no experiment for this benchmark)", "otb",
              _OTB + "; absent frames count as failures"),
}
_FAMILY = {"uav123": "uav", "uav20l": "uav", "uav123_10fps": "uav", "dtb70": "dtb70",
           "nfs30": "nfs", "nfs240": "nfs", "otb100": "otb", "otb2013": "otb"}
GOT10K_PROTOCOL = Protocol(
    "got10k", "ExperimentGOT10k", "got10k",
    "GOT-10k: AO, SR0.50, SR0.75 over frames 2.. where the target is visible (cover > 0), "
    "boxes clipped to the image, pooled over all frames")
VOT_PROTOCOL = Protocol("vot", "VOT supervised (baseline) experiment", "vot",
                        "VOT supervised: accuracy, robustness, EAO")
PYSOT_DESCRIPTION = (
    "pysot OPE: success AUC (IoU thresholds 0:0.05:1), precision@20px, normalised "
    "precision@0.2, averaged over sequences; frames the benchmark labels absent are masked "
    "and every frame stays in the denominator; ground truth with no positive size scores "
    "IoU -1, with no positive centre counts as precise")


def protocol(dataset: str, toolkit: str = "got10k") -> Protocol:
    """The protocol that scores ``dataset`` (a loader name, ``auto`` resolved) in ``toolkit``."""
    if toolkit not in TOOLKITS:
        raise ValueError(f"unknown toolkit {toolkit!r}; choose one of {TOOLKITS}")
    if dataset.startswith("vot"):
        return VOT_PROTOCOL
    if dataset == "got10k" and toolkit == "got10k":
        return GOT10K_PROTOCOL
    if toolkit == "pysot":
        return Protocol("pysot", "OPEBenchmark", "pysot", PYSOT_DESCRIPTION)
    return Protocol("got10k", *_GOT10K[_FAMILY.get(dataset, "other")])
