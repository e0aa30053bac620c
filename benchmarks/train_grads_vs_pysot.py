"""Training gradients against pysot at full size: the r50 base stage's gradient of every
trainable parameter, same weights, same batch.

Needs what ``benchmarks/train_vs_pysot.py`` needs (PyTorch, pysot's sources) and takes the
same weights and batch (written by that script on first use, or here)::

    python benchmarks/train_grads_vs_pysot.py --python_torch /path/to/torch/python \\
        --pysot /tmp/pysot --weights W.pth --data_dir D [--pairs 8] [--phases epoch0,epoch10]

Per phase (epoch 0: the backbone frozen, its BN in inference mode; epoch 10: layer2-4 train
with BN on batch statistics), pysot's ``ModelBuilder`` computes the loss and
``loss.backward()`` in its own process; ours takes ``jax.grad`` of
``train.step.base_group_loss`` on the converted weights. pysot's gradients are converted into
our parameter tree by the same converter as its weights, and compared leaf by leaf: the
largest difference relative to the leaf's largest gradient, per network part. This is the
full-size check of the training maths (the loss alone is what train_vs_pysot compares).

Both sides run in float32 and in float64, and pysot's float64 gradient is the reference:
ours in float64 against it checks the maths alone; each side's float32 gradient against it
shows that side's rounding. The backward pass through BN on batch statistics of a few pairs
amplifies rounding, so float32 gradients of the two sides differ by as much as each differs
from the float64 one (percents in the trainable backbone layers); a comparison in float32
alone cannot tell a difference in the maths from that.

Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import train_vs_pysot as tvp  # noqa: E402


def pysot_grads(args, batch: dict, epoch: int, out: str) -> dict:
    """pysot's loss; its gradients go to ``out`` (.npz by state-dict name, zero for the
    parameters it does not train in the phase; buffers as they are, for the converter)."""
    import torch
    torch.set_num_threads(args.threads)
    cfg, model_builder = tvp._pysot(args.pysot, False)
    model = model_builder()
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    dtype = torch.float64 if args.float64 else torch.float32  # --float64: the reference
    model = model.to(dtype).train()
    tvp.pysot_optimizer(model, cfg, epoch)  # requires_grad and BN modes of the phase
    loss = model(tvp.torch_batch(batch, "cpu", dtype))["total_loss"]
    loss.backward()
    grads = {k: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
             for k, p in model.named_parameters()}
    buffers = {k: b.numpy() for k, b in model.named_buffers()}
    np.savez(out, **grads, **buffers)
    return {"loss": float(loss)}


def our_grads(args, batch: dict, epoch: int, float64: bool) -> tuple[float, dict]:
    """Our loss and ``jax.grad`` of it (a flat dict by leaf path, the converted weights'
    layout); ``float64``: everything in float64, the convolutions as ``--winograd64`` says
    (matrix products on a CPU backend by default, so that float64 checks the maths of the
    path float32 training takes)."""
    import jax
    with jax.enable_x64(float64):
        _, _, loss_fn, trainable = tvp.ours_loss(
            args, batch, epoch, "float64" if float64 else "float32",
            args.winograd64 if float64 else args.winograd)
        loss, grads = jax.jit(jax.value_and_grad(loss_fn))(trainable)
        return float(loss), flat(grads)


def flat(tree) -> dict:
    import jax
    return {jax.tree_util.keystr(p): np.asarray(v, np.float64)
            for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def their_grads(args, batch_file: str, epoch: int, float64: bool) -> tuple[float, dict]:
    """pysot's loss and gradients from its own process, converted like its weights."""
    from clnet_jax.io import convert
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "pysot_grads.npz")
        info = tvp.run_child(args, os.path.abspath(__file__), "pysot",
                             [f"--epoch={epoch}", f"--batch={batch_file}", f"--out={npz}",
                              f"--pysot={args.pysot}", f"--weights={args.weights}",
                              f"--pairs={args.pairs}", f"--threads={args.threads}",
                              *(["--float64"] if float64 else [])], tvp.child_env())
        raw = dict(np.load(npz))
    # the converter writes float32 (weights are): a float64 gradient goes through it as a
    # float32 head and its float32 remainder, added back in float64 (the layout moves are exact)
    hi = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in raw.items()}
    lo = {k: (v - hi[k]).astype(np.float32) if v.dtype.kind == "f" else v for k, v in raw.items()}
    trees = []
    for part in (hi, lo):
        tree, _, unmapped = convert.convert_state_dict(part)
        assert not unmapped, unmapped
        trees.append(flat({"model": tree["model"]["params"], "heads": tree["heads"]}))
    return info["loss"], {k: trees[0][k] + trees[1][k] for k in trees[0]}


def part_of(path: str) -> str:
    for part in ("stem", "layer1", "layer2", "layer3", "layer4", "neck", "rpn"):
        if part in path:
            return part
    return "heads" if path.startswith("['heads']") else "other"


def differences(got: dict, ref: dict) -> dict:
    """Per network part, the largest |got − ref| relative to the leaf's largest |ref|, over
    the leaves pysot trains in the phase (a zero reference: frozen there; the step keeps
    such leaves out of its trainable tree, here every leaf is differentiated). Leaves whose
    reference is below 1e-4 of the largest gradient are zero in exact arithmetic (a bias
    followed by BN on batch statistics: the neck's BN bias before the heads' convolution and
    BN): both sides give rounding noise there, listed apart."""
    top = max(float(np.abs(r).max()) for r in ref.values())
    parts: dict = collections.defaultdict(lambda: {"leaves": 0, "max_rel": 0.0})
    worst, vanishing = (0.0, ""), []
    for name, r in ref.items():
        scale = float(np.abs(r).max())
        g = got[name].reshape(r.shape)
        if scale == 0.0:
            continue
        if scale < 1e-4 * top:
            vanishing.append(name)
            continue
        rel = float(np.abs(g - r).max()) / scale
        part = parts[part_of(name)]
        part["leaves"] += 1
        part["max_rel"] = max(part["max_rel"], rel)
        worst = max(worst, (rel, name))
    return {"max_rel": worst[0], "worst_leaf": worst[1], "parts": dict(parts),
            "vanishing_leaves": vanishing}


def compare(args, batch: dict, batch_file: str, epoch: int) -> dict:
    """Both sides in float32 and in float64; every float32 gradient against pysot's float64
    one (the reference), and ours in float64 against it (the maths alone)."""
    grads, losses = {}, {}
    for f64 in (False, True):
        name = "64" if f64 else "32"
        losses[f"pysot{name}"], grads[f"pysot{name}"] = their_grads(args, batch_file, epoch, f64)
        losses[f"ours{name}"], grads[f"ours{name}"] = our_grads(args, batch, epoch, f64)
    ref = grads["pysot64"]
    return {"losses": losses,
            "ours_float64_vs_pysot_float64": differences(grads["ours64"], ref),
            "ours_float32_vs_pysot_float64": differences(grads["ours32"], ref),
            "pysot_float32_vs_pysot_float64": differences(grads["pysot32"], ref),
            "ours_float32_vs_pysot_float32": differences(grads["ours32"], grads["pysot32"])}


COMPARISONS = ("ours_float64_vs_pysot_float64", "ours_float32_vs_pysot_float64",
               "pysot_float32_vs_pysot_float64", "ours_float32_vs_pysot_float32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tvp.add_arguments(ap, pairs=8, steps=0, warmup=0)
    ap.add_argument("--winograd", default="auto",
                    help="ours in float32: train.winograd (MODE or MODE:TILE)")
    ap.add_argument("--winograd64", default="auto",
                    help="ours in float64: train.winograd (MODE or MODE:TILE)")
    ap.add_argument("--side", default=None, choices=["pysot"], help=argparse.SUPPRESS)
    ap.add_argument("--float64", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="results/bench/train_grads_vs_pysot.json")
    args = ap.parse_args()
    if args.side:  # the pysot child: gradients to --out (.npz), JSON on the last line
        print(json.dumps(pysot_grads(args, dict(np.load(args.batch)), args.epoch, args.out)))
        return
    from benchmarks import common
    batch_file = tvp.prepare_inputs(args)
    batch = dict(np.load(batch_file))
    phases = {p: compare(args, batch, batch_file, tvp.PHASES[p]) for p in args.phases.split(",")}
    rows = []
    for p, r in phases.items():
        for part in r[COMPARISONS[0]]["parts"]:
            rows.append({"phase": p, "part": part,
                         "leaves": r[COMPARISONS[0]]["parts"][part]["leaves"],
                         **{c.replace("_vs_", " vs ").replace("_float", " f"):
                            f"{r[c]['parts'][part]['max_rel']:.1e}" for c in COMPARISONS}})
    print(common.table(rows, list(rows[0])))
    for p, r in phases.items():
        print(f"{p}: losses {', '.join(f'{k} {v:.7f}' for k, v in r['losses'].items())}")
    common.write_json(args.out, {"pairs": args.pairs, "winograd_float32": args.winograd,
                                 "winograd_float64": args.winograd64,
                                 "phases": phases})


if __name__ == "__main__":
    main()
