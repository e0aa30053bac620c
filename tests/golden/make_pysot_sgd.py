"""Writes ``pysot_sgd.npz``: four steps of pysot's optimiser flow (``tools/train.py``), run
by torch itself, for ``tests/train/test_train.py``. Needs torch (not a project
dependency); run with a Python that has it::

    python tests/golden/make_pysot_sgd.py tests/golden/pysot_sgd.npz

One epoch per step, the backbone's epoch at step 2. Steps 0-1: ``build_opt_lr(model, 0)``,
an SGD over the neck and head alone (the backbone has ``requires_grad=False``: no gradient,
no decay). Step 2: a new ``build_opt_lr(model, 2)``, so every momentum buffer starts afresh;
layer2 joins at ``lr * LAYERS_LR``; the stem stays frozen. Each step: gradients of the
trainable parameters (seeded, the second step's above the clip), ``clip_grad_norm_``, the
epoch's learning rate, ``optimizer.step()``.
"""
import sys

import numpy as np
import torch

RATES = [0.1, 0.5, 0.15811388, 0.05]  # per epoch: 1 warm-up epoch, then log decay to 0.05
MOMENTUM, WEIGHT_DECAY, LAYERS_LR, GRAD_CLIP, SWITCH = 0.9, 0.1, 0.1, 10.0, 2
SHAPES = {"layer2": (3, 4), "stem": (2,), "neck": (5,), "head": (3, 3)}


def main(out: str) -> None:
    rng = np.random.default_rng(0)
    params = {k: torch.nn.Parameter(torch.tensor(rng.standard_normal(s), dtype=torch.float32))
              for k, s in SHAPES.items()}
    record = {f"init/{k}": p.detach().numpy().copy() for k, p in params.items()}
    record["rates"] = np.asarray(RATES, np.float32)

    def build_opt_lr(epoch):
        for k in ("layer2", "stem"):
            params[k].requires_grad = k == "layer2" and epoch >= SWITCH
        groups = [{"params": [p for k, p in params.items() if k in ("layer2", "stem")
                              and p.requires_grad], "lr": LAYERS_LR * RATES[epoch]},
                  {"params": [params["neck"]], "lr": RATES[epoch]},
                  {"params": [params["head"]], "lr": RATES[epoch]}]
        return torch.optim.SGD(groups, lr=RATES[epoch], momentum=MOMENTUM,
                               weight_decay=WEIGHT_DECAY)

    opt = build_opt_lr(0)
    for step in range(len(RATES)):
        if step == SWITCH:
            opt = build_opt_lr(step)
        for g in opt.param_groups:  # the epoch's rate, as pysot's lr_scheduler sets it
            g["lr"] = RATES[step] * (LAYERS_LR if g is opt.param_groups[0] else 1.0)
        opt.zero_grad()
        scale = 8.0 if step == 1 else 1.0  # step 1's norm is above GRAD_CLIP
        for k, p in params.items():
            g = rng.standard_normal(p.shape).astype(np.float32) * scale
            if p.requires_grad:
                p.grad = torch.tensor(g)
                record[f"grad/{step}/{k}"] = g
            else:
                record[f"grad/{step}/{k}"] = np.zeros_like(g)
        torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.requires_grad],
                                       GRAD_CLIP)
        opt.step()
        for k, p in params.items():
            record[f"after/{step}/{k}"] = p.detach().numpy().copy()
    np.savez(out, **record)


if __name__ == "__main__":
    main(sys.argv[1])
