"""Table 3 of the paper in miniature, as a research testbed (``clnet-ablation``,
docs/testbed.md): bases built once per seed and cached (:mod:`.cache`), the rows of
:mod:`.rows` (and any registered variant) trained on them, evaluated with the batched
tracker, and a report whose paired statistics decide (:mod:`.report`), written to
``<report_dir>/ablation.md`` (+ JSON and plots).
"""
from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

from clnet_jax.data import builders, videos
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.experiments import cache
from clnet_jax.experiments import rows as rows_lib
from clnet_jax.track import runner
from clnet_jax.track.inputs import load_frame


def init_cost(cfg, params, seq) -> tuple[float, float]:
    """(init ms, init cost in tracking frames) on a sequence's first frames, jit warm."""
    trk = runner.SequenceTracker(cfg, params)
    f0, f1 = (load_frame(f) for f in seq.frames[:2])
    trk.init(f0, seq.gt[0])
    jax.block_until_ready(trk.state)
    t = time.perf_counter()
    for _ in range(3):
        trk.init(f0, seq.gt[0])
        jax.block_until_ready(trk.state)
    t_init = (time.perf_counter() - t) / 3
    trk.update(f1)
    t = time.perf_counter()
    for _ in range(3):
        trk.update(f1)
    t_step = (time.perf_counter() - t) / 3
    return 1000 * t_init, t_init / t_step


def row_params(cfg, row: str, weights: dict) -> tuple:
    """(tracking config, weights as arrays) of a row: the rows that track without a weight
    generator leave it out."""
    c = rows_lib.tracking_config(cfg, row)
    params = jax.tree.map(jax.numpy.asarray, weights)
    if c.clnet.variant in ("none", "sgd_finetune"):
        params = {k: v for k, v in params.items() if k != "clnet"}
    return c, params


def row_tracker(cfg, row: str, weights: dict, batch: int) -> runner.BatchTracker:
    """The batched tracker of a row: one per row serves all of its splits (and, in
    ``clnet-tune``, every base), compiled once per frame size."""
    c, params = row_params(cfg, row, weights)
    return runner.BatchTracker(c, params, batch)


def evaluate(cfg, row: str, weights: dict, seqs: list, cost: bool = True,
             tracker: runner.BatchTracker | None = None) -> dict:
    """One row on one split: boxes of every sequence (batched tracker; ``tracker``: one
    from :func:`row_tracker`, reused) and, with ``cost``, the first-frame cost in tracking
    frames (NaN without). Sequences of several frame sizes are tracked one size at a time.
    """
    c, params = row_params(cfg, row, weights)
    if tracker is None:
        tracker = runner.BatchTracker(c, params, batch_size(cfg, [seqs]))
    t = time.perf_counter()
    out = tracker.run(seqs, params)
    bad = {k: v for k, v in out.items() if isinstance(v, str)}
    if bad:
        raise RuntimeError(f"{row}: sequences failed: {bad}")
    wall = time.perf_counter() - t
    init_ms, init_frames = init_cost(c, params, seqs[0]) if cost else (np.nan, np.nan)
    return {"boxes": {k: v[0].tolist() for k, v in out.items()}, "wall_s": wall,
            "init_ms": init_ms, "init_frames": init_frames}


def batch_size(cfg, splits: list[list]) -> int:
    """The batched tracker's size: ``ablation.eval_batch``, or the largest group of one
    frame size in ``splits`` where that is smaller (a short batch is padded)."""
    largest = max(runner.largest_group(seqs) for seqs in splits)
    return min(cfg.ablation.eval_batch, largest)


def eval_sources(cfg) -> dict:
    """The configured dataset's splits as TFDS data sources (prepared on first use)."""
    d = cfg.data
    src = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                           d.builder_config if d.dataset == "synthetic" else None)
    return src.as_data_source()


def load_splits(cfg, quick: bool) -> dict:
    """split -> its sequences: the videos ``ablation.split_videos`` names among the folders
    of ``data.dir`` where it is set (the real-video testbed), else the splits of
    ``data.dataset``."""
    out = {}
    if cfg.ablation.split_videos:
        loaded = real_videos(cfg)
        for split in cfg.ablation.eval_splits:
            out[split] = split_sequences(cfg, loaded, split)
    else:
        sources = eval_sources(cfg)
        for split in cfg.ablation.eval_splits:
            if split in sources:  # e.g. no transfer split in the look-alike generator
                out[split] = eval_data.from_source(sources[split])
    return {k: v[:3] if quick else v for k, v in out.items()}


def real_videos(cfg) -> dict:
    """The folders of ``data.dir``, loaded (:func:`clnet_jax.data.videos.dir_sequences`)."""
    if not cfg.data.dir:
        raise ValueError(f"{cfg.name}: ablation.split_videos names videos of data.dir: give "
                         "the folders, --config.data.dir=<folder>[,<folder>...]")
    return videos.dir_sequences(cfg)


def split_sequences(cfg, loaded: dict, split: str) -> list:
    """The sequences of one split of ``ablation.split_videos``, every video of it present."""
    if split not in cfg.ablation.split_videos:
        raise ValueError(f"ablation.split_videos has no split {split!r}: it has "
                         f"{', '.join(cfg.ablation.split_videos)}")
    names = [v for v in cfg.ablation.split_videos[split].split(",") if v]
    return videos.named_sequences(loaded, names, require=True)


def run(cfg, partial: bool = False, rows: list[str] | None = None,
        bases_only: bool = False) -> dict | None:
    """Builds the bases, trains and evaluates the rows (everything cached is reused) and
    writes the report from every row evaluated for every seed (``ablation.quick``: one
    seed, three sequences per split)."""
    from tqdm import tqdm
    a = cfg.ablation
    quick = a.quick
    seeds = list(a.seeds)[:1] if quick else list(a.seeds)
    todo = list(rows or a.rows)
    for r in todo:
        rows_lib.row_of(r)  # an unknown row stops here, naming the valid ones
    if any((rows_lib.readapt_of(r) or r) == "sgd_tuned" for r in todo) and not a.sgd_tuned_lr:
        sys.exit("error: row sgd_tuned needs ablation.sgd_tuned_lr, the step size chosen on "
                 "the validation split: clnet-tune --config ablation --what sgd_lr")
    if bases_only and not partial:  # no evaluation data needed
        splits = {}
    else:
        splits = load_splits(cfg, quick)
    if not partial:
        jobs = [(s, None) for s in seeds] if bases_only else [(s, r) for s in seeds for r in todo]
        pending = [j for j in jobs if not _done(cfg, *j, splits)]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), unit="job",
                   desc="bases" if bases_only else "rows", position=0)
        bases, batch = {}, None
        for seed, row in pending:
            bar.set_postfix_str(f"seed {seed}" + (f" {row}" if row else " base"))
            if seed not in bases:
                bases = {seed: cache.build_base(cfg, seed)}  # one seed's base in memory at a time
            if row is not None:
                weights = cache.row_weights(cfg, seed, row, bases[seed])
                # compiled once for all splits; not kept across rows: every compiled
                # program holds memory mappings, which 16 rows' worth exhaust
                if batch is None:
                    batch = batch_size(cfg, list(splits.values()))
                trk = row_tracker(cfg, row, weights, batch)
                for i, (split, seqs) in enumerate(splits.items()):
                    path = cache.eval_path(cfg, seed, row, split)
                    if not os.path.isfile(path):
                        cost = i == 0 and a.init_cost
                        cache.write_json(path, evaluate(cfg, row, weights, seqs, cost, trk))
            bar.update(1)
        bar.close()
        if bases_only:
            walls = [cache.read_json(cache.wall_path(cache.base_dir(cfg, s))) for s in seeds]
            print(f"bases of seeds {seeds}: {', '.join(f'{w / 60:.1f}' for w in walls)} min "
                  f"(in {cfg.ablation.bases_dir})")
            return None
    results = collect(cfg, seeds, list(a.rows) + [r for r in todo if r not in a.rows], splits)
    if not results["test"]:
        sys.exit("error: no row has been evaluated for every seed yet")
    from clnet_jax.experiments import report
    return report.write(cfg, results, splits)


def _done(cfg, seed, row, splits) -> bool:
    if row is None:
        return os.path.isfile(cache.wall_path(cache.base_dir(cfg, seed)))
    return all(os.path.isfile(cache.eval_path(cfg, seed, row, s)) for s in splits)


def collect(cfg, seeds: list[int], rows: list[str], splits: dict) -> dict:
    """{split: {seed: {row: result}}} over the seeds that have evaluated anything and the
    rows that all of those seeds have evaluated (a partial report when seeds are missing),
    plus 'seeds', 'rows' and the base wall times."""
    out = {}
    done_seeds = [s for s in seeds if any(os.path.isfile(cache.eval_path(cfg, s, r, sp))
                                          for r in rows for sp in splits)]
    have_rows = [r for r in rows if all(os.path.isfile(cache.eval_path(cfg, s, r, sp))
                                        for s in done_seeds for sp in splits)]
    for sp in splits:
        out[sp] = {s: {r: cache.read_json(cache.eval_path(cfg, s, r, sp)) for r in have_rows}
                   for s in done_seeds} if have_rows else {}
    out["rows"], out["seeds"] = have_rows, done_seeds
    out["row_train_s"] = {r: [cache.row_training_s(cfg, s, r) for s in done_seeds] for r in have_rows}
    out["base_wall_s"] = {}
    for s in done_seeds:
        p = cache.wall_path(cache.base_dir(cfg, s))
        if os.path.isfile(p):
            out["base_wall_s"][s] = cache.read_json(p)
    return out


