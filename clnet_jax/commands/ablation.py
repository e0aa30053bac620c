"""The research testbed (docs/testbed.md): bases built once per seed, rows trained on them,
a report with paired CIs over sequences and seeds.

    clnet-ablation --config ablation --bases          # the bases, once
    clnet-ablation --config ablation                  # every row of ablation.rows
    clnet-ablation --config ablation --rows DM,mine   # some rows (a registered variant too)
    clnet-ablation --config ablation:quick            # plumbing: a few steps per row
    clnet-ablation --config ablation --report_partial # the report from what is evaluated
"""
from __future__ import annotations

import jax
from absl import flags, logging

from clnet_jax.commands import common
from clnet_jax.experiments import ablation, cache

DEFAULT = "ablation"
_CONFIG = common.define_config(DEFAULT)
flags.DEFINE_list("rows", None, "rows to train and evaluate (default: ablation.rows)")
flags.DEFINE_bool("bases", False, "build the bases of every seed, nothing else")
flags.DEFINE_bool("report_partial", False, "write the report from what is evaluated so far, "
                  "training nothing")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cfg = common.loaded(_CONFIG)
    xla_cache = cache.compilation_cache_dir(cfg)
    if xla_cache:
        jax.config.update("jax_compilation_cache_dir", xla_cache)
    ablation.run(cfg, FLAGS.report_partial, FLAGS.rows, FLAGS.bases)


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, DEFAULT, argv)


if __name__ == "__main__":
    run()
