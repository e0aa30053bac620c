"""One's own annotated videos (``data.dir``): the folders' sequences and the videos held
back from training for evaluation (``data.holdout``, ``data.holdout_every``)."""
from __future__ import annotations

from clnet_jax.data import benchmarks


def dir_sequences(cfg) -> dict[str, list[benchmarks.BenchmarkSequence]]:
    """folder of ``data.dir`` -> its sequences (those with only an initial box left out),
    each folder's layout detected."""
    out = {}
    for folder in (f for f in cfg.data.dir.split(",") if f):
        seqs, _ = benchmarks.load("auto", folder)
        out[folder] = [s for s in seqs if not s.init_only]
    return out


def held_out_videos(cfg, loaded: dict[str, list] | None = None) -> list[str]:
    """The videos of ``data.dir`` held back from training for evaluation (``data.holdout``
    names them; where none of them is present, every ``data.holdout_every``-th video).
    ``loaded``: :func:`dir_sequences`, where the caller has it already."""
    loaded = dir_sequences(cfg) if loaded is None else loaded
    names = [benchmarks.video_of(s) for seqs in loaded.values() for s in seqs]
    named = [v for v in cfg.data.holdout.split(",") if v]
    return sorted(benchmarks.held_out(names, named, cfg.data.holdout_every))


def held_out_sequences(cfg) -> list[benchmarks.BenchmarkSequence]:
    """The sequences of the held-back videos, as one-pass boxes (VOT polygons as their
    bounding rectangles)."""
    loaded = dir_sequences(cfg)
    return named_sequences(loaded, held_out_videos(cfg, loaded))


def named_sequences(loaded: dict[str, list], names: list[str],
                    require: bool = False) -> list[benchmarks.BenchmarkSequence]:
    """The sequences of the videos ``names`` in ``loaded`` (:func:`dir_sequences`), sorted
    by name, as one-pass boxes. ``require``: a fixed split, so a video of ``names`` that no
    folder holds is an error naming it, not a smaller split."""
    keep = set(names)
    out = sorted((s._replace(gt=benchmarks.as_boxes(s)) for seqs in loaded.values()
                  for s in seqs if benchmarks.video_of(s) in keep), key=lambda s: s.name)
    missing = sorted(keep - {benchmarks.video_of(s) for s in out})
    if require and missing:
        raise ValueError(f"videos {', '.join(missing)} are in no folder of data.dir "
                         f"({', '.join(loaded) or 'none given'})")
    return out
