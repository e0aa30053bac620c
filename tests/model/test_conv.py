"""model/conv.py: nn.Conv's parameters and values, the 1x1 case as a matrix product, the
Winograd training path."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.model import conv


@pytest.mark.parametrize("k,s,p,d", [(1, 1, 0, 1), (3, 1, 2, 2), (3, 2, 0, 1), (1, 2, 0, 1)])
def test_conv_is_flax_conv(k, s, p, d):
    """Same parameter tree and initial values as nn.Conv, the same outputs and gradients
    (to float32 rounding: the 1x1 case sums in another order)."""
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
    ours = conv.Conv(16, k, s, p, d)
    ref = nn.Conv(16, (k, k), (s, s), padding=((p, p), (p, p)), kernel_dilation=d,
                  use_bias=False)
    v, rv = ours.init(jax.random.key(1), x), ref.init(jax.random.key(1), x)
    assert jax.tree.structure(v) == jax.tree.structure(rv)
    np.testing.assert_array_equal(v["params"]["kernel"], rv["params"]["kernel"])
    np.testing.assert_allclose(ours.apply(v, x), ref.apply(rv, x), rtol=1e-5, atol=1e-5)
    loss = lambda m: (lambda v, x: jnp.sum(jnp.sin(m.apply(v, x))))
    g, rg = jax.grad(loss(ours), (0, 1))(v, x), jax.grad(loss(ref), (0, 1))(rv, x)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_one_by_one_is_a_matrix_product():
    """A 1x1 convolution, strided or not, leaves no convolution in the program (nor in its
    gradient): XLA's CPU weight gradient of one is the slow case."""
    x = jnp.ones((1, 4, 4, 8))
    w = jnp.ones((1, 1, 8, 3))
    for s in (1, 2):
        fwd = jax.make_jaxpr(lambda x, w: conv.conv2d(x, w, s))(x, w)
        bwd = jax.make_jaxpr(jax.grad(lambda w: jnp.sum(conv.conv2d(x, w, s))))(w)
        for jaxpr in (fwd, bwd):
            names = {e.primitive.name for e in jaxpr.jaxpr.eqns}
            assert "conv_general_dilated" not in names and "dot_general" in names
    three = jax.make_jaxpr(lambda x, w: conv.conv2d(x, w, 1, 1))(x, jnp.ones((3, 3, 8, 3)))
    assert "conv_general_dilated" in {e.primitive.name for e in three.jaxpr.eqns}


def test_one_by_one_weight_gradient_takes_the_output_gradient_as_it_is():
    """The compiled weight gradient contracts the (pixels, channels) matrices as they lie: no
    transposed (channels, pixels) copy of the output gradient, which XLA's CPU backend makes
    for the same product written as an einsum over (n, h, w) (slow at r50's shapes)."""
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
    w = jax.random.normal(jax.random.key(1), (1, 1, 8, 16))

    def hlo(f):
        return jax.jit(jax.grad(lambda w, x: jnp.sum(jnp.sin(f(x, w))))).lower(w, x).compile().as_text()

    transposed = ("f32[16,162]", "f32[16,2,9,9]")  # the output gradient, channels first
    einsum = hlo(lambda x, w: jnp.einsum("nhwc,co->nhwo", x, w[0, 0]))
    assert any(t in einsum for t in transposed)  # what the test guards against
    assert not any(t in hlo(conv.conv2d) for t in transposed)
    np.testing.assert_allclose(conv.pointwise(x, w[0, 0]),
                               jnp.einsum("nhwc,co->nhwo", x, w[0, 0]), rtol=1e-6, atol=1e-6)


def test_bfloat16_inputs_compute_in_bfloat16_with_float32_weights():
    x = jnp.ones((1, 5, 5, 4), jnp.bfloat16)
    m = conv.Conv(6, 3, 1, 1)
    v = m.init(jax.random.key(0), x)
    assert v["params"]["kernel"].dtype == jnp.float32
    assert m.apply(v, x).dtype == jnp.bfloat16


@pytest.mark.parametrize("p,d", [(1, 1), (2, 2), (4, 4), (0, 1)])
def test_winograd_path_equals_the_convolution_and_its_gradients(p, d):
    """With ``winograd_min_channels`` reached, a 3x3 stride-1 convolution leaves no
    convolution in the program nor in its gradient, and gives the convolution's outputs and
    gradients to float32 rounding; narrower inputs and bfloat16 keep XLA's."""
    x = jax.random.normal(jax.random.key(0), (2, 13, 11, 8))
    wino, v, _ = _products_equal_the_convolution(x, 1, p, d)
    assert jax.tree.structure(wino.init(jax.random.key(1), x)) == jax.tree.structure(v)
    assert "conv_general_dilated" in _primitives(lambda v, x: wino.apply(v, x), v,
                                                 x.astype(jnp.bfloat16))


def _primitives(f, *args) -> set:
    return {e.primitive.name for e in jax.make_jaxpr(f)(*args).jaxpr.eqns}


def _products_equal_the_convolution(x, s: int, p: int, d: int, tile: str = "2",
                                    tol: float = 1e-5):
    """Conv(16, 3, s, p, d) with the bound at x's channels against XLA's: outputs to ``tol``
    and both gradients to 10 ``tol`` (float32 rounding), no convolution in the gradient's
    program; one channel more in the bound keeps XLA's. Returns the product module, the
    weights and the loss whose gradient was compared."""
    direct = conv.Conv(16, 3, s, p, d)
    prod = conv.Conv(16, 3, s, p, d, winograd_min_channels=8, winograd_tile=tile)
    v = direct.init(jax.random.key(1), x)
    np.testing.assert_allclose(prod.apply(v, x), direct.apply(v, x), rtol=tol, atol=tol)
    loss = lambda m: (lambda v, x: jnp.sum(jnp.sin(m.apply(v, x))))
    g, rg = jax.grad(loss(prod), (0, 1))(v, x), jax.grad(loss(direct), (0, 1))(v, x)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(rg)):
        np.testing.assert_allclose(a, b, rtol=10 * tol, atol=10 * tol)
    assert "conv_general_dilated" not in _primitives(jax.grad(loss(prod), (0, 1)), v, x)
    assert "conv_general_dilated" in _primitives(
        lambda v, x: conv.Conv(16, 3, s, p, d, winograd_min_channels=9).apply(v, x), v, x)
    return prod, v, loss(prod)


def _winograd_products(f, *args) -> set:
    """The batch sizes of the batched matrix products in ``f``'s program: (m + 2)² for the
    Winograd F(m×m, 3×3) products (16 or 36)."""
    return {e.invars[0].aval.shape[0] for e in jax.make_jaxpr(f)(*args).jaxpr.eqns
            if e.primitive.name == "dot_general" and e.params["dimension_numbers"][1][0]}


@pytest.mark.parametrize("tile,products", [("2", 16), ("4", 36), ("auto", 16)])
def test_winograd_tile_picks_the_products(tile, products):
    """``winograd_tile`` picks F(2×2) or F(4×4) in the forward pass and both gradients ('auto'
    at 8 input channels: F(2×2), ``winograd.tile_for``), and F(4×4) gives the convolution's
    outputs and gradients too, to its larger rounding."""
    x = jax.random.normal(jax.random.key(0), (2, 13, 11, 8))
    prod, v, loss = _products_equal_the_convolution(x, 1, 2, 2, tile, 1e-4)
    assert _winograd_products(lambda v, x: prod.apply(v, x), v, x) == {products}
    assert _winograd_products(jax.grad(loss, (0, 1)), v, x) == {products}


@pytest.mark.parametrize("size,padding,dilation,products", [
    (9, 1, 1, 36), (7, 0, 1, 16), (15, 2, 2, 36), (15, 4, 4, 16), (31, 4, 4, 36)])
def test_auto_tile_follows_the_map(size, padding, dilation, products):
    """``winograd_tile='auto'`` in training: at 256 input channels F(4×4) where each
    dilation sub-grid's output side is at least 8 (a 9² map, or r50's 15² template at
    dilation 2, its 31² search crop at dilation 4), F(2×2) below (a head's 7² template
    kernel, the 15² template at dilation 4); forward and gradient programs alike."""
    x = jnp.zeros((1, size, size, 256))
    k = jnp.zeros((3, 3, 256, 4))
    f = lambda x, k: jnp.sum(conv.conv2d(x, k, 1, padding, dilation, 256, "auto"))
    assert _winograd_products(f, x, k) == {products}
    assert _winograd_products(jax.grad(f, (0, 1)), x, k) == {products}


@pytest.mark.parametrize("s,p,d", [(2, 0, 1), (2, 1, 1), (2, 2, 2), (3, 1, 1)])
def test_strided_products_equal_the_convolution_and_its_gradients(s, p, d):
    """With ``winograd_min_channels`` reached, a strided 3x3 convolution runs as nine
    products of strided slices: no convolution in the program nor in its gradient, the
    convolution's outputs and gradients to float32 rounding (odd and even sizes, so that the
    last row and column are and are not reached); narrower inputs keep XLA's."""
    _products_equal_the_convolution(jax.random.normal(jax.random.key(0), (2, 13, 12, 8)), s, p, d)


def test_heads_take_the_matrix_product_path_with_the_backbone():
    """``winograd_min_channels`` reaches the RPN heads' 3x3 convolutions as well as the
    backbone's: with the bound at the tiny model's width, only the stem (7x7, 3 channels)
    stays a convolution (its forward pass and weight gradient in the gradient's program). The
    values: per convolution above, for the whole model in tests/train (upstream's gradients)."""
    from clnet_jax import config as config_lib
    from clnet_jax.model import siamrpn as M
    cfg = config_lib.from_file("siamrpn_tiny")
    z = jax.random.normal(jax.random.key(0), (1, 127, 127, 3))
    x = jax.random.normal(jax.random.key(1), (1, 255, 255, 3))
    ref, net = M.model_from_config(cfg.model), M.model_from_config(cfg.model, winograd_min_channels=1)
    v = jax.eval_shape(ref.init, jax.random.key(2), z, x)  # programs are traced, not run
    loss = lambda n: (lambda v: sum(jnp.sum(jnp.sin(h)) for h in jax.tree.leaves(
        n.apply(v, z, x, True, mutable=["batch_stats"])[0])))
    convs = lambda f: [e for e in jax.make_jaxpr(f)(v).jaxpr.eqns
                       if e.primitive.name == "conv_general_dilated"]
    forward = convs(loss(net))
    assert len(forward) == 2 and all(e.invars[1].aval.shape[:2] == (7, 7) for e in forward)
    assert len(convs(jax.grad(loss(net)))) == 4  # template and search: forward, weight grad
    assert len(convs(jax.grad(loss(ref)))) > 40
    tiled = M.model_from_config(cfg.model, winograd_min_channels=1, winograd_tile="4")
    assert _winograd_products(jax.grad(loss(net)), v) == {16}
    assert _winograd_products(jax.grad(loss(tiled)), v) == {36}  # backbone and heads alike


def test_training_takes_the_winograd_path_where_configured():
    """``train.winograd``: 'auto' on a CPU backend and 'on' give the model the configured
    channel bound; 'off' gives 0 (XLA's convolutions everywhere); ``train.winograd_tile``
    reaches the training model, and a tile that does not exist is refused at load."""
    from clnet_jax import config as config_lib
    from clnet_jax.train import step as TS
    cfg = lambda mode: config_lib.from_file("siamrpn_r50", {"train.winograd": mode})
    assert TS.winograd_min_channels(cfg("on")) == 256
    assert TS.winograd_min_channels(cfg("off")) == 0
    assert TS.winograd_min_channels(cfg("auto")) == (256 if jax.default_backend() == "cpu" else 0)
    with pytest.raises(ValueError, match="train.winograd"):
        cfg("yes")
    r50 = config_lib.from_file("siamrpn_r50")
    assert TS.winograd_settings(r50) == {"winograd_min_channels": TS.winograd_min_channels(r50),
                                         "winograd_tile": "auto"}
    assert TS.setup(r50, "base", None).net.winograd_tile == "auto"
    tile = config_lib.from_file("siamrpn_r50", {"train.winograd_tile": "2"})
    assert TS.winograd_settings(tile)["winograd_tile"] == "2"
    with pytest.raises(ValueError, match="train.winograd_tile"):
        config_lib.from_file("siamrpn_r50", {"train.winograd_tile": "3"})
