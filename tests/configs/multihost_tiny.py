"""Both stages for 4 steps each on the tiny model: the multi-process tests."""
import os

from clnet_jax.config import from_file


def get_config():
    c = from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_tiny.py"))
    c.name = "multihost_tiny"
    c.train.stages = ["base", "clnet"]
    c.train.checkpoint_every = 2
    # small steps: one device and two sum the gradients in another order (~1e-7), and a
    # tiny random model amplifies that quickly (8e-4 in the loss by step 4 at lr 2e-4)
    for s in (c.train.base, c.train.clnet):
        s.epochs, s.warmup_epochs = 1, 0
        s.lr = s.warmup_start_lr = s.lr_end = 2e-5
    return c
