"""The paper's Table 3 in miniature, on the synthetic look-alike benchmark (~1 h, 2 cores).

    python -m clnet_jax.experiments.ablation --config configs/ablation.py [--quick]

Same data, model sizes and schedules as configs/demo.py; every row is trained and
evaluated for each seed.
"""
import os

import ml_collections

from clnet_jax.config import from_file


def get_config():
    c = from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py"))
    c.name = "ablation"
    c.train.workdir = "runs/ablation"
    c.train.eval_after = False
    c.ablation = ml_collections.ConfigDict(dict(
        seeds=[0, 1, 2],
        rows=["BT", "RT", "AN", "LE", "OS", "DM", "mean_only", "sgd_finetune", "DM_official",
              "DM_running_bn"],
        report_dir="docs",
    ))
    return c
