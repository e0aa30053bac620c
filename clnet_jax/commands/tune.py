"""Tracking constants (or the gradient baseline's step size) of the miniature, chosen on the
testbed's validation split with the bases of its seeds:

    clnet-tune --config ablation [--seeds 0,1,2,3,4] [--what tracking|sgd_lr]
"""
from __future__ import annotations

from absl import flags, logging

from clnet_jax.commands import common
from clnet_jax.experiments import tune

DEFAULT = "ablation"
_CONFIG = common.define_config(DEFAULT)
flags.DEFINE_list("seeds", None, "the bases' seeds (default: ablation.seeds)")
flags.DEFINE_enum("what", "tracking", ["tracking", "sgd_lr"], "the tracking constants, or "
                  "sgd_finetune's step size")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cfg = common.loaded(_CONFIG)
    seeds = None if FLAGS.seeds is None else [int(s) for s in FLAGS.seeds]
    tune.run(cfg, seeds, FLAGS.what)


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, DEFAULT, argv)


if __name__ == "__main__":
    run()
