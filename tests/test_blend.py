"""Tests for dcgan_complete.blend: Poisson blending and its factorisation cache."""
import numpy as np
import pytest

from dcgan_complete import masks
from dcgan_complete.blend import PoissonBlender, poisson_blend

SIZE = 32


def plane(size=SIZE, channels=3):
    """A different linear gradient a*x + b*y + c in every channel, within [-1, 1]."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    coefficients = [(0.5, -0.3, 0.1), (-0.4, 0.2, -0.2), (0.3, 0.3, -0.5)]
    return np.stack([a * x + b * y + c for a, b, c in coefficients[:channels]], axis=2)


def hole_touching_border():
    mask = np.ones((SIZE, SIZE), np.float32)
    mask[:12, 20:] = 0  # top-right corner block, touching two borders
    mask[20:26, :8] = 0  # a block on the left border
    return mask


@pytest.mark.parametrize("mask", [masks.center_mask(SIZE), hole_touching_border(),
                                  masks.random_mask(SIZE, 0.8, rng=0)],
                         ids=["center", "border", "random"])
def test_plane_is_reproduced_exactly(mask):
    image = plane()
    out = poisson_blend(np.where(mask[..., None] == 1, image, 0.0), image, mask)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_known_pixels_are_bit_identical():
    rng = np.random.default_rng(0)
    mask = masks.irregular_mask(SIZE, rng=1)
    image = rng.uniform(-1, 1, (SIZE, SIZE, 3)).astype(np.float32)
    generated = rng.uniform(-1, 1, (SIZE, SIZE, 3)).astype(np.float32)
    out = poisson_blend(image, generated, mask)
    assert out.dtype == np.float32
    known = mask == 1
    assert np.array_equal(out[known], image[known])
    assert not np.array_equal(out[~known], generated[~known])


def test_known_pixels_outside_clip_range_are_not_clipped():
    image = np.full((8, 8, 3), 5.0)
    mask = masks.center_mask(8)
    out = poisson_blend(image, np.zeros_like(image), mask, clip=(-1, 1))
    assert np.array_equal(out[mask == 1], image[mask == 1])
    assert np.all(out[mask == 0] == 1.0)


def test_constant_offset_is_removed():
    rng = np.random.default_rng(1)
    image = rng.uniform(-0.5, 0.5, (SIZE, SIZE, 3))
    for mask in (masks.center_mask(SIZE), hole_touching_border()):
        out = poisson_blend(image, image + 0.3, mask)
        np.testing.assert_allclose(out, image, atol=1e-6)


def test_clipping():
    image = np.zeros((SIZE, SIZE, 3))
    generated = np.zeros_like(image)
    generated[12:20, 12:20] = 4.0  # a bright bump well inside the hole
    mask = masks.center_mask(SIZE)
    out = poisson_blend(image, generated, mask, clip=(-1.0, 1.0))
    assert out.max() == 1.0 and out.min() >= -1.0
    unclipped = poisson_blend(image, generated, mask, clip=None)
    assert unclipped.max() > 1.0
    narrow = poisson_blend(image, generated, mask, clip=(0.0, 0.5))
    assert narrow[mask == 0].max() == 0.5


def test_all_zero_mask_returns_generated():
    rng = np.random.default_rng(2)
    image = rng.uniform(-1, 1, (SIZE, SIZE, 3))
    generated = rng.uniform(-1, 1, (SIZE, SIZE, 3))
    out = poisson_blend(image, generated, np.zeros((SIZE, SIZE), np.float32))
    assert np.array_equal(out, generated)


def test_full_mask_returns_image():
    image = plane()
    out = poisson_blend(image, np.zeros_like(image), masks.full_mask(SIZE))
    assert np.array_equal(out, image)


def test_grayscale_and_mixed_dtypes():
    image = plane(channels=1)[..., 0].astype(np.float32)
    mask = masks.center_mask(SIZE)
    out = poisson_blend(image, image.astype(np.float64) + 0.1, mask)
    assert out.shape == image.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_cache_factorises_once_per_mask():
    rng = np.random.default_rng(3)
    blender = PoissonBlender()
    mask = masks.center_mask(SIZE)
    first = [rng.uniform(-1, 1, (SIZE, SIZE, 3)) for _ in range(2)]
    second = [rng.uniform(-1, 1, (SIZE, SIZE, 3)) for _ in range(2)]
    out_first = blender(first[0], first[1], mask)
    blender(second[0], second[1], mask.copy())
    assert len(blender.cache) == 1
    blender(second[0], second[1], hole_touching_border())
    assert len(blender.cache) == 2
    # The cached factorisation gives the same answer as a fresh one.
    assert np.array_equal(out_first, poisson_blend(first[0], first[1], mask))


def test_cache_dict_and_bound():
    cache = {}
    image = plane()
    for _ in range(3):
        poisson_blend(image, image, masks.center_mask(SIZE), cache=cache)
    assert len(cache) == 1
    blender = PoissonBlender(max_cached=2)
    for seed in range(4):
        blender(image, image, masks.random_mask(SIZE, 0.5, rng=seed))
    assert len(blender.cache) == 2


@pytest.mark.parametrize("args", [
    (np.zeros((8, 8, 3)), np.zeros((8, 8, 2)), np.ones((8, 8))),
    (np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.ones((8, 7))),
    (np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.ones((8, 8, 3))),
    (np.zeros(8), np.zeros(8), np.ones(8)),
])
def test_shape_errors(args):
    with pytest.raises(ValueError):
        poisson_blend(*args)


def test_bad_clip():
    with pytest.raises(ValueError, match="clip"):
        poisson_blend(np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4)), clip=(1, -1))
