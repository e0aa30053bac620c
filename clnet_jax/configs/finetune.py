"""Fine-tune SiamRPN++ r50 on your own annotated videos, then train CLNet on them.

    clnet-convert siamrpn_r50_l234_dwxcorr/model.pth weights/siamrpn_r50   # or a CLNet .pth
    clnet-train --config finetune --config.train.init_checkpoint=weights/siamrpn_r50 \
        --config.data.dir=/data/my_videos[,/data/more_videos]

``data.dir``: one or more folders, each in any benchmark layout (an OTB-style folder of
``<video>/img/*.jpg`` + ``groundtruth_rect.txt`` is the simplest; see docs/training.md), read
at their native resolution into pysot's 511 crops; frames whose target is absent are never
drawn. Both stages start from the checkpoint (a CLNet checkpoint's generator goes on
training in the CLNet stage; a SiamRPN++ one gets a fresh generator).

The schedule is pysot's after its backbone unfreezes (epoch 10 on): layer2-4 train at a
tenth of the rate, BN on batch statistics, at a fifth of pysot's peak rate without warm-up
and for a few short epochs, since the start is already a trained tracker.
"""
from clnet_jax.config import base_config, stage_config


def get_config():
    c = base_config()
    c.name = "finetune"
    c.clnet.variant = "clnet"
    c.train.stages = ["base", "clnet"]
    c.train.steps_per_epoch = 250
    c.train.backbone_train_epoch = 0
    schedule = dict(lr=0.001, warmup_start_lr=0.001, lr_end=0.0001, warmup_epochs=0)
    c.train.base = stage_config(epochs=4, groups_per_batch=16, pairs_per_group=1, **schedule)
    c.train.clnet = stage_config(epochs=2, groups_per_batch=16, pairs_per_group=16, **schedule)
    c.train.checkpoint_every = 250
    return c
