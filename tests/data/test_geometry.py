"""pysot's crop geometry, written once: the same numbers from NumPy and from JAX, and the
formulas of pysot's tracker and par_crop."""
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.data import geometry


@pytest.mark.parametrize("w,h", [(40.0, 20.0), (7.5, 93.25), (300.0, 300.0)])
def test_numpy_and_jax_give_pysots_numbers(w, h):
    # pysot's SiamRPNTracker.track: w_z = w + c(w+h), h_z = h + c(w+h), s_z = sqrt(w_z h_z)
    wz, hz = w + 0.5 * (w + h), h + 0.5 * (w + h)
    s_z = np.sqrt(wz * hz)
    assert geometry.context_side(w, h, 0.5) == s_z
    assert isinstance(geometry.context_side(jnp.float32(w), jnp.float32(h), 0.5), jnp.ndarray)
    np.testing.assert_allclose(geometry.context_side(jnp.float32(w), jnp.float32(h), 0.5), s_z,
                               rtol=1e-6)
    assert geometry.crop_scale(s_z, 127) == 127 / s_z
    assert geometry.search_side(s_z, 127, 255) == s_z * (255 / 127)
    # par_crop's s_x = s_z + 2 * pad, pad = ((511 - 127) / 2) / (127 / s_z): the same side
    assert geometry.padded_side(s_z, 127, 511) == s_z + 2 * (((511 - 127) / 2) / (127 / s_z))
    np.testing.assert_allclose(geometry.padded_side(s_z, 127, 511),
                               geometry.search_side(s_z, 127, 511), rtol=1e-12)


def test_centred_box_is_the_first_frames_target_on_the_search_crop():
    box = geometry.centred_box(np.array([40.0, 20.0]), 2.0, 255)
    np.testing.assert_array_equal(box, [127 - 40, 127 - 20, 127 + 40, 127 + 20])
    jbox = geometry.centred_box(jnp.array([40.0, 20.0]), jnp.float32(2.0), 255)
    assert isinstance(jbox, jnp.ndarray)
    np.testing.assert_array_equal(np.asarray(jbox), box)
