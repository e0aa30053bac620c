"""Frame stores at the official CLNet mixture's size: preparation, start-up, memory, speed.

    python benchmarks/store_scale.py --fraction 0.1 --workers 16 --out store_scale.json

``--fraction 1`` is the official mixture's full size (``MIXTURE``: ~1.6 M tracks, ~8.6 M
(frame, object) records); 0.1 finishes in minutes on 2 cores. Payloads are small JPEGs (a
64x64 frame; the index, shard and track structure are what a real preparation writes, through
:func:`clnet_jax.data.prepare.write_store`). Measured, each in a fresh process:

* **listing**: the layout readers on annotation files written in the published layouts at the
  same fraction (ImageNet DET XML files, COCO's instances JSON with polygons, the YouTube-BB
  CSV): seconds, the memory the listed tracks hold, and the peak while listing;
* **stores**: one per dataset (with its records per track) and their mixture with the official
  samples per epoch, against a 10-track reference store of the same payload: index load time,
  ``startup_s`` (process start to the first batch, ``--workers`` grain workers),
  ``worker_rss_mib`` (the largest worker's resident memory above the reference's largest, the
  "empty" worker), the main process's memory, start-up again with one worker per core, and
  ``pairs_per_s_per_core`` (no workers, one thread per core; r50 crop sizes, 16 groups of 1
  pair).

Prints a table and writes JSON (one row per store, one per listing).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The official CLNet mixture at full size (tracks, (frame, object) records), from the
# published dataset statistics; per-track record counts are drawn around their mean.
MIXTURE = {
    # ILSVRC2015 VID train: 3,862 snippets, 1,122,397 frames; ~1.5 objects per frame
    # (estimate) -> ~5,800 tracks of ~290 records
    "imagenet_vid": (5_800, 1_700_000),
    # YouTube-BoundingBoxes: 380,000 segments, 5.6 M boxes (1 frame per second)
    "youtube_bb": (380_000, 5_600_000),
    # COCO train2017: 860,001 instances, of which 849,947 not crowd; one record each
    "coco": (849_947, 849_947),
    # ILSVRC DET train: ~333,000 annotation files with objects, ~1.05 objects each
    "imagenet_det": (350_000, 350_000),
}
# configs/clnet_r50.py: groups per mixture epoch
SAMPLES = {"imagenet_vid": 10_000, "youtube_bb": 19_927, "coco": 11_726, "imagenet_det": 33_347}
REFERENCE = (10, 6_200)  # the store input_speed.py measured: 10 tracks, 6,200 frames
PAYLOAD_SIDE, PAYLOADS = 64, 8
BOX = (20.0, 22.0, 24.0, 20.0)


# ---------------------------------------------------------------- generated tracks
_JPEGS: list[bytes] = []


def payload(k: int) -> bytes:
    """One of ``PAYLOADS`` small textured JPEG frames with a target at ``BOX``."""
    if not _JPEGS:
        import cv2
        rng = np.random.default_rng(0)
        for _ in range(PAYLOADS):
            img = rng.integers(40, 200, (PAYLOAD_SIDE, PAYLOAD_SIDE, 3)).astype(np.uint8)
            x, y, w, h = (int(v) for v in BOX)
            img[y:y + h, x:x + w] = rng.integers(0, 255, 3)
            _JPEGS.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return _JPEGS[k % PAYLOADS]


class PayloadTrack:
    """A track of ``length`` records of generated payload (prepare.write_store's protocol);
    pickles as three numbers, so planning a million of them stays cheap."""

    def __init__(self, name: str, length: int, k: int):
        self.name, self.length, self.k = name, length, k

    def iter_frames(self):
        for i in range(self.length):
            yield i, (f"{self.name}#{i}", payload(self.k + i)), np.float32(BOX)


def track_lengths(tracks: int, records: int, seed: int) -> np.ndarray:
    """``tracks`` lengths >= 1 summing to ``records`` (geometric-like spread around the
    mean, as real track lengths)."""
    if records == tracks:
        return np.ones(tracks, np.int64)
    rng = np.random.default_rng(seed)
    w = rng.exponential(1.0, tracks)
    extra = np.floor(w / w.sum() * (records - tracks)).astype(np.int64)
    extra[: records - tracks - extra.sum()] += 1
    return 1 + extra


def write_stores(out: str, fraction: float, workers: int) -> dict:
    """The scaled stores and the reference one; returns name -> (path, prepare seconds)."""
    from clnet_jax.data import prepare as prep
    specs = {name: (max(1, round(t * fraction)), max(1, round(r * fraction)))
             for name, (t, r) in MIXTURE.items()}
    specs["reference"] = REFERENCE
    done = {}
    for i, (name, (t, r)) in enumerate(specs.items()):
        path = os.path.join(out, "stores", name)
        tracks = [PayloadTrack(f"{name}/{j}", int(n), j)
                  for j, n in enumerate(track_lengths(t, r, i))]
        t0 = time.perf_counter()
        prep.write_store(path, tracks, "full", workers, desc=f"write {name}")
        done[name] = (path, time.perf_counter() - t0)
        print(f"wrote {name}: {t:,} tracks, {r:,} records in {done[name][1]:.0f} s", flush=True)
    return done


# ------------------------------------------------------------------------- listings
def write_layouts(out: str, fraction: float) -> dict:
    """Annotation files of DET, COCO and YouTube-BB in their published layouts."""
    rng = np.random.default_rng(1)
    roots = {}
    # ImageNet DET: one XML per image, 1-2 objects
    det = os.path.join(out, "layouts", "det")
    n_det = round(333_000 * fraction)
    os.makedirs(os.path.join(det, "Data", "DET", "train"), exist_ok=True)
    for i in range(n_det):
        d = os.path.join(det, "Annotations", "DET", "train", "ILSVRC2013_train",
                         f"n{i // 1000:08d}")
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        objs = "".join(
            f"<object><name>n{i // 1000:08d}</name><bndbox><xmin>{10 + 40 * k}</xmin><ymin>12"
            f"</ymin><xmax>{40 + 40 * k}</xmax><ymax>50</ymax></bndbox></object>"
            for k in range(1 + (i % 20 == 0)))
        with open(os.path.join(d, f"n{i // 1000:08d}_{i}.xml"), "w") as f:
            f.write(f"<annotation><folder>n{i // 1000:08d}</folder><filename>{i}</filename>"
                    f"<size><width>500</width><height>375</height></size>{objs}</annotation>")
    roots["imagenet_det"] = (det, "train", n_det)
    # COCO: instances_train2017.json with polygons (~390 MB here; the real file is 448 MB)
    coco = os.path.join(out, "layouts", "coco")
    os.makedirs(os.path.join(coco, "train2017"), exist_ok=True)
    os.makedirs(os.path.join(coco, "annotations"), exist_ok=True)
    n_img, n_ann = round(118_287 * fraction), round(860_001 * fraction)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480}
              for i in range(n_img)]
    poly = lambda: [round(float(v), 2) for v in rng.uniform(0, 480, 40)]
    anns = [{"id": j, "image_id": j % n_img, "category_id": 1 + j % 80,
             "bbox": [10.5, 20.25, 30.0 + j % 50, 40.0], "area": 1200.0,
             "iscrowd": int(j % 85 == 0), "segmentation": [poly()]} for j in range(n_ann)]
    with open(os.path.join(coco, "annotations", "instances_train2017.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": []}, f)
    del images, anns
    roots["coco"] = (coco, "train2017", n_ann)
    # YouTube-BB: the detection CSV, ~14.7 rows per (video, class, object)
    yt = os.path.join(out, "layouts", "youtube_bb")
    os.makedirs(os.path.join(yt, "frames"), exist_ok=True)
    n_rows, n_tracks = round(5_600_000 * fraction), round(380_000 * fraction)
    lengths = track_lengths(n_tracks, n_rows, 2)
    with open(os.path.join(yt, "yt_bb_detection_train.csv"), "w") as f:
        for t, n in enumerate(lengths):
            yid = f"v{t:010d}"
            f.writelines(f"{yid},{1000 * k},{t % 23},class,{t % 3},present,0.1,0.4,0.2,0.6\n"
                         for k in range(int(n)))
    roots["youtube_bb"] = (yt, "train", n_rows)
    return roots


# Memory from /proc (Linux), so the benchmark needs nothing beyond the test requirements.
PROC = """
def rss(pid='self'):
    with open(f'/proc/{pid}/status') as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmRSS:'))
def descendants(pid):
    kids, parents = [], {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open(f'/proc/{d}/stat') as f:
                    parents[int(d)] = int(f.read().rsplit(')', 1)[1].split()[1])
            except OSError:
                pass
    todo = [pid]
    while todo:
        p = todo.pop()
        for c, pp in parents.items():
            if pp == p:
                kids.append(c)
                todo.append(c)
    return kids
"""

LISTING = """
import json, os, resource, sys, time
V = json.loads(sys.argv[1])
""" + PROC + """
sys.path.insert(0, V['root'])
from clnet_jax.data import prepare as prep
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss()
t = time.perf_counter()
tracks, problems = prep.list_tracks(V['dataset'], V['source'], V['split'])
dt = time.perf_counter() - t
held = rss() - before
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# the peak while listing, above the memory before it; where the imports' transient peak was
# higher, the listing's own peak is hidden and what the list holds is the bound we know
peak_mib = (peak * 1024 - before) / 2**20 if peak > base else held / 2**20
print(json.dumps({"list_s": dt, "tracks": len(tracks), "problems": len(problems),
                  "held_mib": held / 2**20, "peak_mib": peak_mib}))
"""


# --------------------------------------------------------------------------- readers
READER = """
import json, os, sys, time
T0 = time.time()
V = json.loads(sys.argv[1])
""" + PROC + """
sys.path.insert(0, V['root'])
from clnet_jax import config as C
from clnet_jax.data import frames, pipeline
cfg = C.from_file(os.path.join(V['root'], 'configs', 'siamrpn_r50.py'))
cfg.data.workers, cfg.data.threads = V['workers'], V['threads']
t = time.perf_counter()
stores = [frames.FrameStore(p) for p in V['paths']]
load_s = time.perf_counter() - t
it = pipeline.make_iterator(stores, cfg, 0, 16, V['batches'] + 1, samples=V['samples'])
next(it)
first = time.time()
t1 = time.perf_counter()
for _ in range(V['batches']):
    next(it)
dt = time.perf_counter() - t1
pids = descendants(os.getpid())
kids = []
for p in pids:
    try:
        kids.append(rss(p))
    except (OSError, StopIteration):  # gone, or a zombie
        pass
print(json.dumps({'start': T0, 'first': first, 'index_load_s': load_s,
                  'pairs_per_s': V['batches'] * 16 / dt, 'main_rss_mib': rss() / 2**20,
                  'workers': len(kids), 'worker_rss_mib_max': max(kids, default=0) / 2**20}),
      flush=True)
import signal
for p in pids:  # workers would hold the output pipe open
    try:
        os.kill(p, signal.SIGKILL)
    except OSError:
        pass
os._exit(0)
"""


def _run(template: str, **values) -> dict:
    """Runs a measuring script in a fresh Python process (values as JSON in its argv) and
    returns the JSON it prints last."""
    out = subprocess.run([sys.executable, "-c", template, json.dumps(dict(values, root=ROOT))],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_reader(paths: list[str], samples, workers: int, threads: int, batches: int) -> dict:
    launched = time.time()
    r = _run(READER, paths=paths, samples=samples, workers=workers, threads=threads,
             batches=batches)
    r["startup_s"] = r["first"] - launched
    return r


def run_listing(dataset: str, root: str, split: str) -> dict:
    return _run(LISTING, dataset=dataset, source=root, split=split)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fraction", type=float, default=0.1, help="of the stores (0: no stores)")
    ap.add_argument("--listing_fraction", type=float, default=None,
                    help="of the listed annotation files (default: --fraction; 0: none)")
    ap.add_argument("--workers", type=int, default=16, help="grain workers for memory/start-up")
    ap.add_argument("--prepare_workers", type=int, default=os.cpu_count())
    ap.add_argument("--batches", type=int, default=40, help="timed batches of 16 pairs")
    ap.add_argument("--repeats", type=int, default=3, help="speed runs per store (median)")
    ap.add_argument("--dir", default="/tmp/store_scale", help="where stores are written")
    ap.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    ap.add_argument("--out", default="store_scale.json")
    a = ap.parse_args(argv)
    cores = os.cpu_count()
    rows = []
    # listings first (nothing else in memory)
    lf = a.fraction if a.listing_fraction is None else a.listing_fraction
    for name, (root, split, n) in (write_layouts(a.dir, lf) if lf > 0 else {}).items():
        r = run_listing(name, root, split)
        rows.append(dict(kind="listing", dataset=name, source_items=n, **r))
        print(f"listing {name}: {n:,} annotation items -> {r['tracks']:,} tracks in "
              f"{r['list_s']:.1f} s, the list holds {r['held_mib']:.0f} MiB (peak "
              f"{r['peak_mib']:.0f} MiB)", flush=True)
    stores = write_stores(a.dir, a.fraction, a.prepare_workers) if a.fraction > 0 else {}
    from clnet_jax.data import frames
    sets = {name: [name] for name in stores}
    sets["mixture"] = list(MIXTURE)
    order = ["reference"] + [n for n in sets if n != "reference"] if stores else []
    args = {n: ([stores[m][0] for m in sets[n]],
                [SAMPLES[m] for m in sets[n]] if n == "mixture" else None) for n in order}
    # speed: --repeats rounds over every store, the median per store (a noisy machine
    # slows the stores of a round alike)
    rates = {n: [] for n in order}
    for _ in range(a.repeats):
        for n in order:
            rates[n].append(run_reader(*args[n], 0, cores, a.batches)["pairs_per_s"])
    ref_worker = None
    for name in order:
        members = sets[name]
        paths, samples = args[name]
        opened = [frames.FrameStore(p) for p in paths]
        mem = run_reader(paths, samples, a.workers, 1, 4)
        few = run_reader(paths, samples, cores, 1, 4)  # one worker per core
        speed = {"pairs_per_s": float(np.median(rates[name])), "runs": rates[name]}
        if name == "reference":
            ref_worker = mem["worker_rss_mib_max"]
        disk = sum(os.path.getsize(os.path.join(p, f)) for p in paths for f in os.listdir(p))
        row = dict(kind="store", store=name, tracks=sum(s.num_tracks for s in opened),
                   records=sum(len(s) for s in opened),
                   shards=sum(s._num_shards for s in opened),
                   prepare_s=sum(stores[m][1] for m in members), disk_mib=disk / 2**20,
                   index_load_s=mem["index_load_s"], startup_s=mem["startup_s"],
                   startup_s_workers_per_core=few["startup_s"],
                   grain_workers=mem["workers"],
                   worker_rss_mib=mem["worker_rss_mib_max"] - ref_worker,
                   worker_rss_mib_abs=mem["worker_rss_mib_max"],
                   main_rss_mib=mem["main_rss_mib"], pairs_per_s=speed["pairs_per_s"],
                   pairs_per_s_runs=speed["runs"],
                   pairs_per_s_per_core=speed["pairs_per_s"] / cores)
        rows.append(row)
        print(f"{name:>12}: {row['tracks']:>9,} tracks {row['records']:>10,} records | "
              f"load {row['index_load_s']:.3f} s, start-up {row['startup_s']:.1f} s "
              f"({row['startup_s_workers_per_core']:.1f} s with {cores} workers), "
              f"worker +{row['worker_rss_mib']:.0f} MiB ({row['worker_rss_mib_abs']:.0f}), "
              f"main {row['main_rss_mib']:.0f} MiB, {row['pairs_per_s_per_core']:.0f} "
              "pairs/s/core", flush=True)
    stored = [r for r in rows if r["kind"] == "store"]
    for r in stored:  # the reference row comes first
        r["speed_vs_reference"] = r["pairs_per_s_per_core"] / stored[0]["pairs_per_s_per_core"]
    result = {"benchmark": "store_scale", "date": datetime.date.today().isoformat(),
              "fraction": a.fraction, "listing_fraction": lf, "grain_workers": a.workers,
              "prepare_workers": a.prepare_workers, "payload": f"{PAYLOAD_SIDE}x{PAYLOAD_SIDE} JPEG",
              "mixture_full_size": MIXTURE, "samples": SAMPLES,
              "goals": {"speed_vs_reference": ">= 0.9", "worker_rss_mib": "<= 256",
                        "startup_s": "<= 10"}, "rows": rows}
    from benchmarks import common  # the machine's description beside the figures
    common.write_json(a.out, result)
    print(f"\n| store | tracks | records | index load (s) | start-up, {a.workers} workers (s) | "
          f"start-up, {cores} workers (s) | worker RSS above empty (MiB) | pairs/s per core | "
          "vs reference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "store":
            print(f"| {r['store']} | {r['tracks']:,} | {r['records']:,} | "
                  f"{r['index_load_s']:.3f} | {r['startup_s']:.1f} | "
                  f"{r['startup_s_workers_per_core']:.1f} | {r['worker_rss_mib']:+.0f} "
                  f"| {r['pairs_per_s_per_core']:.0f} | {r['speed_vs_reference']:.2f} |")
    if not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
