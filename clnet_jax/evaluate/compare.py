"""Tables and success / precision plots for several result folders (ours or others')."""
from __future__ import annotations

import os

import numpy as np

from clnet_jax.evaluate import metrics, plots
from clnet_jax.evaluate.datasets import EvalSequence


def read_results(folder: str, seqs: list[EvalSequence], with_meta: bool = False) -> dict:
    """name -> (gt, pred, present) (with ``with_meta``: (gt, pred, meta)) for every scored
    sequence with a result file in ``folder``."""
    from clnet_jax.data.groundtruth import read_boxes
    out = {}
    for s in seqs:
        path = os.path.join(folder, f"{s.name}.txt")
        if s.init_only or not os.path.isfile(path):
            continue
        pred = read_boxes(path, np.float64)
        out[s.name] = (s.gt, pred, s.meta) if with_meta else (s.gt, pred, s.present)
    return out


def _plots(scores: dict, out_dir: str, title: str, n: int, suffix: str = "") -> dict:
    """The success and precision plots of the trackers, best first; kind -> what it shows."""
    order = [k for k in sorted(scores, key=lambda name: -scores[name]["success_auc"])
             if scores[k]["sequences"]]
    shown = {}
    for kind, key, score, xs in (
            ("success", "success_curve", "success_auc", np.linspace(0, 1, 21)),
            ("precision", "precision_curve", "precision", metrics.PREC_THRESHOLDS)):
        shown[kind] = plots.write_curves(
            os.path.join(out_dir, f"{kind}_plot{suffix}.png"), kind, xs,
            {name: scores[name][key] for name in order},
            {name: scores[name][score] for name in order}, f"{kind} plot: {title} ({n} sequences)")
    return shown


def attributes(seqs: list[EvalSequence]) -> dict[str, set[str]]:
    """Attribute -> sequence names, where the dataset publishes attributes (pysot JSON)."""
    out: dict[str, set[str]] = {}
    for s in seqs:
        for a in (s.meta or {}).get("attr", []):
            out.setdefault(a, set()).add(s.name)
    return out


def compare(folders: list[str], seqs: list[EvalSequence], out_dir: str, title: str,
            rule: str = "otb", shown: dict | None = None) -> dict:
    """Scores each folder on the sequences all folders share; writes success / precision
    plots, and one pair per attribute (``*_plot_<attr>.png``, as pysot's toolkit draws
    them) where the sequences carry attributes. Returns {'overall' scores per folder} with
    per-attribute scores under ``scores[name]['attributes']``; ``shown`` (a dict) receives
    what each plot holds, by attribute ('' overall) and kind."""
    shown = {} if shown is None else shown
    per = {os.path.basename(os.path.normpath(f)): read_results(f, seqs) for f in folders}
    common = set.intersection(*(set(r) for r in per.values())) if per else set()
    scores = {name: metrics.summarize({k: r[k] for k in common}, rule)
              for name, r in per.items()}
    os.makedirs(out_dir, exist_ok=True)
    shown[""] = _plots(scores, out_dir, title, len(common))
    for attr, names in sorted(attributes(seqs).items()):
        shared = common & names
        if not shared:
            continue
        sub = {name: metrics.summarize({k: r[k] for k in shared}, rule)
               for name, r in per.items()}
        for name in scores:
            scores[name].setdefault("attributes", {})[attr] = {
                k: sub[name][k] for k in ("success_auc", "precision", "sequences")}
        shown[attr] = _plots(sub, out_dir, f"{title} – {attr}", len(shared), f"_{attr}")
    return scores
