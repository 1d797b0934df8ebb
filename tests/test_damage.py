"""Tests for dcgan_complete.damage: every kind draws something, the label covers what changed,
the same seed gives the same damage, the old-photo look is the same on both sides."""
import numpy as np
import pytest
from scipy import ndimage

from dcgan_complete import damage


def photo(h=120, w=160, seed=0):
    """A mid-tone photo-like image: smooth gradients with some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([90 + 80 * x, 110 + 60 * y, 100 + 40 * (x - y)], axis=2)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", damage.DAMAGE_KINDS)
def test_every_kind_draws_something_and_the_label_is_what_changed(kind):
    image = photo()
    found = [damage.damage_photo(image, rng=seed, kinds=(kind,), look=False, scene_lines=0)
             for seed in range(4)]
    assert any(r.damage.mean() > 0.001 for r in found), kind
    for r in found:
        assert r.damaged.shape == image.shape and r.damaged.dtype == np.uint8
        assert r.damage.shape == image.shape[:2] and r.damage.dtype == bool
        assert r.kinds == (kind,)
        np.testing.assert_array_equal(r.clean, image)
        change = np.abs(r.damaged.astype(int) - image.astype(int)).max(axis=2)
        # rounding to uint8 moves a change by at most half a level
        assert np.all(change[r.damage] >= damage.LABEL_MIN_CHANGE - 1)
        assert np.all(change[~r.damage] <= damage.LABEL_MIN_CHANGE)


def test_the_same_seed_gives_the_same_damage_and_another_seed_other_damage():
    image = photo()
    a = damage.damage_photo(image, rng=7)
    b = damage.damage_photo(image, rng=7)
    c = damage.damage_photo(image, rng=8)
    np.testing.assert_array_equal(a.damaged, b.damaged)
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.damage, b.damage)
    assert a.kinds == b.kinds
    assert not np.array_equal(a.damaged, c.damaged)


def test_the_look_is_the_same_on_both_sides_away_from_the_damage():
    image = photo(160, 160)
    for seed in range(6):
        r = damage.damage_photo(image, rng=seed, kinds=("scratch",))
        # blur and 8x8 JPEG blocks spread a change by a few pixels, no further
        near = ndimage.binary_dilation(r.damage, iterations=12)
        far = np.abs(r.damaged.astype(int) - r.clean.astype(int))[~near]
        assert far.mean() < 0.5, seed
        assert not np.array_equal(r.clean, image)      # the look changed the photo


def test_no_kinds_gives_a_clean_example():
    r = damage.damage_photo(photo(), rng=3, kinds=())
    assert not r.damage.any()
    np.testing.assert_array_equal(r.clean, r.damaged)


def test_thin_damage_stays_thin():
    # a 1-2 px scratch on a large photo is labelled as a thin line, not a band
    image = photo(400, 600)
    r = damage.damage_photo(image, rng=5, kinds=("scratch",), look=False, scene_lines=0)
    opened = ndimage.binary_opening(r.damage, structure=np.ones((5, 5)))
    assert r.damage.sum() > 200 and opened.sum() < 0.05 * r.damage.sum()


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), float),
                                 np.zeros((4, 40, 3), np.uint8)])
def test_bad_photos_are_refused(bad):
    with pytest.raises(ValueError, match="photo must be"):
        damage.damage_photo(bad, rng=0)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown damage kind 'mould'"):
        damage.damage_photo(photo(), rng=0, kinds=("mould",))


def test_paint_is_broad_and_flat_and_grows_with_the_photo():
    # cracks and ink are at most 6 px wide on any photo; paint and lost emulsion cover patches
    # whose inside lies far from their edge, wider on a larger photo
    deepest = {}
    for side in (96, 640):
        image = photo(side * 3 // 4, side)
        depths = []
        for seed in range(6):
            r = damage.damage_photo(image, rng=seed, kinds=("paint",), look=False, scene_lines=0)
            depths.append(ndimage.distance_transform_edt(r.damage).max())
            inside = ndimage.binary_erosion(r.damage, iterations=2)
            if inside.sum() > 50:      # one flat colour: little spread inside a patch
                assert r.damaged[inside].std(axis=0).max() < 15, seed
        deepest[side] = max(depths)
    assert deepest[640] >= 12
    assert deepest[640] > 3 * deepest[96]
