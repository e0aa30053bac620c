"""Every module output of the tiny SiamRPN++ against the upstream goldens."""
import jax.numpy as jnp
import numpy as np

from clnet_jax.model import siamrpn as M
from conftest import assert_close, config, nchw, nhwc


def test_modules_match_upstream(golden, tiny_params):
    g = golden["siamrpn_tiny"]
    net = M.model_from_config(config("siamrpn_tiny").model)
    v = tiny_params["model"]
    z, x = jnp.asarray(nhwc(g["z"])), jnp.asarray(nhwc(g["x"]))
    for tag, img in (("z", z), ("x", x)):
        feats = net.apply(v, img.astype(jnp.float32), method=lambda m, a: m.backbone(a))
        necks = net.apply(v, img, method=M.SiamRPN.features)
        for i in range(3):
            assert_close(nchw(feats[i]), g[f"backbone_{tag}_{i}"], f"backbone_{tag}_{i}")
            assert_close(nchw(necks[i]), g[f"neck_{tag}_{i}"], f"neck_{tag}_{i}")
    hidden = net.apply(v, z, x)
    cls, loc = M.apply_heads(tiny_params["heads"], hidden)
    for i, level in enumerate(("rpn2", "rpn3", "rpn4")):
        assert_close(nchw(cls[level]), g[f"rpn_cls_{i}"], f"rpn_cls_{i}")
        assert_close(nchw(loc[level]), g[f"rpn_loc_{i}"], f"rpn_loc_{i}")
    fused_cls, fused_loc = M.rpn_outputs(tiny_params["heads"], hidden)
    assert_close(nchw(fused_cls), g["cls"], "cls")
    assert_close(nchw(fused_loc), g["loc"], "loc")


def test_score_and_decoded_boxes_match_upstream(golden, tiny_params):
    from clnet_jax.model import anchors as A
    from clnet_jax.model import decode as T
    g = golden["siamrpn_tiny"]
    cls = jnp.asarray(nhwc(g["cls"]))[0]
    loc = jnp.asarray(nhwc(g["loc"]))[0]
    assert_close(T.scores_from_cls(cls, 5), g["score"], "score")
    pred = A.decode_boxes(T.deltas_from_loc(loc, 5), jnp.asarray(g["anchors"]))
    assert_close(np.asarray(pred).T, g["pred_bbox"], "pred_bbox")
