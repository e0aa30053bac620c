"""clnet_jax vs pysot: the r50-l234 tracker, same weights, same frames, interleaved runs.

Needs what the project does not: PyTorch (CPU wheel) and pysot's sources. Setup::

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # in this venv
    pip install yacs
    git clone https://github.com/STVIR/pysot /tmp/pysot                  # no build needed
    python benchmarks/vs_pysot.py --pysot /tmp/pysot [--weights /tmp/r50_calibrated.pth]

On a GPU machine (torch with CUDA, JAX with its CUDA plugin) ``--device cuda`` runs both
on the GPU: pysot as its own test script does (``cfg.CUDA``, ``model.cuda()``), clnet_jax on
JAX's default GPU backend; ``--repeat N`` tracks the frames N times over for steadier medians.

Without ``--weights`` (or when the file does not exist yet) it makes seeded random r50
weights that track sanely: BN statistics calibrated on the sequence's own template and
search crops (a few forward passes in train mode with cumulative averages) and the loc
output layer scaled by 0.02; they are saved to ``--weights`` and converted with
``clnet_jax.io.convert``. Then, per round, pysot and clnet_jax each track every frame
(batch 1, 2 threads for torch, XLA's own pool for JAX), each in its own process; it prints
the median fps of each, their ratio and the largest box difference, and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.args import at_least  # noqa: E402


def _pysot(path: str, cuda: bool = False):
    import torch
    sys.path.insert(0, path)
    if not cuda:
        torch.Tensor.cuda = lambda self, *a, **k: self  # pysot calls .cuda() unconditionally
        torch.nn.Module.cuda = lambda self, *a, **k: self
    from pysot.core.config import cfg
    cfg.merge_from_file(os.path.join(path, "experiments", "siamrpn_r50_l234_dwxcorr",
                                     "config.yaml"))
    cfg.CUDA = cuda
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
    trk = tracker_cls(m)
    m.train()  # after the tracker, whose constructor puts the model in eval mode
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


def _frames(seq: str):
    import cv2
    names = sorted(os.listdir(os.path.join(seq, "img")))
    frames = [cv2.imread(os.path.join(seq, "img", n)) for n in names]
    return frames, np.loadtxt(os.path.join(seq, "groundtruth_rect.txt"), delimiter=",")


def _torch_info(device: str) -> str:
    import torch
    gpu = f", {torch.cuda.get_device_name()}" if device == "cuda" else ""
    return f"torch {torch.__version__}{gpu}"


def run_side(side: str, args) -> dict:
    """One tracker over the sequence in this process: per-frame times and boxes."""
    frames, gt = _frames(args.seq)
    seq, forwards = list(frames), False
    for _ in range(args.repeat - 1):  # again, back and forth: the target never jumps
        seq += frames[1:] if forwards else frames[-2::-1]
        forwards = not forwards
    frames = seq
    out, times = [gt[0].tolist()], []
    cuda = args.device == "cuda"
    if side == "pysot":
        import torch
        torch.set_num_threads(args.threads)
        # pysot's default (cuDNN convolutions in TF32) or full float32
        torch.backends.cudnn.allow_tf32 = args.precision == "default"
        torch.backends.cuda.matmul.allow_tf32 = False
        model_builder, tracker_cls = _pysot(args.pysot, cuda)
        model = model_builder()
        model.load_state_dict(torch.load(args.weights, weights_only=True))
        if cuda:
            model = model.cuda()  # as pysot's tools/test.py
        t = tracker_cls(model)
        with torch.no_grad():
            t.init(frames[0], list(gt[0]))
            for f in frames[1:]:
                a = time.perf_counter()
                box = t.track(f)["bbox"]
                times.append(time.perf_counter() - a)
                out.append([float(v) for v in box])
    else:  # clnet_jax, reading the .pth without torch
        from clnet_jax import config as config_lib
        from clnet_jax.io import convert, pth
        from clnet_jax.track import runner
        tree, arch, unmapped = convert.convert_state_dict(
            pth.flatten_state_dict(pth.load_pth(args.weights)))
        assert not unmapped and not arch["clnet"], unmapped[:5]
        import jax
        # XLA's default (TF32 convolutions on a GPU) or full float32
        if args.precision == "highest":
            jax.config.update("jax_default_matmul_precision", "highest")
        assert jax.default_backend() == ("gpu" if cuda else "cpu"), jax.default_backend()
        tree = jax.device_put(tree)  # once: numpy leaves would be copied in on every frame
        cfg = config_lib.from_file(os.path.join(ROOT, "configs", "siamrpn_r50.py"))
        if args.winograd_tile:
            cfg.track.winograd_tile = args.winograd_tile
        t = runner.SequenceTracker(cfg, tree)
        t.init(frames[0], gt[0])
        for f in frames[1:]:
            a = time.perf_counter()
            box, _ = t.update(f)
            times.append(time.perf_counter() - a)
            out.append([float(v) for v in box])
    info = _torch_info(args.device) if side == "pysot" else None
    return {"fps": 1 / float(np.median(times[2:])), "boxes": out, "torch": info}


def ratio_summary(rows: list[dict]) -> dict:
    """The median of the per-round ratios (each round times both trackers back to back, so
    machine drift hits both alike), its spread over the rounds, and each side's median fps."""
    r = np.asarray([x["ratio"] for x in rows], np.float64)
    q25, q75 = np.percentile(r, [25, 75])
    return {"rounds": len(rows), "median_ratio": float(np.median(r)), "ratio_min": float(r.min()),
            "ratio_max": float(r.max()), "ratio_q25": float(q25), "ratio_q75": float(q75),
            "pysot_fps_median": float(np.median([x["pysot_fps"] for x in rows])),
            "clnet_jax_fps_median": float(np.median([x["clnet_jax_fps"] for x in rows])),
            "max_box_diff_px": max(x["max_box_diff_px"] for x in rows)}


def main() -> None:
    import json
    import subprocess
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pysot", default="/tmp/pysot", help="pysot source folder")
    ap.add_argument("--weights", default="data_cache/vs_pysot/r50_calibrated.pth")
    ap.add_argument("--seq", default=os.path.join(ROOT, "tests", "golden", "sequences", "Dudek"))
    ap.add_argument("--rounds", type=at_least(1), default=5,
                    help="interleaved rounds; the ratio is their median, with its spread")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeat", type=int, default=1, help="track the frames this many times")
    ap.add_argument("--precision", default="default", choices=["default", "highest"],
                    help="float32 convolutions on a GPU: each framework's default (TF32 "
                         "tensor cores) or full float32 in both")
    ap.add_argument("--tiles", default="",
                    help="comma-separated track.winograd_tile settings to run side by side "
                         "(2: F(2x2,3x3), 4: F(4x4,3x3), auto: 4 on the wide convolutions, "
                         "2 on the others); default: the config's")
    ap.add_argument("--winograd_tile", default="", help=argparse.SUPPRESS)
    ap.add_argument("--side", default=None, choices=["pysot", "jax", "weights"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--python_torch", default=sys.executable,
                    help="the Python that runs pysot (one with torch and yacs; default this one)")
    ap.add_argument("--out", default="results/bench/vs_pysot.json")
    args = ap.parse_args()
    if args.side == "weights":  # in the Python that has torch
        import torch
        model_builder, tracker_cls = _pysot(args.pysot)
        frames, gt = _frames(args.seq)
        os.makedirs(os.path.dirname(args.weights) or ".", exist_ok=True)
        torch.save(calibrated_weights(model_builder, tracker_cls, frames, gt), args.weights)
        return
    if args.side:  # a child: one tracker, JSON on the last line
        print(json.dumps(run_side(args.side, args)))
        return
    from benchmarks import common
    if not os.path.isfile(args.weights):
        subprocess.run([args.python_torch, os.path.abspath(__file__), "--side=weights",
                        f"--pysot={args.pysot}", f"--weights={args.weights}",
                        f"--seq={args.seq}"], check=True)

    def child(side: str, tile: str = "") -> dict:
        # each tracker in its own process: torch's OpenMP threads and XLA's thread pool
        # compete when they share one
        python = args.python_torch if side == "pysot" else sys.executable
        cmd = [python, os.path.abspath(__file__), f"--side={side}",
               f"--pysot={args.pysot}", f"--weights={args.weights}", f"--seq={args.seq}",
               f"--threads={args.threads}", f"--winograd_tile={tile}",
               f"--device={args.device}", f"--repeat={args.repeat}",
               f"--precision={args.precision}"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        env["JAX_PLATFORMS"] = "cuda" if args.device == "cuda" else "cpu"
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode:
            raise RuntimeError(f"{side}: {res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    tiles = [t for t in args.tiles.split(",") if t] or [""]
    rows, torch_info = [], None
    for r in range(args.rounds):  # interleaved, so machine drift hits both alike
        a = child("pysot")
        torch_info = a.get("torch")
        n_frames = len(a["boxes"])
        for tile in tiles:
            b = child("jax", tile)
            per_frame = np.abs(np.asarray(a["boxes"]) - np.asarray(b["boxes"])).max(axis=1)
            diff = float(per_frame.max())
            apart = np.flatnonzero(per_frame > 1.0)  # the first frame where they part, if any
            rows.append({"round": r + 1, "tile": tile or "config", "pysot_fps": round(a["fps"], 2),
                         "clnet_jax_fps": round(b["fps"], 2),
                         "ratio": round(b["fps"] / a["fps"], 3),
                         "max_box_diff_px": float(f"{diff:.2e}"),
                         "first_frame_over_1px": int(apart[0]) if apart.size else -1,
                         "box_diff_px": [float(f"{d:.2e}") for d in per_frame]})
            print({k: v for k, v in rows[-1].items() if k != "box_diff_px"}, flush=True)
    print(common.table(rows, [k for k in rows[0] if k != "box_diff_px"]))
    summary = {}
    for tile in tiles:
        mine = [x for x in rows if x["tile"] == (tile or "config")]
        summary[str(tile or "config")] = s = ratio_summary(mine)
        print(f"tile {tile or 'config'}: median ratio clnet_jax / pysot {s['median_ratio']:.3f} "
              f"(rounds {s['ratio_min']:.3f}-{s['ratio_max']:.3f}, quartiles "
              f"{s['ratio_q25']:.3f}-{s['ratio_q75']:.3f}; median fps pysot "
              f"{s['pysot_fps_median']:.2f}, clnet_jax {s['clnet_jax_fps_median']:.2f}); max box "
              f"difference {s['max_box_diff_px']:.2e} px over {s['rounds']} rounds")
    common.write_json(args.out, {"rows": rows, "per_tile": summary,
                                 "median_ratio": summary[str(tiles[0] or "config")]["median_ratio"],
                                 "weights": args.weights, "seq": args.seq,
                                 "device": args.device, "precision": args.precision,
                                 "frames_per_round": n_frames,
                                 "torch": torch_info})


if __name__ == "__main__":
    main()
