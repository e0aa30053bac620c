"""The testbed report: per split and difficulty level, each row's paired per-sequence
difference against BT, RT, DM and sgd_finetune (tuned and default; those evaluated) with
a bootstrap 95 % CI over sequences and seeds; an ordering is stated only where the CIs
support it. Plus curves and a distractor case.

Scoring (the testbed's protocol, GOT-10k-like): frames 2.. where the target is present;
frames where it is absent (out of view, fully occluded) are not scored. Per sequence:
success AUC (21 IoU thresholds), precision at 20 px, and the IoU of the first tracked frame.
"""
from __future__ import annotations

import json
import os

import cv2
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from clnet_jax.data.generators import level_of_name  # noqa: E402
from clnet_jax.data.scenes import LEVELS  # noqa: E402
from clnet_jax.evaluate import metrics, plots  # noqa: E402
from clnet_jax.evaluate.scoring import THRESHOLDS, paired_bootstrap, sequence_scores, verdict  # noqa: E402,F401
from clnet_jax.experiments import cache  # noqa: E402
from clnet_jax.experiments import rows as rows_lib  # noqa: E402
from clnet_jax.track.inputs import load_frame  # noqa: E402

GOALS = {"success_auc": 0.5, "first_iou": 0.8}


def score_table(per_seed: dict, rows: list[str], seqs) -> dict:
    """row -> {'auc': (S, N), 'prec': (S, N), 'first': (S, N), 'succ_curve': (S, 21),
    'prec_curve': (S, 51)} over the sequences that have scored frames."""
    gt = {q.name: q.gt for q in seqs}
    names = [q.name for q in seqs]
    out = {}
    for r in rows:
        sc = [[sequence_scores(gt[n], per_seed[s][r]["boxes"][n]) for n in names]
              for s in per_seed]
        keep = [j for j in range(len(names)) if all(x[j] is not None for x in sc)]
        sc = [[x[j] for j in keep] for x in sc]
        out[r] = {"auc": np.array([[np.mean(c["success"]) for c in x] for x in sc]),
                  "prec": np.array([[c["precision"][20] for c in x] for x in sc]),
                  "first": np.array([[c["first_iou"] for c in x] for x in sc]),
                  "succ_curve": np.array([np.mean([c["success"] for c in x], 0) for x in sc]),
                  "prec_curve": np.array([np.mean([c["precision"] for c in x], 0) for x in sc]),
                  "names": [names[j] for j in keep]}
    return out


# ------------------------------------------------------------------------ statistics
def _mark(mean_lo_hi) -> str:
    return {"better": " ▲", "worse": " ▼"}.get(verdict(mean_lo_hi), "")


def levels_of(names: list[str]) -> dict[str, np.ndarray]:
    """'all' and each difficulty level present -> column mask over the sequences."""
    lv = np.array([level_of_name(n) or "" for n in names])
    out = {"all": np.ones(len(names), bool)}
    for level in LEVELS:
        if (lv == level).any():
            out[level] = lv == level
    return out




def paired_differences(scores: dict, rows: list[str]) -> dict:
    """ref -> row -> level -> (mean, lo, hi) of the paired success-AUC difference."""
    out = {}
    for ref in rows_lib.references():
        if ref not in scores:
            continue
        lv = levels_of(scores[ref]["names"])
        out[ref] = {r: {k: paired_bootstrap(scores[r]["auc"][:, m] - scores[ref]["auc"][:, m])
                        for k, m in lv.items()} for r in rows if r != ref}
    return out


# ---------------------------------------------------------------------------- figures
def _plots(scores, rows, out_dir, split) -> dict:
    """The success and precision plots of a split (curves averaged over seeds): file name ->
    what the plot holds."""
    out = {}
    n = scores[rows[0]]["auc"].shape[0]
    for kind, key, xs in (("success", "succ_curve", THRESHOLDS),
                          ("precision", "prec_curve", metrics.PREC_THRESHOLDS)):
        curves = {row: scores[row][key].mean(0) for row in rows}
        marks = {row: float(np.mean(c)) if kind == "success" else float(c[20])
                 for row, c in curves.items()}
        name = f"ablation_{split}_{kind}.png"
        out[name] = plots.write_curves(os.path.join(out_dir, name), kind, xs, curves, marks,
                                       f"{kind} plot, {split} split (mean of {n} seeds)")
    return out


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
            best, gain = (s, iou_bt, np.nonzero(m)[0]), iou_dm.mean() - iou_bt.mean()
    if best is None:
        return None
    s, iou_bt, frames = best
    lost = int(frames[np.argmax(iou_bt < 0.3)]) if (iou_bt < 0.3).any() else len(s.frames) // 2
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
        # small frames doubled, real ones brought to 640 px wide
        f = 2.0 if img.shape[1] <= 400 else min(1.0, 640 / img.shape[1])
        tiles.append(cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)),
                                interpolation=cv2.INTER_NEAREST if f > 1 else cv2.INTER_AREA))
    name = "ablation_distractor.png"
    cv2.imwrite(os.path.join(out_dir, name), np.concatenate(tiles, 1))
    return f"{s.name} (frames {', '.join(str(t + 1) for t in picks)}; mean IoU gain of DM over BT {gain:.2f})"


# ----------------------------------------------------------------------------- text
def _ci(m) -> str:
    return f"{100 * m[0]:+.1f} [{100 * m[1]:+.1f}, {100 * m[2]:+.1f}]{_mark(m)}"


def _ms(v: np.ndarray) -> str:
    per_seed = np.nanmean(v, 1)
    return f"{100 * per_seed.mean():.1f} ± {100 * per_seed.std():.1f}"


def decided_ordering(diffs: dict, rows: list[str]) -> list[str]:
    """Sentences for what the CIs decide over all sequences; the rest is 'undecided'."""
    out = []
    for ref, d in diffs.items():
        better = [r for r in rows if r in d and verdict(d[r]["all"]) == "better"]
        worse = [r for r in rows if r in d and verdict(d[r]["all"]) == "worse"]
        undecided = [r for r in rows if r in d and r not in better + worse]
        out.append(f"against {ref}: better — {', '.join(better) or 'none'}; worse — "
                   f"{', '.join(worse) or 'none'}; undecided — {', '.join(undecided) or 'none'}")
    return out


def split_section(split: str, per_seed: dict, rows: list[str], seqs, paper: dict,
                  out_dir: str) -> tuple[list[str], dict]:
    scores = score_table(per_seed, rows, seqs)
    diffs = paired_differences(scores, rows)
    n = scores[rows[0]]["auc"].shape[1]
    lines = [f"## {split} split ({n} sequences × {len(per_seed)} seeds)", "",
             "| row | success AUC (%) | precision@20 (%) | IoU of 1st tracked frame | "
             "init cost (frames) | paper P / AUC |", "|---|---|---|---|---|---|"]
    inits = {r: np.mean([per_seed[s][r]["init_frames"] or np.nan for s in per_seed])
             for r in rows}
    for r in rows:
        sc, p, init = scores[r], paper.get(r), inits[r]
        lines.append(f"| {r} | {_ms(sc['auc'])} | {_ms(sc['prec'])} | "
                     f"{np.nanmean(sc['first']):.3f} | {'–' if np.isnan(init) else f'{init:.2f}'} | "
                     f"{f'{p[0]} / {p[1]}' if p else '–'} |")
    lines.append("")
    figures = _plots(scores, rows, out_dir, split)
    lines += [" ".join(f"![{p}]({p})" for p in figures), ""]
    for ref, d in diffs.items():
        levels = list(next(iter(d.values())).keys()) if d else ["all"]
        lines += [f"Paired success-AUC difference against {ref} (points; mean [bootstrap 95 % CI "
                  "over sequences and seeds]; ▲/▼ the CI excludes 0):", "",
                  "| row | " + " | ".join(levels) + " |", "|---" * (len(levels) + 1) + "|"]
        lines += [f"| {r} | " + " | ".join(_ci(v[k]) for k in levels) + " |" for r, v in d.items()]
        lines.append("")
    lines += ["What the CIs decide (all sequences): " + "; ".join(decided_ordering(diffs, rows))
              + ".", ""]
    summary = {"table": {r: {"success_auc": float(scores[r]["auc"].mean()),
                             "precision": float(scores[r]["prec"].mean()),
                             "first_iou": float(np.nanmean(scores[r]["first"])),
                             "init_frames": None if np.isnan(inits[r]) else float(inits[r])}
                         for r in rows},
               "paired_differences": diffs, "sequences": n,
               "plots": {name: {**{k: f[k] for k in ("title", "xlabel", "ylabel")},
                                "lines": [[label, np.asarray(ys).tolist()]
                                          for label, _, ys in f["lines"]]}
                         for name, f in figures.items()}}
    return lines, summary


def convergence_lines(summaries: dict) -> list[str]:
    lines = ["## Is the base converged? (goals: BT success AUC ≥ 50 %, IoU of the first tracked "
             "frame ≥ 0.8, RT − BT CI containing 0)", "", "| split | BT AUC (%) | BT 1st-frame IoU "
             "| RT − BT (points) | goals met |", "|---|---|---|---|---|"]
    for split, s in summaries.items():
        bt = s["table"].get("BT")
        if bt is None:
            continue
        rt = s["paired_differences"].get("BT", {}).get("RT", {}).get("all")
        met = bt["success_auc"] >= GOALS["success_auc"] and bt["first_iou"] >= GOALS["first_iou"] \
            and (rt is None or rt[1] <= 0 <= rt[2])
        lines.append(f"| {split} | {100 * bt['success_auc']:.1f} | {bt['first_iou']:.3f} | "
                     f"{_ci(rt) if rt else '–'} | {'yes' if met else 'no'} |")
    return lines + [""]


def cost_lines(results: dict, splits: dict) -> list[str]:
    """What each row costs on top of the bases: its own training and its evaluations, per
    seed and for all seeds (the budget of a new variant)."""
    seeds, train = results["seeds"], results.get("row_train_s", {})
    if not seeds or not train:
        return []
    lines = ["## Cost of a row on top of the bases (wall time on this machine)", "",
             "| row | training (min per seed) | evaluation (min per seed, all splits) | "
             f"all {len(seeds)} seeds (min) |", "|---|---|---|---|"]
    for r in results["rows"]:
        ev = [sum(results[sp][s][r]["wall_s"] for sp in splits if results.get(sp))
              for s in seeds]
        tr = np.array(train.get(r, [np.nan] * len(seeds)), float)
        lines.append(f"| {r} | {np.mean(tr) / 60:.1f} | {np.mean(ev) / 60:.1f} | "
                     f"{(np.sum(tr) + np.sum(ev)) / 60:.1f} |")
    return lines + [""]


def data_line(cfg) -> str:
    """What the testbed trains and scores on."""
    if not cfg.ablation.split_videos:
        return f"Data: `{cfg.data.dataset}/{cfg.data.builder_config}`"
    split = "; ".join(f"{sp}: {v.replace(',', ', ')}" for sp, v in cfg.ablation.split_videos.items())
    return ("Data: real videos of `data.dir`, read in their published layouts and split by "
            f"video ({split}); the bases train on the other videos of `data.dir`"
            + (" and the synthetic scenes" if "synthetic" in cfg.data.mixture else ""))


def write(cfg, results: dict, splits: dict) -> dict:
    out_dir = cache.report_dir(cfg)
    paper = {n: r.paper for n, r in rows_lib.ROWS.items() if r.paper}
    os.makedirs(out_dir, exist_ok=True)
    rows, seeds = results["rows"], results["seeds"]
    partial = len(seeds) < len(cfg.ablation.seeds)
    walls = results.get("base_wall_s", {})
    sections, summaries = [], {}
    for split, seqs in splits.items():
        if results.get(split):
            lines, summaries[split] = split_section(split, results[split], rows, seqs, paper,
                                                    out_dir)
            sections += lines
    head = [
        "# Ablation testbed (generated by `clnet-ablation`)", "",
        f"{data_line(cfg)}; tiny SiamRPN++ trained from scratch; seeds {seeds} of {list(cfg.ablation.seeds)}"
        f"{' (PARTIAL: not every seed has run)' if partial else ''}. Scored on frames 2.. where "
        "the target is present. Paper: Table 3 (DTB70+NFS30+UAV123, full-size r50), for the "
        "ordering only."
        # per seed, not a mean: a base trained beside other jobs, or resumed, would skew it
        + (" Base training (min, wall of the last run, by seed): "
           + ", ".join(f"{s}: {w / 60:.1f}" for s, w in sorted(walls.items()))
           + f" (cached in `{cfg.ablation.bases_dir}`)." if walls else ""), ""]
    converged = convergence_lines(summaries)
    lines = head + converged + cost_lines(results, splits) + sections
    case = None
    if "test" in splits and results.get("test"):
        case = _distractor_figure(results["test"], splits["test"], out_dir)
    if case:
        lines += ["Distractor case — white: ground truth, red: base tracker (BT), green: CLNet (DM):",
                  f"{case}", "", "![distractor](ablation_distractor.png)", ""]
    reading = os.path.join(out_dir, "ablation_reading.md")  # hand-written, kept on regeneration
    if os.path.isfile(reading):
        with open(reading) as f:
            lines += ["", f.read().rstrip()]
    with open(os.path.join(out_dir, "ablation.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "ablation.json"), "w") as f:
        json.dump({"seeds": seeds, "rows": rows, "base_wall_s": walls,
                   "row_train_s": results.get("row_train_s", {}), "splits": summaries},
                  f, indent=1)
    print("\n".join(head[2:] + converged))
    print(f"wrote {out_dir}/ablation.md")
    return summaries
