"""The tiny SiamRPN++ and CLNet trained on real annotated videos, scored on held-back ones.

    clnet-train --config real --config.data.dir=/data/otb,/data/tlp,/data/vot

``data.dir``: one or more folders, each in any benchmark layout (detected from its
contents). The videos of ``data.holdout`` (the real-video test split of docs/testbed.md)
are held back where present, else every third video in name order; both stages train on
the others, and both trackers are then scored on the held-back videos with the demo's table
and the paired bootstrap CI.

The base recipe is the config argument: ``real`` or ``real:mixed`` (the default, chosen on
the validation videos) draws half of the groups from the demo's synthetic scenes and half
from the real videos; ``real:scratch`` trains the base on the real videos alone;
``real:synthetic`` starts from a base trained on the synthetic scenes
(``train.init_checkpoint``, e.g. the demo's ``runs/demo/base/weights``) and goes on on the
real videos. docs/testbed.md has what each gives.
"""
import ml_collections

from clnet_jax.config import from_file

# The real-video split of docs/testbed.md: by video (a two-target folder stays together).
TRAIN = ["Car1", "Jogging", "Human3", "FaceOcc1", "Bird2", "MotorRolling", "CarChase2",
         "Mohiniyattam", "MotorcycleChase", "car1", "zebrafish1", "traffic", "book", "birds"]
VALIDATION = ["DragonBaby", "ball1", "airplane"]
TEST = ["Basketball", "Bolt", "Car4", "Crossing", "Soccer", "Bike", "Drone1", "bag", "tiger",
        "horse"]
RECIPES = ("scratch", "mixed", "synthetic")


def get_config(recipe: str = "mixed"):
    if recipe not in RECIPES:
        raise ValueError(f"real:{recipe}: the base recipe is one of {', '.join(RECIPES)}")
    c = from_file("demo")
    c.name = "real" if recipe == "mixed" else f"real_{recipe}"
    c.data.holdout = ",".join(TEST + VALIDATION)
    c.data.holdout_every = 3
    c.train.eval_after = True
    # 600 base steps and 200 CLNet steps: the demo's schedule shortened to fit 15 minutes on
    # 2 cores with the real frames' preparation and evaluation
    c.train.base.epochs = 6
    c.train.clnet.epochs = 2
    if recipe == "mixed":
        # as many synthetic groups per mixture epoch as the 15 training sequences of the
        # real split give: half of the groups come from each
        c.data.mixture = ml_collections.ConfigDict({"synthetic": {"samples": 15}})
    if recipe == "synthetic":
        c.train.base.epochs = 3
        c.train.base.warmup_epochs = c.train.clnet.warmup_epochs = 0
    return c
