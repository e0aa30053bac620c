"""Procedural tracking sequences made for the CLNet case: a target among look-alikes.

Every sequence is a pure function of its seed: a textured sprite (the target) moves over a
cluttered background with smooth and sudden (fast) motion, changes scale and aspect,
deforms, and is partly occluded, while 2-4 near-copies of it (distractors, slightly
recoloured) wander nearby. Boxes are (x, y, w, h) of the visible sprite extent.
"""
from __future__ import annotations

import cv2
import numpy as np

from clnet_jax.data.sequence import Sequence


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colourful sprite: blobs and stripes on a base colour."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = rng.integers(30, 226, 3)
    for _ in range(rng.integers(3, 7)):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, p, int(rng.integers(size // 10, size // 3)), c, -1)
    if rng.random() < 0.6:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        for k in range(0, size, int(rng.integers(6, 14))):
            cv2.line(img, (k, 0), (0, k), c, 2)
    return img


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    low = rng.integers(40, 200, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.uint8)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(8, 20)):  # clutter
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        p = tuple(int(v) for v in rng.integers(0, [w, h]))
        if rng.random() < 0.5:
            cv2.rectangle(bg, p, (p[0] + int(rng.integers(4, 30)), p[1] + int(rng.integers(4, 30))), c, -1)
        else:
            cv2.circle(bg, p, int(rng.integers(3, 14)), c, -1)
    noise = rng.normal(0, 6, bg.shape)
    return np.clip(bg + noise, 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, sprite: np.ndarray, cx: float, cy: float, w: float, h: float):
    """Draws an elliptical sprite; returns the clipped box (x, y, w, h) or None."""
    w, h = max(int(round(w)), 2), max(int(round(h)), 2)
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    sp = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (max(w // 2, 1), max(h // 2, 1)), 0, 0, 360, 255, -1)
    H, W = canvas.shape[:2]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if xb <= xa or yb <= ya:
        return None
    m = mask[ya - y0:yb - y0, xa - x0:xb - x0, None] > 0
    region = canvas[ya:yb, xa:xb]
    canvas[ya:yb, xa:xb] = np.where(m, sp[ya - y0:yb - y0, xa - x0:xb - x0], region)
    return np.array([xa, ya, xb - xa, yb - ya], np.float32)


def _trajectory(rng: np.random.Generator, t: int, h: int, w: int, margin: float, jumps: bool):
    pos = np.empty((t, 2))
    pos[0] = rng.uniform(margin, [w - margin, h - margin])
    vel = rng.normal(0, 2.0, 2)
    for i in range(1, t):
        vel = 0.85 * vel + rng.normal(0, 1.2, 2)
        if jumps and rng.random() < 0.06:  # fast motion
            vel += rng.normal(0, 9.0, 2)
        pos[i] = pos[i - 1] + vel
        for d, lim in ((0, w), (1, h)):
            if not margin <= pos[i, d] <= lim - margin:
                vel[d] = -vel[d]
                pos[i, d] = np.clip(pos[i, d], margin, lim - margin)
    return pos


def make_sequence(seed: int, length: int = 40, size: tuple[int, int] = (160, 160),
                  num_distractors: tuple[int, int] = (2, 5)) -> Sequence:
    """One deterministic sequence (same seed, same pixels)."""
    rng = np.random.default_rng(seed)
    h, w = size
    sprite = _texture(rng, 64)
    bg = _background(rng, h, w)
    base = rng.uniform(0.14, 0.26) * min(h, w)
    aspect0 = rng.uniform(0.6, 1.6)
    traj = _trajectory(rng, length, h, w, base * 0.6, jumps=True)
    n_dis = int(rng.integers(*num_distractors))
    dis = []
    for _ in range(n_dis):  # look-alikes: same sprite, small colour shift and size change
        shift = rng.integers(-25, 26, 3)
        look = np.clip(sprite.astype(int) + shift, 0, 255).astype(np.uint8)
        dis.append((look, _trajectory(rng, length, h, w, base * 0.6, jumps=False),
                    base * rng.uniform(0.85, 1.15), aspect0 * rng.uniform(0.85, 1.15)))
    occ_start = int(rng.integers(length // 4, length)) if rng.random() < 0.5 else length
    occ_color = tuple(int(v) for v in rng.integers(0, 256, 3))
    frames = np.empty((length, h, w, 3), np.uint8)
    boxes = np.zeros((length, 4), np.float32)
    valid = np.zeros(length, bool)
    for i in range(length):
        img = bg.copy()
        for look, tr, s, a in dis:
            _paste(img, look, tr[i, 0], tr[i, 1], s * np.sqrt(a), s / np.sqrt(a))
        scale = base * (1 + 0.35 * np.sin(i / length * 2 * np.pi * rng.uniform(0.5, 1.0) + seed))
        deform = aspect0 * (1 + 0.25 * np.sin(i / 5.0 + seed))  # deformation / aspect change
        box = _paste(img, sprite, traj[i, 0], traj[i, 1], scale * np.sqrt(deform),
                     scale / np.sqrt(deform))
        if box is not None:
            boxes[i] = box
            valid[i] = box[2] >= 4 and box[3] >= 4
        if occ_start <= i < occ_start + 6 and box is not None:  # partial occlusion
            x, y, bw, bh = box.astype(int)
            cv2.rectangle(img, (x - 2, y + bh // 3), (x + bw + 2, y + bh), occ_color, -1)
        frames[i] = img
    return Sequence(frames, boxes, valid)


def split_seed(split: str, index: int, base_seed: int = 0) -> int:
    """Disjoint, deterministic seeds per split."""
    offset = {"train": 0, "validation": 1_000_000, "test": 2_000_000}[split]
    return base_seed + offset + index
