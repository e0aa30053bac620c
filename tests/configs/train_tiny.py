"""A few-step training config for tests (tiny model, tiny synthetic split)."""
from clnet_jax.config import base_config, stage_config, tiny_model


def get_config():
    c = tiny_model(base_config())
    c.name = "train_tiny"
    c.clnet.variant = "clnet"
    c.clnet.encoder_channels_cls = 16
    c.clnet.encoder_channels_loc = 16
    c.clnet.decoder_hidden = 32
    c.data.builder_config = "tiny"
    c.data.frame_range = 5
    c.data.threads = 1
    c.train.stages = ["base"]
    c.train.steps_per_epoch = 4
    c.train.backbone_train_epoch = 0
    c.train.backbone_lr_mult = 1.0
    c.train.backbone_train_layers = ["stem", "layer1", "layer2", "layer3", "layer4"]
    c.train.base = stage_config(epochs=2, groups_per_batch=2, pairs_per_group=1, warmup_epochs=1)
    c.train.clnet = stage_config(epochs=2, groups_per_batch=2, pairs_per_group=2, warmup_epochs=1)
    c.train.checkpoint_every = 2
    c.train.keep_checkpoints = 2
    c.train.log_every = 1
    return c
