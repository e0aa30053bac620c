"""Exported r50 trackers against the JAX tracker and pysot: frames/s at batch 1 and boxes.

    python benchmarks/export_speed.py --checkpoint W [--pth W.pth --torch_python P --pysot D]
        [--rounds 3] [--out results/bench/export_speed.json]

Exports the SiamRPN++ r50 tracker of ``--checkpoint`` (``clnet-convert`` output) for the
sequence's frame size as ONNX (once with the config's Winograd setting, once with
``track.winograd=off``, so onnxruntime's own convolutions are timed too) and as StableHLO.
Then, per round and each in its own process, the trackers track every frame: onnxruntime
(CPU provider, intra-op threads = the cores, as XLA's CPU client), the JAX tracker, the
StableHLO artifact and, with ``--pth``, pysot on the same weights (``--torch_python``: a
Python with torch and yacs, e.g. the one ``benchmarks/vs_pysot.py`` uses). Prints the median
frames/s of each, the ratios per round with their spread, the largest box differences, the
artifacts' sizes and the export times, and writes JSON. ``--providers cuda,tensorrt`` adds
onnxruntime's GPU providers on a GPU machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.args import at_least  # noqa: E402


def _frames(seq: str):
    import cv2
    names = sorted(os.listdir(os.path.join(seq, "img")))
    return ([cv2.imread(os.path.join(seq, "img", n)) for n in names],
            np.loadtxt(os.path.join(seq, "groundtruth_rect.txt"), delimiter=","))


def run_side(a) -> dict:
    """One tracker over the sequence in this process: median frame time and boxes."""
    frames, gt = _frames(a.seq)
    side = a.side
    if side == "pysot":
        from benchmarks import vs_pysot
        a.repeat, a.device, a.precision, a.weights = 1, "cpu", "default", a.pth
        res = vs_pysot.run_side("pysot", a)
        return {"fps": res["fps"], "boxes": res["boxes"]}
    if side.startswith("onnx"):
        from clnet_jax import runtime
        provider = side.split(":")[1]
        trk = runtime.OnnxTracker(a.folder, providers=[provider] + (["cpu"] if provider != "cpu" else []))
    elif side == "stablehlo":
        from clnet_jax.deploy import export
        trk = export.ExportedTracker(a.folder)
    else:
        from clnet_jax import config as config_lib
        from clnet_jax.track import runner
        cfg = config_lib.from_file(os.path.join(ROOT, "configs", "siamrpn_r50.py"))
        trk = runner.SequenceTracker(cfg, runner.load_params(cfg, a.checkpoint))
    times, out = [], [gt[0].tolist()]
    trk.init(frames[0], gt[0])
    for f in frames[1:]:
        t = time.perf_counter()
        box, _ = trk.update(f)
        times.append(time.perf_counter() - t)
        out.append([float(v) for v in box])
    return {"fps": 1 / float(np.median(times[2:])), "boxes": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=False, help="SiamRPN++ r50 weights (clnet-convert)")
    ap.add_argument("--pth", default="", help="the same weights as .pth, for pysot")
    ap.add_argument("--torch_python", default="", help="a Python with torch and yacs")
    ap.add_argument("--pysot", default="/tmp/pysot", help="pysot source folder")
    ap.add_argument("--seq", default=os.path.join(ROOT, "tests", "golden", "sequences", "Dudek"))
    ap.add_argument("--rounds", type=at_least(1), default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: the cores)")
    ap.add_argument("--providers", default="cpu", help="onnxruntime providers to time")
    ap.add_argument("--out", default="results/bench/export_speed.json")
    ap.add_argument("--side", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:  # a child: JSON on the last line
        print(json.dumps(run_side(a)))
        return
    from benchmarks import common
    from clnet_jax import config as config_lib
    from clnet_jax import runtime
    from clnet_jax.deploy import export
    from clnet_jax.track import runner
    a.threads = a.threads or runtime.cpu_threads()
    frames, _ = _frames(a.seq)
    size = frames[0].shape[:2]
    work = tempfile.mkdtemp(prefix="export_speed_")
    folders, export_s, sizes = {}, {}, {}
    for name, kind, overrides in (("onnx", "onnx", {}),
                                  ("onnx_direct", "onnx", {"track.winograd": "off"}),
                                  ("stablehlo", "stablehlo", {})):
        cfg = config_lib.from_file(os.path.join(ROOT, "configs", "siamrpn_r50.py"), overrides)
        params = runner.load_params(cfg, a.checkpoint)
        folders[name] = os.path.join(work, name)
        t = time.perf_counter()
        m = export.write(folders[name], cfg, params, [size], kind=kind)
        export_s[name] = round(time.perf_counter() - t, 1)
        sizes[name] = {f: v["bytes"] for f, v in m["files"].items()}
        print(f"exported {name} in {export_s[name]} s: "
              + ", ".join(f"{f} {b / 2 ** 20:.1f} MiB" for f, b in sizes[name].items()), flush=True)

    sides = [f"onnx:{p}" for p in a.providers.split(",")] + [
        f"onnx_direct:{p}" for p in a.providers.split(",")] + ["jax", "stablehlo"]
    if a.pth and a.torch_python:
        sides.append("pysot")

    def child(side: str) -> dict:
        folder = folders.get(side.split(":")[0], "")
        py = a.torch_python if side == "pysot" else sys.executable
        cmd = [py, os.path.abspath(__file__), f"--side={side.replace('onnx_direct', 'onnx')}",
               f"--folder={folder}", f"--checkpoint={a.checkpoint}", f"--seq={a.seq}",
               f"--pysot={a.pysot}", f"--threads={a.threads}"]
        if side == "pysot":
            cmd.append(f"--pth={a.pth}")
        env = dict(os.environ, PYTHONPATH=ROOT)
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode:
            raise RuntimeError(f"{side}: {res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    rows = []
    for r in range(a.rounds):  # interleaved: machine drift hits every tracker alike
        res = {s: child(s) for s in sides}
        jb = np.asarray(res["jax"]["boxes"])
        for s in sides:
            diff = float(np.abs(np.asarray(res[s]["boxes"]) - jb).max())
            rows.append({"round": r + 1, "tracker": s, "fps": round(res[s]["fps"], 2),
                         "over_jax": round(res[s]["fps"] / res["jax"]["fps"], 3),
                         "over_pysot": (round(res[s]["fps"] / res["pysot"]["fps"], 3)
                                        if "pysot" in res else None),
                         "max_box_diff_vs_jax_px": float(f"{diff:.2e}")})
            print(rows[-1], flush=True)
    summary = {}
    for s in sides:
        mine = [x for x in rows if x["tracker"] == s]
        ratios = np.asarray([x["over_jax"] for x in mine])
        summary[s] = {"fps_median": float(np.median([x["fps"] for x in mine])),
                      "over_jax_median": float(np.median(ratios)),
                      "over_jax_min": float(ratios.min()), "over_jax_max": float(ratios.max()),
                      "max_box_diff_vs_jax_px": max(x["max_box_diff_vs_jax_px"] for x in mine)}
        if "pysot" in sides:
            p = np.asarray([x["over_pysot"] for x in mine])
            summary[s].update(over_pysot_median=float(np.median(p)), over_pysot_min=float(p.min()),
                              over_pysot_max=float(p.max()))
    table = [dict(tracker=s, **{k: (f"{v:.3g}" if isinstance(v, float) else v)
                                for k, v in summary[s].items()}) for s in sides]
    print(common.table(table, list(table[0])))
    common.write_json(a.out, {"summary": summary, "rows": rows, "export_s": export_s,
                              "artifact_bytes": sizes, "frame_size": list(size),
                              "frames": len(frames), "threads": a.threads, "seq": a.seq,
                              "checkpoint": a.checkpoint, "pth": a.pth})


if __name__ == "__main__":
    main()
