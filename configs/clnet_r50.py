"""CLNet on SiamRPN++ r50-l234: encoders 128 (cls) / 256 (loc), wide decoder (256)."""
from clnet_jax.config import base_config


def get_config():
    c = base_config()
    c.name = "clnet_r50"
    c.clnet.variant = "clnet"
    return c
