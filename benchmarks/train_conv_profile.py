"""Where the r50 training step's time goes against pysot's: every convolution of pysot's
``ModelBuilder`` (r50-l234, found with forward hooks on a template batch and a search batch
of ``--pairs``), timed alone in its forward pass, its input gradient and its weight gradient,
in torch (oneDNN) and in XLA (``lax.conv_general_dilated``, NHWC), each in its own process::

    python benchmarks/train_conv_profile.py --pysot /tmp/pysot --python_torch /path/to/python

Prints per layer group and kind (kernel, stride, dilation) the summed milliseconds of both
and writes JSON with every convolution's figures. ``benchmarks/train_vs_pysot.py`` times the
whole steps; this says which operations make their difference.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
FIELDS = ("fwd", "bwd_x", "bwd_w")


def torch_side(args) -> list[dict]:
    import torch
    torch.set_num_threads(args.threads)
    from benchmarks.vs_pysot import _pysot as load
    model_builder, _ = load(args.pysot, False)
    model = model_builder().train()
    convs = []

    def hook(m, inp, _):
        convs.append(dict(name=m.profile_name, x=list(inp[0].shape), cout=m.out_channels,
                          k=m.kernel_size[0], s=m.stride[0], p=m.padding[0], d=m.dilation[0],
                          g=m.groups))
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            m.profile_name = name
            m.register_forward_hook(hook)
    b = args.pairs
    with torch.no_grad():
        zf = model.neck(model.backbone(torch.randn(b, 3, 127, 127)))
        xf = model.neck(model.backbone(torch.randn(b, 3, 255, 255)))
        model.rpn_head(zf, xf)

    def timed(fn):
        fn()
        t = time.perf_counter()
        for _ in range(args.iters):
            fn()
        return 1000 * (time.perf_counter() - t) / args.iters

    for c in convs:
        x = torch.randn(*c["x"])
        conv = torch.nn.Conv2d(c["x"][1], c["cout"], c["k"], c["s"], c["p"], c["d"], c["g"],
                               bias=False)
        gy = torch.randn_like(conv(x))

        def grad(wrt_x: bool):
            x.requires_grad_(wrt_x)
            conv.weight.requires_grad_(not wrt_x)
            x.grad = conv.weight.grad = None
            conv(x).backward(gy)
        with torch.no_grad():
            fwd = timed(lambda: conv(x))
        c.update(torch_fwd=fwd, torch_bwd_x=timed(lambda: grad(True)) - fwd,
                 torch_bwd_w=timed(lambda: grad(False)) - fwd)
    return convs


def jax_side(args, convs: list[dict]) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from benchmarks import common
    done = {}
    for c in convs:
        key = (tuple(c["x"]), c["cout"], c["k"], c["s"], c["p"], c["d"], c["g"])
        if key not in done:
            b, cin, h, w = c["x"]
            rng = np.random.default_rng(0)
            x = jnp.asarray(rng.standard_normal((b, h, w, cin)), jnp.float32)
            k = jnp.asarray(rng.standard_normal((c["k"], c["k"], cin // c["g"], c["cout"])) * 0.01,
                            jnp.float32)
            p = c["p"]
            conv = lambda x, k, c=c, p=p: jax.lax.conv_general_dilated(
                x, k, (c["s"],) * 2, ((p, p), (p, p)), rhs_dilation=(c["d"],) * 2,
                dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c["g"])
            gy = jnp.ones_like(conv(x, k))
            bx = jax.jit(lambda x, k, g, conv=conv: jax.vjp(lambda x: conv(x, k), x)[1](g))
            bw = jax.jit(lambda x, k, g, conv=conv: jax.vjp(lambda k: conv(x, k), k)[1](g))
            ms = lambda f, *a: 1000 * common.time_call(f, *a, iters=args.iters)
            done[key] = dict(xla_fwd=ms(jax.jit(conv), x, k), xla_bwd_x=ms(bx, x, k, gy),
                             xla_bwd_w=ms(bw, x, k, gy))
        c.update(done[key])
    return convs


def group_of(c: dict) -> str:
    parts = c["name"].split(".")
    where = parts[1] if parts[0] == "backbone" else parts[0]
    return f"{where} {c['k']}x{c['k']} s{c['s']} d{c['d']}" + (" grouped" if c["g"] > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pysot", default="/tmp/pysot", help="pysot source folder")
    ap.add_argument("--python_torch", default=sys.executable,
                    help="the Python that has torch (default: this one)")
    ap.add_argument("--pairs", type=int, default=4, help="batch of template/search crops")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--side", default=None, choices=["torch"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default="results/bench/train_conv_profile.json")
    args = ap.parse_args()
    if args.side == "torch":
        print(json.dumps(torch_side(args)))
        return
    from benchmarks import common
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    res = subprocess.run([args.python_torch, os.path.abspath(__file__), "--side=torch",
                          f"--pysot={args.pysot}", f"--pairs={args.pairs}",
                          f"--iters={args.iters}", f"--threads={args.threads}"],
                         capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    convs = jax_side(args, json.loads(res.stdout.strip().splitlines()[-1]))
    cols = [f"{lib}_{f}" for f in FIELDS for lib in ("torch", "xla")]
    sums = collections.defaultdict(lambda: dict.fromkeys(cols, 0.0))
    for c in convs:
        for col in cols:
            sums[group_of(c)][col] += c[col]
    rows = [{"group": g, **{k: f"{v:.1f}" for k, v in s.items()}} for g, s in sorted(sums.items())]
    rows.append({"group": "total", **{k: f"{sum(s[k] for s in sums.values()):.1f}" for k in cols}})
    print(common.table(rows, ["group"] + cols))
    common.write_json(args.out, {"unit": "ms", "pairs": args.pairs, "threads": args.threads,
                                 "convolutions": convs, "machine": common.machine()})


if __name__ == "__main__":
    main()
