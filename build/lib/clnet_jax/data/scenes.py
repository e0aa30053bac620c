"""Procedural scenes closer to real video: the testbed of the research issue (look-alikes
that are the same kind of object, not recoloured copies).

A sequence is a pure function of (seed, level, family). It has a textured natural-looking
background seen through a panning camera; a target object of some *kind* (a shape family)
with its own texture; look-alikes of the same kind with another texture instance and other
shape parameters in the same colours; and, by difficulty level, rotation, scale change over
a wide range, motion blur, illumination change (slow drift and sudden switches), full
occlusion by a passing occluder and out-of-view stretches. Frames where the target is
absent (out of view, or less than 30 % of it visible) are marked invalid; boxes are the
axis-aligned extent of the target inside the frame.

Two families: ``"scenes"`` (the training/validation/test splits) and ``"transfer"`` (a test
split no training split resembles: other object kinds, texture families, backgrounds,
frame size and motion model).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from clnet_jax.data.sequence import Sequence

LEVELS = ("easy", "medium", "hard")


@dataclasses.dataclass(frozen=True)
class Level:
    distractors: tuple[int, int]   # [lo, hi) look-alikes
    scale_range: float             # largest / smallest target scale over the sequence
    rotation: float                # amplitude of the rotation in degrees
    speed: float                   # typical target speed, in target sizes per frame
    jump_prob: float               # per-frame chance of a sudden move
    blur_prob: float               # per-frame chance of motion blur
    illumination: float            # amplitude of the slow illumination drift (gain)
    switch_prob: float             # chance of one sudden illumination switch
    occlusion_prob: float          # chance of one full occlusion by a passing occluder
    out_of_view_prob: float        # chance of one out-of-view stretch
    camera: float                  # camera pan amplitude, in frame fractions


LEVEL_PARAMS = {
    "easy": Level((0, 2), 1.3, 8.0, 0.05, 0.0, 0.0, 0.08, 0.0, 0.0, 0.0, 0.05),
    "medium": Level((1, 3), 2.0, 25.0, 0.09, 0.03, 0.15, 0.2, 0.2, 0.3, 0.2, 0.12),
    "hard": Level((3, 6), 3.5, 60.0, 0.14, 0.06, 0.35, 0.35, 0.5, 0.6, 0.4, 0.2),
}


@dataclasses.dataclass(frozen=True)
class Family:
    kinds: tuple[str, ...]
    textures: tuple[str, ...]
    background: str
    size: tuple[int, int]          # frame (height, width)
    target_size: tuple[float, float]  # target side as a fraction of the frame's short side
    inertia: float                 # velocity memory of the motion model


FAMILIES = {
    "scenes": Family(("ellipse", "polygon", "rounded", "blob"), ("blobs", "stripes", "noise"),
                     "natural", (144, 192), (0.12, 0.24), 0.85),
    # Transfer: shapes, textures, background, frame aspect and motion nothing in training has.
    "transfer": Family(("ring", "cross", "crescent", "glyph"), ("checker", "dots", "rings"),
                       "tiles", (176, 144), (0.14, 0.28), 0.6),
}
SPRITE = 64  # side of an object's canonical rendering


# ------------------------------------------------------------------ colours and textures
def _palette(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """Three BGR colours around one hue (look-alikes share the hue)."""
    hue = rng.uniform(0, 180) if hue is None else hue
    hsv = np.stack([(hue + rng.uniform(-12, 12, 3)) % 180, rng.uniform(90, 255, 3),
                    rng.uniform(70, 250, 3)], 1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0].astype(np.float32)


def _value_noise(rng: np.random.Generator, h: int, w: int, octaves=(4, 8, 16, 32, 64)) -> np.ndarray:
    """Fractal value noise in [0, 1]: coarse-to-fine octaves with 1/f amplitudes."""
    out = np.zeros((h, w), np.float32)
    for k, cell in enumerate(octaves):
        low = rng.random((max(h // cell, 1) + 2, max(w // cell, 1) + 2)).astype(np.float32)
        out += cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * (0.6 ** k)
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _colourise(v: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Maps [0, 1] values through a 3-colour gradient."""
    v = v[..., None]
    a = np.clip(v * 2, 0, 1)
    b = np.clip(v * 2 - 1, 0, 1)
    return pal[0] * (1 - a) + pal[1] * (a - b) + pal[2] * b


def _texture(rng: np.random.Generator, kind: str, pal: np.ndarray) -> np.ndarray:
    s = SPRITE
    if kind == "blobs":
        img = np.empty((s, s, 3), np.float32)
        img[:] = pal[0]
        for _ in range(rng.integers(4, 8)):
            c = tuple(float(x) for x in pal[rng.integers(1, 3)] * rng.uniform(0.7, 1.1))
            p = tuple(int(x) for x in rng.integers(0, s, 2))
            cv2.circle(img, p, int(rng.integers(s // 10, s // 3)), c, -1)
        return img
    if kind == "stripes":
        yy, xx = np.mgrid[:s, :s].astype(np.float32)
        a = rng.uniform(0, np.pi)
        f = rng.uniform(0.15, 0.45)
        v = 0.5 + 0.5 * np.sin(f * (np.cos(a) * xx + np.sin(a) * yy) + rng.uniform(0, 6))
        return _colourise(v, pal)
    if kind == "noise":
        return _colourise(_value_noise(rng, s, s, (4, 8, 16)), pal)
    if kind == "checker":
        n = int(rng.integers(3, 7))
        yy, xx = np.mgrid[:s, :s] * n // s
        return np.where(((xx + yy) % 2 == 0)[..., None], pal[0], pal[2]).astype(np.float32)
    if kind == "dots":
        img = np.empty((s, s, 3), np.float32)
        img[:] = pal[1]
        step = int(rng.integers(8, 14))
        for y in range(step // 2, s, step):
            for x in range(step // 2, s, step):
                cv2.circle(img, (x, y), step // 3, tuple(float(c) for c in pal[0]), -1)
        return img
    if kind == "rings":
        yy, xx = np.mgrid[:s, :s].astype(np.float32) - s / 2
        v = 0.5 + 0.5 * np.sin(np.hypot(xx, yy) * rng.uniform(0.3, 0.7))
        return _colourise(v, pal)
    raise ValueError(f"unknown texture {kind!r}")


def _shape(rng: np.random.Generator, kind: str) -> np.ndarray:
    """The object's silhouette (uint8 0/255) on the canonical square."""
    s = SPRITE
    m = np.zeros((s, s), np.uint8)
    c = (s // 2, s // 2)
    if kind == "ellipse":
        cv2.ellipse(m, c, (s // 2 - 1, int(s // 2 * rng.uniform(0.55, 1.0))), 0, 0, 360, 255, -1)
    elif kind == "polygon":
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = s / 2 * rng.uniform(0.6, 1.0, n)
        pts = np.stack([c[0] + r * np.cos(ang), c[1] + r * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    elif kind == "rounded":
        r = int(rng.integers(6, 16))
        h = int(s / 2 * rng.uniform(0.5, 1.0))
        cv2.rectangle(m, (r, c[1] - h + r), (s - r, c[1] + h - r), 255, -1)
        for x in (r, s - r):
            for y in (c[1] - h + r, c[1] + h - r):
                cv2.circle(m, (x, y), r, 255, -1)
        cv2.rectangle(m, (0, c[1] - h + r), (s, c[1] + h - r), 255, -1)
        cv2.rectangle(m, (r, c[1] - h), (s - r, c[1] + h), 255, -1)
    elif kind == "blob":
        for _ in range(int(rng.integers(3, 5))):
            p = tuple(int(v) for v in rng.integers(s // 3, 2 * s // 3, 2))
            cv2.circle(m, p, int(rng.integers(s // 6, s // 3)), 255, -1)
    elif kind == "ring":
        cv2.circle(m, c, s // 2 - 1, 255, -1)
        cv2.circle(m, c, int(s / 2 * rng.uniform(0.3, 0.55)), 0, -1)
    elif kind == "cross":
        t = int(s / 2 * rng.uniform(0.25, 0.45))
        cv2.rectangle(m, (c[0] - t, 0), (c[0] + t, s), 255, -1)
        cv2.rectangle(m, (0, c[1] - t), (s, c[1] + t), 255, -1)
    elif kind == "crescent":
        cv2.circle(m, c, s // 2 - 1, 255, -1)
        off = int(s * rng.uniform(0.2, 0.35))
        cv2.circle(m, (c[0] + off, c[1] - off // 2), int(s * 0.4), 0, -1)
    elif kind == "glyph":
        ch = "ABEFHKMNRSWXZ"[int(rng.integers(13))]
        cv2.putText(m, ch, (4, s - 8), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 12)
    else:
        raise ValueError(f"unknown object kind {kind!r}")
    return m


def _background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    if kind == "natural":  # terrain-like: fractal noise through earthy/leafy palettes
        img = _colourise(_value_noise(rng, h, w), _palette(rng))
        detail = _value_noise(rng, h, w, (2, 4))[..., None] - 0.5
        img = img * (1 + 0.35 * detail)
        for _ in range(rng.integers(2, 6)):  # soft-edged structures (stones, branches)
            col = tuple(float(v) for v in _palette(rng)[0])
            if rng.random() < 0.5:
                p = tuple(int(v) for v in rng.integers(0, [w, h]))
                cv2.ellipse(img, p, tuple(int(v) for v in rng.integers(6, 40, 2)),
                            float(rng.uniform(0, 180)), 0, 360, col, -1)
            else:
                p0, p1 = (tuple(int(v) for v in rng.integers(0, [w, h])) for _ in range(2))
                cv2.line(img, p0, p1, col, int(rng.integers(2, 7)))
        img = cv2.GaussianBlur(img, (0, 0), 1.2)
    elif kind == "tiles":  # man-made: bricks/tiles with mortar, then stains
        pal = _palette(rng)
        img = np.empty((h, w, 3), np.float32)
        img[:] = pal[2] * 0.6
        th, tw = int(rng.integers(10, 24)), int(rng.integers(16, 40))
        for r, y in enumerate(range(0, h, th)):
            shift = (tw // 2) * (r % 2)
            for x in range(-shift, w, tw):
                col = tuple(float(v) for v in pal[rng.integers(0, 2)] * rng.uniform(0.75, 1.15))
                cv2.rectangle(img, (x + 1, y + 1), (x + tw - 2, y + th - 2), col, -1)
        img *= (0.8 + 0.4 * _value_noise(rng, h, w, (8, 16)))[..., None]
    else:
        raise ValueError(f"unknown background {kind!r}")
    return img + rng.normal(0, 3, img.shape).astype(np.float32)


# ----------------------------------------------------------------------------- motion
def _smooth(rng: np.random.Generator, t: int, amplitude: float, periods: float = 1.0) -> np.ndarray:
    """A smooth random curve of ``t`` values with the given amplitude."""
    ph = rng.uniform(0, 2 * np.pi, 2)
    x = np.linspace(0, 2 * np.pi * periods, t)
    return amplitude * (0.7 * np.sin(x + ph[0]) + 0.3 * np.sin(2.3 * x + ph[1]))


def _path(rng, t, lo, hi, speed, inertia, jump_prob):
    """Positions (t, 2) in world coordinates inside [lo, hi], reflecting at the borders."""
    pos = np.empty((t, 2))
    pos[0] = rng.uniform(lo, hi)
    vel = rng.normal(0, speed, 2)
    for i in range(1, t):
        vel = inertia * vel + rng.normal(0, speed * (1 - inertia) * 2.0, 2)
        if rng.random() < jump_prob:
            vel += rng.normal(0, speed * 4, 2)
        pos[i] = pos[i - 1] + vel
        for d in range(2):
            if not lo[d] <= pos[i, d] <= hi[d]:
                vel[d] = -vel[d]
                pos[i, d] = np.clip(pos[i, d], lo[d], hi[d])
    return pos


# ------------------------------------------------------------------------- rendering
@dataclasses.dataclass
class _Object:
    texture: np.ndarray  # (S, S, 3) float32
    mask: np.ndarray     # (S, S) uint8
    pos: np.ndarray      # (T, 2) world centre
    scale: np.ndarray    # (T,) side in pixels
    aspect: np.ndarray   # (T,) width / height
    angle: np.ndarray    # (T,) degrees


def _warp(obj: _Object, i: int, cam: np.ndarray, h: int, w: int):
    """Object i-th frame pose as (colour, alpha in [0, 1]) on the frame."""
    sx = obj.scale[i] * np.sqrt(obj.aspect[i]) / SPRITE
    sy = obj.scale[i] / np.sqrt(obj.aspect[i]) / SPRITE
    a = np.deg2rad(obj.angle[i])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lin = rot @ np.diag([sx, sy])
    centre = obj.pos[i] - cam
    m = np.concatenate([lin, (centre - lin @ np.array([SPRITE / 2, SPRITE / 2]))[:, None]], 1)
    colour = cv2.warpAffine(obj.texture, m, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(obj.mask.astype(np.float32) / 255, m, (w, h), flags=cv2.INTER_LINEAR)
    return colour, alpha


def _blend(img, colour, alpha):
    img *= 1 - alpha[..., None]
    img += colour * alpha[..., None]


def _motion_blur(img: np.ndarray, vel: np.ndarray, rng) -> np.ndarray:
    length = int(np.clip(np.hypot(*vel) * rng.uniform(0.6, 1.2), 3, 11))
    k = np.zeros((length, length), np.float32)
    d = vel / max(np.hypot(*vel), 1e-6)
    c = (length - 1) / 2
    cv2.line(k, (int(round(c - d[0] * c)), int(round(c - d[1] * c))),
             (int(round(c + d[0] * c)), int(round(c + d[1] * c))), 1.0, 1)
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def _stretch(rng, t: int, prob: float, lo: int, hi: int) -> tuple[int, int] | None:
    """One [start, end) stretch of ``lo``..``hi`` frames after the first quarter, or None."""
    if rng.random() >= prob or t < 8:
        return None
    n = int(rng.integers(lo, hi + 1))
    start = int(rng.integers(t // 4, max(t - n, t // 4 + 1)))
    return start, min(start + n, t)


def make_sequence(seed: int, level: str = "medium", family: str = "scenes",
                  length: int = 50) -> Sequence:
    """One deterministic sequence (same arguments, same pixels)."""
    lv, fam = LEVEL_PARAMS[level], FAMILIES[family]
    rng = np.random.default_rng(seed)
    h, w = fam.size
    short = min(h, w)
    pan = lv.camera * short
    cam = np.stack([_smooth(rng, length, pan), _smooth(rng, length, pan)], 1) + pan
    world_h, world_w = h + int(2 * pan) + 2, w + int(2 * pan) + 2
    bg = _background(rng, fam.background, world_h, world_w)

    kind = fam.kinds[int(rng.integers(len(fam.kinds)))]
    hue = float(rng.uniform(0, 180))
    side = rng.uniform(*fam.target_size) * short
    # scale over the sequence: a smooth log-curve spanning the level's range
    log_r = np.log(lv.scale_range) / 2
    scale = side * np.exp(_smooth(rng, length, log_r, rng.uniform(0.5, 1.0)))
    aspect = rng.uniform(0.6, 1.6) * np.exp(_smooth(rng, length, 0.15, 2.0))
    angle = _smooth(rng, length, lv.rotation, rng.uniform(0.5, 1.2))
    margin = np.array([pan, pan]) + side * 0.6
    lo, hi = margin, np.array([world_w, world_h]) - margin
    pos = _path(rng, length, lo, hi, lv.speed * side, fam.inertia, lv.jump_prob)
    oov = _stretch(rng, length, lv.out_of_view_prob, 4, 10)
    if oov is not None:  # an excursion past the nearest border and back
        s, e = oov
        c = pos[s:e].mean(0) - cam[s:e].mean(0)
        dist = np.array([c[0], w - c[0], c[1], h - c[1]])
        k = int(np.argmin(dist))
        bump = np.sin(np.linspace(0, np.pi, e - s)) * (dist[k] + scale[s:e].max() * 1.2)
        axis, sign = k // 2, (-1 if k % 2 == 0 else 1)
        pos[s:e, axis] += sign * bump * np.minimum(1.0, 2.5 * np.sin(np.linspace(0, np.pi, e - s)))
    tex_kind = fam.textures[int(rng.integers(len(fam.textures)))]
    target = _Object(_texture(rng, tex_kind, _palette(rng, hue)), _shape(rng, kind), pos, scale,
                     aspect, angle)

    others = []
    for _ in range(int(rng.integers(*lv.distractors))):
        # same kind and colours, another texture instance (sometimes another texture
        # family) and other shape parameters: a look-alike, not a recoloured copy
        tk = tex_kind if rng.random() < 0.7 else fam.textures[int(rng.integers(len(fam.textures)))]
        s2 = side * rng.uniform(0.8, 1.25)
        others.append(_Object(
            _texture(rng, tk, _palette(rng, hue + rng.uniform(-8, 8))), _shape(rng, kind),
            _path(rng, length, lo, hi, lv.speed * 0.7 * s2, fam.inertia, 0.0),
            s2 * np.exp(_smooth(rng, length, log_r * 0.5)),
            rng.uniform(0.6, 1.6) * np.ones(length), _smooth(rng, length, lv.rotation)))

    occ = _stretch(rng, length, lv.occlusion_prob, 3, 8)
    occluder = None
    if occ is not None:  # a large background-coloured shape passing over the target
        s, e = occ
        o_side = scale[s:e].max() * 1.9
        start = pos[s] + rng.choice([-1, 1], 2) * o_side * 1.2
        end = pos[e - 1] * 2 - start
        frac = np.clip((np.arange(length) - s + 2) / (e - s + 3), 0, 1)[:, None]
        o_pos = start + (end - start) * frac
        occluder = _Object(_texture(rng, "noise", _palette(rng)), _shape(rng, "ellipse"), o_pos,
                           np.full(length, o_side), np.ones(length), np.zeros(length))

    gain = 1 + _smooth(rng, length, lv.illumination, rng.uniform(0.5, 1.5))
    switch = _stretch(rng, length, lv.switch_prob, length // 4, length)
    if switch is not None:
        gain[switch[0]:switch[1]] *= rng.choice([0.55, 1.5])
    tint = 1 + _smooth(rng, 3, lv.illumination * 0.3)

    frames = np.empty((length, h, w, 3), np.uint8)
    boxes = np.zeros((length, 4), np.float32)
    valid = np.zeros(length, bool)
    for i in range(length):
        cx, cy = (int(round(v)) for v in cam[i])
        img = bg[cy:cy + h, cx:cx + w].copy()
        for o in others:
            _blend(img, *_warp(o, i, cam[i], h, w))
        colour, alpha = _warp(target, i, cam[i], h, w)
        _blend(img, colour, alpha)
        full_area = float(target.mask.sum()) / 255 * (target.scale[i] / SPRITE) ** 2
        seen = alpha > 0.5
        visible = seen
        if occluder is not None:
            oc, oa = _warp(occluder, i, cam[i], h, w)
            _blend(img, oc, oa)
            visible = seen & (oa < 0.5)
        if seen.any():
            ys, xs = np.nonzero(seen)
            boxes[i] = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
            valid[i] = (visible.sum() >= 0.3 * full_area and boxes[i, 2] >= 4
                        and boxes[i, 3] >= 4)
        img *= gain[i] * tint
        if i > 0 and rng.random() < lv.blur_prob:
            img = _motion_blur(img, pos[i] - pos[i - 1] + cam[i] - cam[i - 1], rng)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return Sequence(frames, boxes, valid)


# Generators (generators.GENERATORS) built on these scenes and the levels each rotates through:
# the testbed's, and the demo's (no hard level: no full occlusion or out-of-view stretch, so
# a base trained for minutes can track most of it).
LEVEL_SETS = {"scenes": LEVELS, "scenes_easy_medium": ("easy", "medium")}


def level_of(index: int, levels: tuple[str, ...] = LEVELS) -> str:
    """Levels rotate with the index, so every split holds them in equal parts."""
    return levels[index % len(levels)]


def split_seed(split: str, index: int, base_seed: int = 0) -> int:
    offset = {"train": 0, "validation": 1_000_000, "test": 2_000_000, "transfer": 3_000_000}[split]
    return 7_000_000 + base_seed + offset + index
