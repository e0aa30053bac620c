"""The embedded default: tiny SiamRPN++ + CLNet trained on synthetic scenes.

``python train.py --config configs/demo.py`` generates the data (``synthetic/scenes_demo``:
the testbed's scenes without the hard level, about a minute), trains the base tracker, then
the CLNet generator on same-sequence groups with diverse mining, and ends with a base vs
CLNet table with the paired CI on its test split.
"""
from clnet_jax.config import base_config, miniature_crops, stage_config, tiny_model


def get_config():
    c = tiny_model(base_config())
    c.name = "demo"
    c.clnet.variant = "clnet"
    c.clnet.encoder_channels_cls = 32
    c.clnet.encoder_channels_loc = 32
    c.clnet.decoder_hidden = 64
    c.data.builder_config = "scenes_demo"
    c.data.frame_range = 20
    miniature_crops(c)
    # Tracking constants of the miniature, chosen on the testbed's validation split with its
    # base of seed 0 (clnet-tune; docs/benchmarks.md, "Tracking constants").
    c.track.penalty_k = 0.2
    c.track.window_influence = 0.3
    c.train.stages = ["base", "clnet"]
    c.train.eval_after = True
    # Scaled-down upstream schedule (same shape: warm-up, then log decay). Departure from
    # upstream: AdamW instead of momentum SGD, which the tiny model trained from scratch
    # learns much faster with (docs/benchmarks.md, "Demo recipe").
    c.train.optimizer = "adamw"
    c.train.steps_per_epoch = 100
    # Departure from upstream: no ImageNet backbone here, so every backbone layer trains
    # from step 0 (upstream: layer2-4 from epoch 10 of a pretrained ResNet-50).
    c.train.backbone_train_epoch = 0
    c.train.backbone_lr_mult = 1.0
    c.train.backbone_train_layers = ["stem", "layer1", "layer2", "layer3", "layer4"]
    schedule = dict(lr=0.002, warmup_start_lr=0.0004, lr_end=0.0002, warmup_epochs=1)
    # The base: 400 steps x 16 pairs (one warm-up epoch, three decaying); the CLNet stage:
    # 200 steps (one warm-up epoch at 0.0004, one decaying from 0.002), groups of 4 pairs of
    # one sequence. Sized so that the demo ends in minutes on 2 cores (docs/benchmarks.md,
    # "Demo recipe"); the testbed trains longer.
    c.train.base = stage_config(epochs=4, groups_per_batch=16, pairs_per_group=1, **schedule)
    c.train.clnet = stage_config(epochs=2, groups_per_batch=8, pairs_per_group=4, **schedule)
    # the 60 test sequences tracked 20 at a time (vmap of one tracker)
    c.train.eval_batch = 20
    c.train.checkpoint_every = 100
    c.train.log_every = 10
    return c
