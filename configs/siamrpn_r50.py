"""SiamRPN++ r50-l234 (dwxcorr): the release model and upstream tracking constants."""
from clnet_jax.config import base_config


def get_config():
    return base_config()
