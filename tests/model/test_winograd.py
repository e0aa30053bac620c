"""Winograd 3×3 convolutions (the CPU tracking path) against XLA's convolution."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.model import siamrpn as model_lib
from clnet_jax.model import winograd
from clnet_jax.track import tracker as tracker_lib
from conftest import config

CASES = [((9, 9), 1, 1), ((8, 11), 0, 1), ((15, 15), 2, 2), ((16, 13), 4, 4), ((7, 7), 0, 2)]


def _lax_conv(x, w, padding: int, dilation: int):
    """The reference: XLA's convolution, stride 1."""
    return jax.lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2,
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("size,padding,dilation", CASES)
def test_conv3x3_equals_lax_conv(size, padding, dilation, tile):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, *size, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 5, 7)) / 6, jnp.float32)
    ref = _lax_conv(x, w, padding, dilation)
    for u in (winograd.kernel_transform(w, tile), winograd.kernel_transform(np.asarray(w), tile)):
        got = winograd.conv3x3(x, u, padding, dilation)  # traced and float64-host transforms
        assert u.shape[0] == (tile + 2) ** 2 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=(2e-6 if tile == 2 else 2e-5) * float(jnp.abs(ref).max()))


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("size,padding,dilation", CASES)
def test_conv3x3_gradients_equal_lax_conv_in_float64(size, padding, dilation, tile):
    """The input transform's written-out transpose (overlapping tiles added per phase) and
    the rest of ``jax.grad`` through the transforms: both gradients are the convolution's."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, *size, 5)))
        w = jnp.asarray(rng.normal(size=(3, 3, 5, 7)) / 6)

        def ref(x, w):
            return _lax_conv(x, w, padding, dilation)

        def ours(x, w):
            return winograd.conv3x3(x, winograd.kernel_transform(w, tile), padding, dilation)

        g = jnp.asarray(rng.normal(size=ref(x, w).shape))
        want = jax.vjp(ref, x, w)[1](g)
        got = jax.vjp(ours, x, w)[1](g)
        assert got[0].dtype == jnp.float64
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-12 * float(jnp.abs(b).max()))


def _primitive_counts(f, *args) -> dict:
    out: dict = {}
    for e in jax.make_jaxpr(f)(*args).jaxpr.eqns:
        out[e.primitive.name] = out.get(e.primitive.name, 0) + 1
    return out


@pytest.mark.parametrize("tile", [2, 4])
def test_traced_kernel_transform_is_the_host_one_as_one_product(tile):
    """Inside a program (training) the transform is one product of G ⊗ G with the nine
    taps, forward and backward (no per-tap combinations stacked), and gives the float64 host
    transform's values to float32 rounding."""
    w = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3, 6, 5)), jnp.float32)
    u = winograd.kernel_transform(w, tile)
    np.testing.assert_allclose(u, winograd.kernel_transform(np.asarray(w), tile),
                               rtol=1e-6, atol=1e-6)
    fwd = _primitive_counts(lambda w: winograd.kernel_transform(w, tile), w)
    grad = _primitive_counts(jax.grad(lambda w: jnp.sum(jnp.sin(
        winograd.kernel_transform(w, tile)))), w)
    assert fwd.get("dot_general") == 1 and "concatenate" not in fwd
    assert grad.get("dot_general") == 2 and "concatenate" not in grad


@pytest.mark.slow
def test_prepare_adds_transformed_kernels_and_keeps_the_outputs():
    cfg = config("siamrpn_tiny", **{"track.winograd": "on"})
    params = model_lib.init_params(cfg, jax.random.key(0))
    fns = tracker_lib.make_tracker(cfg)
    prepared = fns.prepare(params)
    assert "winograd" in prepared["model"] and "winograd" not in params["model"]
    assert fns.prepare(prepared) is prepared  # idempotent
    wino = jax.tree.leaves(prepared["model"]["winograd"])
    assert wino and all(u.shape[0] == 16 for u in wino)
    rng = np.random.default_rng(1)
    frame = jnp.asarray(rng.integers(0, 256, (120, 160, 3)), jnp.uint8)
    box = jnp.asarray([60.0, 40.0, 30.0, 24.0])
    off = tracker_lib.make_tracker(config("siamrpn_tiny", **{"track.winograd": "off"}))
    assert off.prepare(params) is params
    s0, s1 = jax.jit(off.init)(params, frame, box), jax.jit(fns.init)(prepared, frame, box)
    _, b0, c0 = jax.jit(off.step)(params, s0, frame)
    _, b1, c1 = jax.jit(fns.step)(prepared, s1, frame)
    np.testing.assert_allclose(b1, b0, atol=1e-3)
    np.testing.assert_allclose(c1, c0, rtol=1e-4)
    four = tracker_lib.make_tracker(config("siamrpn_tiny", **{"track.winograd": "on",
                                                               "track.winograd_tile": "4"}))
    p4 = four.prepare(params)
    assert all(u.shape[0] == 36 for u in jax.tree.leaves(p4["model"]["winograd"]))
    _, b4, c4 = jax.jit(four.step)(p4, jax.jit(four.init)(p4, frame, box), frame)
    np.testing.assert_allclose(b4, b0, atol=1e-3)
    np.testing.assert_allclose(c4, c0, rtol=1e-4)
    with pytest.raises(ValueError, match="track.winograd.*auto, on, off"):
        config("siamrpn_tiny", **{"track.winograd": "yes"})


def test_tile_for_takes_f4_from_512_input_channels():
    assert [winograd.tile_for("auto", c) for c in (64, 511, 512, 2048)] == [2, 2, 4, 4]
    assert winograd.tile_for("2", 4096) == 2 and winograd.tile_for("4", 8) == 4
    with pytest.raises(ValueError, match="track.winograd_tile='8': choose one of 2, 4, auto"):
        config("siamrpn_tiny", **{"track.winograd_tile": "8"})


def test_train_tile_for_takes_f4_from_256_channels_on_full_tiles():
    """Training's rule: F(4×4) needs 256 input channels and two full 4×4 tiles per sub-grid
    side; '2' and '4' hold for every convolution."""
    assert [winograd.train_tile_for("auto", c, 8) for c in (128, 255, 256, 2048)] == [2, 2, 4, 4]
    assert [winograd.train_tile_for("auto", 1024, s) for s in (4, 7, 8, 29)] == [2, 2, 4, 4]
    assert winograd.train_tile_for("2", 4096, 64) == 2 and winograd.train_tile_for("4", 8, 1) == 4


@pytest.mark.slow
def test_auto_tile_prepares_both_tiles_and_keeps_the_outputs():
    # width 32: layer4's first 3x3 (the dilated shortcut) reads 512 channels, the rest fewer
    cfg = config("siamrpn_tiny", **{"track.winograd": "on", "model.width": 32})
    assert cfg.track.winograd_tile == "auto"  # the default
    params = model_lib.init_params(cfg, jax.random.key(0))
    fns = tracker_lib.make_tracker(cfg)
    prepared = fns.prepare(params)
    tiles = {(u.shape[0], u.shape[1] >= 512) for u in jax.tree.leaves(prepared["model"]["winograd"])}
    assert tiles == {(16, False), (36, True)}
    off = tracker_lib.make_tracker(config("siamrpn_tiny", **{"track.winograd": "off",
                                                              "model.width": 32}))
    rng = np.random.default_rng(2)
    frame = jnp.asarray(rng.integers(0, 256, (120, 160, 3)), jnp.uint8)
    box = jnp.asarray([60.0, 40.0, 30.0, 24.0])
    _, b0, c0 = jax.jit(off.step)(params, jax.jit(off.init)(params, frame, box), frame)
    _, b1, c1 = jax.jit(fns.step)(prepared, jax.jit(fns.init)(prepared, frame, box), frame)
    np.testing.assert_allclose(b1, b0, atol=1e-3)
    np.testing.assert_allclose(c1, c0, rtol=1e-4)
