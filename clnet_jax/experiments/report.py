"""The ablation report: table (mean ± std over seeds, paper numbers beside), plots and a
distractor case drawn frame by frame."""
from __future__ import annotations

import json
import os

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from clnet_jax import metrics  # noqa: E402
from clnet_jax.eval_runner import load_frame  # noqa: E402

ORDER = ["BT", "AN", "LE", "OS", "DM"]


def _stats(per_seed: dict, row: str, key: str) -> tuple[float, float]:
    v = np.array([per_seed[s][row][key] for s in per_seed])
    return float(v.mean()), float(v.std())


def _plots(per_seed, rows, out_dir):
    for kind, key, xs in (("success", "success_curve", np.linspace(0, 1, 21)),
                          ("precision", "precision_curve", metrics.PREC_THRESHOLDS)):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for row in rows:
            curve = np.mean([per_seed[s][row][key] for s in per_seed], 0)
            score = np.mean(curve) if kind == "success" else curve[20]
            ax.plot(xs, curve, label=f"{row} [{score:.3f}]", linewidth=1.8)
        ax.set_xlabel("overlap threshold" if kind == "success" else "location error threshold (px)")
        ax.set_ylabel("success rate" if kind == "success" else "precision")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title(f"{kind} plot, synthetic look-alike test split (mean of {len(per_seed)} seeds)")
        ax.legend(fontsize=7, loc="lower left" if kind == "success" else "lower right")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, f"ablation_{kind}.png"), dpi=110)
        plt.close(fig)


def _distractor_figure(per_seed, seqs, out_dir) -> str | None:
    """The sequence where the base tracker loses most against DM, four frames drawn."""
    seed = next(iter(per_seed))
    bt, dm = per_seed[seed].get("BT"), per_seed[seed].get("DM")
    if bt is None or dm is None:
        return None
    best, gain = None, 0.0
    for s in seqs:
        if s.name not in bt["boxes"]:
            continue
        m = np.all(np.isfinite(s.gt), 1)
        iou_bt = metrics.iou_got10k(np.asarray(bt["boxes"][s.name])[m], s.gt[m])
        iou_dm = metrics.iou_got10k(np.asarray(dm["boxes"][s.name])[m], s.gt[m])
        if iou_dm.mean() - iou_bt.mean() > gain:
            best, gain = (s, iou_bt), iou_dm.mean() - iou_bt.mean()
    if best is None:
        return None
    s, iou_bt = best
    lost = int(np.argmax(iou_bt < 0.3)) if (iou_bt < 0.3).any() else len(s.frames) // 2
    picks = sorted({0, max(lost - 2, 1), lost, min(lost + 6, len(s.frames) - 1)})
    tiles = []
    for t in picks:
        img = load_frame(s.frames[t]).copy()
        for boxes, colour in ((s.gt, (255, 255, 255)), (bt["boxes"][s.name], (0, 0, 255)),
                              (dm["boxes"][s.name], (0, 255, 0))):
            b = np.asarray(boxes[t])
            if np.all(np.isfinite(b)):
                x, y, w, h = (int(round(v)) for v in b)
                cv2.rectangle(img, (x, y), (x + w, y + h), colour, 1)
        cv2.putText(img, f"#{t + 1}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST))
    name = "ablation_distractor.png"
    cv2.imwrite(os.path.join(out_dir, name), np.concatenate(tiles, 1))
    return f"{s.name} (frames {', '.join(str(t + 1) for t in picks)}; mean IoU gain of DM over BT {gain:.2f})"


def per_sequence_auc(per_seed: dict, row: str, seqs) -> np.ndarray:
    """Success AUC of every (seed, sequence) of a row, (S, N), from the saved boxes."""
    out = []
    for s in per_seed:
        boxes = per_seed[s][row]["boxes"]
        out.append([float(np.mean(metrics.curves(q.gt, np.asarray(boxes[q.name]))[0]))
                    for q in seqs])
    return np.asarray(out)


def paired_bootstrap(diff: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a (seeds, sequences) array of paired differences and its 95 % CI, resampling
    seeds and sequences (both with replacement)."""
    rng = np.random.default_rng(seed)
    s, n = diff.shape
    means = [diff[rng.integers(0, s, s)][:, rng.integers(0, n, n)].mean() for _ in range(reps)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def _verdict(mean_lo_hi) -> str:
    _, lo, hi = mean_lo_hi
    return "better" if lo > 0 else "worse" if hi < 0 else "undecided (CI contains 0)"


def paired_differences(per_seed: dict, rows: list[str], seqs) -> dict:
    """Every row against BT and RT: paired per-sequence success-AUC differences with CIs."""
    have = [q for q in seqs if all(q.name in per_seed[s][r]["boxes"] for s in per_seed
                                   for r in rows)]
    auc = {r: per_sequence_auc(per_seed, r, have) for r in rows}
    out = {}
    for ref in ("BT", "RT"):
        if ref not in auc:
            continue
        out[ref] = {r: paired_bootstrap(auc[r] - auc[ref]) for r in rows if r != ref}
    return out


def write(cfg, per_seed: dict, seqs, paper: dict) -> dict:
    out_dir = cfg.ablation.report_dir
    os.makedirs(out_dir, exist_ok=True)
    rows = [r for r in cfg.ablation.rows if all(r in per_seed[s] for s in per_seed)]
    table = {r: {k: _stats(per_seed, r, k) for k in ("success_auc", "precision", "init_frames")}
             for r in rows}
    _plots(per_seed, rows, out_dir)
    case = _distractor_figure(per_seed, seqs, out_dir)
    auc = {r: table[r]["success_auc"][0] for r in rows}
    chain = [r for r in ORDER if r in auc]
    holds = all(auc[a] < auc[b] for a, b in zip(chain[:2], chain[1:3])) and \
        all(auc[a] <= auc[b] for a, b in zip(chain[2:], chain[3:]))
    lines = [
        "# Ablation in miniature (generated by `python -m clnet_jax.experiments.ablation`)", "",
        f"Synthetic look-alike benchmark, test split ({len(seqs)} sequences), tiny SiamRPN++ "
        f"trained from scratch; seeds {list(per_seed)} of {list(cfg.ablation.seeds)}"
        f"{'' if len(per_seed) == len(cfg.ablation.seeds) else ' (PARTIAL: not every seed has run)'}; "
        "mean ± std over seeds. Paper: Table 3 "
        "(DTB70+NFS30+UAV123, full-size r50), given for the ordering only.", "",
        "| row | success AUC (%) | precision@20 (%) | init cost (frames) | paper P / AUC |",
        "|---|---|---|---|---|"]
    for r in rows:
        t = table[r]
        p = paper.get(r)
        lines.append(f"| {r} | {100 * t['success_auc'][0]:.1f} ± {100 * t['success_auc'][1]:.1f} | "
                     f"{100 * t['precision'][0]:.1f} ± {100 * t['precision'][1]:.1f} | "
                     f"{t['init_frames'][0]:.2f} | {f'{p[0]} / {p[1]}' if p else '–'} |")
    lines += ["", f"Paper's ordering BT < AN < LE ≤ OS ≤ DM (success AUC means): "
              f"**{'holds' if holds else 'does not hold'}** here "
              f"({' / '.join(f'{r} {100 * auc[r]:.1f}' for r in chain)}).", "",
              "![success](ablation_success.png) ![precision](ablation_precision.png)", ""]
    diffs = paired_differences(per_seed, rows, seqs)
    for ref, d in diffs.items():
        lines += [f"Paired difference against {ref} (per-sequence success AUC, points; mean and "
                  "bootstrap 95 % CI over sequences and seeds):", "",
                  "| row | difference | 95 % CI | verdict |", "|---|---|---|---|"]
        lines += [f"| {r} | {100 * m:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] | "
                  f"{_verdict((m, lo, hi))} |" for r, (m, lo, hi) in d.items()]
        lines.append("")
    if case:
        lines += ["Distractor case — white: ground truth, red: base tracker (BT), green: CLNet (DM):",
                  f"{case}", "", "![distractor](ablation_distractor.png)", ""]
    with open(os.path.join(out_dir, "ablation.md"), "w") as f:
        f.write("\n".join(lines))
    slim = {s: {r: {k: v for k, v in per_seed[s][r].items() if k != "boxes"} for r in rows}
            for s in per_seed}
    with open(os.path.join(out_dir, "ablation.json"), "w") as f:
        json.dump({"table": table, "per_seed": slim, "ordering_holds": holds,
                   "paired_differences": diffs}, f, indent=1)
    print("\n".join(lines[3:6 + len(rows)]))
    print(f"wrote {out_dir}/ablation.md")
    return {"table": table, "ordering_holds": holds}
