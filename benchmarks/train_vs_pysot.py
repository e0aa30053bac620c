"""Training speed against pysot: the r50 base stage's step, same weights, same batch.

Needs what the project does not: PyTorch and pysot's sources (as ``benchmarks/vs_pysot.py``)::

    python benchmarks/train_vs_pysot.py --pysot /tmp/pysot [--pairs 8] [--rounds 3]

One batch of ``--pairs`` template/search crops is drawn from one store (the tiny synthetic
store, prepared on first use, cropped at r50 sizes by the input pipeline) with its anchor
targets; seeded random r50 weights are written once and converted. Then, per round and per
phase (epoch 0: the backbone frozen with its BN in inference mode; epoch 10: layer2-4 train
with BN on batch statistics, pysot's ``build_opt_lr``), pysot's step (``ModelBuilder``
forward, backward, gradient clipping, momentum SGD) and ours (``train.step.TrainStep``) each
run ``--steps`` timed steps after ``--warmup`` untimed ones, each in its own process, one
after the other, so that machine drift hits both alike. Both sides first compute the loss
of the same weights on the same targets: the sanity check that they do the same work.

``--winograd`` (comma-separated ``train.winograd`` values, each optionally with a
``train.winograd_tile`` after a colon) runs our side once per value in each round: 'auto'
(the default: Winograd products for r50's wide 3×3 convolutions on a CPU, the config's tile),
'auto:2' (F(2×2, 3×3) for all of them) and 'off' (XLA's convolutions) show what each path
gives in the same run.

On a GPU (``--device cuda``): pysot in TF32 (its default) or AMP (``--amp``), ours in float32
or bfloat16 (``--dtype``), both synchronised before a clock is read. Prints a table and
writes JSON: pairs/s per side and round, the median ratio and its spread per phase.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.args import at_least  # noqa: E402

PHASES = {"epoch0": 0, "epoch10": 10}


def make_batch(path: str, pairs: int, data_dir: str) -> None:
    """``pairs`` groups of one pair from the tiny synthetic store, with anchor targets."""
    import jax

    from clnet_jax import config as config_lib
    from clnet_jax.data import pipeline
    from clnet_jax.data import prepare as prep
    from clnet_jax.model import targets as targets_lib
    cfg = config_lib.from_file("siamrpn_r50", {"data.data_dir": data_dir})
    store = prep.open_store("synthetic", data_dir, builder_config="tiny")
    batch = next(pipeline.make_iterator([store], cfg, 0, pairs, 1))
    batch.pop("skipped")
    anchors = np.asarray(targets_lib.crop_anchors(cfg))
    keys = jax.random.split(jax.random.key(0), pairs)
    tg = [targets_lib.anchor_targets(k, anchors, b[0], n[0], cfg.anchor.stride,
                                     cfg.track.instance_size)
          for k, b, n in zip(keys, batch["box"], batch["negative"])]
    np.savez(path, **batch, label_cls=np.stack([np.asarray(t.labels) for t in tg]),
             label_loc=np.stack([np.asarray(t.loc) for t in tg]),
             label_loc_weight=np.stack([np.asarray(t.loc_weight) for t in tg]))


def _pysot(path: str, cuda: bool):
    """pysot's config (r50-l234, loaded by :func:`benchmarks.vs_pysot._pysot`) and
    ``ModelBuilder``."""
    from benchmarks.vs_pysot import _pysot as load
    model_builder, _ = load(path, cuda)
    from pysot.core.config import cfg
    return cfg, model_builder


def pysot_optimizer(model, cfg, epoch: int):
    """pysot's ``build_opt_lr``: the backbone frozen (BN in inference mode) before
    ``BACKBONE.TRAIN_EPOCH``; from it, ``TRAIN_LAYERS`` train at ``LAYERS_LR`` × the rate with
    BN on batch statistics; neck and head always; momentum SGD with weight decay."""
    import torch
    for p in model.backbone.parameters():
        p.requires_grad = False
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    if epoch >= cfg.BACKBONE.TRAIN_EPOCH:
        for layer in cfg.BACKBONE.TRAIN_LAYERS:
            for p in getattr(model.backbone, layer).parameters():
                p.requires_grad = True
            for m in getattr(model.backbone, layer).modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
    groups = [{"params": [p for p in model.backbone.parameters() if p.requires_grad],
               "lr": cfg.BACKBONE.LAYERS_LR * cfg.TRAIN.BASE_LR},
              {"params": model.neck.parameters(), "lr": cfg.TRAIN.BASE_LR},
              {"params": model.rpn_head.parameters(), "lr": cfg.TRAIN.BASE_LR}]
    return torch.optim.SGD(groups, momentum=cfg.TRAIN.MOMENTUM,
                           weight_decay=cfg.TRAIN.WEIGHT_DECAY)


def torch_batch(batch: dict, dev: str = "cpu", dtype=None) -> dict:
    """The batch as pysot's ``ModelBuilder`` takes it: NCHW crops, labels, in ``dtype``
    (default float32) on ``dev``."""
    import torch
    dtype = dtype or torch.float32
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a[:, 0].transpose(0, 3, 1, 2)))
    return {"template": nchw(batch["template"]).to(dev, dtype),
            "search": nchw(batch["search"]).to(dev, dtype),
            "label_cls": torch.from_numpy(batch["label_cls"]).long().to(dev),
            "label_loc": torch.from_numpy(batch["label_loc"]).to(dev, dtype),
            "label_loc_weight": torch.from_numpy(batch["label_loc_weight"]).to(dev, dtype)}


def pysot_step(args, batch: dict, epoch: int):
    """pysot's training step on ``batch`` at ``epoch`` (``step()``, then ``sync()`` before a
    clock is read), the loss of the weights before any step and ``forward()``, that loss
    alone (its graph built, as in a step)."""
    import torch
    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    cfg, model_builder = _pysot(args.pysot, cuda)
    model = model_builder()
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    dev = "cuda" if cuda else "cpu"
    model = model.to(dev).train()
    opt = pysot_optimizer(model, cfg, epoch)
    data = torch_batch(batch, dev)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def forward():
        with torch.autocast(dev, enabled=args.amp):
            return model(data)["total_loss"]

    first = float(forward())  # the same weights' loss, before any step

    def step():
        with torch.autocast(dev, enabled=args.amp):
            loss = model(data)["total_loss"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.TRAIN.GRAD_CLIP)
        opt.step()
        return loss

    return step, sync, first, forward


def timed(fn, sync, warmup: int, steps: int) -> float:
    """Seconds per call of ``fn`` over ``steps`` calls after ``warmup`` untimed ones,
    ``sync()`` before each clock is read (both sides' timing loop)."""
    for _ in range(warmup):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t) / steps


def ours_stepper(program, state, data):
    """``step()`` running ``program`` once on the state it holds, ``sync()`` waiting for the
    last result, and the holder (``box['state']``: the state after the last step)."""
    import jax
    box = {"state": state, "aux": None}

    def step():
        box["state"], box["aux"] = program(box["state"], data)

    return step, lambda: jax.block_until_ready(box["aux"]), box


def run_pysot(args, batch: dict, epoch: int) -> dict:
    step, sync, first, _ = pysot_step(args, batch, epoch)
    step_s = timed(step, sync, args.warmup, args.steps)
    return {"first_loss": first, "pairs_per_s": args.pairs / step_s}


def ours_loss(args, batch: dict, epoch: int, dtype: str, winograd: str):
    """(config, weights, ``loss(trainable)``, trainable): our base-stage loss, jitted, on the
    converted weights and the batch, in the phase of ``epoch``. ``dtype``: the compute
    dtype; 'float64' casts the weights and targets too (call it under ``jax.enable_x64``)."""
    import jax

    from clnet_jax import config as config_lib
    from clnet_jax.io import convert, pth
    from clnet_jax.model import siamrpn as model_lib
    from clnet_jax.model import targets as targets_lib
    from clnet_jax.train import step as ts
    mode, _, tile = winograd.partition(":")  # 'auto' or 'auto:2'
    overrides = {"train.base.groups_per_batch": args.pairs, "train.base.pairs_per_group": 1,
                 "train.winograd": mode, **({"train.winograd_tile": tile} if tile else {})}
    if dtype != "float64":
        overrides["train.compute_dtype"] = dtype
    cfg = config_lib.from_file("siamrpn_r50", overrides)
    tree, _, unmapped = convert.convert_state_dict(pth.flatten_state_dict(pth.load_pth(args.weights)))
    assert not unmapped, unmapped
    wide = dtype == "float64"
    params = jax.tree.map(
        lambda a: jax.numpy.asarray(a, "float64" if wide and a.dtype.kind == "f" else None), tree)
    layers = ts.backbone_train_layers(cfg, epoch * cfg.train.steps_per_epoch)
    net = model_lib.model_from_config(cfg.model, None, dtype, **ts.winograd_settings(cfg))
    group = {k: batch[k][:, 0] for k in ("template", "search")}
    loc = lambda a: a.astype(np.float64) if wide else a
    tg = targets_lib.Targets(batch["label_cls"].astype(np.int32), loc(batch["label_loc"]),
                             loc(batch["label_loc_weight"]))
    trainable = {"model": params["model"]["params"], "heads": params["heads"]}
    loss = jax.jit(lambda tr: ts.base_group_loss(
        cfg, net, tr, params["model"]["batch_stats"], group, tg, True, layers)[0])
    return cfg, params, loss, trainable


def ours_step(args, batch: dict, epoch: int):
    """Our jitted training step of the phase of ``epoch``, its placed state and batch, and the
    loss of the weights before any step: ``program(state, data) -> (state, aux)``, and
    ``forward()``, that loss alone (jitted)."""
    import jax
    from jax.sharding import Mesh

    from clnet_jax import distributed
    from clnet_jax.train import step as ts
    cfg, params, forward, trainable = ours_loss(args, batch, epoch, args.dtype, args.winograd)
    first = float(forward(trainable))
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    step_fn = ts.TrainStep(cfg, "base", mesh)
    # placed as the trainer places them: an unplaced state would be moved (and the step
    # recompiled for its new placement) on the first steps
    state = distributed.replicate(ts.init_state(cfg, "base", params, 0), mesh)
    data = distributed.global_batch({k: batch[k] for k in ("template", "search", "box",
                                                           "negative")}, mesh)
    return (step_fn.program(epoch * cfg.train.steps_per_epoch), state, data, first,
            lambda: forward(trainable))


def run_ours(args, batch: dict, epoch: int) -> dict:
    program, state, data, first, _ = ours_step(args, batch, epoch)
    step, sync, _ = ours_stepper(program, state, data)
    return {"first_loss": first, "pairs_per_s": args.pairs / timed(step, sync, args.warmup,
                                                                    args.steps)}


def make_weights(args) -> None:
    import torch
    _, model_builder = _pysot(args.pysot, False)
    torch.manual_seed(0)
    os.makedirs(os.path.dirname(args.weights) or ".", exist_ok=True)
    torch.save(model_builder().state_dict(), args.weights)


def add_arguments(ap: argparse.ArgumentParser, pairs: int, steps: int, warmup: int) -> None:
    """The arguments this script shares with ``train_step_profile.py``."""
    ap.add_argument("--pysot", default="/tmp/pysot", help="pysot source folder")
    ap.add_argument("--python_torch", default=sys.executable,
                    help="the Python that has torch (default: this one)")
    ap.add_argument("--weights", default="data_cache/train_vs_pysot/r50.pth")
    ap.add_argument("--data_dir", default="data_cache/train_vs_pysot/tfds")
    ap.add_argument("--pairs", type=at_least(1), default=pairs, help="pairs per step (batch size)")
    ap.add_argument("--steps", type=at_least(1), default=steps)
    ap.add_argument("--warmup", type=at_least(0), default=warmup)
    ap.add_argument("--phases", default="epoch0,epoch10")
    ap.add_argument("--threads", type=at_least(1), default=2, help="torch threads")
    ap.add_argument("--epoch", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--batch", default=None, help=argparse.SUPPRESS)


def child_env(device: str = "cpu") -> dict:
    """The environment of a side's process: this checkout importable, JAX on ``device``."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        JAX_PLATFORMS="cuda" if device == "cuda" else "cpu")


def prepare_inputs(args) -> str:
    """The seeded r50 weights (``--weights``) and the batch of ``--pairs``, each written on
    first use; returns the batch's file."""
    if not os.path.isfile(args.weights):
        subprocess.run([args.python_torch, os.path.abspath(__file__), "--side=weights",
                        f"--pysot={args.pysot}", f"--weights={args.weights}"],
                       check=True, env=child_env())
    batch_file = os.path.join(os.path.dirname(args.weights) or ".", f"batch_{args.pairs}.npz")
    if not os.path.isfile(batch_file):
        make_batch(batch_file, args.pairs, args.data_dir)
    return batch_file


def run_child(args, script: str, side: str, flags: list[str], env: dict) -> dict:
    """One side in its own process (pysot's in ``--python_torch``): its JSON line."""
    python = args.python_torch if side == "pysot" else sys.executable
    res = subprocess.run([python, script, f"--side={side}", *flags], capture_output=True,
                         text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"{side}: {res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, pairs=8, steps=5, warmup=2)
    ap.add_argument("--rounds", type=at_least(1), default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="ours")
    ap.add_argument("--amp", action="store_true", help="pysot under torch.autocast")
    ap.add_argument("--winograd", default="auto",
                    help="ours: train.winograd values (MODE or MODE:TILE, TILE a "
                         "train.winograd_tile), comma-separated, each run every round")
    ap.add_argument("--side", default=None, choices=["pysot", "ours", "weights"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--out", default="results/bench/train_vs_pysot.json")
    args = ap.parse_args()
    if args.side == "weights":
        return make_weights(args)
    if args.side:  # a child: one side, one phase, JSON on the last line
        batch = dict(np.load(args.batch))
        run = run_pysot if args.side == "pysot" else run_ours
        print(json.dumps(run(args, batch, args.epoch)))
        return
    from benchmarks import common
    env = child_env(args.device)
    common_args = [f"--pysot={args.pysot}", f"--weights={args.weights}",
                   f"--pairs={args.pairs}", f"--steps={args.steps}", f"--warmup={args.warmup}",
                   f"--threads={args.threads}", f"--device={args.device}", f"--dtype={args.dtype}"]
    common_args += ["--amp"] if args.amp else []
    batch_file = prepare_inputs(args)

    def child(side: str, epoch: int, winograd: str = "auto") -> dict:
        return run_child(args, os.path.abspath(__file__), side,
                         [f"--epoch={epoch}", f"--batch={batch_file}", f"--winograd={winograd}",
                          *common_args], env)

    rows = []
    first, *others = args.winograd.split(",")
    for r in range(args.rounds):
        for phase in args.phases.split(","):
            a, b = child("pysot", PHASES[phase]), child("ours", PHASES[phase], first)
            rows.append({"round": r + 1, "phase": phase,
                         "pysot_pairs_per_s": round(a["pairs_per_s"], 3),
                         "ours_pairs_per_s": round(b["pairs_per_s"], 3),
                         "ratio": round(b["pairs_per_s"] / a["pairs_per_s"], 3),
                         "pysot_first_loss": round(a["first_loss"], 5),
                         "ours_first_loss": round(b["first_loss"], 5)})
            for w in others:  # the same round, the other train.winograd values
                c = child("ours", PHASES[phase], w)
                rows[-1].update({f"ours_winograd_{w}_pairs_per_s": round(c["pairs_per_s"], 3),
                                 f"ratio_winograd_{w}": round(c["pairs_per_s"] / a["pairs_per_s"], 3)})
            print(rows[-1], flush=True)
    print(common.table(rows, list(rows[0])))
    summary = {}
    for phase in args.phases.split(","):
        mine = [x for x in rows if x["phase"] == phase]
        ratio = np.asarray([x["ratio"] for x in mine])
        median = lambda key: float(np.median([x[key] for x in mine]))
        summary[phase] = {**{f"median_ratio_winograd_{w}": median(f"ratio_winograd_{w}")
                             for w in others},
                          "median_ratio": float(np.median(ratio)), "ratio_min": float(ratio.min()),
                          "ratio_max": float(ratio.max()),
                          "pysot_pairs_per_s_median": median("pysot_pairs_per_s"),
                          "ours_pairs_per_s_median": median("ours_pairs_per_s"),
                          "first_loss_rel_diff": max(abs(x["ours_first_loss"] - x["pysot_first_loss"])
                                                     / abs(x["pysot_first_loss"]) for x in mine)}
        print(f"{phase}: ours / pysot {summary[phase]['median_ratio']:.3f} (rounds "
              f"{summary[phase]['ratio_min']:.3f}-{summary[phase]['ratio_max']:.3f}); first "
              f"losses agree to {summary[phase]['first_loss_rel_diff']:.1e} relative")
    common.write_json(args.out, {"rows": rows, "per_phase": summary, "pairs_per_step": args.pairs,
                                 "device": args.device, "dtype": args.dtype, "amp": args.amp,
                                 "winograd": args.winograd,
                                 "steps": args.steps, "warmup": args.warmup})


if __name__ == "__main__":
    main()
