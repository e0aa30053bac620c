"""Tables and success / precision plots for several result folders (ours or others')."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from clnet_jax.evaluate import metrics  # noqa: E402
from clnet_jax.evaluate.datasets import EvalSequence  # noqa: E402


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


def _plots(scores: dict, out_dir: str, title: str, n: int, suffix: str = "") -> None:
    order = sorted(scores, key=lambda name: -scores[name]["success_auc"])
    for kind, key, score, xs, xlabel in (
            ("success", "success_curve", "success_auc", np.linspace(0, 1, 21), "overlap threshold"),
            ("precision", "precision_curve", "precision", metrics.PREC_THRESHOLDS,
             "location error threshold (px)")):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name in order:
            s = scores[name]
            if s["sequences"]:
                ax.plot(xs, s[key], label=f"{name} [{s[score]:.3f}]", linewidth=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate" if kind == "success" else "precision")
        ax.set_title(f"{kind} plot: {title} ({n} sequences)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, f"{kind}_plot{suffix}.png"), dpi=110)
        plt.close(fig)


def attributes(seqs: list[EvalSequence]) -> dict[str, set[str]]:
    """Attribute -> sequence names, where the dataset publishes attributes (pysot JSON)."""
    out: dict[str, set[str]] = {}
    for s in seqs:
        for a in (s.meta or {}).get("attr", []):
            out.setdefault(a, set()).add(s.name)
    return out


def compare(folders: list[str], seqs: list[EvalSequence], out_dir: str, title: str,
            rule: str = "otb") -> dict:
    """Scores each folder on the sequences all folders share; writes success / precision
    plots, and one pair per attribute (``*_plot_<attr>.png``, as pysot's toolkit draws
    them) where the sequences carry attributes. Returns {'overall' scores per folder} with
    per-attribute scores under ``scores[name]['attributes']``."""
    per = {os.path.basename(os.path.normpath(f)): read_results(f, seqs) for f in folders}
    common = set.intersection(*(set(r) for r in per.values())) if per else set()
    scores = {name: metrics.summarize({k: r[k] for k in common}, rule)
              for name, r in per.items()}
    os.makedirs(out_dir, exist_ok=True)
    _plots(scores, out_dir, title, len(common))
    for attr, names in sorted(attributes(seqs).items()):
        shared = common & names
        if not shared:
            continue
        sub = {name: metrics.summarize({k: r[k] for k in shared}, rule)
               for name, r in per.items()}
        for name in scores:
            scores[name].setdefault("attributes", {})[attr] = {
                k: sub[name][k] for k in ("success_auc", "precision", "sequences")}
        _plots(sub, out_dir, f"{title} – {attr}", len(shared), f"_{attr}")
    return scores
