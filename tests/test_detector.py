"""Tests for dcgan_complete.detector: a tiny detector trains and resumes, its output has the
photo's size whatever the tiling, masks follow the project's convention, bad files get one line."""
import dataclasses

import numpy as np
import pytest

from dcgan_complete import detector as det
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.options import DetectOptions
from dcgan_complete.images import to_float, write_image

TINY = dict(tile=32, batch_size=2, base_filters=4, levels=2, precision="float32",
            progress=False, seed=0)


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([60 + 150 * x, 80 + 120 * y, 120 + 0 * x], axis=2)
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_image(root / f"photo_{i}.png", photo(64 + 16 * i, 80, seed=i))
    return root


@pytest.fixture(scope="module")
def tiny_detector_dir(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("detector")
    result = det.train_detector([photo_dir], det.DetectorOptions(
        out_dir=str(out), steps=3, checkpoint_every=2, **TINY))
    assert result.stopped == "done" and result.step == 3
    return out


def test_a_tiny_detector_trains_and_its_output_has_the_photos_size(tiny_detector_dir):
    assert (tiny_detector_dir / det.DETECTOR_FILE).is_file()
    assert (tiny_detector_dir / "ckpt-00000003.npz").is_file()
    detector = det.load_detector(tiny_detector_dir, precision="float32")
    for h, w in ((45, 70), (1, 5), (130, 97)):
        p = det.detect_damage(photo(h, w), detector)
        assert p.shape == (h, w) and p.dtype == np.float32
        assert np.all((p >= 0) & (p <= 1))
    # a path works as well as a loaded detector
    assert det.detect_damage(photo(20, 30), tiny_detector_dir).shape == (20, 30)


def test_training_resumes_from_the_last_checkpoint(photo_dir, tmp_path):
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=2, checkpoint_every=10, **TINY)
    assert det.train_detector([photo_dir], options).step == 2
    more = det.train_detector([photo_dir], dataclasses.replace(options, steps=4))
    assert more.step == 4 and len(more.history) == 2
    with pytest.raises(OptionError, match="pass the same base_filters and levels"):
        det.train_detector([photo_dir], dataclasses.replace(options, steps=5, base_filters=8))


def test_ctrl_c_after_a_step_saves_that_steps_weights_under_its_number(photo_dir, tmp_path,
                                                                        monkeypatch):
    """A signal landing after a step moved the weights but before it was counted: the run
    stops with that step counted, and the detector saved holds its weights."""
    import os
    import signal

    from dcgan_complete.train import list_checkpoints

    real, after = det.DetectorModel.train_step, {}

    def step_then_ctrl_c(model, x, y):
        out = real(model, x, y)
        after[len(after) + 1] = [w.copy() for w in model.network.get_weights()]
        if len(after) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the weights are at step 3 now
        return out

    monkeypatch.setattr(det.DetectorModel, "train_step", step_then_ctrl_c)
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=10, checkpoint_every=100, **TINY)
    result = det.train_detector([photo_dir], options)
    assert (result.stopped, result.step) == ("interrupted", 3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3]
    saved = det.load_detector(tmp_path, "float32").model.get_weights()
    for got, expected in zip(saved, after[3]):
        np.testing.assert_array_equal(got, expected)


def test_tiles_give_what_one_window_gives():
    # the margin covers this network's reach, so tiling changes nothing
    detector = det.new_detector(base_filters=4, levels=2)
    image = photo(75, 130)
    tiled = det.detect_damage(image, detector, tile=32, margin=16)
    whole = det.detect_damage(image, detector, tile=1024, margin=16)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_a_large_photo_gets_a_second_coarse_pass_at_its_size():
    detector = det.new_detector(base_filters=4, levels=2)
    image = photo(150, 200)
    fine = det.detect_damage(image, detector, working_size=None)
    both = det.detect_damage(image, detector, working_size=64)
    assert both.shape == (150, 200) and both.dtype == np.float32
    # each pixel gets the larger of the two passes' probabilities
    assert np.all(both >= fine) and np.any(both > fine)
    # a photo within 1.25 times the working size gets none
    np.testing.assert_array_equal(det.detect_damage(image, detector, working_size=180), fine)


def test_damage_mask_is_white_where_intact_and_grows():
    p = np.zeros((9, 9), np.float32)
    p[4, 4], p[0, 0] = 0.9, 0.4
    mask = det.damage_mask(p)
    assert mask.dtype == np.float32 and mask[4, 4] == 0 and mask.sum() == 80
    assert det.damage_mask(p, threshold=0.3).sum() == 79
    grown = det.damage_mask(p, grow=2)
    assert grown[4, 2] == 0 and grown[4, 1] == 1 and grown[2, 2] == 1


@pytest.mark.parametrize("threshold", [0, 1, -0.5, 1.5])
def test_a_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(OptionError, match=r"threshold must be in \(0, 1\)"):
        det.damage_mask(np.zeros((4, 4)), threshold=threshold)


def test_scores_count_a_pixel_within_the_tolerance():
    truth = np.zeros((20, 20), bool)
    truth[10, 2:18] = True                      # a 1 px line
    found = np.zeros((20, 20), np.float32)
    found[12, 2:18] = 1.0                       # found 2 px off
    s = det.detection_scores(found, truth, tolerance=2)
    assert s["precision"] == 1 and s["recall"] == 1 and s["iou"] == 0
    s = det.detection_scores(found, truth, tolerance=1)
    assert s["precision"] == 0 and s["recall"] == 0
    clean = det.detection_scores(found, np.zeros_like(truth))
    assert clean["flagged"] == pytest.approx(16 / 400)


def test_a_folder_without_a_detector_is_one_line(tmp_path):
    with pytest.raises(DcganError, match="no damage detector in .* \\(no detector.weights.h5\\)"):
        det.load_detector(tmp_path)


def test_a_damaged_detector_file_is_one_line(tiny_detector_dir, tmp_path):
    (tmp_path / det.DETECTOR_CONFIG).write_bytes((tiny_detector_dir / det.DETECTOR_CONFIG)
                                                 .read_bytes())
    good = (tiny_detector_dir / det.DETECTOR_FILE).read_bytes()
    (tmp_path / det.DETECTOR_FILE).write_bytes(good[:len(good) // 2])
    with pytest.raises(DcganError, match="damaged or not a detector") as info:
        det.load_detector(tmp_path / det.DETECTOR_FILE)
    assert "\n" not in str(info.value)


def test_the_held_out_photos_are_a_fixed_share_of_each_set():
    lfw = [f"data/lfw/Person_{i}/Person_{i}_0001.jpg" for i in range(2000)]
    raw = [f"data/raw_photos/with_faces/photo_{i}.jpg" for i in range(600)]
    assert 0.03 < np.mean([det.is_held_out(p) for p in lfw]) < 0.07
    assert 0.25 < np.mean([det.is_held_out(p) for p in raw]) < 0.42
    # a person's photos are all on the same side
    assert det.is_held_out("lfw/Ann/Ann_0001.jpg") == det.is_held_out("lfw/Ann/Ann_0002.jpg")
    assert not det.is_held_out("my_photos/any.jpg")


@pytest.fixture(scope="module")
def cracked_dir(tmp_path_factory):
    """A folder of one 'clean' photo that holds a crack: what a detector flags there is, for
    the training, a false alarm to learn from."""
    from skimage import data

    from dcgan_complete.damage import damage_photo

    root = tmp_path_factory.mktemp("cracked")
    drawn = damage_photo(np.ascontiguousarray(data.astronaut()[:300, 100:400]), 3,
                         kinds=("crack",), look=False, scene_lines=0)
    write_image(root / "print.png", drawn.damaged)
    return root


def test_hard_negatives_are_tiles_around_what_a_detector_flags(cracked_dir):
    import cv2

    from dcgan_complete.images import read_image

    bundled = det.bundled_detector()
    paths, _ = det.split_photos([cracked_dir])
    crops = det.mine_hard_negatives(paths, [bundled], 64, seed=0)
    assert 1 <= len(crops) <= det.MINE_PER_PHOTO
    image = read_image(cracked_dir / "print.png")
    flagged = det.detect_damage(image, bundled) >= 0.5
    # the centre's jitter is bounded by the tile: every tile, whatever the seed, holds its part
    for seed in range(1, 6):
        crops += det.mine_hard_negatives(paths, [bundled], 64, seed=seed)
    for crop in crops:
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        # cut from the photo around something flagged there
        misfit = cv2.matchTemplate(image, crop, cv2.TM_SQDIFF)
        y, x = np.unravel_index(np.argmin(misfit), misfit.shape)
        assert np.array_equal(image[y:y + 64, x:x + 64], crop)
        assert flagged[y:y + 64, x:x + 64].any()
    again = det.mine_hard_negatives(paths, [bundled], 64, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(crops, again))  # the seed fixes them


def test_a_detector_trains_on_another_ones_false_alarms(cracked_dir, tmp_path):
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=2, checkpoint_every=10,
                                  hard_negatives=str(det.BUNDLED_DIR), hard_share=0.5, **TINY)
    assert options.hard_negatives == (str(det.BUNDLED_DIR),)
    result = det.train_detector([cracked_dir], options)
    assert result.step == 2 and result.notes == []
    assert 1 <= result.hard_negatives <= det.MINE_PER_PHOTO   # mined for the training
    sampler = det.TileSampler(det.split_photos([cracked_dir])[0], 32, rng=0,
                              negatives=[np.zeros((32, 32, 3), np.uint8)], negative_share=1.0)
    labels = []
    for _ in range(8):  # every tile comes from the negatives, half with damage drawn over it
        tile, label = sampler.sample()
        assert tile.shape == (32, 32, 3) and label.shape == (32, 32)
        labels.append(label.any())
    assert not sampler._pending and not sampler._cache   # no photo was read for them
    assert any(labels) and not all(labels)


def test_whole_photo_batches_keep_the_photos_own_border(photo_dir, tmp_path):
    """--whole-share: batches of whole photos, each resized to within half a stride of the
    batch's side and padded on the bottom and right by repeating its edge (as detect_damage
    pads a small photo), its damage label padded alike; a tiny run trains with them."""
    sampler = det.TileSampler(det.split_photos([photo_dir])[0], 64, clean_fraction=0.0, rng=1,
                              whole_share=1.0, multiple=8)
    assert sampler.whole_sizes() == [32, 48, 64]
    sides = set()
    for _ in range(6):
        x, y = sampler.batch(3)
        side = x.shape[1]
        sides.add(side)
        assert x.shape == (3, side, side, 3) and y.shape == (3, side, side, 1)
        assert side in sampler.whole_sizes()
        for image, label in zip(x, y[..., 0]):
            # the padding repeats the last row and column: at most 4 px (half a stride)
            rows = np.flatnonzero(np.abs(np.diff(image, axis=0)).max(axis=(1, 2)) > 0)
            h = rows.max() + 2
            assert side - 4 <= h <= side
            assert np.array_equal(image[h:], np.repeat(image[h - 1:h], side - h, 0))
            assert np.array_equal(label[h:], np.repeat(label[h - 1:h], side - h, 0))
    assert len(sides) > 1 and any(y.any() for y in [sampler.batch(2)[1] for _ in range(3)])
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=2, checkpoint_every=10,
                                  whole_share=0.5, **TINY)
    assert det.train_detector([photo_dir], options).step == 2


def test_augmented_photos_are_turned_and_recoloured_and_a_run_trains_with_them(photo_dir,
                                                                              tmp_path):
    """--augment: varied() turns a photo by a multiple of 90 degrees and moves its hue,
    saturation and brightness within the stated bounds; the sampler uses it."""
    image = photo(40, 64, seed=3)
    rng = np.random.default_rng(0)
    shapes, grey_means = set(), []
    for _ in range(12):
        out = det.varied(image, rng)
        assert out.dtype == np.uint8 and out.ndim == 3
        shapes.add(out.shape)
        grey_means.append(out.mean())
        # the same pixels, turned: one of the four turns of the photo matches in layout
        turns = [np.rot90(image, k) for k in range(4)]
        same = [t for t in turns if t.shape == out.shape]
        corr = max(np.corrcoef(t.mean(2).ravel(), out.mean(2).ravel())[0, 1] for t in same)
        assert corr > 0.8
    assert shapes == {(40, 64, 3), (64, 40, 3)}                # turned both ways
    assert np.ptp(grey_means) > 5                              # brightness changed
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert np.ptp(det.varied(grey, rng).astype(int), axis=2).max() <= 1   # grey stays grey
    gamma = det.AUGMENT_GAMMA
    for _ in range(10):  # brightness within the gamma's bounds either way
        v = det.varied(grey, rng).mean() / 255
        assert 0.5 ** gamma - 0.01 <= v <= 0.5 ** (1 / gamma) + 0.01
    plain = det.TileSampler(det.split_photos([photo_dir])[0], 32, rng=5)
    turned = det.TileSampler(det.split_photos([photo_dir])[0], 32, rng=5, augment=1.0)
    assert not np.array_equal(plain.batch(4)[0], turned.batch(4)[0])
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=2, checkpoint_every=10,
                                  augment=0.5, **TINY)
    assert det.train_detector([photo_dir], options).step == 2
    with pytest.raises(OptionError, match="augment"):
        det.DetectorOptions(augment=1.5)


@pytest.mark.parametrize("side, larger", [(300, 0.5), (200, 0.6)])
def test_the_mirror_view_weighs_in(cracked_dir, side, larger):
    """flip=True: on a photo at least 256 px wide each pixel takes the mean of the photo's and
    its mirror image's probabilities; on a smaller one, 0.6 of the larger and 0.4 of the
    smaller."""
    from dcgan_complete.images import read_image

    image = np.ascontiguousarray(read_image(cracked_dir / "print.png")[:side, :side])
    bundled = det.bundled_detector()
    one = det.detect_damage(image, bundled, flip=False)
    mirrored = det.detect_damage(np.ascontiguousarray(image[:, ::-1]), bundled, flip=False)
    both = det.detect_damage(image, bundled)
    high, low = np.maximum(one, mirrored[:, ::-1]), np.minimum(one, mirrored[:, ::-1])
    assert det.FLIP and not np.allclose(one, mirrored[:, ::-1], atol=0.05)  # the views differ
    np.testing.assert_allclose(both, larger * high + (1 - larger) * low, atol=1e-6)


# Torn corners on scikit-image's astronaut (public domain), drawn with these seeds: with the
# photo padded by reflection and no third pass the detector bundled before found 34% and 57% of
# them, with it 100% and 99.3%.  The one bundled now (trained on paint and lost emulsion too)
# finds 99.8% and 80% at its threshold: seed 2's white backing meets the light wall, and the
# part of it along the wall is missed; it flags 0.17% and 0.01% of the photo away from them.
@pytest.mark.parametrize("seed, share", [(1, 0.95), (2, 0.75)])
def test_the_bundled_detector_finds_a_torn_corner_at_the_photos_border(seed, share):
    from skimage import data

    from dcgan_complete.damage import damage_photo

    drawn = damage_photo(np.ascontiguousarray(data.astronaut()), seed, kinds=("tear",),
                         look=False, scene_lines=0)
    found = det.detect_damage(drawn.damaged, det.bundled_detector()) >= DetectOptions.threshold
    tear = drawn.damage
    assert tear.mean() > 0.02                       # a corner, not a nick
    assert (found & tear).sum() / tear.sum() >= share
    assert (found & ~tear).mean() <= 0.005


def test_the_third_pass_finds_the_inside_of_a_large_missing_corner():
    # scikit-image's rocket with a torn corner (seed 5): without the third pass the bundled
    # detector finds 60% of it (the torn line and what lies near it; the detector bundled
    # before: 36%), with it 99.6% (87%); what it adds away from the corner is 0.50% of the
    # photo (0.19%): lights near the corner
    from skimage import data

    from dcgan_complete.damage import damage_photo

    drawn = damage_photo(np.ascontiguousarray(data.rocket()), 5, kinds=("tear",), look=False,
                         scene_lines=0)
    bundled, tear, threshold = det.bundled_detector(), drawn.damage, DetectOptions.threshold
    without = det.detect_damage(drawn.damaged, bundled, edge_size=None) >= threshold
    found = det.detect_damage(drawn.damaged, bundled) >= threshold
    assert (without & tear).sum() / tear.sum() < 0.7
    assert (found & tear).sum() / tear.sum() >= 0.95
    assert (found & ~tear).mean() - (without & ~tear).mean() <= 0.0075


def test_the_third_pass_adds_only_flat_parts_at_the_border():
    """On the photo shrunk to edge_size, a found part counts if it touches the border and is
    flat; a textured part at the border, or a flat one inside, does not."""
    rng = np.random.default_rng(0)
    small = np.full((40, 60, 3), 128, np.uint8)
    small[:, 30:] = rng.integers(0, 255, (40, 30, 3))       # textured right half
    probabilities = np.zeros((40, 60), np.float32)
    probabilities[:10, :10] = 0.9        # flat, at the border: counts
    probabilities[15:25, 12:22] = 0.8    # flat, inside: does not
    probabilities[:10, 45:] = 0.9        # at the border, textured: does not
    kept = det._flat_at_border(probabilities, small)
    assert np.array_equal(kept[:10, :10], probabilities[:10, :10])
    assert not kept[10:].any() and not kept[:, 10:].any()


def test_a_photo_at_most_two_strides_wide_is_padded_by_reflection():
    """A 64 px aligned crop gets context around it; a larger photo gets none."""
    detector = det.new_detector(base_filters=4, levels=2)  # stride 4
    small = photo(8, 40)
    padded = np.pad(small, ((8, 8), (8, 8), (0, 0)), mode="reflect")
    inside = detector.probabilities(to_float(padded))[8:16, 8:48]
    np.testing.assert_allclose(det.detect_damage(small, detector, margin=8, flip=False), inside,
                               atol=1e-5)
    large = photo(12, 40)
    alone = detector.probabilities(to_float(large))
    np.testing.assert_allclose(det.detect_damage(large, detector, margin=8, flip=False), alone,
                               atol=1e-5)


def test_a_deeper_detector_started_from_a_trained_one_finds_what_it_found(tiny_detector_dir,
                                                                           photo_dir, tmp_path):
    """--init: a 3-level run from the 2-level detector computes the same probabilities before
    its first step (the new decoder level passes its skip through), then trains on."""
    source = det.load_detector(tiny_detector_dir, precision="float32")
    deeper = det.new_detector(TINY["base_filters"], 3)
    before = det.detect_damage(photo(64, 64), deeper, flip=False)
    det.grow_from(deeper.model, source.model)
    started = det.detect_damage(photo(64, 64), deeper, flip=False)
    expected = det.detect_damage(photo(64, 64), source, flip=False)
    assert np.allclose(started, expected, atol=1e-5)
    assert not np.allclose(before, expected, atol=1e-3)   # the fresh network differed
    options = det.DetectorOptions(out_dir=str(tmp_path), steps=1, checkpoint_every=10,
                                  **dict(TINY, levels=3, tile=64), init=str(tiny_detector_dir))
    assert det.train_detector([photo_dir], options).step == 1
    trained = det.load_detector(tmp_path, precision="float32")
    assert trained.config["levels"] == 3
    # one step moved the copied weights a little, not back to random
    moved = trained.model.get_layer("enc0").get_weights()[0] - \
        source.model.get_layer("enc0").get_weights()[0]
    assert 0 < np.abs(moved).max() < 0.05
    with pytest.raises(OptionError, match="init.*at least as many levels"):
        det.grow_from(det.new_detector(TINY["base_filters"], 1).model, source.model)
    with pytest.raises(OptionError, match="as many filters"):
        det.grow_from(det.new_detector(8, 3).model, source.model)
