"""clnet_jax vs pysot: the r50-l234 tracker, same weights, same frames, interleaved runs.

Needs what the project does not: PyTorch (CPU wheel) and pysot's sources. Setup::

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # in this venv
    pip install yacs
    git clone https://github.com/STVIR/pysot /tmp/pysot                  # no build needed
    python benchmarks/vs_pysot.py --pysot /tmp/pysot [--weights /tmp/r50_calibrated.pth]

Without ``--weights`` (or when the file does not exist yet) it makes seeded random r50
weights that track sanely: BN statistics calibrated on the sequence's own template and
search crops (a few forward passes in train mode with cumulative averages) and the loc
output layer scaled by 0.02; they are saved to ``--weights`` and converted with
``clnet_jax.convert``. Then, per round, pysot and clnet_jax each track every frame
(batch 1, 2 threads for torch, XLA's own pool for JAX); it prints the median fps of each,
their ratio and the largest box difference, and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _pysot(path: str):
    import torch
    sys.path.insert(0, path)
    torch.Tensor.cuda = lambda self, *a, **k: self  # pysot calls .cuda() unconditionally
    torch.nn.Module.cuda = lambda self, *a, **k: self
    from pysot.core.config import cfg
    cfg.merge_from_file(os.path.join(path, "experiments", "siamrpn_r50_l234_dwxcorr",
                                     "config.yaml"))
    cfg.CUDA = False
    from pysot.models.model_builder import ModelBuilder
    from pysot.tracker.siamrpn_tracker import SiamRPNTracker
    return ModelBuilder, SiamRPNTracker


def calibrated_weights(model_builder, tracker_cls, frames, boxes, seed: int = 0) -> dict:
    """Seeded random weights whose BN statistics are those of real crops of this sequence."""
    import torch
    torch.manual_seed(seed)
    m = model_builder()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over the calibration passes
    m.train()
    trk = tracker_cls(m)
    with torch.no_grad():
        for i in range(0, len(frames) - 1, 2):
            trk.init(frames[i], list(boxes[i]))   # template branch in train mode
            trk.track(frames[i + 1])               # search branch and heads
    m.eval()
    sd = m.state_dict()
    for k in sd:
        if k.startswith("rpn_head") and ".loc.head.3." in k:
            sd[k] = sd[k] * 0.02  # small box deltas: sane boxes from random heads
    return sd


def main() -> None:
    import cv2
    import torch
    from benchmarks import common
    from clnet_jax import config as config_lib
    from clnet_jax import convert, runner
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pysot", default="/tmp/pysot", help="pysot source folder")
    ap.add_argument("--weights", default="data_cache/vs_pysot/r50_calibrated.pth")
    ap.add_argument("--seq", default=os.path.join(ROOT, "tests", "golden", "sequences", "Dudek"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default="results/bench/vs_pysot.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_builder, tracker_cls = _pysot(args.pysot)
    names = sorted(os.listdir(os.path.join(args.seq, "img")))
    frames = [cv2.imread(os.path.join(args.seq, "img", n)) for n in names]
    gt = np.loadtxt(os.path.join(args.seq, "groundtruth_rect.txt"), delimiter=",")
    if not os.path.isfile(args.weights):
        os.makedirs(os.path.dirname(args.weights) or ".", exist_ok=True)
        torch.save(calibrated_weights(model_builder, tracker_cls, frames, gt), args.weights)
    sd = torch.load(args.weights, weights_only=True)
    model = model_builder()
    model.load_state_dict(sd)
    model.eval()
    tree, arch, unmapped = convert.convert_state_dict(
        {k: v.numpy() for k, v in sd.items()})
    assert not unmapped and not arch["clnet"], unmapped[:5]
    cfg = config_lib.from_file(os.path.join(ROOT, "configs", "siamrpn_r50.py"))

    def run_pysot():
        t, out, times = tracker_cls(model), [gt[0]], []
        with torch.no_grad():
            t.init(frames[0], list(gt[0]))
            for f in frames[1:]:
                a = time.perf_counter()
                out.append(t.track(f)["bbox"])
                times.append(time.perf_counter() - a)
        return np.asarray(out), times

    def run_ours():
        t, out, times = runner.SequenceTracker(cfg, tree), [gt[0]], []
        t.init(frames[0], gt[0])
        for f in frames[1:]:
            a = time.perf_counter()
            box, _ = t.update(f)
            out.append(np.asarray(box))
            times.append(time.perf_counter() - a)
        return np.asarray(out), times

    run_ours()  # compile once, outside the timed rounds
    fps = {"pysot": [], "clnet_jax": []}
    for r in range(args.rounds):
        for name, fn in (("pysot", run_pysot), ("clnet_jax", run_ours)):
            boxes, times = fn()
            fps[name].append(1 / float(np.median(times[2:])))
            if name == "pysot":
                ref = boxes
            else:
                diff = float(np.abs(boxes - ref).max())
        print(f"round {r + 1}: pysot {fps['pysot'][-1]:.2f} fps, clnet_jax "
              f"{fps['clnet_jax'][-1]:.2f} fps, max box difference {diff:.2e} px", flush=True)
    ratios = [b / a for a, b in zip(fps["pysot"], fps["clnet_jax"])]
    rows = [{"round": i + 1, "pysot_fps": round(a, 2), "clnet_jax_fps": round(b, 2),
             "ratio": round(b / a, 3)} for i, (a, b) in enumerate(zip(fps["pysot"],
                                                                     fps["clnet_jax"]))]
    print(common.table(rows, ["round", "pysot_fps", "clnet_jax_fps", "ratio"]))
    print(f"median ratio clnet_jax / pysot: {np.median(ratios):.3f}; max box difference "
          f"{diff:.2e} px over {len(frames)} frames ({frames[0].shape[1]}x{frames[0].shape[0]})")
    common.write_json(args.out, {"rows": rows, "median_ratio": float(np.median(ratios)),
                                 "max_box_diff_px": diff, "frames": len(frames),
                                 "torch": torch.__version__, "weights": args.weights})


if __name__ == "__main__":
    main()
