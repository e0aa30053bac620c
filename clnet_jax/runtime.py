"""Tracking from an ONNX export with onnxruntime, OpenCV and NumPy only: no JAX.

    clnet-track-onnx --export exported/clnet_r50 --video clip.mp4 --init 120,80,60,90
        --out out.mp4 [--png stills/] [--boxes b.txt] [--threads N] [--provider cpu]

``clnet-export --format onnx`` writes, per frame size, ``init_HxW.onnx`` (frame, box ->
state) and ``step_HxW.onnx`` (state, frame -> next state, box, score) with the weights in
the graphs, and ``export.json``. :class:`OnnxTracker` keeps the state as the list of arrays
``init`` returns and feeds it back to ``step``; everything a frame needs (crop, network,
decoding, penalties, smoothing) runs inside the graph. The result files are those of
``clnet-track`` (clnet_jax/track/video.py).

This module and what it imports (the export folder's checks in io/artifacts.py, the frame
reading in track/inputs.py and track/video.py) import no JAX, so the package serves this
path where only ``pip install --no-deps clnet-jax onnxruntime opencv-python-headless numpy``
was run.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterable, Sequence

import numpy as np

from clnet_jax.io import artifacts
from clnet_jax.io.artifacts import ExportError
from clnet_jax.track import video
from clnet_jax.track.inputs import next_frame, to_bgr_uint8, validate_box

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def cpu_threads() -> int:
    """The cores this process may use, as XLA's CPU client counts them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class OnnxTracker:
    """``init(frame, box)`` and ``update(frame) -> (box, score)`` over an ONNX export folder,
    one session pair per frame size, created on first use."""

    def __init__(self, folder: str, threads: int | None = None,
                 providers: Sequence[str] = ("cpu",)):
        try:
            import onnxruntime
        except ImportError:
            raise ExportError("the ONNX runtime needs onnxruntime: pip install onnxruntime") from None
        self.ort, self.folder = onnxruntime, folder
        self.manifest = artifacts.read_manifest(folder, "onnx")
        unknown = [p for p in providers if p not in PROVIDERS]
        if unknown:
            raise ExportError(f"provider {unknown[0]!r}: one of {', '.join(PROVIDERS)}")
        self.providers = [PROVIDERS[p] for p in providers]
        self.threads = threads or cpu_threads()
        self._sessions: dict[tuple[int, int], tuple] = {}
        self.state: list[np.ndarray] | None = None
        self.frame_shape = None

    def _session(self, data: bytes):
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # shape-merge warnings of the converted graph
        return self.ort.InferenceSession(data, opts, providers=self.providers)

    def _for(self, shape: Sequence[int]):
        size = artifacts.check_size(self.folder, self.manifest, shape)
        if size not in self._sessions:
            init, step = (self._session(artifacts.read_artifact(self.folder, self.manifest, fn, size))
                          for fn in ("init", "step"))
            self._sessions[size] = (init, step, [i.name for i in step.get_inputs()])
        return self._sessions[size]

    def init(self, frame: np.ndarray, box) -> None:
        frame = to_bgr_uint8(frame)
        box = validate_box(box, frame.shape)
        init, _, _ = self._for(frame.shape)
        self.state = init.run(None, {"frame": frame, "box": np.asarray(box, np.float32)})
        self.frame_shape = frame.shape

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        frame = next_frame(frame, self.frame_shape, ExportError)
        _, step, names = self._for(frame.shape)
        out = step.run(None, dict(zip(names, [*self.state, frame])))
        self.state = out[:-2]
        return np.asarray(out[-2], np.float64), float(out[-1])

    def track(self, frames: Iterable[np.ndarray], box) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) with the initial box first, and scores (N,) (NaN for frame 0)."""
        return video.track_frames(self, frames, box)


def main(argv: Sequence[str] | None = None) -> int:
    # argparse, not absl: this path's dependencies are onnxruntime, OpenCV and NumPy only
    ap = argparse.ArgumentParser(prog="clnet-track-onnx", description=__doc__.splitlines()[0])
    ap.add_argument("--export", required=True, help="folder written by clnet-export --format onnx")
    ap.add_argument("--video", required=True, help="a video file or a folder of frames (jpg/png)")
    ap.add_argument("--init", required=True, help="initial box x,y,w,h in pixels of the first frame")
    ap.add_argument("--out", default="out.mp4", help="output video (mp4)")
    ap.add_argument("--png", default=None, help="also write every frame as PNG into this folder")
    ap.add_argument("--boxes", default=None, help="box file, a line x,y,w,h,score per frame "
                    "(default: --out with .txt)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads "
                    "(default: the cores this process may use)")
    ap.add_argument("--provider", default="cpu", help="onnxruntime providers in order, "
                    "comma-separated: " + ", ".join(PROVIDERS))
    a = ap.parse_args(argv)
    try:
        box = video.parse_box(a.init)
        trk = OnnxTracker(a.export, a.threads or None, a.provider.split(","))
        writer = video.ResultWriter(a.out, a.png, a.boxes)
        n = video.track_to_files(trk, a.video, box, writer)
    except (ValueError, FileNotFoundError) as e:  # ExportError and FrameError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"tracked {n} frames -> {a.out}, boxes {writer.boxes_path}")
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
