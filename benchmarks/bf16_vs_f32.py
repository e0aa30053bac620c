"""bfloat16 compute against float32: training losses and a tracking rollout.

    python benchmarks/bf16_vs_f32.py --weights DIR [--steps 50] [--out FILE.json]

1. The first ``--steps`` base-stage steps of the demo config (same data, same init) with
   ``train.compute_dtype`` float32 and bfloat16: relative loss difference per step.
2. The tiny converted model (``--weights``: ``clnet-convert
   tests/golden/siamrpn_tiny.pth DIR``) on the 20 Dudek frames in ``tests/golden``, with
   ``track.compute_dtype`` float32 and bfloat16: mean IoU between the two rollouts.

On a CPU bfloat16 is only checked for correctness; on a GPU it is the speed path. Prints a
table and writes JSON.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.data import pipeline  # noqa: E402
from clnet_jax.evaluate import metrics  # noqa: E402
from clnet_jax.model import siamrpn as model_lib  # noqa: E402
from clnet_jax.track import runner  # noqa: E402
from clnet_jax.train import step as train_step  # noqa: E402
from clnet_jax.train import trainer  # noqa: E402


def train_losses(dtype: str, steps: int, data_dir: str) -> tuple[list[float], float]:
    cfg = config_lib.from_file(os.path.join(ROOT, "configs/demo.py"),
                               {"train.compute_dtype": dtype, "data.data_dir": data_dir})
    c = cfg
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    state = train_step.init_state(c, "base", model_lib.init_params(c, jax.random.key(0)), 0)
    step = train_step.make_train_step(c, "base", mesh)
    stores, samples = trainer.train_source(c)
    data = pipeline.make_iterator(stores, c, 0, c.train.base.groups_per_batch, steps, samples=samples)
    losses, t0 = [], None
    for i in range(steps):
        batch = next(data)
        batch.pop("skipped")
        state, aux = step(state, batch, i)
        losses.append(float(aux["loss"]))
        if i == 0:
            t0 = time.perf_counter()
    return losses, (steps - 1) / (time.perf_counter() - t0)


def rollout(dtype: str, weights: str) -> np.ndarray:
    cfg = config_lib.from_file(os.path.join(ROOT, "configs/siamrpn_tiny.py"),
                               {"track.compute_dtype": dtype})
    d = os.path.join(ROOT, "tests", "golden", "sequences", "Dudek")
    frames = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(d, "img", "*.jpg")))]
    gt = np.loadtxt(os.path.join(d, "groundtruth_rect.txt"), delimiter=",")
    boxes, _ = runner.SequenceTracker(cfg, runner.load_params(cfg, weights)).track(frames, gt[0])
    return boxes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="converted tiny SiamRPN++ weights")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--data_dir", default="data_cache/tfds")
    ap.add_argument("--out", default="results/bench/bf16_vs_f32.json")
    args = ap.parse_args()
    f32, f32_speed = train_losses("float32", args.steps, args.data_dir)
    bf16, bf16_speed = train_losses("bfloat16", args.steps, args.data_dir)
    rel = np.abs(np.asarray(bf16) - np.asarray(f32)) / np.abs(np.asarray(f32))
    a, b = rollout("float32", args.weights), rollout("bfloat16", args.weights)
    iou = metrics.iou_got10k(a[1:], b[1:])
    rows = [{"what": f"base loss, {args.steps} demo steps", "rel diff mean": f"{rel.mean():.4f}",
             "rel diff max": f"{rel.max():.4f}", "f32 steps/s": f"{f32_speed:.2f}",
             "bf16 steps/s": f"{bf16_speed:.2f}"},
            {"what": "Dudek rollout, tiny model", "rel diff mean": f"mean IoU {iou.mean():.4f}",
             "rel diff max": f"min IoU {iou.min():.4f}", "f32 steps/s": "-", "bf16 steps/s": "-"}]
    print(common.table(rows, list(rows[0])))
    common.write_json(args.out, {"loss_f32": f32, "loss_bf16": bf16,
                                 "loss_rel_diff_mean": float(rel.mean()),
                                 "loss_rel_diff_max": float(rel.max()),
                                 "loss_rel_diff_last10": float(rel[-10:].mean()),
                                 "dudek_mean_iou": float(iou.mean()),
                                 "dudek_min_iou": float(iou.min()),
                                 "train_steps_per_s": {"float32": f32_speed, "bfloat16": bf16_speed}})


if __name__ == "__main__":
    main()
