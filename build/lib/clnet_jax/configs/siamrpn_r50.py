"""SiamRPN++ r50-l234 (dwxcorr): the release model and upstream tracking constants.

Training data: pysot's mixture (VID 100,000 per epoch; YouTube-BB, COCO and DET each used
once), read from /data/<folder> (override with --config.data.mixture.<name>.manual_dir).
"""
from clnet_jax.config import base_config, training_mixture


def get_config():
    c = base_config()
    c.data.mixture = training_mixture(
        {"imagenet_vid": 100_000, "youtube_bb": -1, "coco": -1, "imagenet_det": -1})
    return c
