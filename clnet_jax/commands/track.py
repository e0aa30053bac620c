"""Headless demo: track one object through a video file or a folder of frames.

    clnet-track --config configs/clnet_r50.py --checkpoint weights/clnet_r50
        --video clip.mp4 --init 120,80,60,90 --out out.mp4 [--png stills/] [--boxes b.txt]

Writes the annotated video, the boxes (a line x,y,w,h,score per frame; by default beside
--out as .txt) and optionally every frame as PNG (clnet_jax/track/video.py).
"""
import sys

from absl import flags, logging

from clnet_jax.commands import common
from clnet_jax.track import runner, video

_CONFIG = common.define_config(None)
flags.DEFINE_string("checkpoint", None, "weights directory")
flags.DEFINE_string("video", None, "a video file or a folder of frames (jpg/png)")
flags.DEFINE_string("init", None, "initial box x,y,w,h in pixels of the first frame")
flags.DEFINE_string("out", "out.mp4", "output video (mp4)")
flags.DEFINE_string("png", None, "also write every frame as PNG into this folder")
flags.DEFINE_string("boxes", None, "box file, a line x,y,w,h,score per frame (default: --out "
                    "with .txt)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cfg = common.loaded(_CONFIG, required=False)
    if cfg is None or not FLAGS.checkpoint or not FLAGS.video or not FLAGS.init:
        sys.exit("error: --config, --checkpoint, --video and --init are required")
    try:
        box = video.parse_box(FLAGS.init)
        trk = runner.SequenceTracker(cfg, runner.load_params(cfg, FLAGS.checkpoint))
        writer = video.ResultWriter(FLAGS.out, FLAGS.png, FLAGS.boxes)
        n = video.track_to_files(trk, FLAGS.video, box, writer)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"tracked {n} frames -> {FLAGS.out}, boxes {writer.boxes_path}")


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
