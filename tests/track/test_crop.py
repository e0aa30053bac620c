import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.track.crop import _source_taps, crop_and_resize, frame_mean_fill, quotient_f32


def pysot_subwindow(im, pos, model_sz, original_sz, avg_chans):
    """Reference: the upstream crop written plainly with NumPy padding and cv2.resize."""
    c = (original_sz + 1) / 2
    xmin = int(np.floor(pos[0] - c + 0.5))
    ymin = int(np.floor(pos[1] - c + 0.5))
    h, w = im.shape[:2]
    oy, ox = original_sz + abs(ymin) + 2, original_sz + abs(xmin) + 2
    big = np.empty((h + 2 * oy, w + 2 * ox, 3), np.uint8)
    big[:] = np.asarray(avg_chans).astype(np.uint8)
    big[oy:oy + h, ox:ox + w] = im
    patch = big[oy + ymin:oy + ymin + original_sz, ox + xmin:ox + xmin + original_sz]
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return patch


_crop = jax.jit(crop_and_resize, static_argnums=3)


@pytest.mark.slow
def test_crop_equals_opencv_bit_for_bit():
    rng = np.random.default_rng(0)
    differing = total = 0
    for i in range(120):
        h, w = rng.integers(16, 360, 2)
        im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % 2:
            im = cv2.GaussianBlur(im, (7, 7), 3)
        out = int(rng.choice([127, 255]))
        side = int(rng.integers(3, 800)) if i % 6 else out * int(rng.integers(1, 3))
        pos = rng.uniform(-120, max(h, w) + 120, 2)  # often partly or wholly off-image
        avg = np.mean(im, axis=(0, 1))
        ref = pysot_subwindow(im, pos, out, side, avg)
        ours = np.asarray(_crop(im, jnp.asarray(pos, jnp.float32), side, out,
                                jnp.asarray(avg.astype(np.uint8))))
        differing += int(np.sum(ours != ref))
        total += ref.size
    assert total > 5_000_000
    assert differing == 0


def test_crop_under_vmap_matches_single():
    rng = np.random.default_rng(1)
    ims = rng.integers(0, 256, (3, 90, 120, 3), dtype=np.uint8)
    centers = jnp.asarray([[10.0, 20.0], [60.5, 45.2], [119.0, 2.0]])
    sides = jnp.asarray([50, 131, 400])
    fills = jnp.asarray([[1, 2, 3], [4, 5, 6], [7, 8, 9]], jnp.uint8)
    batched = jax.jit(jax.vmap(crop_and_resize, in_axes=(0, 0, 0, None, 0)), static_argnums=3)(
        ims, centers, sides, 127, fills)
    for i in range(3):
        single = crop_and_resize(ims[i], centers[i], sides[i], 127, fills[i])
        np.testing.assert_array_equal(np.asarray(batched[i]), np.asarray(single))


def test_quotient_is_float32_division_rounded_once():
    # XLA on a CPU rewrites x / broadcast(c) as x * (1 / c) (under jit + vmap even an
    # opaque denominator is broadcast), and a GPU's division is not IEEE-exact; NumPy's is.
    rng = np.random.default_rng(3)
    num = np.concatenate([rng.integers(-2**20, 2**20, 20000), np.arange(-600, 600)]).astype(np.int32)
    for den in (2, 158, 350, 510, 2047):
        ours = np.asarray(jax.jit(lambda n: quotient_f32(n, den))(jnp.asarray(num)))
        np.testing.assert_array_equal(ours, num.astype(np.float32) / np.float32(den))


def test_resize_taps_under_jit_and_vmap_equal_opencv_arithmetic():
    """The batched evaluator crops a batch of sides at once: each side's taps must be those
    of OpenCV's float arithmetic (before the fix ~8 % of the weights were one step off)."""
    sides = np.arange(3, 1500)
    for out in (255, 175, 127, 79):
        s, w0 = jax.jit(jax.vmap(lambda n: _source_taps(out, n)))(jnp.asarray(sides, jnp.int32))
        d = np.arange(out)
        f = ((2 * d + 1)[None] * sides[:, None] - out).astype(np.float32) / np.float32(2 * out)
        ref_s = np.floor(f)
        ref_w0 = np.round((np.float32(1) - (f - ref_s)) * np.float32(2048)).astype(np.int32)
        np.testing.assert_array_equal(np.asarray(s), ref_s.astype(np.int32))
        np.testing.assert_array_equal(np.asarray(w0), ref_w0)


def test_mean_fill_truncates_like_numpy_uint8_assignment():
    rng = np.random.default_rng(2)
    im = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ref = np.zeros(3, np.uint8)
    ref[:] = np.mean(im, axis=(0, 1))
    np.testing.assert_array_equal(np.asarray(frame_mean_fill(jnp.asarray(im))), ref)


def test_crop_and_mean_on_a_canvas_equal_those_of_the_frame_alone():
    """A frame in the top-left corner of a larger canvas, whose other pixels hold noise,
    with ``frame_size``: crops (inside, across every border, wholly off the frame) and the
    mean colour are bit-identical to those of the frame itself, under jit and vmap, so that
    frames of several sizes can share one compilation."""
    rng = np.random.default_rng(4)
    canvas = rng.integers(0, 256, (2, 200, 260, 3), dtype=np.uint8)
    frames = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8),
              rng.integers(0, 256, (171, 64, 3), dtype=np.uint8)]
    for j, f in enumerate(frames):
        canvas[j, :f.shape[0], :f.shape[1]] = f
    sizes = jnp.asarray([f.shape[:2] for f in frames], jnp.int32)
    fills = jax.jit(jax.vmap(frame_mean_fill))(jnp.asarray(canvas), sizes)
    crop = jax.jit(jax.vmap(crop_and_resize, in_axes=(0, 0, 0, None, 0, 0)), static_argnums=3)
    cases = [([10.0, 20.0], 50), ([60.5, 45.2], 131), ([119.0, 170.0], 400), ([-300.0, 5.0], 90),
             ([63.0, 160.0], 33)]
    for center, side in cases:
        ours = crop(jnp.asarray(canvas), jnp.asarray([center, center], jnp.float32),
                    jnp.asarray([side, side]), 127, fills, sizes)
        for j, f in enumerate(frames):
            np.testing.assert_array_equal(np.asarray(fills[j]), np.asarray(frame_mean_fill(f)))
            alone = crop_and_resize(jnp.asarray(f), jnp.asarray(center, jnp.float32), side, 127,
                                    frame_mean_fill(jnp.asarray(f)))
            np.testing.assert_array_equal(np.asarray(ours[j]), np.asarray(alone))
