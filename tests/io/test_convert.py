import json
import os

import numpy as np
import pytest

from clnet_jax.io import checkpoint, convert
from clnet_jax.model import weights
from conftest import PARITY


def _fake_state_dict(keys_file):
    shapes = json.load(open(os.path.join(PARITY, keys_file)))
    return {k: np.zeros(v, np.float32) for k, v in shapes.items()}


@pytest.mark.parametrize("keys_file,clnet", [("siamrpn_r50_l234_keys.json", False),
                                             ("clnet_r50_l234_keys.json", True)])
def test_every_r50_key_is_mapped(keys_file, clnet):
    tree, arch, unmapped = convert.convert_state_dict(_fake_state_dict(keys_file))
    assert unmapped == []
    assert arch["blocks"] == [3, 4, 6, 3] and arch["width"] == 64 and arch["hidden"] == 256
    assert arch["clnet"] is clnet
    assert weights.missing_parts(tree, arch) == []
    heads = tree["heads"]
    assert heads["rpn2"]["cls"]["w"].shape == (256, 10) and heads["rpn4"]["loc"]["b"].shape == (20,)
    if clnet:
        dec = tree["clnet"]["params"]["rpn3"]["loc"]["decoder"]
        assert dec["fc3"].shape == (256, 5141)
        assert tree["clnet"]["batch_stats"]["rpn2"]["cls"]["encoder"]["block3"]["bn"]["var"].shape == (128,)


def test_missing_and_unknown_keys_are_reported(tmp_path):
    sd = _fake_state_dict("siamrpn_r50_l234_keys.json")
    sd.pop("backbone.layer3.2.conv2.weight")
    sd["something.else"] = np.zeros(3, np.float32)
    tree, arch, unmapped = convert.convert_state_dict(sd)
    assert unmapped == ["something.else"]
    problems = weights.missing_parts(tree, arch)
    assert problems and "layer3_2" in problems[0]


def test_converted_checkpoint_loads_and_corruption_is_caught(tmp_path):
    out = tmp_path / "w"
    weights.convert_checkpoint(os.path.join(PARITY, "siamrpn_tiny_legacy.pth"), str(out))
    tree, arch = weights.load(str(out))
    assert arch["blocks"] == [2, 2, 2, 2] and arch["hidden"] == 32
    # a damaged data file: clear error naming the directory
    for root, _, files in os.walk(out / "state"):
        for f in files:
            p = os.path.join(root, f)
            if os.path.getsize(p) > 10000:
                with open(p, "r+b") as fh:
                    fh.write(b"\x00" * 4096)
    with pytest.raises(checkpoint.CheckpointError, match=str(out)):
        weights.load(str(out))
    with pytest.raises(checkpoint.CheckpointError, match="arch.json"):
        weights.load(str(tmp_path))


def test_the_command_exits_2_on_an_unreadable_file_and_3_on_unmapped_keys(tmp_path):
    """clnet-convert: the error names the file; nothing is written."""
    import subprocess
    import sys

    from conftest import ROOT
    from pth_writer import save_pth

    def command(*args):
        return subprocess.run([sys.executable, "-m", "clnet_jax.commands.convert", *args],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = command(str(tmp_path / "nope.pth"), str(tmp_path / "x"))
    assert out.returncode == 2 and "nope.pth" in out.stderr
    save_pth(tmp_path / "odd.pth", {"something.else": np.zeros(3, np.float32)})
    out = command(str(tmp_path / "odd.pth"), str(tmp_path / "y"))
    assert out.returncode == 3 and "something.else" in out.stderr
    assert not (tmp_path / "y").exists()


def test_backbone_only_imagenet_file_converts_and_starts_training(tmp_path):
    """pysot's pretrained_models/resnet50.model: backbone names without a prefix, an fc."""
    from clnet_jax.io.pth import flatten_state_dict, load_pth
    from clnet_jax.train import experiment
    from conftest import config
    from pth_writer import save_pth
    sd = flatten_state_dict(load_pth(os.path.join(PARITY, "siamrpn_tiny.pth")))
    bb = {k[len("backbone."):]: v for k, v in sd.items()
          if k.startswith("backbone.") and not k.endswith("num_batches_tracked")}
    bb["fc.weight"] = np.ones((1000, 256), np.float32)
    bb["fc.bias"] = np.zeros(1000, np.float32)
    save_pth(tmp_path / "resnet50.model", bb)
    assert flatten_state_dict(load_pth(tmp_path / "resnet50.model")).keys() == bb.keys()
    out = tmp_path / "bb"
    lines = weights.convert_checkpoint(str(tmp_path / "resnet50.model"), str(out))
    assert "fc.bias, fc.weight" in lines[0]
    tree, arch = weights.load(str(out))
    assert arch["kind"] == "backbone" and arch["blocks"] == [2, 2, 2, 2]
    assert set(tree["model"]["params"]) == {"backbone"}
    # train.pretrained_backbone: the backbone comes from the file, neck and heads are fresh
    cfg = config("train_tiny", **{"train.pretrained_backbone": str(out)})
    params = experiment.initial_params(cfg)
    ref, _, _ = convert.convert_state_dict(sd)
    np.testing.assert_array_equal(
        params["model"]["params"]["backbone"]["layer3_1"]["conv2"]["conv"]["kernel"],
        ref["model"]["params"]["backbone"]["layer3_1"]["conv2"]["conv"]["kernel"])
    np.testing.assert_array_equal(params["model"]["batch_stats"]["backbone"]["stem"]["bn"]["var"],
                                  ref["model"]["batch_stats"]["backbone"]["stem"]["bn"]["var"])
    assert not np.allclose(params["model"]["params"]["neck_3"]["conv"]["kernel"],
                           ref["model"]["params"]["neck_3"]["conv"]["kernel"])
    # a backbone of another width is refused with both shapes named
    bad = config("siamrpn_r50", **{"train.pretrained_backbone": str(out)})
    with pytest.raises(checkpoint.CheckpointError, match="do not match"):
        experiment.initial_params(bad)
