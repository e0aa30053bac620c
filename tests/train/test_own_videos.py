"""Training on folders of annotated videos (data.dir): held-back videos, one store per
folder, the real config's split, evaluation on the held-back videos."""
import os

import numpy as np
import pytest

from clnet_jax import config as config_lib
from clnet_jax.data import benchmarks, videos
from clnet_jax.evaluate import base_vs_clnet
from clnet_jax.train import trainer
from conftest import REALDATA, config

FOLDERS = ",".join(os.path.join(REALDATA, f) for f in ("otb", "tlp", "vot", "vot_tir"))


def test_held_out_by_name_else_every_kth_video():
    videos = ["a", "b", "c", "d", "e", "f", "a"]
    assert benchmarks.held_out(videos, ["c", "zz"], 3) == {"c"}
    assert benchmarks.held_out(videos, ["zz"], 3) == {"c", "f"}
    assert benchmarks.held_out(videos, [], 0) == set()


def test_stores_leave_out_held_back_videos_and_evaluation_scores_them(tmp_path):
    cfg = config_lib.from_file("real:scratch", {"data.dir": FOLDERS, "data.data_dir": str(tmp_path)})
    assert videos.held_out_videos(cfg) == ["Bike", "bag", "horse"]  # the real test split
    stores, samples = trainer.train_source(cfg)
    (store,) = stores  # the tlp and vot folders hold only held-back videos
    assert store.names == ["Jogging-1", "Jogging-2"] and samples == [2]
    seqs = videos.held_out_sequences(cfg)
    assert [s.name for s in seqs] == ["Bike", "bag", "horse"]
    assert all(s.gt.shape == (3, 4) for s in seqs)  # polygons as boxes for one-pass scoring
    np.testing.assert_allclose(seqs[2].gt[0], [257.53, 159, 313.31 - 257.53, 218.89 - 159])
    # both targets of one video stay on one side of the split
    cfg2 = config_lib.from_file("real:scratch", {"data.dir": FOLDERS, "data.data_dir": str(tmp_path),
                                                 "data.holdout": "Jogging"})
    stores2, _ = trainer.train_source(cfg2)
    assert sorted(n for s in stores2 for n in s.names) == ["Bike", "bag", "horse"]
    assert [s.name for s in videos.held_out_sequences(cfg2)] == ["Jogging-1", "Jogging-2"]


def test_real_config_recipes_and_a_wrong_one():
    assert config("real").data.holdout.split(",")[:2] == ["Basketball", "Bolt"]
    assert "synthetic" in config_lib.from_file("real").data.mixture  # the default recipe
    assert not config_lib.from_file("real:scratch").data.mixture
    assert config_lib.from_file("configs/real.py:synthetic").train.base.warmup_epochs == 0
    with pytest.raises(ValueError, match="real:fast: the base recipe is one of"):
        config_lib.from_file("real:fast")
    cfg = config("real", **{"data.dir": os.path.join(REALDATA, "tlp"), "data.holdout": "",
                            "data.holdout_every": 0})
    with pytest.raises(ValueError, match="needs held-back videos"):
        base_vs_clnet.evaluation_sequences(cfg)
