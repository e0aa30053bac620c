"""Trains SiamRPN++ and/or CLNet: ``clnet-train --config configs/<name>.py [--config.k=v]``
(or ``python train.py …`` in a clone).

The stages listed in ``train.stages`` run in order ('base', then 'clnet'), each resumable
from its work directory; with ``train.eval_after`` the base and CLNet trackers are then
evaluated on the dataset's ``train.eval_split`` and a table is printed (and saved as JSON).

Many processes (``jax.distributed``): start the same command once per process with
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (detected from the
environment on SLURM, Open MPI, Kubernetes and TPU pods). See docs/scaling.md.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from clnet_jax import config as config_lib
from clnet_jax import distributed
from clnet_jax.train import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", config_lib.resolve_path("demo"),
    "a config file, or a shipped name: " + ", ".join(config_lib.shipped_configs()))
distributed.define_flags()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    distributed.initialize_from_flags()
    experiment.run(_CONFIG.value)


def run(argv: list[str] | None = None) -> None:
    """The console script: unknown ``--config.*`` keys are refused before absl parses them."""
    argv = config_lib.command_argv(argv, __doc__, __name__)
    problem = config_lib.check_overrides(argv[1:], config_lib.resolve_path("demo"))
    if problem:
        sys.exit(f"error: {problem}")
    app.run(main, argv=argv)


if __name__ == "__main__":
    run()
