"""Running trackers over evaluation sequences: one at a time or B at a time (vmapped).

Results go to ``RESULTS/<dataset>/<tracker>/<sequence>.txt`` in the pysot layout (one
``x,y,w,h`` line per frame, the first being the initial box), written to a temporary file
and renamed, so a rerun skips finished sequences and an interrupted one loses nothing.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict

import cv2
import jax
import numpy as np
from tqdm import tqdm

from clnet_jax.track import runner
from clnet_jax.track import tracker as tracker_lib
from clnet_jax.evaluate.datasets import EvalSequence
from clnet_jax.track.inputs import FrameError, read_frame, to_bgr_uint8, validate_box


def load_frame(item, name: str = "frame") -> np.ndarray:
    if isinstance(item, (bytes, bytearray, np.bytes_)):
        img = cv2.imdecode(np.frombuffer(bytes(item), np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FrameError(f"{name}: undecodable image bytes")
        return to_bgr_uint8(img, name)
    return read_frame(item)


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


class BatchTracker:
    """B sequences of one frame size at a time; ended sequences are masked out."""

    def __init__(self, cfg, params: dict, batch: int):
        self.cfg, self.batch = cfg, batch
        fns = tracker_lib.make_tracker(cfg)
        self.params = fns.prepare(params)
        official = cfg.clnet.variant != "none" and cfg.clnet.label_sampler == "official_numpy"
        self.official = official
        # Same first-frame sampling as the one-at-a-time tracker: key from the config seed.
        if official:
            init = lambda p, f, b, lab: fns.init(p, f, b, None, lab)
        else:
            init = lambda p, f, b, lab: fns.init(p, f, b)
        self.init = jax.jit(jax.vmap(init, in_axes=(None, 0, 0, 0)))
        self.step = jax.jit(jax.vmap(fns.step, in_axes=(None, 0, 0)))

    def run(self, seqs: list[EvalSequence]) -> dict:
        """name -> (boxes (N, 4), fps) or an error message."""
        out = {}
        for i in range(0, len(seqs), self.batch):
            out.update(self._run_chunk(seqs[i:i + self.batch]))
        return out

    def _run_chunk(self, chunk):
        b = self.batch
        real = len(chunk)
        chunk = chunk + [chunk[0]] * (b - real)  # fixed B: one compilation
        out, alive = {}, np.ones(b, bool)
        alive[real:] = False
        first = []
        for j, s in enumerate(chunk):
            try:
                f0 = load_frame(s.frames[0], f"{s.name}/0")
                validate_box(s.gt[0], f0.shape)
            except ValueError as e:
                f0 = first[0] if first else None
                alive[j] = False
                if j < real:
                    out[s.name] = str(e)
            first.append(f0)
        if not alive.any():
            return out
        shape = next(f.shape for f, a in zip(first, alive) if a)
        first = [f if (f is not None and f.shape == shape) else np.zeros(shape, np.uint8) for f in first]
        boxes0 = np.stack([s.gt[0] for s in chunk]).astype(np.float32)
        boxes0 = np.where(alive[:, None], boxes0, boxes0[np.argmax(alive)])
        labels = (np.stack([runner.official_labels(self.cfg, bx) for bx in boxes0]) if self.official
                  else np.zeros((b,), np.int32))
        t0 = time.perf_counter()
        state = self.init(self.params, np.stack(first), boxes0, labels)
        results = [[s.gt[0]] for s in chunk]
        length = max(len(s.frames) for s in chunk[:real])
        last = list(first)
        for t in range(1, length):
            frames = []
            for j, s in enumerate(chunk):
                if alive[j] and t < len(s.frames):
                    try:
                        last[j] = load_frame(s.frames[t], f"{s.name}/{t}")
                        if last[j].shape != shape:
                            raise FrameError(f"{s.name}/{t}: frame size changed")
                    except ValueError as e:
                        alive[j] = False
                        out[s.name] = str(e)
                frames.append(last[j])
            state, box, _ = self.step(self.params, state, np.stack(frames))
            box = np.asarray(box, np.float64)
            for j, s in enumerate(chunk[:real]):
                if alive[j] and t < len(s.frames):
                    results[j].append(box[j])
        fps = sum(len(s.frames) for s in chunk[:real]) / (time.perf_counter() - t0)
        for j, s in enumerate(chunk[:real]):
            if alive[j]:
                out[s.name] = (np.stack(results[j]), fps)
        return out


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
        by_size = defaultdict(list)
        for s in todo:
            try:
                by_size[load_frame(s.frames[0]).shape].append(s)
            except ValueError as e:
                status[s.name] = str(e)
        bt = BatchTracker(cfg, params, batch)
        for group in tqdm(list(by_size.values()), desc=f"{dataset} (batches of {batch})"):
            for name, r in bt.run(group).items():
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
