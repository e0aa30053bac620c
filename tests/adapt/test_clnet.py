"""CLNet against the official code (both label layouts), sampler properties, edge cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.adapt import clnet as C
from clnet_jax.adapt import variants as V
from clnet_jax.io import checkpoint
from clnet_jax.model import siamrpn as M
from clnet_jax.model import targets as T
from clnet_jax.track import runner
from conftest import PARITY, assert_close, config, golden_hidden, iou, nchw

FILES = [("clnet_tiny_fixed", "corrected"), ("clnet_tiny", "official")]


def _first_frame(golden_file, params):
    return golden_hidden(M.model_from_config(config("clnet_tiny").model), params, golden_file)


@pytest.mark.parametrize("name,layout", FILES)
def test_first_frame_adjustment_matches_official(golden, clnet_params, synthetic_video, name, layout):
    g = golden[name]
    cfg = config("clnet_tiny")
    hidden = _first_frame(g, clnet_params)
    _, gt = synthetic_video
    labels = runner.official_labels(cfg, gt[0])
    np.testing.assert_array_equal(labels, g["label_cls_sampled"])
    cls0, loc0 = M.rpn_outputs(clnet_params["heads"], hidden)
    assert_close(nchw(cls0), g["cls_base"], "cls_base")
    assert_close(nchw(loc0), g["loc_base"], "loc_base")
    mined = C.mine_negatives(jnp.asarray(labels), cls0[0])
    np.testing.assert_array_equal(np.asarray(mined), g["label_cls"])
    pos, neg = C.sample_masks(mined, layout)
    # the official tracker runs g_a's BN on the first crop's batch statistics
    heads, _ = C.adjust_head_params(clnet_params["heads"], clnet_params["clnet"], hidden,
                                    (pos[None], neg[None]), train=True)
    for i, level in enumerate(("rpn2", "rpn3", "rpn4")):
        assert_close(nchw(hidden[level]["cls"]), g[f"fea_cls_{i}"], f"fea_cls_{i}")
        for b in ("cls", "loc"):
            p = clnet_params["clnet"]
            h = hidden[level][b]
            codes, _ = C.feature_adjust(p["params"][level][b]["encoder"],
                                        p["batch_stats"][level][b]["encoder"],
                                        h.reshape(-1, h.shape[-1]), train=True)
            latent = C.latent_statistics(codes, pos.reshape(-1),
                                         neg.reshape(-1) if b == "cls" else None)
            assert_close(latent, g[f"latent_{b}_{i}"], f"latent_{b}_{i}")
            theta = clnet_params["heads"][level][b]
            d_layer, d_b, d_w = C.predict_delta(p["params"][level][b]["decoder"], latent,
                                                *theta["w"].shape)
            assert_close(d_layer[None], g[f"delta_layer_{b}_{i}"], f"delta_layer_{b}_{i}")
            assert_close(d_b, g[f"delta_b_{b}_{i}"], f"delta_b_{b}_{i}")
            assert_close(np.asarray(d_w).T, g[f"delta_w_{b}_{i}"][:, :, 0, 0], f"delta_w_{b}_{i}")
            assert_close(np.asarray(heads[level][b]["w"]).T, g[f"adapted_w_{b}_{i}"][:, :, 0, 0])
            assert_close(heads[level][b]["b"], g[f"adapted_b_{b}_{i}"], f"adapted_b_{b}_{i}")
    cls, loc = M.rpn_outputs(heads, hidden)
    assert_close(nchw(cls), g["cls_adapted"], "cls_adapted")
    assert_close(nchw(loc), g["loc_adapted"], "loc_adapted")


@pytest.mark.parametrize("name,layout,dudek_file", [
    ("clnet_tiny_fixed", "corrected", "dudek_clnet_fixed_tiny.txt"),
    ("clnet_tiny", "official", "dudek_clnet_tiny.txt")])
@pytest.mark.slow
def test_clnet_tracker_rollouts(golden, clnet_params, synthetic_video, dudek, name, layout,
                                dudek_file):
    g = golden[name]
    cfg = config("clnet_tiny", **{"clnet.label_layout": layout,
                                  "clnet.label_sampler": "official_numpy"})
    trk = runner.SequenceTracker(cfg, clnet_params)
    frames, gt = synthetic_video
    boxes, _ = trk.track(frames, gt[0])
    assert bool(trk.state.adjusted)
    # teacher-forced on every frame, from the reference's own previous state
    for i in range(1, len(frames)):  # the adjusted heads stay in the state
        forced = trk.state._replace(center=jnp.asarray(g["track_pre_center"][i - 1], jnp.float32),
                      size=jnp.asarray(g["track_pre_size"][i - 1], jnp.float32))
        _, box, _ = trk._step(clnet_params, forced, frames[i])
        assert iou(box, g["track_boxes"][i - 1]) >= 0.999, f"frame {i + 1}"
    assert iou(boxes[1:], g["track_boxes"]).mean() >= 0.99
    frames, gt = dudek
    boxes, _ = trk.track(frames, gt[0])
    ref = np.loadtxt(f"{PARITY}/{dudek_file}", delimiter=",")
    assert iou(boxes, ref).mean() >= 0.99


def test_layouts_really_differ(golden):
    """The defect is visible: the official masks sit in the top rows, not at the target."""
    labels = jnp.asarray(golden["clnet_tiny"]["label_cls"])
    pos_c, _ = C.sample_masks(labels, "corrected")
    pos_o, _ = C.sample_masks(labels, "official")
    rows_c = np.nonzero(np.asarray(pos_c).any(1))[0]
    rows_o = np.nonzero(np.asarray(pos_o).any(1))[0]
    assert rows_o.max() < 5 and rows_c.min() > 5


def test_jax_sampler_properties():
    cfg = config("clnet_tiny")
    anchors = jnp.asarray(T.crop_anchors(cfg))
    sample = jax.jit(C.first_frame_labels)
    for i, (w, h) in enumerate([(60, 40), (120, 90), (30, 80), (200, 200)]):
        box = jnp.asarray([127 - w / 2, 127 - h / 2, 127 + w / 2, 127 + h / 2])
        iou = np.asarray(T.anchor_iou(anchors, box))
        labels = np.asarray(sample(jax.random.key(i), anchors, box))
        npos, nneg = (labels == 1).sum(), (labels == 0).sum()
        assert npos == min(16, (iou > 0.6).sum())
        assert npos + nneg == min(16, (iou > 0.6).sum()) + 48
        assert np.all(iou[labels == 1] > 0.6) and np.all(iou[labels == 0] < 0.3)
        cls = jnp.asarray(np.random.default_rng(i).normal(size=(25, 25, 10)), jnp.float32)
        mined = np.asarray(C.mine_negatives(jnp.asarray(labels), cls, 16))
        new = (mined == 0) & (labels == -1)
        assert new.sum() == 16 and np.all(mined[labels >= 0] == labels[labels >= 0])
        fg = np.asarray(jax.nn.softmax(jnp.asarray(
            np.transpose(np.asarray(cls).reshape(25, 25, 2, 5), (3, 0, 1, 2))), -1))[..., 1]
        assert fg[new].min() >= fg[labels == -1][~new[labels == -1]].max() - 1e-6
    # keyed: another key, another sample; same key, same sample
    box = jnp.asarray([67.0, 87.0, 187.0, 167.0])
    a, b = sample(jax.random.key(0), anchors, box), sample(jax.random.key(1), anchors, box)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, sample(jax.random.key(0), anchors, box))


def test_latent_statistics_edge_cases_are_finite_with_finite_gradients():
    codes = jnp.asarray(np.random.default_rng(0).normal(size=(10, 4)), jnp.float32)
    none = jnp.zeros(10, bool)
    one = none.at[3].set(True)
    many = jnp.arange(10) < 6
    z = C.latent_statistics(codes, none, many)
    assert np.all(np.asarray(z[:4]) == 0) and np.all(np.asarray(z[8:12]) == 0)
    o = C.latent_statistics(codes, one, many)
    np.testing.assert_allclose(o[:4], codes[3], rtol=1e-6)
    assert np.all(np.asarray(o[8:12]) == 0)
    np.testing.assert_allclose(C.latent_statistics(codes, many, None)[4:],
                               np.std(np.asarray(codes)[:6], 0, ddof=1), rtol=1e-5)
    for pos, neg in ((none, none), (one, none), (one, one), (many, ~many)):
        g = jax.grad(lambda c: jnp.sum(C.latent_statistics(c, pos, neg)))(codes)
        assert np.all(np.isfinite(np.asarray(g)))
    const = jnp.ones((10, 4))
    g = jax.grad(lambda c: jnp.sum(C.latent_statistics(c, many, ~many)))(const)
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("variant", sorted(V.REGISTRY))
@pytest.mark.slow
def test_every_variant_runs_through_the_same_tracker(clnet_params, synthetic_video, variant):
    frames, gt = synthetic_video
    cfg = config("clnet_tiny", **{"clnet.variant": variant, "clnet.sgd_steps": 2})
    params = dict(clnet_params)
    v = V.get_variant(variant)
    if variant == "none":
        params.pop("clnet")
    elif not v.uses_checkpoint_generator and v.init_params is not None:
        params["clnet"] = v.init_params(jax.random.key(0), cfg)
    trk = runner.SequenceTracker(cfg, params)
    boxes, scores = trk.track(frames[:5], gt[0])
    assert np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores[1:]))
    base = clnet_params["heads"]
    changed = any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(trk.state.heads),
                                                        jax.tree.leaves(base)))
    assert changed == (variant != "none") == bool(trk.state.adjusted)


def test_tiny_target_keeps_base_params_and_is_flagged(clnet_params, synthetic_video):
    frames, _ = synthetic_video
    trk = runner.SequenceTracker(config("clnet_tiny"), clnet_params)
    trk.init(frames[0], [100, 100, 1.5, 40])  # thin: no anchor reaches IoU 0.6
    assert not bool(trk.state.adjusted)
    for a, b in zip(jax.tree.leaves(trk.state.heads), jax.tree.leaves(clnet_params["heads"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    box, score = trk.update(frames[1])
    assert np.all(np.isfinite(box)) and np.isfinite(score)


def test_checkpoint_kind_mismatch_names_missing_parts(weights_dir):
    with pytest.raises(checkpoint.CheckpointError, match="no CLNet part"):
        runner.load_params(config("clnet_tiny"), weights_dir["siamrpn"])
    with pytest.raises(checkpoint.CheckpointError, match="is a CLNet checkpoint"):
        runner.load_params(config("siamrpn_tiny"), weights_dir["clnet"])
    with pytest.raises(ValueError, match="architecture"):
        runner.load_params(config("siamrpn_r50"), weights_dir["siamrpn"])


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="variant"):
        V.get_variant("magic")
    with pytest.raises(KeyError, match="valid|has"):
        config("clnet_tiny", **{"clnet.not_a_key": 1})


@pytest.mark.parametrize("tracker,layout,dudek_file", [
    ("base", None, "dudek_siamrpn_tiny.txt"),
    ("clnet", "corrected", "dudek_clnet_fixed_tiny.txt"),
    ("clnet", "official", "dudek_clnet_tiny.txt")])
def test_first_tracked_dudek_box_within_1e4_px(tiny_params, clnet_params, dudek, tracker, layout,
                                               dudek_file):
    """All three upstream trackers' first tracked box on real frames, at 1e-4 px (the
    golden files carry 4 decimals)."""
    frames, gt = dudek
    if tracker == "base":
        cfg, params = config("siamrpn_tiny"), tiny_params
    else:
        cfg = config("clnet_tiny", **{"clnet.label_layout": layout,
                                      "clnet.label_sampler": "official_numpy"})
        params = clnet_params
    boxes, _ = runner.SequenceTracker(cfg, params).track(frames[:2], gt[0])
    ref = np.loadtxt(f"{PARITY}/{dudek_file}", delimiter=",")
    assert np.abs(boxes[1] - ref[1]).max() <= 1e-4


def test_mining_ranks_by_logit_margin_where_the_float32_ratio_ties():
    """Confidently foreground anchors (logit margin d > ~16) all have the official ratio
    log p_bg / (log p_bg + log p_fg) == 1.0 in float32, so ranking by it ties; the margin
    d orders them as the ratio does in exact arithmetic (float64 here)."""
    a, s = 5, 5
    rng = np.random.default_rng(0)
    d = rng.permutation(17.0 + 0.05 * np.arange(a * s * s)).reshape(a, s, s)
    labels = -np.ones((a, s, s), np.int32)
    labels[0, 2, 1:4] = 1
    labels[3, 0, :5] = 0
    fg = np.transpose(d, (1, 2, 0))              # (S, S, A)
    cls = np.concatenate([np.zeros_like(fg), fg], -1).astype(np.float32)  # [bg | fg] logits
    unused = labels < 0
    ratio32 = np.asarray(C.background_ratio(jnp.asarray(cls), a))
    assert np.all(ratio32[unused] == 1.0)        # every candidate ties in float32
    lbg, lfg = -np.logaddexp(0.0, d), -np.logaddexp(0.0, -d)
    ratio64 = lbg / (lbg + lfg)
    assert np.all(np.diff(ratio64[unused][np.argsort(d[unused])]) > 0)  # same order as d
    expected = np.flatnonzero(unused.reshape(-1))[np.argsort(-ratio64[unused])[:16]]
    mined = np.asarray(C.mine_negatives(jnp.asarray(labels), jnp.asarray(cls), 16))
    picked = np.flatnonzero(((mined == 0) & unused).reshape(-1))
    assert sorted(picked) == sorted(expected)
    np.testing.assert_array_equal(mined[~unused], labels[~unused])  # labelled anchors kept
