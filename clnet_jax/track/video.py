"""Frames in, result files out, for ``clnet-track`` and the ONNX runtime alike (no JAX).

A source is a video file or a folder of .jpg/.png frames. A run writes the annotated video
(mp4), optionally every annotated frame as PNG, and the boxes as text: one line per frame,
``x,y,w,h,score`` in pixels (score ``nan`` on the first frame, whose box is the given one).
Both trackers write through :class:`ResultWriter`, so their files compare line by line.
"""
from __future__ import annotations

import glob
import os
from typing import Iterator, Sequence

import cv2
import numpy as np

from clnet_jax.track.inputs import read_frame, to_bgr_uint8


def frames_of(source: str) -> Iterator[np.ndarray]:
    """BGR uint8 frames of a video file or of a folder's .jpg/.png files in name order."""
    if os.path.isdir(source):
        paths = sorted(glob.glob(os.path.join(source, "*.jpg")) + glob.glob(os.path.join(source, "*.png")))
        if not paths:
            raise ValueError(f"{source}: no .jpg or .png frames")
        for p in paths:
            yield read_frame(p)
        return
    if not os.path.exists(source):
        raise ValueError(f"{source}: no such video file or folder")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise ValueError(f"{source}: cannot open video")
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield to_bgr_uint8(frame)


def parse_box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--init {text!r}: expected x,y,w,h numbers") from None
    if len(box) != 4:
        raise ValueError(f"--init {text!r}: expected 4 numbers x,y,w,h, got {len(box)}")
    return box


def draw(frame: np.ndarray, box: Sequence[float], score: float) -> np.ndarray:
    out = frame.copy()
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
    label = "init" if np.isnan(score) else f"{score:.2f}"
    cv2.putText(out, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    return out


class ResultWriter:
    """The annotated mp4, optional PNG stills and the box file of one run."""

    def __init__(self, out: str, png: str | None = None, boxes: str | None = None):
        self.out, self.png = out, png
        self.boxes_path = boxes if boxes is not None else os.path.splitext(out)[0] + ".txt"
        self.n, self._video, self._lines = 0, None, []
        if png:
            os.makedirs(png, exist_ok=True)

    def add(self, frame: np.ndarray, box: Sequence[float], score: float) -> None:
        img = draw(frame, box, score)
        if self._video is None:
            self._video = cv2.VideoWriter(self.out, cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                          (frame.shape[1], frame.shape[0]))
        self._video.write(img)
        if self.png:
            cv2.imwrite(os.path.join(self.png, f"{self.n + 1:06d}.png"), img)
        self._lines.append(",".join(f"{float(v):.4f}" for v in box) + f",{float(score):.6f}")
        self.n += 1

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
        with open(self.boxes_path + ".tmp", "w") as f:
            f.write("\n".join(self._lines) + ("\n" if self._lines else ""))
        os.replace(self.boxes_path + ".tmp", self.boxes_path)


def track_frames(tracker, frames, box) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0), from any
    tracker with ``init(frame, box)`` and ``update(frame) -> (box, score)``."""
    it = iter(frames)
    tracker.init(next(it), box)
    boxes, scores = [np.asarray(box, np.float64)], [np.nan]
    for frame in it:
        b, s = tracker.update(frame)
        boxes.append(np.asarray(b, np.float64))
        scores.append(s)
    return np.stack(boxes), np.asarray(scores)


def track_to_files(tracker, source: str, box: Sequence[float], writer: ResultWriter) -> int:
    """Runs ``tracker`` (``init(frame, box)``, ``update(frame) -> (box, score)``) over
    ``source`` into ``writer``; returns the number of frames."""
    try:
        for i, frame in enumerate(frames_of(source)):
            if i == 0:
                tracker.init(frame, box)
                shown, score = box, float("nan")
            else:
                shown, score = tracker.update(frame)
            writer.add(frame, shown, score)
    finally:
        writer.close()
    return writer.n
