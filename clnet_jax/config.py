"""Default configuration shared by the files in ``configs/`` (each returns a ConfigDict)."""
from __future__ import annotations

import json
import os

import ml_collections

# The configs shipped inside the package (a clone's ``configs/`` links here), so that an
# installed command finds ``--config demo`` or ``--config configs/demo.py`` from any folder.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def shipped_configs() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def _split_arg(path: str) -> tuple[str, str | None]:
    """``real.py:mixed`` -> (``real.py``, ``mixed``): a config argument, passed to
    ``get_config`` (big_vision's and ml_collections' convention)."""
    if os.path.isfile(path) or ":" not in os.path.basename(path):
        return path, None
    base, arg = path.rsplit(":", 1)
    return base, arg


def resolve_path(path: str) -> str:
    """A config file's path: ``path`` itself where it exists, else the shipped config of that
    name (``demo``, ``demo.py`` or ``configs/demo.py``); a clear error naming them otherwise.
    A config argument (``real:mixed``) is kept after the resolved path."""
    path, arg = _split_arg(path)
    if arg is not None:
        return f"{resolve_path(path)}:{arg}"
    if os.path.isfile(path):
        return path
    name = os.path.basename(path)
    shipped = os.path.join(CONFIG_DIR, name if name.endswith(".py") else name + ".py")
    if os.path.dirname(path) in ("", "configs") and os.path.isfile(shipped):
        return shipped
    raise FileNotFoundError(f"config {path!r} not found; give a path to a config file or one "
                            f"of the shipped names: {', '.join(shipped_configs())}")


STAGE_KEYS = ("epochs", "groups_per_batch", "pairs_per_group", "lr", "warmup_start_lr",
              "warmup_epochs", "lr_end")


def stage_config(epochs: int, groups_per_batch: int, pairs_per_group: int, lr: float = 0.005,
                 warmup_start_lr: float = 0.001, warmup_epochs: int = 5,
                 lr_end: float = 0.0005) -> ml_collections.ConfigDict:
    """A training stage's schedule and batch (``train.base``, ``train.clnet``)."""
    return ml_collections.ConfigDict(dict(
        epochs=epochs, groups_per_batch=groups_per_batch, pairs_per_group=pairs_per_group,
        lr=lr, warmup_start_lr=warmup_start_lr, warmup_epochs=warmup_epochs, lr_end=lr_end))


def base_config() -> ml_collections.ConfigDict:
    """SiamRPN++ r50-l234 with the upstream tracking constants (no retuning)."""
    c = ml_collections.ConfigDict()
    c.name = "siamrpn_r50"
    # sequences are tuples: the command line overrides tuples (--config.train.stages=
    # "('base', 'clnet')"), not lists; a list assigned in a config file becomes a tuple
    c.model = ml_collections.ConfigDict(dict(
        width=64, blocks=(3, 4, 6, 3), used_layers=(2, 3, 4), neck_channels=256, hidden=256))
    c.anchor = ml_collections.ConfigDict(dict(
        stride=8, ratios=(0.33, 0.5, 1, 2, 3), scales=(8,)))
    c.track = ml_collections.ConfigDict(dict(
        exemplar_size=127, instance_size=255, base_size=8, context_amount=0.5,
        penalty_k=0.05, window_influence=0.42, lr=0.38,
        compute_dtype="float32",  # 'bfloat16': convolutions in bf16 (GPU speed path);
        # 'float64': all in float64 for exactness work (needs JAX_ENABLE_X64=1)
        # winograd: 3x3 stride-1 convolutions as Winograd F(2x2,3x3) with kernels
        # transformed once at load ('auto': on a CPU backend, where it is faster per conv;
        # docs/benchmarks.md)
        # winograd_tile: output tile m of F(m×m, 3×3): '2' (error ~1e-6 relative), '4' (4×
        # fewer multiplications than a direct conv, error ~1e-5 relative), or 'auto': 4 for
        # the convolutions of >= 512 input channels, where it is the faster on a CPU, 2 for
        # the narrower ones, where F(2×2) is (model/winograd.py: tile_for)
        winograd="auto", winograd_tile="auto",
        # readapt: re-run the variant's adaptation from theta_0 on the first frame's samples
        # together with a later frame's, when its score reaches readapt_score, at most every
        # readapt_every frames (off by default; the paper adapts once)
        readapt=False, readapt_score=0.95, readapt_every=10))
    # CLNet (weight generation on the first frame); 'none' is the plain SiamRPN++ tracker.
    # encoder_bn: how g_a's BN normalises at the first-frame adaptation. 'batch' (default,
    # the official tracker: statistics of the first crop's 25x25 hidden map) or 'running'
    # (the stored running statistics; a research option, not the upstream behaviour).
    c.clnet = ml_collections.ConfigDict(dict(
        variant="none", label_sampler="jax", label_layout="corrected", encoder_bn="batch",
        encoder_channels_cls=128, encoder_channels_loc=256, decoder_hidden=256,
        mining_negatives=16, sgd_steps=5, sgd_lr=0.01, seed=233,
        # meta-learned gradient variants (meta_sgd, maml, clnet_sgd; clnet_jax/adapt/meta.py):
        # K inner steps, first-order (FOMAML) or second-order meta-gradients, the inner loss
        # ('rpn': cls + 1.2 loc; 'cls') and what adapts ('head': theta_1 and fusion weights;
        # 'theta1': theta_1 only)
        meta_steps=1, meta_first_order=False, meta_inner_loss="rpn", meta_adapt="head",
        # how the CLNet stage trains the generator: train_theta0 lets the loss reach theta_0
        # (default: detached); train_fusion also trains the base fusion weights (research
        # option: the official code freezes them and learns only their per-video change);
        # support_pairs: pairs of a group the adaptation sees, the loss scored on the others
        # (0: all pairs both ways, the official recipe; -1: the variant's default, 1 for the
        # meta-learned variants)
        train_theta0=False, train_fusion=False, support_pairs=-1))
    # Training reads frame-level stores (clnet_jax/data/frames.py), prepared on first use
    # with prepare_workers processes (0: all cores). storage: 'crop511' (pysot's pre-crops,
    # default for real datasets) or 'full' (default for synthetic). workers: grain worker
    # processes for decoding and augmentation (0: in-process threads only). mixture:
    # name -> {samples: groups per mixture epoch, manual_dir[, split][, dataset]} (dataset:
    # what the folder holds, default the entry's name; 'auto' detects a benchmark layout);
    # empty = data.dir, else data.dataset. dir: comma-separated folders of annotated videos,
    # each in any benchmark layout (clnet_jax/data/benchmarks.py), one store per folder,
    # each track once per epoch. holdout: videos of data.dir (comma-separated names) held
    # back from training and
    # evaluated after it (train.eval_after); where none is present, every holdout_every-th
    # video in name order (0: none).
    c.data = ml_collections.ConfigDict(dict(
        dataset="synthetic", builder_config="default", data_dir="data_cache/tfds",
        manual_dir="", frame_range=100, neg_prob=0.2, template_shift=4, template_scale=0.05,
        search_shift=64, search_scale=0.18, colour=1.0, blur=0.2, threads=2,
        storage="", workers=0, prepare_workers=0, mixture=ml_collections.ConfigDict(),
        dir="", holdout="", holdout_every=0))
    # Training, shared by both stages. pysot's build_opt_lr: the backbone is frozen (BN in
    # inference mode) until backbone_train_epoch of the base stage, then
    # backbone_train_layers train at lr * backbone_lr_mult with BN on batch statistics;
    # until then the backbone takes no update (no weight decay), and at the switch every
    # momentum buffer restarts, as pysot builds a new optimiser there.
    # bn_sync: 'global' (BN over the whole batch, all devices) or 'per_device' (pysot's
    # per-GPU BN). pretrained_backbone: a backbone checkpoint written by
    # `clnet-convert resnet50.model DIR` (ImageNet start, as upstream).
    # compute_dtype 'bfloat16': convolutions in bf16; parameters, optimiser state, BN
    # statistics, heads and losses stay float32. winograd: the 3x3 float32 convolutions
    # (backbone and heads) of at least winograd_min_channels input channels as matrix
    # products, differentiated through: Winograd products at stride 1, products of strided
    # slices otherwise ('auto': on a CPU backend, where they are faster than XLA's
    # convolution for r50's convolutions from 256 channels on; model/conv.py).
    # winograd_tile: their Winograd output tile: '2' (F(2×2, 3×3), error ~1e-6 relative),
    # '4' (F(4×4, 3×3), ~2e-5), or 'auto': F(4×4) from 256 input channels where each dilation
    # sub-grid's output side is at least 8 (r50's search crops from layer3 on, the heads'
    # search maps), where it is the faster in training on a CPU, else F(2×2)
    # (model/winograd.py: train_tile_for).
    # optimizer: 'sgd' (upstream: momentum SGD with L2 weight decay) or 'adamw' (for models
    # trained from scratch).
    c.train = ml_collections.ConfigDict(dict(
        stages=("base",), init_checkpoint="", seed=0, steps_per_epoch=1000,
        optimizer="sgd", momentum=0.9, weight_decay=1e-4, grad_clip=10.0, loc_weight=1.2,
        backbone_train_epoch=10, backbone_lr_mult=0.1,
        backbone_train_layers=("layer2", "layer3", "layer4"), bn_sync="global",
        pretrained_backbone="", compute_dtype="float32", diverse_mining=True,
        winograd="auto", winograd_min_channels=256, winograd_tile="auto",
        checkpoint_every=500, keep_checkpoints=3, log_every=10,
        eval_after=False, eval_split="test",
        # eval_batch: sequences of one frame size tracked at once by eval_after (vmap of the
        # same tracker, track/runner.py: BatchTracker); 1 tracks them one by one
        eval_batch=1,
        # One sub-config per stage, one schema (STAGE_KEYS). The upstream schedule: warm-up
        # from warmup_start_lr to lr over warmup_epochs, then log decay to lr_end. The CLNet
        # stage draws its groups as the paper does: pairs_per_group pairs of one sequence.
        base=stage_config(epochs=20, groups_per_batch=16, pairs_per_group=1),
        clnet=stage_config(epochs=20, groups_per_batch=16, pairs_per_group=16)))
    return c


# Every option with a fixed set of values, and the numeric ranges: checked once, at load.
CHOICES = {
    "track.compute_dtype": ("float32", "bfloat16", "float64"),
    "track.winograd": ("auto", "on", "off"),
    "track.winograd_tile": ("2", "4", "auto"),
    "clnet.label_sampler": ("jax", "official_numpy"),
    "clnet.label_layout": ("corrected", "official"),
    "clnet.encoder_bn": ("batch", "running"),
    "clnet.meta_inner_loss": ("rpn", "cls"),
    "clnet.meta_adapt": ("head", "theta1"),
    "data.storage": ("", "crop511", "full"),
    "train.optimizer": ("sgd", "adamw"),
    "train.bn_sync": ("global", "per_device"),
    "train.compute_dtype": ("float32", "bfloat16"),
    "train.winograd": ("auto", "on", "off"),
    "train.winograd_tile": ("2", "4", "auto"),
}
AT_LEAST = {"track.readapt_every": 1, "clnet.meta_steps": 0, "clnet.mining_negatives": 0,
            "clnet.support_pairs": -1, "train.steps_per_epoch": 1, "train.eval_batch": 1,
            "train.winograd_min_channels": 1,
            "data.workers": 0, "data.prepare_workers": 0, "data.holdout_every": 0,
            **{f"train.{st}.{k}": low for st in ("base", "clnet")
               for k, low in (("epochs", 1), ("groups_per_batch", 1), ("pairs_per_group", 1),
                              ("warmup_epochs", 0))}}
STAGES = ("base", "clnet")


def _dotted(cfg, key):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def validate(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks every enumerated option and numeric range of ``cfg`` once, at load, with
    messages that name the valid values; returns ``cfg``. Weight-generation variant names
    are checked by their registry (:func:`clnet_jax.adapt.variants.get_variant`), which
    extensions add to."""
    problems = []
    for key, valid in CHOICES.items():
        v = _dotted(cfg, key)
        if v is not _MISSING and v not in valid:
            shown = ", ".join(repr(x) if x == "" else str(x) for x in valid)
            problems.append(f"{key}={v!r}: choose one of {shown}")
    for key, low in AT_LEAST.items():
        v = _dotted(cfg, key)
        if v is not _MISSING and not (isinstance(v, (int, float)) and v >= low):
            problems.append(f"{key}={v!r}: must be a number >= {low}")
    stages = _dotted(cfg, "train.stages")
    if stages is not _MISSING and (not stages or any(s not in STAGES for s in stages)):
        problems.append(f"train.stages={list(stages)!r}: a non-empty list of {', '.join(STAGES)}")
    for st in STAGES:
        sc = _dotted(cfg, f"train.{st}")
        if isinstance(sc, ml_collections.ConfigDict):
            if set(sc.keys()) != set(STAGE_KEYS):
                problems.append(f"train.{st}: keys {sorted(sc.keys())}, expected {list(STAGE_KEYS)}")
            elif sc.warmup_epochs > sc.epochs:
                problems.append(f"train.{st}.warmup_epochs={sc.warmup_epochs} exceeds "
                                f"train.{st}.epochs={sc.epochs}")
    if (_dotted(cfg, "track.compute_dtype") == "float64"
            and _dotted(cfg, "track.winograd") == "on"):
        problems.append("track.winograd='on' with track.compute_dtype='float64': the Winograd "
                        "path is a float32 speed path; use 'auto' or 'off'")
    if problems:
        raise ValueError(f"config {cfg.get('name', '')!r}: " + "; ".join(problems))
    return cfg


# What a stage's training does not depend on: the config's name and testbed settings, where
# inputs are read from (paths), how often it logs and checkpoints, what runs after it, how
# many processes load data, and the constants that act at tracking time only.
NOT_DECIDING = {"name": None, "ablation": None,
                "train": ("init_checkpoint", "pretrained_backbone", "log_every",
                          "checkpoint_every", "keep_checkpoints", "eval_after", "eval_split",
                          "eval_batch", "stages",
                          # how convolutions are computed (the same sums to float32 rounding), as workers
                          "winograd", "winograd_min_channels", "winograd_tile"),
                "data": ("data_dir", "manual_dir", "workers", "threads", "prepare_workers")}
# The tracking constants that training reads: crop sizes and context (crops, anchor targets).
TRAINING_TRACK_KEYS = ("exemplar_size", "instance_size", "base_size", "context_amount")


def run_settings(cfg: ml_collections.ConfigDict, stage: str) -> dict:
    """What decides a stage's training run, as flat dotted keys: resuming a checkpoint or
    reusing a cached run under other values would silently mix two runs. The base stage
    does not read the ``clnet`` section, ``train.clnet`` or diverse mining; the CLNet stage
    reads everything, the base's settings included (they decide the weights it starts
    from)."""
    d = cfg.to_dict()
    d["track"] = {k: v for k, v in d["track"].items() if k in TRAINING_TRACK_KEYS}
    if stage == "base":
        d.pop("clnet", None)
        d["train"] = {k: v for k, v in d["train"].items() if k not in ("clnet", "diverse_mining")}
    flat = {}
    for section, values in d.items():
        drop = NOT_DECIDING.get(section, ())
        if drop is None:
            continue
        if not isinstance(values, dict):
            flat[section] = values
            continue
        for k, v in values.items():
            if k in drop:
                continue
            if isinstance(v, dict) and section == "train":  # the stage sub-configs
                flat.update({f"train.{k}.{kk}": vv for kk, vv in v.items()})
            else:
                flat[f"{section}.{k}"] = v
    return json.loads(json.dumps(flat, default=str))


def tiny_model(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The golden tiny architecture of tests/golden (same code path, smaller numbers)."""
    c.model.width = 8
    c.model.blocks = [2, 2, 2, 2]
    c.model.neck_channels = 32
    c.model.hidden = 32
    return c


def miniature_crops(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Crops for the miniature testbed: 79/175 instead of 127/255 (2.1x fewer pixels per
    training pair and tracked frame). The synthetic targets are ~20 px in their frames, so
    the upstream crops only upsample them further; what changes is the anchor grid's
    stride in frame pixels (~w/5 instead of ~w/8). Kept consistent with the model's neck
    rule (maps narrower than 20 keep their centre 7): the template's 9x9 map is cut to 7x7,
    the search's 21x21 map is not, so the score map is 15x15 (base_size 2 in pysot's
    formula; odd, see score_size). Anchors shrink with the template (40 px instead of 64:
    scale 5), and the training shifts with the search crop."""
    c.track.exemplar_size, c.track.instance_size, c.track.base_size = 79, 175, 2
    c.anchor.scales = [5]
    c.data.search_shift, c.data.template_shift = 44, 2
    return c


def score_size(c: ml_collections.ConfigDict) -> int:
    """Side of the score map (pysot's formula). Anchors sit at offsets -(S//2)..: only an odd
    S puts the middle anchor on the crop's centre (an even one shifts every anchor by half
    a stride against what its cell sees), so an even S is refused."""
    t = c.track
    s = (t.instance_size - t.exemplar_size) // c.anchor.stride + 1 + t.base_size
    if s % 2 == 0:
        raise ValueError(f"score map side {s} (instance_size {t.instance_size}, exemplar_size "
                         f"{t.exemplar_size}, base_size {t.base_size}) is even: anchors would "
                         "be off the crop centre by half a stride; choose sizes giving an odd side")
    return s


def arch_from_config(c: ml_collections.ConfigDict) -> dict:
    """The architecture a checkpoint records (``arch.json``): the fields of ``cfg.model``."""
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in c.model.items()}


def check_arch(c: ml_collections.ConfigDict, arch: dict, where: str) -> None:
    """A checkpoint whose architecture differs from the config is a clear error."""
    want = arch_from_config(c)
    diff = {k: (want[k], arch.get(k)) for k in want if want[k] != arch.get(k)}
    if diff:
        raise ValueError(f"{where}: architecture does not match the config "
                         + ", ".join(f"{k}: config {a} vs checkpoint {b}" for k, (a, b) in diff.items()))


def from_file(path: str, overrides: dict | None = None) -> ml_collections.ConfigDict:
    """Loads ``configs/<name>.py`` (its ``get_config()``) and applies dotted overrides."""
    import importlib.util
    path, arg = _split_arg(resolve_path(path))
    spec = importlib.util.spec_from_file_location("_clnet_config", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: not a Python config file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config() if arg is None else mod.get_config(arg)
    for key, value in (overrides or {}).items():
        set_dotted(cfg, key, value)
    return validate(cfg)


def _parent(cfg: ml_collections.ConfigDict, key: str):
    """(ConfigDict holding the last part of a dotted key, that part); KeyError naming the
    valid keys where the path leaves the config."""
    node = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            where = ".".join(parts[:i]) or "the config"
            valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise KeyError(f"unknown config key '{key}': {where} has no '{part}'; "
                           "valid keys there: " + ", ".join(valid))
        if i < len(parts) - 1:
            node = node[part]
    return node, parts[-1]


def set_dotted(cfg: ml_collections.ConfigDict, key: str, value) -> None:
    """cfg['a.b'] = value, refusing keys that do not exist (with the valid names)."""
    node, last = _parent(cfg, key)
    node[last] = value


def training_mixture(samples: dict[str, int], root: str = "/data") -> ml_collections.ConfigDict:
    """``data.mixture`` for the named datasets (samples per mixture epoch; -1 = one per
    track, upstream's "use all once"), each read from ``<root>/<folder>``; point the
    folders elsewhere with ``--config.data.mixture.<name>.manual_dir``."""
    folders = {"imagenet_vid": "ILSVRC2015", "imagenet_det": "ILSVRC2015",
               "youtube_bb": "youtube_bb", "coco": "coco", "got10k": "GOT-10k",
               "lasot": "LaSOT"}
    return ml_collections.ConfigDict({
        name: dict(samples=n, manual_dir=f"{root}/{folders[name]}",
                   split="train2017" if name == "coco" else "train")
        for name, n in samples.items()})

