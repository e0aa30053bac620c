"""Where one r50 tracking frame's time goes on this machine, with and without Winograd.

    python benchmarks/track_profile.py [--checkpoint W] [--frames tests/golden/sequences/Dudek]
        [--iters 10] [--out results/bench/track_profile.json]

Jits the parts of ``tracker.step`` separately on the sequence's first frame and times each
(median of ``--iters`` calls after a warm-up): the search crop (OpenCV-exact resize), the
backbone and neck on the 255² crop, the same plus the RPN heads' cross-correlation and hidden
convolutions (``search_hidden``), and the whole step (the rest: θ1 heads, decoding,
penalties, smoothing). Runs for ``track.winograd`` on and off. The parts are separate
programs, so their sum can exceed the step (XLA fuses across them inside one). Prints a table
and writes JSON.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.track import crop as crop_lib  # noqa: E402
from clnet_jax.track import runner  # noqa: E402
from clnet_jax.track import tracker as tracker_lib  # noqa: E402


def profile(cfg, params, frame, box, iters: int) -> dict:
    fns = tracker_lib.make_tracker(cfg)
    spec = tracker_lib.setup(cfg)
    p = jax.tree.map(jnp.asarray, fns.prepare(params))
    state = jax.jit(fns.init)(p, frame, box)
    side, _ = tracker_lib.search_region(spec, state.size)
    crop = jax.jit(lambda f, c, s, fill: crop_lib.crop_and_resize(f, c, s, 255, fill))
    x = crop(frame, state.center, side, state.fill)
    features = jax.jit(lambda p, x: spec.net.apply(p["model"], x[None], method=spec.net.features))
    hidden = jax.jit(lambda p, k, x: tracker_lib.search_hidden(spec, p, k, x))
    step = jax.jit(fns.step)
    return {"crop_s": common.time_call(crop, frame, state.center, side, state.fill, iters=iters),
            "backbone_neck_s": common.time_call(features, p, x, iters=iters),
            "backbone_neck_xcorr_heads_s": common.time_call(hidden, p, state.kernels, x, iters=iters),
            "step_s": common.time_call(step, p, state, frame, iters=iters)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="siamrpn_r50")
    ap.add_argument("--checkpoint", default=None, help="weights (default: random)")
    ap.add_argument("--frames", default="tests/golden/sequences/Dudek")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", default="results/bench/track_profile.json")
    a = ap.parse_args()
    frame = cv2.imread(sorted(glob.glob(os.path.join(a.frames, "img", "*.jpg")))[0])
    box = np.loadtxt(os.path.join(a.frames, "groundtruth_rect.txt"), delimiter=",")[0]
    rows = []
    for wino in ("on", "off"):
        cfg = config_lib.from_file(a.config, {"track.winograd": wino})
        params = (runner.load_params(cfg, a.checkpoint) if a.checkpoint
                  else jax.device_get(model_lib.init_params(cfg, jax.random.key(0))))
        r = profile(cfg, params, frame, np.asarray(box, np.float32), a.iters)
        r["xcorr_heads_s"] = r["backbone_neck_xcorr_heads_s"] - r["backbone_neck_s"]
        r["rest_of_step_s"] = r["step_s"] - r["backbone_neck_xcorr_heads_s"] - r["crop_s"]
        rows.append({"winograd": wino, **{k[:-2] + "_ms": round(v * 1000, 1) for k, v in r.items()}})
        print(rows[-1], flush=True)
    cols = ["winograd", "crop_ms", "backbone_neck_ms", "xcorr_heads_ms", "rest_of_step_ms",
            "step_ms"]
    print(common.table(rows, cols))
    common.write_json(a.out, {"rows_ms": rows, "config": a.config, "checkpoint": a.checkpoint,
                              "frame": list(frame.shape), "iters": a.iters})


if __name__ == "__main__":
    main()
