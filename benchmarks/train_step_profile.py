"""Where the r50 training step's time goes, ours against pysot's, per phase.

Needs what ``benchmarks/train_vs_pysot.py`` needs (PyTorch, pysot's sources) and takes the
same weights and batch (written by that script on first use, or here)::

    python benchmarks/train_step_profile.py --python_torch /path/to/torch/python \\
        --pysot /tmp/pysot --weights W.pth --data_dir D [--pairs 4] [--steps 2]

Ours: the compiled step runs ``--steps`` times under ``jax.profiler``; every XLA operation
executed (a thunk of the CPU runtime, named as its HLO instruction) is matched with its
instruction in the compiled HLO and grouped by part of the network (stem, layer1-4, neck,
heads, and the rest: anchor targets, loss, optimiser; from the Flax module path in the name
XLA kept: a fusion carries its root's, so a backward operation fused with forward ones
counts where that root is; hence no forward/backward split from names) and by kind: convolution
(XLA's), matrix product (the 1×1 convolutions, the Winograd products, the heads), reduction
(BN statistics, sums), elementwise and layout (copies, transposes). pysot: ``torch.profiler``
over as many steps, the self time of each ATen operator grouped into convolution forward,
convolution backward, batch norm, elementwise, optimiser (clipping and SGD) and other. Both
sides' forward pass (the loss alone) is timed by itself. Prints the tables and writes JSON.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import train_vs_pysot as tvp  # noqa: E402

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*.*?\s([a-z][\w\-]*)\(")
_CALLS = re.compile(r"calls=%([\w.\-]+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_COMP = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+)\s.*\{\s*$")
CONTAINERS = {"while", "conditional", "call"}  # their bodies' operations are timed themselves
LAYOUT = {"copy", "transpose", "bitcast", "reshape", "broadcast", "slice", "concatenate",
          "pad", "dynamic-slice", "dynamic-update-slice", "copy-start", "copy-done"}


def hlo_instructions(text: str) -> dict[str, tuple[str, str]]:
    """name -> (kind, op_name) of every instruction of a compiled HLO module's text."""
    comps: dict[str, list[str]] = collections.defaultdict(list)  # computation -> opcodes
    called: dict[str, list[str]] = collections.defaultdict(list)  # computation -> callees
    instrs: dict[str, tuple[str, str, list[str]]] = {}
    comp = None
    for line in text.splitlines():
        m = _COMP.match(line)
        if m:
            comp = m.group(1)
            continue
        m = _INSTR.match(line)
        if not m or comp is None:
            continue
        name, opcode = m.groups()
        calls = _CALLS.findall(line)
        comps[comp].append(opcode)
        called[comp].extend(calls)
        op = _OP_NAME.search(line)
        instrs[name] = (opcode, op.group(1) if op else "", calls)

    def opcodes(c: str, seen=()) -> set[str]:
        out = set(comps.get(c, ()))
        for sub in called.get(c, ()):
            if sub not in seen:
                out |= opcodes(sub, seen + (c,))
        return out

    def kind(opcode: str, calls: list[str]) -> str:
        ops = {opcode}
        if opcode == "fusion" or opcode == "custom-call":
            for c in calls:
                ops |= opcodes(c)
        if opcode in CONTAINERS:
            return "container"
        if "convolution" in ops:
            return "convolution"
        if "dot" in ops:
            return "matrix product"
        if ops & {"reduce", "reduce-window", "select-and-scatter", "all-reduce"}:
            return "reduction"
        if opcode in LAYOUT or (opcode == "fusion" and ops <= LAYOUT | {"fusion", "parameter"}):
            return "layout"
        return "elementwise"

    return {n: (kind(o, c), op) for n, (o, op, c) in instrs.items()}


def part_of(op_name: str) -> str:
    """The network part an operation's JAX name places it in."""
    m = re.search(r"/backbone/(stem|layer\d)", op_name)
    if m:
        return m.group(1)
    if "/neck" in op_name:
        return "neck"
    if re.search(r"/rpn|xcorr|apply_head|conv_kernel|conv_search", op_name):
        return "heads"
    return "rest"


def trace_op_times(trace_dir: str) -> dict[str, float]:
    """Summed duration (s) per event name of the perfetto trace ``jax.profiler`` wrote."""
    path = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)[0]
    data = json.load(gzip.open(path))
    events = data["traceEvents"] if isinstance(data, dict) else data
    out: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if e.get("ph") == "X":
            out[e["name"]] += e.get("dur", 0) * 1e-6
    return out


def profile_ours(args, batch: dict, epoch: int) -> dict:
    import jax
    program, state, data, _, forward = tvp.ours_step(args, batch, epoch)
    forward_s = tvp.timed(lambda: jax.block_until_ready(forward()), lambda: None,
                          max(args.warmup, 1), args.steps)
    compiled = program.lower(state, data).compile()
    table = hlo_instructions(compiled.as_text())
    step, sync, _ = tvp.ours_stepper(compiled, state, data)
    step_s = tvp.timed(step, sync, args.warmup, args.steps)
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            tvp.timed(step, sync, 0, args.steps)
        times = trace_op_times(d)
    groups: dict[tuple, float] = collections.defaultdict(float)
    ops = []
    for name, s in times.items():
        if name not in table or table[name][0] == "container":
            continue
        kind, op_name = table[name]
        groups[(part_of(op_name), kind)] += s / args.steps
        ops.append({"op": name, "kind": kind, "name": op_name, "s": round(s / args.steps, 4)})
    return {"step_s": step_s, "forward_s": forward_s, "ops_s": sum(groups.values()),
            "groups": [{"part": q, "kind": k, "s": round(v, 4)}
                       for (q, k), v in sorted(groups.items())],
            "top_ops": sorted(ops, key=lambda o: -o["s"])[:args.top]}


def _aten_kind(name: str) -> str:
    n = name.lower()
    if "convolution_backward" in n:
        return "convolution backward"
    if "convolution" in n:
        return "convolution forward"
    if "batch_norm" in n:
        return "batch norm"
    if "_foreach" in n or "optimizer" in n or "clip_grad" in n:
        return "optimiser"
    if any(k in n for k in ("relu", "threshold", "add", "mul", "sub", "div", "copy", "fill",
                            "zero", "clone", "where")):
        return "elementwise"
    return "other"


def profile_pysot(args, batch: dict, epoch: int) -> dict:
    import torch
    step, sync, _, forward = tvp.pysot_step(args, batch, epoch)
    forward_s = tvp.timed(forward, sync, max(args.warmup, 1), args.steps)
    step_s = tvp.timed(step, sync, args.warmup, args.steps)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        tvp.timed(step, sync, 0, args.steps)
    kinds: dict[str, float] = collections.defaultdict(float)
    for ev in prof.key_averages():
        if ev.key.startswith("Optimizer.") or ev.key.startswith("ProfilerStep"):
            continue  # ranges: their operators are counted themselves
        kinds[_aten_kind(ev.key)] += ev.self_cpu_time_total * 1e-6 / args.steps
    return {"step_s": step_s, "forward_s": forward_s, "ops_s": sum(kinds.values()),
            "kinds": {k: round(v, 4) for k, v in sorted(kinds.items())}}


def summarise(ours: dict) -> dict[str, dict[str, float]]:
    """Our groups summed by kind and by part."""
    out = {"kind": collections.defaultdict(float), "part": collections.defaultdict(float)}
    for g in ours["groups"]:
        for key in out:
            out[key][g[key]] += g["s"]
    return {k: {n: round(v, 4) for n, v in sorted(d.items())} for k, d in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tvp.add_arguments(ap, pairs=4, steps=2, warmup=2)
    ap.add_argument("--winograd", default="auto", help="ours: train.winograd (MODE or MODE:TILE)")
    ap.add_argument("--top", type=int, default=40, help="ours: the slowest operations listed")
    ap.add_argument("--side", default=None, choices=["pysot", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default="results/bench/train_step_profile.json")
    args = ap.parse_args()
    args.device, args.dtype, args.amp = "cpu", "float32", False
    if args.side:  # a child: one side, one phase, JSON on the last line
        batch = dict(np.load(args.batch))
        run = profile_pysot if args.side == "pysot" else profile_ours
        print(json.dumps(run(args, batch, args.epoch)))
        return
    from benchmarks import common
    env = tvp.child_env()
    common_args = [f"--pysot={args.pysot}", f"--weights={args.weights}",
                   f"--pairs={args.pairs}", f"--steps={args.steps}", f"--warmup={args.warmup}",
                   f"--threads={args.threads}", f"--winograd={args.winograd}",
                   f"--top={args.top}"]
    batch_file = tvp.prepare_inputs(args)

    def child(side: str, epoch: int) -> dict:
        return tvp.run_child(args, os.path.abspath(__file__), side,
                             [f"--epoch={epoch}", f"--batch={batch_file}", *common_args], env)

    result = {}
    for phase in args.phases.split(","):
        epoch = tvp.PHASES[phase]
        pysot, ours = child("pysot", epoch), child("ours", epoch)
        ours["by"] = summarise(ours)
        result[phase] = {"pysot": pysot, "ours": ours}
        print(f"\n{phase}: step pysot {pysot['step_s']:.2f} s, ours {ours['step_s']:.2f} s "
              f"(ours / pysot speed {pysot['step_s'] / ours['step_s']:.2f}); forward alone "
              f"pysot {pysot['forward_s']:.2f} s, ours {ours['forward_s']:.2f} s; operators "
              f"timed: pysot {pysot['ops_s']:.2f} s, ours {ours['ops_s']:.2f} s")
        print("pysot by kind:\n" + common.table(
            [{"kind": k, "s": v} for k, v in pysot["kinds"].items()], ["kind", "s"]))
        for key in ("kind", "part"):
            print(f"ours by {key}:\n" + common.table(
                [{key: k, "s": v} for k, v in ours["by"][key].items()], [key, "s"]))
        rows = collections.defaultdict(dict)
        for g in ours["groups"]:
            rows[g["part"]][g["kind"]] = g["s"]
        kinds = sorted({g["kind"] for g in ours["groups"]})
        print("ours by part and kind:\n" + common.table(
            [{"part": q, **{k: r.get(k, 0.0) for k in kinds}} for q, r in sorted(rows.items())],
            ["part", *kinds]))
        print("ours, the slowest operations:\n" + common.table(
            [dict(o, name=o["name"][-90:]) for o in ours["top_ops"][:15]],
            ["op", "kind", "s", "name"]))
    common.write_json(args.out, {"phases": result, "pairs_per_step": args.pairs,
                                 "steps": args.steps, "warmup": args.warmup,
                                 "winograd": args.winograd, "threads": args.threads})


if __name__ == "__main__":
    main()
