"""The golden tiny SiamRPN++ of tests/golden (width 8, blocks [2, 2, 2, 2], hidden 32)."""
from clnet_jax.config import base_config, tiny_model


def get_config():
    c = tiny_model(base_config())
    c.name = "siamrpn_tiny"
    return c
