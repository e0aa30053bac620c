"""Table 3 of the paper in miniature, as a research testbed: bases built once per seed and
cached by config, rows (and new variants) trained on them, paired statistics that decide.

    python -m clnet_jax.experiments.ablation --config configs/ablation.py --bases   # once
    python -m clnet_jax.experiments.ablation --config configs/ablation.py           # all rows
    python -m clnet_jax.experiments.ablation --config configs/ablation.py --rows DM,mine
    [--quick]            plumbing only: a few steps per row, tiny data, its own directories
    [--report_partial]   the report from what has been evaluated so far, no training

Rows (all on the same trained base of each seed; tracking-time mining as the official
tracker does for every CLNet row):
  BT  base tracker                      RT  base trained further on same-sequence groups
                                            (CLNet stage's steps, base stage's pairs/step)
  AN  mlp_no_latent, single-pair groups LE  clnet latent, single-pair groups (no OS)
  OS  clnet, same-sequence groups       DM  OS + diverse mining in training (the paper)
  mean_only  DM without sigma           sgd_finetune  K gradient steps on the first frame
  DM_official  DM weights, official (defective) label layout at tracking time
  DM_running_bn  DM weights, encoder BN on running statistics at the first-frame adaptation
                 (the official tracker uses the first crop's batch statistics)
  DM_support  DM trained with a support/query split (train.clnet_support_pairs=1: the
              adaptation sees a group's first pair, the loss is scored on the others)
  <row>_readapt  the row's weights, re-adapting while tracking (track.readapt)
  <name>  any variant registered in clnet_jax.adapt.variants: trained like DM (same-sequence
          groups, diverse mining), tracked with its own generator

Caching: the base of a seed lives in ``<ablation.bases_dir>/<key>/base`` where the key is a
hash of everything that decides it (model, data, base-stage training settings, seed); each
row's training and each (row, split) evaluation are keyed the same way below it. Changing a
row's settings retrains that row only; changing the base's settings builds new bases.
Writes ``<report_dir>/ablation.md`` (+ JSON and plots).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import jax
import numpy as np

from clnet_jax.io import checkpoint
from clnet_jax import config as config_lib
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.track import runner
from clnet_jax.track.inputs import load_frame
from clnet_jax.train import trainer
from clnet_jax.adapt import variants
from clnet_jax.model import siamrpn as model_lib
from clnet_jax.data import builders

PAPER = {"BT": (73.3, 57.7), "RT": (74.3, 57.4), "AN": (73.8, 58.2), "LE": (75.5, 60.1),
         "OS": (76.6, 60.2), "DM": (77.2, 61.1)}  # P / AUC %, DTB70+NFS30+UAV123
FIXED_ROWS = ("BT", "RT", "AN", "LE", "OS", "DM", "mean_only", "sgd_finetune", "DM_official",
              "DM_running_bn", "DM_support", "sgd_tuned")
READAPT = "_readapt"  # suffix: a row's weights, tracked with re-adaptation


def readapt_of(row: str) -> str | None:
    """The row that ``<row>_readapt`` re-adapts, or None for a row without the suffix."""
    return row[:-len(READAPT)] if row.endswith(READAPT) and row != READAPT else None
# Keys that never change what is trained (where it is written, how often it is logged).
_NOT_DECIDING = ("workdir", "log_every", "checkpoint_every", "keep_checkpoints", "eval_after",
                 "eval_split", "stages")


def check_row(row: str) -> None:
    if readapt_of(row):
        return check_row(readapt_of(row))
    if row in FIXED_ROWS:
        return
    try:
        variants.get_variant(row)
    except (KeyError, ValueError):
        raise SystemExit(f"error: unknown row {row!r}: neither one of {list(FIXED_ROWS)} nor a "
                         "variant registered in clnet_jax.adapt.variants.REGISTRY") from None


def row_config(cfg, row: str):
    """Config of a row's training stage ('clnet' stage unless BT/RT/sgd)."""
    c = cfg.copy_and_resolve_references()
    n = cfg.train.clnet_pairs_per_group
    groups = cfg.train.get("clnet_groups_per_batch", 0) or cfg.train.groups_per_batch
    single = dict(pairs=1, groups=groups * n)
    grouped = dict(pairs=n, groups=groups)
    spec = {"AN": ("mlp_no_latent", single, False), "LE": ("clnet", single, False),
            "OS": ("clnet", grouped, False), "DM": ("clnet", grouped, True),
            "mean_only": ("mean_only", grouped, True), "DM_support": ("clnet", grouped, True)}
    if row not in FIXED_ROWS:  # a registered variant: the paper's training protocol
        spec[row] = (row, grouped, True)
    if row in spec:
        variant, g, mining = spec[row]
        c.clnet.variant = variant
        c.train.clnet_pairs_per_group = g["pairs"]
        c.train.clnet_groups_per_batch = g["groups"]
        c.train.diverse_mining = mining
    if row == "DM_support":
        c.train.clnet_support_pairs = 1
    return c


def rt_config(cfg):
    """RT: more base training with the CLNet stage's protocol (same-sequence groups and
    steps, the base stage's pairs/step, the base schedule's final learning rate)."""
    rt = cfg.copy_and_resolve_references()
    n = cfg.train.clnet_pairs_per_group
    rt.train.pairs_per_group = n
    rt.train.groups_per_batch = max(cfg.train.groups_per_batch // n, 1)
    rt.train.epochs = cfg.train.clnet_epochs or cfg.train.epochs
    rt.train.warmup_epochs = 0
    rt.train.lr = rt.train.lr_end
    return rt


# Rows that track with the seed's base weights: nothing of their own is trained.
BASE_ROWS = ("BT", "sgd_finetune", "sgd_tuned")
TRAINED_FROM = {"RT": "RT", "AN": "AN", "LE": "LE", "OS": "OS", "DM": "DM",
                "mean_only": "mean_only", "DM_official": "DM", "DM_running_bn": "DM",
                "DM_support": "DM_support"}


def trained_from(row: str) -> str | None:
    """The row whose training a row tracks with (itself for most; None for the fixed rows
    that train nothing of their own but BT/sgd_finetune, which use the base)."""
    if readapt_of(row):
        return trained_from(readapt_of(row)) or readapt_of(row)
    return TRAINED_FROM.get(row)


def tracking_config(cfg, row: str):
    if readapt_of(row):
        c = tracking_config(cfg, readapt_of(row))
        c.track.readapt = True
        return c
    c = row_config(cfg, trained_from(row) or row)
    c.clnet.variant = {"BT": "none", "RT": "none", "sgd_finetune": "sgd_finetune",
                       "sgd_tuned": "sgd_finetune",
                       "DM_official": "clnet", "DM_running_bn": "clnet",
                       "DM_support": "clnet"}.get(row, c.clnet.variant)
    if row == "sgd_tuned":  # sgd_finetune at the step size tuned on the validation split
        c.clnet.sgd_lr = cfg.ablation.sgd_tuned_lr
    if row == "DM_official":
        c.clnet.label_layout = "official"
    if row == "DM_running_bn":
        c.clnet.encoder_bn = "running"
    return c


# ------------------------------------------------------------------------------ keys
def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _deciding(c) -> dict:
    d = c.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k not in _NOT_DECIDING}
    # keys added later are left out at their old behaviour's value: existing caches stay valid
    for dotted, old in config_lib.ADDED_LATER.items():
        section, key = dotted.split(".", 1)
        if d.get(section, {}).get(key) == old:
            del d[section][key]
    d.pop("ablation", None)
    d.pop("name", None)
    return d


_TRAINING_TRACK_KEYS = ("exemplar_size", "instance_size", "base_size", "context_amount")


def base_key(cfg, seed: int) -> str:
    """What decides a seed's base: model, anchors, data and base-stage training settings."""
    d = _deciding(cfg)
    d["train"] = _without_clnet_stage(d["train"])
    d["train"]["seed"] = seed
    # training crops and anchor targets read the crop sizes and context; the rest of
    # 'track' (penalty, window, update rate, convolution path) acts at tracking time only
    d["track"] = {k: v for k, v in d["track"].items() if k in _TRAINING_TRACK_KEYS}
    d.pop("clnet", None)
    return _hash(d)


def _without_clnet_stage(train: dict) -> dict:
    """The train settings without those only the CLNet stage reads."""
    return {k: v for k, v in train.items() if not k.startswith("clnet_") and k != "diverse_mining"}


def stage_key(c) -> str:
    return _hash(_deciding(c))


def seed_dir(cfg, seed: int) -> str:
    return os.path.join(cfg.ablation.bases_dir, base_key(cfg, seed))


# ------------------------------------------------------------------------ the work
def _initial(cfg, seed: int) -> dict:
    return jax.device_get(model_lib.init_params(cfg, jax.random.key(seed)))


def _timed_stage(c, stage: str, workdir: str, init) -> dict:
    """The stage's weights: read back when a finished run left them (its wall time is
    recorded beside), else trained (or resumed) by trainer.train_stage. ``init`` may be a
    function, called only when training is needed."""
    if os.path.isfile(_wall_path(workdir)):
        return checkpoint.load(os.path.join(workdir, "weights"))[0]
    t = time.perf_counter()
    w = trainer.train_stage(c, stage, workdir, init() if callable(init) else init)
    _write_json(_wall_path(workdir), time.perf_counter() - t)
    return w


def _wall_path(workdir: str) -> str:
    """A finished stage's wall time; its presence marks the stage done."""
    return os.path.join(workdir, "wall_s.json")


def base_dir(cfg, seed: int) -> str:
    return os.path.join(seed_dir(cfg, seed), "base")


def build_base(cfg, seed: int) -> dict:
    """The seed's base tracker, trained once and then read from the cache."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    d = seed_dir(cfg, seed)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:  # for people browsing the cache
        json.dump({"seed": seed, "config": _deciding(c)}, f, indent=1, default=str)
    return _timed_stage(c, "base", base_dir(cfg, seed), lambda: _initial(c, seed))


def _row_stage(cfg, seed: int, row: str):
    """(config, stage, work dir) of the training a row needs on its seed's base, or None for
    rows that track with the base itself."""
    c = cfg.copy_and_resolve_references()
    c.train.seed = seed
    trained = trained_from(row)
    if row in BASE_ROWS or trained in BASE_ROWS:
        return None
    if row == "RT":
        rc, stage = rt_config(c), "base"
        key = stage_key(rc)
    else:
        rc, stage = row_config(c, trained or row), "clnet"
        key = _hash([stage_key(rc), ROW_REVISION]) if ROW_REVISION else stage_key(rc)
    return rc, stage, os.path.join(seed_dir(cfg, seed), "rows", f"{trained or row}-{key}")


def row_weights(cfg, seed: int, row: str, base: dict) -> dict:
    """A row's tracker weights (trained on the seed's base, cached by the row's config)."""
    job = _row_stage(cfg, seed, row)
    return base if job is None else _timed_stage(*job, base)


def row_training_s(cfg, seed: int, row: str) -> float:
    """Wall time of a row's own training on one seed (0 for rows without, or that track with
    another row's weights, e.g. DM_official; NaN if unknown)."""
    job = _row_stage(cfg, seed, row)
    if job is None or (trained_from(row) or row) != row:
        return 0.0
    p = _wall_path(job[2])
    return _read_json(p) if os.path.isfile(p) else float("nan")


# Bumped when the evaluator gives other boxes for the same config, so that evaluations
# cached before are redone. 2: crops bit-exact under jit + vmap (crop.quotient_f32); before,
# ~4 % of the batched evaluator's resize weights were one step (1/2048) off. 3: depthwise
# xcorr as a shifted sum on CPUs (xcorr.xcorr_shift_sum; outputs equal to ~1e-6). 4: diverse
# mining ranks by the logit margin (no float32 ties; clnet.mine_negatives).
EVALUATOR_REVISION = 4
# Bumped when the CLNet stage trains differently for the same config (the cache cannot see
# code changes), so that CLNet-stage rows retrain. 1: mining by the logit margin in training.
ROW_REVISION = 1


def eval_path(cfg, seed: int, row: str, split: str) -> str:
    d = _deciding(tracking_config(cfg, row))
    if row in BASE_ROWS:
        # a CLNet-stage setting (a variant sweep) leaves their boxes, hence their cached
        # evaluations, as they are
        d["train"] = _without_clnet_stage(d["train"])
        if row == "BT":
            d.pop("clnet", None)
    key = _hash([_hash(d), split, cfg.ablation.eval_batch, EVALUATOR_REVISION])
    return os.path.join(seed_dir(cfg, seed), "eval", f"{row}-{split}-{key}.json")


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


def evaluate(cfg, row: str, weights: dict, seqs: list, cost: bool = True) -> dict:
    """One row on one split: boxes of every sequence (batched tracker) and, with ``cost``,
    the first-frame cost in tracking frames (NaN without)."""
    c = tracking_config(cfg, row)
    params = jax.tree.map(jax.numpy.asarray, weights)
    if c.clnet.variant in ("none", "sgd_finetune"):
        params = {k: v for k, v in params.items() if k != "clnet"}
    t = time.perf_counter()
    out = runner.BatchTracker(c, params, min(cfg.ablation.eval_batch, len(seqs))).run(seqs)
    bad = {k: v for k, v in out.items() if isinstance(v, str)}
    if bad:
        raise RuntimeError(f"{row}: sequences failed: {bad}")
    wall = time.perf_counter() - t
    init_ms, init_frames = init_cost(c, params, seqs[0]) if cost else (np.nan, np.nan)
    return {"boxes": {k: v[0].tolist() for k, v in out.items()}, "wall_s": wall,
            "init_ms": init_ms, "init_frames": init_frames}


def eval_sources(cfg) -> dict:
    """The configured dataset's splits as TFDS data sources (prepared on first use)."""
    d = cfg.data
    src = builders.prepare(d.dataset, d.data_dir, d.manual_dir or None,
                           d.builder_config if d.dataset == "synthetic" else None)
    return src.as_data_source()


def load_splits(cfg, quick: bool) -> dict:
    sources = eval_sources(cfg)
    out = {}
    for split in cfg.ablation.eval_splits:
        if split not in sources:
            continue  # e.g. no transfer split in the look-alike generator
        seqs = eval_data.from_source(sources[split])
        out[split] = seqs[:3] if quick else seqs
    return out


def run(cfg, quick: bool = False, partial: bool = False, rows: list[str] | None = None,
        bases_only: bool = False) -> dict | None:
    """Builds the bases, trains and evaluates the rows (everything cached is reused) and
    writes the report from every row evaluated for every seed."""
    from tqdm import tqdm
    a = cfg.ablation
    seeds = list(a.seeds)[:1] if quick else list(a.seeds)
    todo = list(rows or a.rows)
    for r in todo:
        check_row(r)
    if any((readapt_of(r) or r) == "sgd_tuned" for r in todo) and not a.get("sgd_tuned_lr"):
        sys.exit("error: row sgd_tuned needs ablation.sgd_tuned_lr, the step size chosen on "
                 "the validation split: python -m clnet_jax.experiments.tune --config "
                 "configs/ablation.py --what sgd_lr")
    if bases_only and not partial:  # no evaluation data needed
        splits = {}
    else:
        splits = load_splits(cfg, quick)
    if not partial:
        jobs = [(s, None) for s in seeds] if bases_only else [(s, r) for s in seeds for r in todo]
        pending = [j for j in jobs if not _done(cfg, *j, splits)]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), unit="job",
                   desc="bases" if bases_only else "rows", position=0)
        bases = {}
        for seed, row in pending:
            bar.set_postfix_str(f"seed {seed}" + (f" {row}" if row else " base"))
            if seed not in bases:
                bases = {seed: build_base(cfg, seed)}  # one seed's base in memory at a time
            if row is not None:
                weights = row_weights(cfg, seed, row, bases[seed])
                for i, (split, seqs) in enumerate(splits.items()):
                    path = eval_path(cfg, seed, row, split)
                    if not os.path.isfile(path):
                        _write_json(path, evaluate(cfg, row, weights, seqs, cost=i == 0))
            bar.update(1)
        bar.close()
        if bases_only:
            walls = [_read_json(_wall_path(base_dir(cfg, s))) for s in seeds]
            print(f"bases of seeds {seeds}: {', '.join(f'{w / 60:.1f}' for w in walls)} min "
                  f"(in {cfg.ablation.bases_dir})")
            return None
    results = collect(cfg, seeds, list(a.rows) + [r for r in todo if r not in a.rows], splits)
    if not results["test"]:
        sys.exit("error: no row has been evaluated for every seed yet")
    from clnet_jax.experiments import report
    return report.write(cfg, results, splits, PAPER)


def _done(cfg, seed, row, splits) -> bool:
    if row is None:
        return os.path.isfile(_wall_path(base_dir(cfg, seed)))
    return all(os.path.isfile(eval_path(cfg, seed, row, s)) for s in splits)


def collect(cfg, seeds: list[int], rows: list[str], splits: dict) -> dict:
    """{split: {seed: {row: result}}} over the seeds that have evaluated anything and the
    rows that all of those seeds have evaluated (a partial report when seeds are missing),
    plus 'seeds', 'rows' and the base wall times."""
    out = {}
    done_seeds = [s for s in seeds if any(os.path.isfile(eval_path(cfg, s, r, sp))
                                          for r in rows for sp in splits)]
    have_rows = [r for r in rows if all(os.path.isfile(eval_path(cfg, s, r, sp))
                                        for s in done_seeds for sp in splits)]
    for sp in splits:
        out[sp] = {s: {r: _read_json(eval_path(cfg, s, r, sp)) for r in have_rows}
                   for s in done_seeds} if have_rows else {}
    out["rows"], out["seeds"] = have_rows, done_seeds
    out["row_train_s"] = {r: [row_training_s(cfg, s, r) for s in done_seeds] for r in have_rows}
    out["base_wall_s"] = {}
    for s in done_seeds:
        p = _wall_path(base_dir(cfg, s))
        if os.path.isfile(p):
            out["base_wall_s"][s] = _read_json(p)
    return out


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def quick_paths(cfg, overrides: dict) -> None:
    """--quick never touches the real bases or report: its own directories unless they are
    given explicitly."""
    if "ablation.bases_dir" not in overrides:
        cfg.ablation.bases_dir = cfg.ablation.bases_dir.rstrip("/") + "_quick"
    if "ablation.report_dir" not in overrides:
        cfg.ablation.report_dir = os.path.join(cfg.ablation.bases_dir, "report")


def compilation_cache_dir(cfg, quick: bool) -> str | None:
    """Where XLA's compiled programs are kept between runs (JAX's persistent compilation
    cache), or None. Every seed of a row runs the same programs (weights are arguments, not
    constants), so with the cache only the first seed compiles: on this 2-core CPU a cold
    evaluation of 24 test sequences took 35.6 s and a cached one 16.5 s, and the first-frame
    cost probe 12.5 s vs 1.9 s. Off in --quick runs (plumbing in tests: no global state)."""
    if quick or not cfg.ablation.get("compilation_cache", False):
        return None
    return os.path.abspath(os.path.join(cfg.ablation.bases_dir, "xla_cache"))


def joined_options(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``--opt VALUE`` -> ``--opt=VALUE`` for the given options (both forms are accepted)."""
    for opt in options:
        if opt in argv:
            i = argv.index(opt)
            if i + 1 == len(argv):
                sys.exit(f"error: {opt} needs a value")
            argv = argv[:i] + [f"{opt}={argv[i + 1]}"] + argv[i + 2:]
    return argv


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--help" in argv or "-h" in argv:
        print(__doc__.replace("python -m clnet_jax.experiments.ablation", "clnet-ablation"))
        return
    flags = {"--quick", "--report_partial", "--bases"}
    quick, partial, bases = ("--quick" in argv, "--report_partial" in argv, "--bases" in argv)
    argv = [x for x in argv if x not in flags]
    path, overrides, rows = "configs/ablation.py", {}, None
    argv = joined_options(argv, ("--config", "--rows"))
    for arg in argv:
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg.startswith("--rows="):
            rows = [r for r in arg.split("=", 1)[1].split(",") if r]
        elif arg.startswith("--config."):
            k, v = arg[len("--config."):].split("=", 1)
            overrides[k] = json.loads(v) if v[:1] in "[{0123456789-" or v in ("true", "false") else v
        else:
            sys.exit(f"error: unknown argument {arg!r}")
    cfg = config_lib.from_file(path, overrides)
    if quick:  # plumbing only: every row for a few steps
        quick_paths(cfg, overrides)
        t = cfg.train
        t.epochs, t.warmup_epochs, t.steps_per_epoch, t.clnet_epochs = 1, 0, 2, 1
        t.groups_per_batch, t.clnet_pairs_per_group = 2, 2
        t.checkpoint_every, t.log_every = 2, 1
        cfg.data.builder_config = "scenes_tiny" if cfg.data.builder_config.startswith(
            "scenes") else "tiny"
    cache = compilation_cache_dir(cfg, quick)
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
    run(cfg, quick, partial, rows, bases)


if __name__ == "__main__":
    main()
