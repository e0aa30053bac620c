"""Trains SiamRPN++ and/or CLNet: ``python train.py --config configs/<name>.py [--config.k=v]``.

The stages listed in ``train.stages`` run in order ('base', then 'clnet'), each resumable
from its work directory; with ``train.eval_after`` the base and CLNet trackers are then
evaluated on the dataset's ``train.eval_split`` and a table is printed (and saved as JSON).
"""
from absl import app, logging
from ml_collections import config_flags

from clnet_jax import experiment

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py", "a configs/*.py file")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    experiment.run(_CONFIG.value)


if __name__ == "__main__":
    import sys
    from clnet_jax import config as config_lib
    problem = config_lib.check_overrides(sys.argv[1:], "configs/demo.py")
    if problem:
        sys.exit(f"error: {problem}")
    app.run(main)
