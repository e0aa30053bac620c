"""VOT short-term (supervised) protocol: re-initialisation after failures, A / R / EAO.

* Protocol (as the VOT toolkit and got10k's ``ExperimentVOT`` run it): initialise on the
  first frame; a frame whose overlap with the ground-truth region is 0 is a failure
  (recorded ``2``); the tracker is re-initialised 5 frames later (``1``), frames in
  between are ``0``.
* Overlap: polygon / rectangle IoU after clipping both to the image, exact geometry (the
  got10k toolkit's ``poly_iou``, here without shapely: VOT regions are convex).
* Accuracy: mean overlap ignoring the 10 frames after each (re-)initialisation;
  robustness: the number of failures; EAO: pysot's fragment procedure for VOT2019
  (sequence lengths 46..291).
"""
from __future__ import annotations

import numpy as np

SKIP, BURNIN = 5, 10
EAO_RANGE = {"vot2019": (46, 291), "vot2018": (100, 356), "vot2016": (108, 371)}


def _polygon(region) -> np.ndarray:
    r = np.asarray(region, np.float64)
    if len(r) == 4:
        x, y, w, h = r
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    return r.reshape(-1, 2)


def _area(p: np.ndarray) -> float:
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _oriented(p: np.ndarray) -> np.ndarray:
    x, y = p[:, 0], p[:, 1]
    signed = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
    return p if signed >= 0 else p[::-1]


def _clip(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: ``subject`` clipped by the convex polygon ``clip``."""
    out = subject
    clip = _oriented(clip)
    for i in range(len(clip)):
        if len(out) == 0:
            break
        a, b = clip[i], clip[(i + 1) % len(clip)]
        inside = lambda p: (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

        def cut(p, q):
            d1 = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
            d2 = (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0])
            return p + (q - p) * (d1 / (d1 - d2))

        pts, prev = [], out[-1]
        for cur in out:
            if inside(cur):
                if not inside(prev):
                    pts.append(cut(prev, cur))
                pts.append(cur)
            elif inside(prev):
                pts.append(cut(prev, cur))
            prev = cur
        out = np.array(pts)
    return out


def region_iou(gt, pred, bound: tuple[float, float] | None = None) -> float:
    """IoU of two regions (x,y,w,h or 8-value polygons), both clipped to (0,0,W,H)."""
    p, q = _polygon(gt), _polygon(pred)
    if bound is not None:
        frame = _polygon([0, 0, bound[0], bound[1]])
        p, q = _clip(p, frame), _clip(q, frame)
    a, b = _area(p), _area(q)
    if a == 0 or b == 0:
        return 0.0
    inter = _area(_clip(p, q))
    return float(np.clip(inter / (a + b - inter + np.finfo(float).eps), 0.0, 1.0))


def region_to_rect(region) -> np.ndarray:
    """Axis-aligned box of a polygon with the same area (got10k's VOT conversion)."""
    r = np.asarray(region, np.float64)
    if len(r) == 4:
        return r
    xs, ys = r[0::2], r[1::2]
    cx, cy = xs.mean(), ys.mean()
    x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
    area1 = np.linalg.norm(r[0:2] - r[2:4]) * np.linalg.norm(r[2:4] - r[4:6])
    scale = np.sqrt(area1 / ((x2 - x1) * (y2 - y1)))
    w, h = scale * (x2 - x1) + 1, scale * (y2 - y1) + 1
    return np.array([cx - w / 2, cy - h / 2, w, h])


def run_supervised(tracker, frames, gt: list, bound) -> list[list[float]]:
    """Records per frame: [1] init, [0] skipped, [2] failure, or [x, y, w, h]."""
    records, next_start, failed = [], -1, False
    for f, frame in enumerate(frames):
        if f == 0 or (failed and f == next_start):
            tracker.init(frame, region_to_rect(gt[f]))
            records.append([1.0])
            failed = False
        elif failed:
            records.append([0.0])
        else:
            box, _ = tracker.update(frame)
            if region_iou(gt[f], box, bound) <= 0.0:
                failed, next_start = True, f + SKIP
                records.append([2.0])
            else:
                records.append([float(v) for v in box])
    return records


def overlaps(records: list, gt: list, bound, burnin: int = 0) -> np.ndarray:
    """Per-frame overlaps; NaN on special frames (and ``burnin`` frames after each init)."""
    recs = list(records)
    if burnin:
        for i, r in enumerate(records):
            if r == [1.0]:
                for j in range(i, min(i + burnin, len(recs))):
                    recs[j] = [0.0]
    return np.array([region_iou(g, r, bound) if len(r) > 1 else np.nan for r, g in zip(recs, gt)])


def failures(records: list) -> list[int]:
    return [i for i, r in enumerate(records) if r == [2.0]]


def expected_average_overlap(runs: list[tuple[list, list, tuple]], low: int, high: int) -> float:
    """EAO over (records, gt, bound) runs, one repetition each (deterministic trackers)."""
    all_ov = [overlaps(r, g, (b[0] - 1, b[1] - 1)) for r, g, b in runs]
    all_fail = [failures(r) for r, _, _ in runs]
    max_len = max(len(o) for o in all_ov)
    n = sum(len(f) + 1 for f in all_fail)
    frags = np.full((n, max_len), np.nan)
    weights = np.full(n, np.nan)
    k = 0
    for ov, fail, (_, g, _) in zip(all_ov, all_fail, runs):
        if not fail:
            frags[k, :len(ov)] = ov
            weights[k] = 1.0
            k += 1
            continue
        points = [0] + [x + SKIP for x in fail if x + SKIP <= len(ov)]
        for i, start in enumerate(points):
            last = i == len(points) - 1
            frag = ov[start:] if last else ov[start:points[i + 1] + 1]
            frag = np.where(np.isnan(frag), 0.0, frag)
            if not last:
                frags[k, :] = 0.0
            frags[k, :len(frag)] = frag
            weights[k] = (len(ov) - start) / (len(g) - start + 1e-16) if last else 1.0
            k += 1
    frags, weights = frags[:k], weights[:k]
    expected = np.zeros(max_len)
    expected[0] = 1
    for i in range(1, max_len):
        m = ~np.isnan(frags[:, i])
        if m.any():
            seg = frags[m, 1:i + 1]
            expected[i] = np.sum(seg.mean(1) * weights[m]) / np.sum(weights[m])
    w = np.zeros(max_len)
    w[low - 1:high] = 1
    ok = ~np.isnan(expected)
    return float(np.sum(expected[ok] * w[ok]) / np.sum(w[ok])) if w[ok].sum() else float("nan")


def summarize(runs: list[tuple[list, list, tuple]], dataset: str = "vot2019") -> dict:
    """Accuracy (burn-in 10), robustness (failures per sequence and rate), EAO."""
    acc = np.concatenate([overlaps(r, g, b, BURNIN) for r, g, b in runs])
    fails = [len(failures(r)) for r, _, _ in runs]
    total = sum(len(r) for r, _, _ in runs)
    low, high = EAO_RANGE[dataset]
    return {"accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any() else 0.0,
            "lost_number": int(sum(fails)), "robustness": 100.0 * sum(fails) / max(total, 1),
            "eao": expected_average_overlap(runs, low, high), "sequences": len(runs)}
