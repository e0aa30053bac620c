"""Running trackers over evaluation sequences: one at a time or B at a time (vmapped).

Results go to ``RESULTS/<dataset>/<tracker>/<sequence>.txt`` in the pysot layout (one
``x,y,w,h`` line per frame, the first being the initial box), written to a temporary file
and renamed, so a rerun skips finished sequences and an interrupted one loses nothing.
"""
from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from clnet_jax.evaluate.datasets import EvalSequence
from clnet_jax.track import runner
from clnet_jax.track.inputs import load_frame


def result_path(results_dir: str, dataset: str, tracker: str, seq: str) -> str:
    return os.path.join(results_dir, dataset, tracker, f"{seq}.txt")


def write_result(path: str, boxes: np.ndarray, fps: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    np.savetxt(tmp, boxes, fmt="%.4f", delimiter=",")
    os.replace(tmp, path)
    tdir = os.path.join(os.path.dirname(path), "times")
    os.makedirs(tdir, exist_ok=True)
    name = os.path.basename(path)[:-4]
    with open(os.path.join(tdir, f"{name}_time.txt.tmp"), "w") as f:
        f.write(f"{1.0 / max(fps, 1e-9):.6f}\n")
    os.replace(os.path.join(tdir, f"{name}_time.txt.tmp"), os.path.join(tdir, f"{name}_time.txt"))


def track_one(trk: runner.SequenceTracker, seq: EvalSequence) -> tuple[np.ndarray, float]:
    frames = (load_frame(f, f"{seq.name}/{i}") for i, f in enumerate(seq.frames))
    t = time.perf_counter()
    boxes, _ = trk.track(frames, seq.gt[0])
    return boxes, len(seq.frames) / (time.perf_counter() - t)


def track_batched(cfg, params, seqs: list[EvalSequence], batch: int, desc: str,
                  canvas: bool = True) -> dict:
    """name -> (boxes, fps) or an error message: ``batch`` sequences at a time
    (``runner.BatchTracker``; ``canvas``: of every frame size together, on one canvas and
    one compilation, else of one frame size at a time), no larger a batch than there are
    sequences to track together."""
    if not seqs:
        return {}
    bt = runner.BatchTracker(cfg, params, min(batch, runner.largest_group(seqs, canvas)),
                             canvas)
    return bt.run(seqs, desc=desc)


def run_dataset(cfg, params, seqs: list[EvalSequence], results_dir: str, dataset: str,
                tracker_name: str, batch: int = 1) -> dict:
    """Tracks every unfinished sequence; returns name -> 'done' | 'skipped' | error."""
    status = {}
    todo = []
    for s in seqs:
        if os.path.isfile(result_path(results_dir, dataset, tracker_name, s.name)):
            status[s.name] = "skipped (result exists)"
        else:
            todo.append(s)
    if batch > 1:
        for name, r in track_batched(cfg, params, todo, batch,
                                     f"{dataset} (batches of {batch})").items():
            status[name] = _store(r, results_dir, dataset, tracker_name, name)
        return status
    trk = runner.SequenceTracker(cfg, params)
    for s in tqdm(todo, desc=dataset, unit="seq"):
        try:
            r = track_one(trk, s)
        except ValueError as e:
            r = str(e)
        status[s.name] = _store(r, results_dir, dataset, tracker_name, s.name)
    return status


def _store(r, results_dir, dataset, tracker_name, name):
    if isinstance(r, str):
        return r
    boxes, fps = r
    if dataset == "got10k_test":  # the evaluation server's layout, zipped by the user
        d = os.path.join(results_dir, dataset, f"{tracker_name}_submission", name)
        os.makedirs(d, exist_ok=True)
        np.savetxt(os.path.join(d, f"{name}_001.txt"), boxes, fmt="%.4f", delimiter=",")
        np.savetxt(os.path.join(d, f"{name}_time.txt"), np.full(len(boxes), 1.0 / fps), fmt="%.8f")
    write_result(result_path(results_dir, dataset, tracker_name, name), boxes, fps)
    return "done"


def vot_record_path(results_dir: str, dataset: str, tracker: str, seq: str) -> str:
    """pysot's VOT layout: <dataset>/<tracker>/baseline/<seq>/<seq>_001.txt."""
    return os.path.join(results_dir, dataset, tracker, "baseline", seq, f"{seq}_001.txt")


def run_vot(cfg, params, seqs: list[EvalSequence], results_dir: str, dataset: str,
            tracker_name: str) -> tuple[dict, list]:
    """Supervised protocol per sequence; returns (status, runs for vot.summarize)."""
    from clnet_jax.evaluate import vot
    trk = runner.SequenceTracker(cfg, params)
    status, runs = {}, []
    for s in tqdm(seqs, desc=dataset, unit="seq"):
        path = vot_record_path(results_dir, dataset, tracker_name, s.name)
        try:
            frames = [load_frame(f, f"{s.name}/{i}") for i, f in enumerate(s.frames)]
            h, w = frames[0].shape[:2]
            if os.path.isfile(path):
                with open(path) as f:
                    records = [[float(v) for v in line.split(",")] for line in f.read().split()]
                status[s.name] = "skipped (result exists)"
            else:
                records = vot.run_supervised(trk, frames, list(s.gt), (w, h))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".tmp", "w") as f:
                    f.writelines(",".join(f"{v:.4f}" if len(r) > 1 else f"{int(v)}" for v in r) + "\n"
                                 for r in records)
                os.replace(path + ".tmp", path)
                status[s.name] = "done"
            runs.append((records, list(s.gt), (w, h)))
        except ValueError as e:
            status[s.name] = str(e)
    return status, runs
