"""Success and precision plots, drawn one way for ``clnet-eval --compare`` and the testbed
report. :func:`write_curves` saves a figure and returns what it shows, read back from
matplotlib, so that a caller (or a test) can check the plot's data and labels."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

XLABELS = {"success": "overlap threshold", "precision": "location error threshold (px)"}
YLABELS = {"success": "success rate", "precision": "precision"}


def write_curves(path: str, kind: str, xs: np.ndarray, curves: dict[str, np.ndarray],
                 scores: dict[str, float], title: str) -> dict:
    """One plot of ``kind`` ('success' or 'precision'): a line per name of ``curves``
    (legend: the name and its score), saved as ``path``. Returns {'title', 'xlabel',
    'ylabel', 'ylim', 'lines': [(label, xs, ys)]} as the figure holds them."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, ys in curves.items():
        ax.plot(xs, ys, label=f"{name} [{scores[name]:.3f}]", linewidth=1.8)
    ax.set_xlabel(XLABELS[kind])
    ax.set_ylabel(YLABELS[kind])
    ax.set_title(title)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left" if kind == "success" else "lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    shown = {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "ylim": tuple(ax.get_ylim()),
             "lines": [(ln.get_label(), np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata()))
                       for ln in ax.get_lines()]}
    plt.close(fig)
    return shown
