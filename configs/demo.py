"""The embedded default: tiny SiamRPN++ + CLNet trained on synthetic look-alike sequences.

``python train.py --config configs/demo.py`` generates the data (about a minute), trains the
base tracker, then the CLNet generator on same-sequence groups with diverse mining, and
ends with a base vs CLNet table on the synthetic test split. Sized for ~10 min on 2 cores.
"""
from clnet_jax.config import base_config, tiny_model


def get_config():
    c = tiny_model(base_config())
    c.name = "demo"
    c.clnet.variant = "clnet"
    c.clnet.encoder_channels_cls = 32
    c.clnet.encoder_channels_loc = 32
    c.clnet.decoder_hidden = 64
    c.data.builder_config = "default"
    c.data.frame_range = 20
    c.train.workdir = "runs/demo"
    c.train.stages = ["base", "clnet"]
    c.train.eval_after = True
    # Scaled-down upstream schedule (same shape: warm-up, then log decay).
    c.train.epochs = 6
    c.train.warmup_epochs = 1
    c.train.steps_per_epoch = 50
    c.train.lr = 0.01
    c.train.warmup_start_lr = 0.002
    c.train.lr_end = 0.001
    # Departure from upstream: no ImageNet backbone here, so every backbone layer trains
    # from step 0 (upstream: layer2-4 from epoch 10 of a pretrained ResNet-50).
    c.train.backbone_train_epoch = 0
    c.train.backbone_lr_mult = 1.0
    c.train.backbone_train_layers = ["stem", "layer1", "layer2", "layer3", "layer4"]
    c.train.groups_per_batch = 8
    c.train.pairs_per_group = 1
    c.train.clnet_pairs_per_group = 4
    c.train.clnet_epochs = 3
    c.train.checkpoint_every = 50
    c.train.log_every = 10
    return c
