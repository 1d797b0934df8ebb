"""Tests for dcgan_complete.masks: every kind, reading mask files, pairing, context weights."""
import numpy as np
import pytest

from dcgan_complete import images, masks

SIZE = 64


def missing_fraction(mask):
    return float((mask == 0).mean())


@pytest.mark.parametrize("kind", masks.MASK_KINDS)
def test_every_kind_is_a_binary_float32_square(kind):
    mask = masks.make_mask(kind, SIZE, rng=0)
    # lowres knows one average per 8x8 block: its mask has one value per block
    assert mask.shape == ((SIZE // 8,) * 2 if kind == "lowres" else (SIZE, SIZE))
    assert mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}


@pytest.mark.parametrize("kind, expected", [
    ("center", 0.25), ("random", 0.8), ("left", 0.5), ("right", 0.5), ("top", 0.5),
    ("bottom", 0.5), ("grid", 15 / 16), ("full", 0.0), ("lowres", 1.0),
])
def test_missing_fraction_is_exact(kind, expected):
    pixels, _, _ = masks.known_parts(masks.make_mask(kind, SIZE, rng=0), SIZE)
    assert missing_fraction(pixels) == pytest.approx(expected, abs=1e-3)


def test_center_hole_is_the_middle_half():
    mask = masks.center_mask(SIZE)
    assert np.all(mask[16:48, 16:48] == 0)
    assert mask[15, 32] == 1 and mask[48, 32] == 1 and mask[32, 15] == 1 and mask[32, 48] == 1
    assert missing_fraction(masks.make_mask("center", SIZE, scale=0.125)) == pytest.approx(0.5625)


def test_random_mask_has_exact_count_and_honours_fraction():
    mask = masks.make_mask("random", 10, rng=3, fraction=0.37)
    assert int((mask == 0).sum()) == 37


def test_halves_lose_the_named_side():
    assert np.all(masks.half_mask(SIZE, "left")[:, :32] == 0)
    assert np.all(masks.half_mask(SIZE, "left")[:, 32:] == 1)
    assert np.all(masks.half_mask(SIZE, "right")[:, 32:] == 0)
    assert np.all(masks.half_mask(SIZE, "top")[:32] == 0)
    assert np.all(masks.half_mask(SIZE, "bottom")[32:] == 0)
    assert np.all(masks.half_mask(SIZE, "bottom")[:32] == 1)


def test_grid_keeps_the_lattice_rows_and_columns():
    mask = masks.grid_mask(8, step=4)
    known = np.argwhere(mask == 1).tolist()
    assert known == [[0, 0], [0, 4], [4, 0], [4, 4]]


def test_pattern_covers_about_a_quarter():
    for seed in range(5):
        assert missing_fraction(masks.make_mask("pattern", SIZE, rng=seed)) == pytest.approx(
            0.25, abs=0.05)
    assert missing_fraction(masks.pattern_mask(SIZE, rng=0, coverage=0.4)) == pytest.approx(
        0.4, abs=0.05)


@pytest.mark.parametrize("kind", ["scratches", "text", "irregular"])
def test_damage_masks_are_nontrivial(kind):
    for seed in range(5):
        fraction = missing_fraction(masks.make_mask(kind, SIZE, rng=seed))
        assert 0.005 < fraction < 0.6


def test_irregular_stays_within_bounds():
    fractions = [missing_fraction(masks.irregular_mask(SIZE, rng=s)) for s in range(10)]
    assert all(0.1 <= f <= 0.4 for f in fractions)


def test_scratches_are_thin():
    # A thin stroke has most of its missing pixels next to a known one.
    mask = masks.scratches_mask(SIZE, rng=1)
    hole = mask == 0
    interior = (hole[1:-1, 1:-1] & hole[:-2, 1:-1] & hole[2:, 1:-1]
                & hole[1:-1, :-2] & hole[1:-1, 2:])
    assert interior.sum() < 0.5 * hole.sum()


@pytest.mark.parametrize("kind", masks.RANDOM_KINDS)
def test_random_kinds_follow_the_seed(kind):
    first = masks.make_mask(kind, SIZE, rng=7)
    again = masks.make_mask(kind, SIZE, rng=np.random.default_rng(7))
    other = masks.make_mask(kind, SIZE, rng=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_make_mask_ignores_irrelevant_params_and_rejects_unknown_kind():
    mask = masks.make_mask("left", SIZE, scale=0.1, fraction=0.3, step=2, coverage=None)
    assert np.array_equal(mask, masks.half_mask(SIZE, "left"))
    with pytest.raises(ValueError, match="unknown mask kind"):
        masks.make_mask("donut", SIZE)


@pytest.mark.parametrize("call", [
    lambda: masks.center_mask(0),
    lambda: masks.center_mask(SIZE, scale=0.5),
    lambda: masks.random_mask(SIZE, fraction=1.5),
    lambda: masks.half_mask(SIZE, "middle"),
    lambda: masks.grid_mask(SIZE, step=0),
    lambda: masks.lowres_mask(60, block=8),
    lambda: masks.random_mask(SIZE, rng="seed"),
])
def test_invalid_parameters_raise(call):
    with pytest.raises(ValueError):
        call()


def test_load_mask_white_is_known(tmp_path):
    mask = masks.center_mask(SIZE)
    path = images.write_image(tmp_path / "mask.png", (mask * 255).astype(np.uint8))
    assert np.array_equal(masks.load_mask(path, SIZE), mask)


def test_load_mask_wrong_size(tmp_path):
    path = images.write_image(tmp_path / "mask.png", np.full((32, 48), 255, np.uint8))
    with pytest.raises(ValueError, match=r"48x32.*64x64"):
        masks.load_mask(path, SIZE)


def test_load_mask_without_known_pixel(tmp_path):
    path = images.write_image(tmp_path / "mask.png", np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(ValueError, match="no known pixel"):
        masks.load_mask(path, SIZE)


def test_masks_for_images_by_kind():
    paths = ["a/x.jpg", "b/y.jpg", "c/z.png"]
    random = masks.masks_for_images(paths, "random", SIZE, rng=0)
    assert len(random) == 3 and not np.array_equal(random[0], random[1])
    again = masks.masks_for_images(paths, "random", SIZE, rng=0)
    assert all(np.array_equal(a, b) for a, b in zip(random, again))
    center = masks.masks_for_images(paths, "center", SIZE, scale=0.125)
    assert all(np.array_equal(m, masks.center_mask(SIZE, 0.125)) for m in center)


def test_masks_for_images_one_file(tmp_path):
    mask = masks.half_mask(SIZE, "top")
    path = images.write_image(tmp_path / "one.png", (mask * 255).astype(np.uint8))
    result = masks.masks_for_images(["x.jpg", "y.jpg"], str(path), SIZE)
    assert len(result) == 2 and all(np.array_equal(m, mask) for m in result)


def test_masks_for_images_directory_pairs_by_stem(tmp_path):
    left, right = masks.half_mask(SIZE, "left"), masks.half_mask(SIZE, "right")
    images.write_image(tmp_path / "masks" / "alice.png", (left * 255).astype(np.uint8))
    images.write_image(tmp_path / "masks" / "bob.png", (right * 255).astype(np.uint8))
    result = masks.masks_for_images([tmp_path / "in" / "bob.jpg", "faces/alice.jpeg"],
                                    tmp_path / "masks", SIZE)
    assert np.array_equal(result[0], right)
    assert np.array_equal(result[1], left)
    with pytest.raises(ValueError, match="carol"):
        masks.masks_for_images(["alice.jpg", "carol.jpg"], tmp_path / "masks", SIZE)


def test_masks_for_images_unknown_spec(tmp_path):
    with pytest.raises(ValueError, match="neither a mask kind"):
        masks.masks_for_images(["a.jpg"], str(tmp_path / "nope.png"), SIZE)


def test_context_weights_plain_is_the_mask():
    mask = masks.random_mask(16, rng=0)
    assert np.array_equal(masks.context_weights(mask, "plain"), mask)


def test_context_weights_window_by_hand():
    mask = np.ones((5, 5), np.float32)
    mask[2, 2] = 0
    mask[4, 4] = 0
    # Each known pixel: unknown pixels in its 3x3 window / in-image pixels of the window
    # (9 inside, 6 on an edge, 4 in a corner).  (3, 3) sees both holes; (3, 4) and (4, 3) are on
    # the border and see only (4, 4) among 6 in-image pixels.
    n, e = 1 / 9, 1 / 6
    expected = np.array([
        [0, 0, 0, 0, 0],
        [0, n, n, n, 0],
        [0, n, 0, n, 0],
        [0, n, n, 2 * n, e],
        [0, 0, 0, e, 0],
    ], np.float32)
    weights = masks.context_weights(mask, "window", window=3)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected, atol=1e-7)


def test_context_weights_window_default_size():
    mask = masks.center_mask(SIZE)
    weights = masks.context_weights(mask, "window")  # window 7: 3 pixels either side
    assert np.all(weights[mask == 0] == 0)
    assert weights[15, 32] == pytest.approx(3 / 7)   # right next to the hole's top edge
    assert weights[12, 32] == 0                      # 4 rows away: out of reach
    assert weights[15, 15] == pytest.approx(9 / 49)  # diagonal to the corner: 3x3 of the hole


def test_context_weights_full_mask_falls_back_to_plain():
    mask = masks.full_mask(8)
    assert np.array_equal(masks.context_weights(mask, "window"), mask)


def test_context_weights_validates():
    with pytest.raises(ValueError):
        masks.context_weights(np.ones((4, 4)), "gaussian")
    with pytest.raises(ValueError):
        masks.context_weights(np.ones((4, 4)), "window", window=4)
    with pytest.raises(ValueError):
        masks.context_weights(np.ones((4, 4, 3)))
