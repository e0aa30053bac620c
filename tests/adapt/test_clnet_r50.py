"""Full-size CLNet r50-l234: the first-frame adaptation on a real frame, without a checkpoint.

The tiny goldens cannot show everything (the encoder BN mode was only caught at full size),
so this builds the r50 CLNet from the upstream key list with seeded random weights, converts
it like the official checkpoint, and adapts on the first Dudek frame. The comparison with
the official tracker itself needs torch and stays outside the suite.
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.adapt import clnet as C
from clnet_jax.io import convert
from clnet_jax.track import runner
from conftest import PARITY, config


def seeded_state_dict(keys_file: str, seed: int = 0) -> dict:
    """Random upstream-named weights: He-scaled convs, BN at identity, small decoder outputs."""
    rng = np.random.default_rng(seed)
    sd = {}
    for name, shape in json.load(open(os.path.join(PARITY, keys_file))).items():
        if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
            sd[name] = np.ones(shape, np.float32)
        elif name.endswith(("running_mean", "bias", "last_bias0", "num_batches_tracked")) \
                or len(shape) <= 1:
            sd[name] = np.zeros(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            sd[name] = (rng.normal(size=shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)
    return sd


@pytest.fixture(scope="module")
def r50_clnet():
    tree, arch, unmapped = convert.convert_state_dict(seeded_state_dict("clnet_r50_l234_keys.json"))
    assert unmapped == [] and arch["clnet"]
    return jax.tree.map(jnp.asarray, tree)


@pytest.mark.slow
def test_r50_adaptation_uses_batch_statistics_and_gives_finite_nontrivial_delta(r50_clnet, dudek):
    frames, gt = dudek
    cfg = config("clnet_r50")
    assert cfg.clnet.encoder_bn == "batch"
    trk = runner.SequenceTracker(cfg, r50_clnet)
    trk.init(frames[0], gt[0])
    assert bool(trk.state.adjusted)
    base, adapted = r50_clnet["heads"], trk.state.heads
    for level in ("rpn2", "rpn3", "rpn4"):
        for b in ("cls", "loc"):
            d = np.asarray(adapted[level][b]["w"] - base[level][b]["w"])
            assert np.all(np.isfinite(d)), (level, b)
            assert np.abs(d).max() > 1e-4, f"{level}/{b}: no weight change"
    # batch statistics: the codes are normalised over the crop's own 25x25 positions, so the
    # latent of a level is the same after rescaling its hidden map (running statistics are not)
    fns = trk.fns
    hidden = jax.jit(fns.search_hidden)(r50_clnet, trk.state.kernels,
                                        jnp.asarray(_search_crop(cfg, frames[0], gt[0])))
    h = hidden["rpn3"]["cls"][0]
    enc = r50_clnet["clnet"]["params"]["rpn3"]["cls"]["encoder"]
    st = r50_clnet["clnet"]["batch_stats"]["rpn3"]["cls"]["encoder"]
    flat = h.reshape(-1, h.shape[-1])
    codes, _ = C.feature_adjust(enc, st, flat, train=True)
    codes2, _ = C.feature_adjust(enc, st, 3.0 * flat, train=True)
    assert float(jnp.abs(codes).max()) > 0
    np.testing.assert_allclose(np.asarray(codes2), np.asarray(codes), atol=1e-3)
    run, _ = C.feature_adjust(enc, st, flat, train=False)
    assert float(jnp.abs(run - codes).max()) > 1e-2
    # and the tracker keeps finite boxes afterwards
    box, score = trk.update(frames[1])
    assert np.all(np.isfinite(box)) and np.isfinite(score)


def _search_crop(cfg, frame, box):
    from clnet_jax.data import geometry
    from clnet_jax.track import crop
    box = jnp.asarray(box, jnp.float32)
    center, size = box[:2] + (box[2:] - 1) / 2, box[2:]
    t = cfg.track
    s_z = geometry.context_side(size[0], size[1], t.context_amount)
    side = jnp.round(geometry.search_side(s_z, t.exemplar_size, t.instance_size))
    return crop.crop_and_resize(jnp.asarray(frame), center, side, t.instance_size,
                                crop.frame_mean_fill(jnp.asarray(frame)))
