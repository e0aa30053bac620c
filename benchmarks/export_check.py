"""An exported tracker (StableHLO or ONNX) against the JAX tracker: boxes, sizes, speed.

    python benchmarks/export_check.py [--config siamrpn_r50] [--checkpoint W]
        [--format stablehlo|onnx] [--frames tests/golden/sequences/Dudek]
        [--out results/bench/export_check.json]

Exports ``init`` and ``step`` for the sequence's frame size (random weights of the config
when no checkpoint is given), tracks the sequence with both, and reports the largest box
difference in pixels, each artifact's size and both trackers' frames/s (interleaved rounds,
after a warm-up frame). Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.args import at_least  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax import runtime  # noqa: E402
from clnet_jax.adapt import variants as variants_lib  # noqa: E402
from clnet_jax.deploy import export  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.track import runner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="siamrpn_r50")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--frames", default="tests/golden/sequences/Dudek")
    ap.add_argument("--rounds", type=at_least(1), default=3)
    ap.add_argument("--format", default="stablehlo", choices=["stablehlo", "onnx"])
    ap.add_argument("--set", default="", help="config overrides key=value,... (e.g. "
                    "track.winograd=off)")
    ap.add_argument("--out", default="results/bench/export_check.json")
    a = ap.parse_args()
    cfg = config_lib.from_file(a.config, dict(kv.split("=", 1) for kv in a.set.split(",") if kv))
    if a.checkpoint:
        params = runner.load_params(cfg, a.checkpoint)
    else:  # random weights, the generator's too for a CLNet variant
        params = jax.device_get(model_lib.init_params(cfg, jax.random.key(0)))
        variant = variants_lib.get_variant(cfg.clnet.variant)
        if variant.init_params is not None:
            params["clnet"] = jax.device_get(variant.init_params(jax.random.key(1), cfg))
    frames = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(a.frames, "img", "*.jpg")))]
    gt = np.loadtxt(os.path.join(a.frames, "groundtruth_rect.txt"), delimiter=",")
    folder = tempfile.mkdtemp()
    t = time.perf_counter()
    manifest = export.write(folder, cfg, params, [frames[0].shape[:2]], kind=a.format)
    export_s = time.perf_counter() - t
    jax_trk = runner.SequenceTracker(cfg, params)
    ex_trk = (runtime.OnnxTracker(folder) if a.format == "onnx"
              else export.ExportedTracker(folder))
    times = {"jax": [], a.format: []}
    boxes = {}
    for _ in range(a.rounds):
        for name, trk in (("jax", jax_trk), (a.format, ex_trk)):
            trk.track(frames[:2], gt[0])  # compiled / loaded
            t = time.perf_counter()
            boxes[name], _ = trk.track(frames, gt[0])
            times[name].append((len(frames) - 1) / (time.perf_counter() - t))
    diff = float(np.abs(boxes["jax"] - boxes[a.format]).max())
    rows = [{"tracker": n, "fps_median": f"{np.median(v):.2f}",
             "fps_rounds": " ".join(f"{x:.2f}" for x in v)} for n, v in times.items()]
    print(common.table(rows, ["tracker", "fps_median", "fps_rounds"]))
    print(f"largest box difference: {diff:.2e} px over {len(frames)} frames; export "
          f"{export_s:.0f} s; " + ", ".join(f"{k} {v['bytes'] / 2 ** 20:.1f} MiB"
                                           for k, v in manifest["files"].items()))
    common.write_json(a.out, {"config": a.config, "checkpoint": a.checkpoint,
                              "max_box_diff_px": diff, "export_s": export_s,
                              "files": manifest["files"], "fps": times,
                              "format": a.format, "overrides": a.set,
                              "box_diff_per_frame_px": np.abs(
                                  boxes["jax"] - boxes[a.format]).max(axis=1).tolist(),
                              f"{a.format}_over_jax": float(np.median(times[a.format]) /
                                                            np.median(times["jax"]))})


if __name__ == "__main__":
    main()
