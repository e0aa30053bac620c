"""Headless demo: track one object through a video file or a folder of frames.

    clnet-track --config configs/clnet_r50.py --checkpoint weights/clnet_r50
        --video clip.mp4 --init 120,80,60,90 --out out.mp4 [--png stills/]
"""
import glob
import os
import sys

import cv2
import numpy as np
from absl import flags, logging

from clnet_jax.commands import common
from clnet_jax.track import runner
from clnet_jax.track.inputs import read_frame, to_bgr_uint8

_CONFIG = common.define_config(None)
flags.DEFINE_string("checkpoint", None, "weights directory")
flags.DEFINE_string("video", None, "a video file or a folder of frames (jpg/png)")
flags.DEFINE_string("init", None, "initial box x,y,w,h in pixels of the first frame")
flags.DEFINE_string("out", "out.mp4", "output video (mp4)")
flags.DEFINE_string("png", None, "also write every frame as PNG into this folder")
FLAGS = flags.FLAGS


def frames_of(source: str):
    if os.path.isdir(source):
        paths = sorted(glob.glob(os.path.join(source, "*.jpg")) + glob.glob(os.path.join(source, "*.png")))
        if not paths:
            raise ValueError(f"{source}: no .jpg or .png frames")
        for p in paths:
            yield read_frame(p)
        return
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise ValueError(f"{source}: cannot open video")
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield to_bgr_uint8(frame)


def draw(frame: np.ndarray, box, score: float) -> np.ndarray:
    out = frame.copy()
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
    label = "init" if np.isnan(score) else f"{score:.2f}"
    cv2.putText(out, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    return out


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cfg = common.loaded(_CONFIG, required=False)
    if cfg is None or not FLAGS.checkpoint or not FLAGS.video or not FLAGS.init:
        sys.exit("error: --config, --checkpoint, --video and --init are required")
    box = [float(v) for v in FLAGS.init.split(",")]
    trk = runner.SequenceTracker(cfg, runner.load_params(cfg, FLAGS.checkpoint))
    writer = None
    if FLAGS.png:
        os.makedirs(FLAGS.png, exist_ok=True)
    n = 0
    for i, frame in enumerate(frames_of(FLAGS.video)):
        if i == 0:
            trk.init(frame, box)
            shown, score = box, float("nan")
        else:
            shown, score = trk.update(frame)
        img = draw(frame, shown, score)
        if writer is None:
            writer = cv2.VideoWriter(FLAGS.out, cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(img)
        if FLAGS.png:
            cv2.imwrite(os.path.join(FLAGS.png, f"{i + 1:06d}.png"), img)
        n += 1
    if writer is not None:
        writer.release()
    print(f"tracked {n} frames -> {FLAGS.out}")


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
