"""CLNet on SiamRPN++ r50-l234: encoders 128 (cls) / 256 (loc), wide decoder (256).

Training data: the official CLNet mixture (videos per epoch: VID 10,000, YouTube-BB 19,927,
COCO 11,726, DET 33,347), read from /data/<folder> (override with
--config.data.mixture.<name>.manual_dir).
"""
from clnet_jax.config import base_config, training_mixture


def get_config():
    c = base_config()
    c.name = "clnet_r50"
    c.clnet.variant = "clnet"
    c.data.mixture = training_mixture(
        {"imagenet_vid": 10_000, "youtube_bb": 19_927, "coco": 11_726, "imagenet_det": 33_347})
    return c
