"""Training input speed: pairs/s of the grain pipeline on a real on-disk layout.

    python benchmarks/input_speed.py --make_fixture /tmp/got10k_bench      # 1280x720 JPEGs
    python benchmarks/input_speed.py --layout got10k \
        --manual_dir /tmp/got10k_bench/seq150,/tmp/got10k_bench/seq2500 \
        --storage crop511,full --workers 0,2 --out results/bench/input_speed.json

For every (folder, storage, workers) it prepares the frame store once (not timed here:
preparation speed is printed by the preparation itself), then, in a fresh process, times
the pipeline (decode, crops, colour and blur augmentation; groups of ``--pairs`` pairs,
``--groups`` per batch, r50 crop sizes): time to the first batch, pairs/s in total and per
core of this machine, and the loader's peak resident memory (the process plus its worker
processes). Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORKER = """
import json, os, resource, sys, time
sys.path.insert(0, ROOT)
from clnet_jax import config as C
from clnet_jax.data import frames, pipeline
from clnet_jax.data import prepare as prep
cfg = C.from_file(os.path.join(ROOT, 'configs', 'siamrpn_r50.py'))
cfg.data.workers, cfg.data.threads = WORKERS, THREADS
store = frames.FrameStore(STORE)
t0 = time.perf_counter()
it = pipeline.make_iterator([store], cfg, 0, GROUPS, BATCHES + 1, pairs_per_group=PAIRS)
next(it)
first = time.perf_counter() - t0
t1 = time.perf_counter()
for _ in range(BATCHES):
    next(it)
dt = time.perf_counter() - t1
del it
import gc; gc.collect(); time.sleep(0.5)
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({'first_batch_s': first, 'pairs_per_s': BATCHES * GROUPS * PAIRS / dt,
                  'rss_mib': self_kb / 1024, 'worker_rss_mib': child_kb / 1024}))
"""


def make_fixture(root: str, short: int = 8, long: int = 2, distinct: int = 40) -> list[str]:
    """GOT-10k layout roots ``seq150`` (``short`` sequences of 150 frames) and ``seq2500``
    (``long`` of 2,500) of 1280x720 JPEGs (quality 90). A sequence cycles through
    ``distinct`` rendered frames (textured background, moving target): full-size files with
    realistic decode cost, written in minutes."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), (1280, 720),
                      interpolation=cv2.INTER_CUBIC)
    imgs, boxes = [], []
    for i in range(distinct):
        img = np.roll(base, 7 * i, axis=1).copy()
        x, y = 300 + 12 * i, 200 + 5 * i
        w, h = 120 + i, 90
        img[y:y + h, x:x + w] = (40, 60 + 3 * i, 200)
        imgs.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        boxes.append((x, y, w, h))
    roots = []
    for name, count, length in (("seq150", short, 150), ("seq2500", long, 2500)):
        top = os.path.join(root, name)
        roots.append(top)
        for s in range(count):
            d = os.path.join(top, "train", f"GOT-10k_Train_{s + 1:06d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "groundtruth.txt"), "w") as f:
                for i in range(length):
                    k = (i + s) % distinct
                    with open(os.path.join(d, f"{i + 1:08d}.jpg"), "wb") as g:
                        g.write(imgs[k])
                    f.write(",".join(str(v) for v in boxes[k]) + "\n")
        print(f"wrote {top}: {count} sequences x {length} frames")
    return roots


def measure(store: str, workers: int, threads: int, groups: int, pairs: int,
            batches: int) -> dict:
    code = (f"ROOT={ROOT!r}; STORE={store!r}; WORKERS={workers}; THREADS={threads}; "
            f"GROUPS={groups}; PAIRS={pairs}; BATCHES={batches}\n" + WORKER)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dir_mib(path: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
               for f in fs) / 2 ** 20


def main() -> None:
    from benchmarks import common
    from clnet_jax.data import frames
    from clnet_jax.data import prepare as prep
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make_fixture", default=None, help="write the fixture here and exit")
    ap.add_argument("--layout", default="got10k")
    ap.add_argument("--manual_dir", default=None, help="one or more roots, comma-separated")
    ap.add_argument("--data_dir", default="data_cache/input_speed")
    ap.add_argument("--storage", default="crop511,full")
    ap.add_argument("--workers", default="0,2", help="grain worker processes (0: threads)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prepare_workers", type=int, default=os.cpu_count())
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--out", default="results/bench/input_speed.json")
    args = ap.parse_args()
    if args.make_fixture:
        make_fixture(args.make_fixture)
        return
    if not args.manual_dir:
        ap.error("--manual_dir (or --make_fixture) is needed")
    cores = os.cpu_count() or 1
    rows = []
    for root in args.manual_dir.split(","):
        for storage in args.storage.split(","):
            data_dir = os.path.join(args.data_dir, os.path.basename(root.rstrip("/")))
            t = time.perf_counter()
            store = prep.prepare(args.layout, data_dir, root, "train", storage,
                                   args.prepare_workers)
            prep = time.perf_counter() - t
            s = frames.FrameStore(store)
            for w in map(int, args.workers.split(",")):
                r = measure(store, w, args.threads, args.groups, args.pairs, args.batches)
                rows.append({"root": os.path.basename(root.rstrip("/")), "storage": storage,
                             "workers": w, "records": len(s),
                             "mean_track_len": round(len(s) / max(len(s.tracks), 1)),
                             "store_mib": round(_dir_mib(store)),
                             "prepare_s_if_new": round(prep, 1),
                             "pairs_per_s": round(r.get("pairs_per_s", float("nan")), 1),
                             "per_core": round(r.get("pairs_per_s", float("nan")) / cores, 1),
                             "first_batch_s": round(r.get("first_batch_s", float("nan")), 2),
                             "rss_mib": round(r.get("rss_mib", float("nan"))),
                             "worker_rss_mib": round(r.get("worker_rss_mib", float("nan"))),
                             "error": r.get("error", "")})
                print(rows[-1], flush=True)
    cols = ["root", "storage", "workers", "mean_track_len", "store_mib", "pairs_per_s",
            "per_core", "first_batch_s", "rss_mib", "worker_rss_mib"]
    print(f"\n{cores} cores; groups of {args.pairs} pair(s), {args.groups} per batch")
    print(common.table(rows, cols))
    common.write_json(args.out, {"rows": rows, "cores": cores, "groups": args.groups,
                                 "pairs": args.pairs, "threads": args.threads})


if __name__ == "__main__":
    main()
