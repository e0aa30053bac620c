"""Ground-truth files of the tracking benchmarks, read strictly by the format each one uses.

Every reader knows how many values a line of its format holds and refuses any other count
with :class:`GroundTruthError`, naming the file and the line: a file of another format is
reported as such instead of being reshaped into wrong boxes. Values may be separated by
commas, tabs or spaces (OTB mixes them); ``NaN`` is read as an unknown value (UAV123 marks
absent targets that way).

* ``x,y,w,h`` (4 values): OTB, UAV123, DTB70, UAVDT, LaSOT, GOT-10k, TrackingNet, results.
* regions (4 or 8 values): VOT, rectangles or polygons, kept as given.
* TLP (6 values ``frame,x,y,w,h,isLost``): the frame column must count 1, 2, ...
* NfS (10 values ``id x1 y1 x2 y2 frame lost occluded generated "label"``).
"""
from __future__ import annotations

import numpy as np


class GroundTruthError(ValueError):
    """A ground-truth file that does not hold the format its benchmark publishes."""


def _rows(path: str, counts: tuple[int, ...], what: str) -> list[list[str]]:
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            values = line.replace(",", " ").replace("\t", " ").split()
            if not values:
                continue
            if len(values) not in counts:
                expected = " or ".join(str(c) for c in counts)
                raise GroundTruthError(f"{path}:{number}: {len(values)} values, expected "
                                       f"{expected} ({what})")
            rows.append(values)
    return rows


def _numbers(path: str, rows: list[list[str]], width: int) -> np.ndarray:
    try:
        return np.asarray(rows, np.float64).reshape(len(rows), width)
    except ValueError:
        for number, row in enumerate(rows, 1):
            try:
                [float(v) for v in row]
            except ValueError:
                raise GroundTruthError(f"{path}: line {number} has a value that is not a "
                                       f"number: {' '.join(row)!r}") from None
        raise


def read_boxes(path: str, dtype=np.float64) -> np.ndarray:
    """``x,y,w,h`` per line as an (N, 4) array; NaN lines stay NaN (float64 by default: the
    metrics are compared with the toolkits to 1e-9)."""
    rows = _rows(path, (4,), "x,y,w,h")
    return _numbers(path, rows, 4).astype(dtype) if rows else np.zeros((0, 4), dtype)


def read_regions(path: str) -> list[np.ndarray]:
    """VOT regions: a rectangle ``x,y,w,h`` (4 values) or a polygon (8 values) per line."""
    return [_numbers(path, [r], len(r))[0]
            for r in _rows(path, (4, 8), "x,y,w,h or an 8-value polygon x1,y1,...,x4,y4")]


def polygon_to_box(region, rule: str = "vot") -> np.ndarray:
    """An axis-aligned ``x,y,w,h`` box of a region.

    ``vot``: the bounding rectangle of the polygon's corners, as the VOT toolkit converts a
    polygon to a rectangle. ``pysot``: pysot's ``get_axis_aligned_bbox``, the box with the
    polygon's centre whose area equals the polygon's (how pysot initialises on VOT).
    A 4-value region is returned as it is.
    """
    r = np.asarray(region, np.float64)
    if r.size == 4:
        return r.copy()
    if r.size != 8:
        raise GroundTruthError(f"a region has 4 or 8 values, got {r.size}")
    xs, ys = r[0::2], r[1::2]
    if rule == "vot":
        return np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()])
    if rule == "pysot":
        cx, cy = xs.mean(), ys.mean()
        x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
        a1 = np.linalg.norm(r[0:2] - r[2:4]) * np.linalg.norm(r[2:4] - r[4:6])
        a2 = (x2 - x1) * (y2 - y1)
        s = np.sqrt(a1 / a2)
        w, h = s * (x2 - x1) + 1, s * (y2 - y1) + 1
        return np.array([cx - (w - 1) / 2, cy - (h - 1) / 2, w, h])
    raise ValueError(f"unknown polygon rule {rule!r} (expected 'vot' or 'pysot')")


def read_tlp(path: str) -> tuple[np.ndarray, np.ndarray]:
    """TLP's ``frame,x,y,w,h,isLost``: (N, 4) boxes and the (N,) lost flags. The frame
    column must number the lines 1, 2, ... (a line left out would shift every box)."""
    rows = _rows(path, (6,), "TLP's frame,x,y,w,h,isLost")
    table = _numbers(path, rows, 6) if rows else np.zeros((0, 6))
    for i, frame in enumerate(table[:, 0]):
        if frame != i + 1:
            raise GroundTruthError(f"{path}:{i + 1}: frame number {frame:g}, expected {i + 1} "
                                   "(TLP numbers its lines 1, 2, ...)")
    lost = table[:, 5]
    bad = np.nonzero((lost != 0) & (lost != 1))[0]
    if len(bad):
        raise GroundTruthError(f"{path}:{bad[0] + 1}: isLost is {lost[bad[0]]:g}, expected 0 or 1")
    return table[:, 1:5].copy(), lost.astype(bool)


def read_nfs(path: str) -> np.ndarray:
    """NfS annotations as (N, 4) ``x,y,w,h`` (the file has corners x1,y1,x2,y2)."""
    rows = _rows(path, (10,), 'NfS\'s id x1 y1 x2 y2 frame lost occluded generated "label"')
    if not rows:
        return np.zeros((0, 4))
    corners = _numbers(path, [r[1:5] for r in rows], 4)
    corners[:, 2:] -= corners[:, :2]
    return corners
