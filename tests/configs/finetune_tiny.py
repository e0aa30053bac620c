"""configs/finetune.py at the tiny size of tests/golden, a few steps (the doc test's
stand-in for the r50 recipe)."""
from clnet_jax.config import from_file, tiny_model


def get_config():
    c = tiny_model(from_file("finetune"))
    c.name = "finetune"  # the stand-in keeps the recipe's name: its work directory is runs/finetune
    c.train.steps_per_epoch = 2
    c.train.base.epochs = c.train.clnet.epochs = 1
    c.train.base.groups_per_batch = 2
    c.train.clnet.groups_per_batch = 1
    c.train.clnet.pairs_per_group = 2
    c.train.checkpoint_every = 2
    c.train.log_every = 1
    c.data.threads = 1
    c.data.prepare_workers = 1
    return c
