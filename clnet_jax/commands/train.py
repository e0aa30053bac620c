"""Trains SiamRPN++ and/or CLNet: ``clnet-train --config <name or file> [--workdir DIR]
[--config.k=v]`` (or ``python train.py …`` in a clone).

The stages listed in ``train.stages`` run in order ('base', then 'clnet'), each in
``<workdir>/<stage>`` and resumable from it (default work directory: ``runs/<config name>``);
with ``train.eval_after`` the base and CLNet trackers are then evaluated on the held-out
sequences and a table with the paired CI is printed (and saved as ``<workdir>/eval.json``).

Many processes (``jax.distributed``): start the same command once per process with
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (detected from the
environment on SLURM, Open MPI, Kubernetes and TPU pods). See docs/scaling.md.
"""
from __future__ import annotations

import os

from absl import flags, logging

from clnet_jax import distributed
from clnet_jax.commands import common
from clnet_jax.evaluate import base_vs_clnet
from clnet_jax.train import experiment

DEFAULT = "demo"
_CONFIG = common.define_config(DEFAULT)
flags.DEFINE_string("workdir", None, "where the stages write (default: runs/<config name>)")
distributed.define_flags()
FLAGS = flags.FLAGS

TESTBED_HINT = """
This demo trains for minutes on scenes without the hard level. The research testbed
(docs/testbed.md) trains a base four times as long per seed on all three levels, once, and
compares every row with paired CIs over 5 seeds on a test and a transfer split:
  clnet-ablation --config ablation --bases  # once per seed
  clnet-ablation --config ablation          # the rows
"""


def workdir_of(cfg) -> str:
    return FLAGS.workdir or os.path.join("runs", cfg.name)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    cfg = common.loaded(_CONFIG)
    distributed.initialize_from_flags()
    workdir = workdir_of(cfg)
    base, params = experiment.train_stages(cfg, workdir)
    if cfg.train.eval_after and distributed.is_main():
        base_vs_clnet.compare(cfg, base, params, os.path.join(workdir, "eval.json"))
    if cfg.name == "demo" and distributed.is_main():
        print(TESTBED_HINT)


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, DEFAULT, argv)


if __name__ == "__main__":
    run()
