import sys
from pathlib import Path

import numpy as np
import pytest

from dcgan_complete import metrics
from dcgan_complete.images import center_crop_resize, read_image
from dcgan_complete.metrics import (PSNR_CAP_DB, SAME_PERSON_DISTANCE, FaceChecker,
                                    MissingDependencyError, psnr, ssim)

# ------------------------------------------------------------------------------------------ PSNR


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, np.full_like(a, 255)) == pytest.approx(0.0)
    # every pixel off by 1: MSE 1, PSNR = 20 log10(255)
    assert psnr(a, np.ones_like(a)) == pytest.approx(20 * np.log10(255))
    # a quarter of the values off by 2: MSE 1 again
    b = a.copy()
    b[:2, :2, :] = 2
    assert psnr(a, b) == pytest.approx(20 * np.log10(255))
    # [-1, 1] images with data_range 2: MSE 0.01 -> 10 log10(4 / 0.01)
    x = np.zeros((3, 3))
    assert psnr(x, x + 0.1, data_range=2) == pytest.approx(10 * np.log10(400))


def test_identical_images_give_the_documented_cap():
    a = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert psnr(a, a) == PSNR_CAP_DB == 100.0
    assert psnr(a, a, max_db=60) == 60.0
    assert psnr(a, a, max_db=None) == float("inf")
    # a real difference stays below the cap, and the cap only ever lowers
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert psnr(a, b) < 100 and psnr(a, b, max_db=None) == pytest.approx(psnr(a, b))


def test_psnr_with_a_mask_counts_only_the_hole():
    a = np.zeros((4, 4, 3), np.uint8)
    mask = np.ones((4, 4))          # 1 = known
    mask[1:3, 1:3] = 0              # the hole: 4 pixels
    b = a.copy()
    b[0, 0] = 255                   # a known pixel differs: ignored in the hole PSNR
    assert psnr(a, b, mask=mask) == 100.0
    b[1, 1] = 16                    # one of the 4 hole pixels off by 16: MSE 64
    assert psnr(a, b, mask=mask) == pytest.approx(10 * np.log10(255 ** 2 / 64))
    corner = np.ones((4, 4))
    corner[0, 0] = 0                # a hole where b is off by 255 in every channel: 0 dB
    assert psnr(a, b, mask=corner) == pytest.approx(0.0)
    assert psnr(a, b) > 10


@pytest.mark.parametrize("args, message", [
    ((np.zeros((4, 4)), np.zeros((4, 5))), "differ in shape"),
    ((np.zeros(4), np.zeros(4)), "expected"),
    ((np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4))), "no pixel to fill"),
    ((np.zeros((4, 4)), np.zeros((4, 4)), np.ones((3, 4))), "mask must have shape"),
    ((np.zeros((4, 4)), np.zeros((4, 4)), None, 0), "data_range"),
    ((np.zeros((4, 4)), np.zeros((4, 4)), None, 255, -1), "max_db"),
])
def test_psnr_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        psnr(*args)


# ------------------------------------------------------------------------------------------ SSIM


def test_ssim_known_values():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # constant images: no variance, so SSIM is the luminance term alone
    c1 = (0.01 * 255) ** 2
    x, y = np.full((16, 16), 100.0), np.full((16, 16), 200.0)
    assert ssim(x, y) == pytest.approx((2 * 100 * 200 + c1) / (100 ** 2 + 200 ** 2 + c1))
    # symmetric, at most 1, and an inverted image is far from the original
    b = (255 - a).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert ssim(a, b) < 0.1 < ssim(a, np.clip(a.astype(int) + 10, 0, 255)) <= 1.0


def test_ssim_rejects_small_or_mismatched_images():
    with pytest.raises(ValueError, match="at least 11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(np.zeros((16, 16)), np.zeros((16, 16, 3)))


def test_ssim_without_scikit_image_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'dcgan-complete\[eval\]'"):
        ssim(np.zeros((16, 16)), np.zeros((16, 16)))


# ------------------------------------------------------------------------------------ face checks


@pytest.fixture(scope="module")
def checker():
    return FaceChecker()


@pytest.fixture(scope="module")
def astronaut_face():
    from skimage import data

    return center_crop_resize(data.astronaut()[55:195, 155:295], 64)


def test_a_real_face_is_found_and_is_the_same_person(checker, astronaut_face):
    assert checker.face_found(astronaut_face)
    embedding = checker.embedding(astronaut_face)
    assert embedding.shape == (128,) and np.isfinite(embedding).all()
    assert checker.distance(astronaut_face, astronaut_face) == 0.0
    # the same face mirrored and darkened: still her
    darker = (astronaut_face[:, ::-1] * 0.7).astype(np.uint8)
    assert 0 < checker.distance(astronaut_face, darker) < SAME_PERSON_DISTANCE


def test_no_face_in_the_camera_man_scene_and_farther_than_her_own_variant(checker,
                                                                         astronaut_face):
    from skimage import data

    camera = center_crop_resize(np.stack([data.camera()] * 3, axis=-1), 64)
    gray = np.full((64, 64, 3), 128, np.uint8)
    assert not checker.face_found(camera) and not checker.face_found(gray)
    # Without a face the descriptor means little (these land near 0.6 from her, see the
    # FaceChecker docstring), but her own mirrored, darker copy is much closer than either.
    variant = checker.distance(astronaut_face, (astronaut_face[:, ::-1] * 0.7).astype(np.uint8))
    assert variant + 0.1 < checker.distance(astronaut_face, camera)
    assert variant + 0.1 < checker.distance(astronaut_face, gray)


def test_face_checker_validates_images(checker):
    with pytest.raises(ValueError, match="uint8"):
        checker.face_found(np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match="box"):
        checker.embedding(np.zeros((64, 64, 3), np.uint8), box=(0, 0, 10))


def test_face_found_pads_crops_whose_face_reaches_the_border(checker):
    # In this aligned sample the face fills the crop: the detector misses it unpadded.
    face = read_image(Path(__file__).resolve().parent.parent / "data/samples/obama_oval_office.png")
    unpadded = checker._aligner.face_boxes(metrics._upscaled(face, metrics.FACE_UPSCALE),
                                           upsample=0)
    assert not unpadded
    assert checker.face_found(face)
