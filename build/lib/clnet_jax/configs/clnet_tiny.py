"""The golden tiny CLNet of tests/golden, corrected label layout by default."""
from clnet_jax.config import base_config, tiny_model


def get_config():
    c = tiny_model(base_config())
    c.name = "clnet_tiny"
    c.clnet.variant = "clnet"
    return c
