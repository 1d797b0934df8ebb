"""`detect` and `complete --mask auto`: the bundled damage detector on real photos, through the
command line.

The photo is scikit-image's astronaut (public domain) with a crack drawn by
:func:`dcgan_complete.damage.damage_photo` (no old-photo look, so only the crack changed it);
the face model is the tiny one of conftest.
"""
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage
from skimage import data

from dcgan_complete.cli import main
from dcgan_complete.damage import DAMAGE_KINDS, damage_photo
from dcgan_complete.images import read_image, write_image

# The bundled detector on this crack (measured: recall 0.97, 0.9% flagged away from it).
MIN_RECALL = 0.8        # of the crack's pixels, found within 2 px
MAX_FAR_FLAGGED = 0.02  # of the pixels more than 5 px from the crack


@pytest.fixture(scope="module")
def cracked():
    """(photo with a crack, the crack's pixels)."""
    drawn = damage_photo(np.ascontiguousarray(data.astronaut()), 2, kinds=("crack",),
                         look=False, scene_lines=0)
    return drawn.damaged, drawn.damage


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def complete_args(model, *args):
    return ["complete", *args, "--checkpoint-dir", model, "--iterations", "2", "--init",
            "random", "--seed", "0"]


def test_detect_finds_most_of_a_crack_and_little_else(cracked, tmp_path):
    photo, crack = cracked
    write_image(tmp_path / "in" / "scan.png", photo)
    result = run("detect", tmp_path / "in" / "scan.png", "--out", tmp_path / "masks",
                 "--grow", "0", "--overlay")
    assert result.exit_code == 0, result.output
    mask = read_image(tmp_path / "masks" / "scan.png")[..., 0]
    assert mask.shape == crack.shape and set(np.unique(mask)) <= {0, 255}
    found = mask == 0                                   # black = damage
    near_found = ndimage.binary_dilation(found, iterations=2)
    assert (crack & near_found).sum() / crack.sum() >= MIN_RECALL
    far = ndimage.distance_transform_edt(~crack) > 5
    assert found[far].mean() <= MAX_FAR_FLAGGED
    assert read_image(tmp_path / "masks" / "scan.overlay.png").shape == photo.shape
    assert re.search(r"scan\.png: \d+\.\d+% of the pixels found damaged", result.output)


def test_detect_then_complete_with_the_masks_equals_complete_auto(cracked, tiny_model_dir,
                                                                  tmp_path):
    photo, _ = cracked
    write_image(tmp_path / "in" / "scan.png", photo)
    bundled = ["--detector", str(_bundled())]
    assert run("detect", tmp_path / "in" / "scan.png", "--out", tmp_path / "masks",
               *bundled).exit_code == 0
    by_hand = run(*complete_args(tiny_model_dir, tmp_path / "in" / "scan.png", "--mask",
                                 tmp_path / "masks", "--out", tmp_path / "a"))
    auto = run(*complete_args(tiny_model_dir, tmp_path / "in" / "scan.png", "--mask", "auto",
                              "--out", tmp_path / "b", *bundled))
    assert by_hand.exit_code == 0 and auto.exit_code == 0, by_hand.output + auto.output
    assert np.array_equal(read_image(tmp_path / "a" / "scan.png"),
                          read_image(tmp_path / "b" / "scan.png"))
    assert re.search(r"damage found in \d+\.\d+% of the pixels", auto.output), auto.output
    repaired = read_image(tmp_path / "b" / "scan.png")
    assert np.abs(repaired.astype(int) - photo).max() > 0   # something was repaired


def test_a_photo_without_damage_goes_through_auto_unchanged(tiny_model_dir, tmp_path):
    # a smooth, clean picture: the detector finds nothing, the run says so
    y, x = np.mgrid[0:200, 0:300]
    photo = np.stack([60 + 0.3 * x, 80 + 0.4 * y, 120 + 0.1 * (x + y)], axis=-1).astype(np.uint8)
    write_image(tmp_path / "clean.png", photo)
    result = run(*complete_args(tiny_model_dir, tmp_path / "clean.png", "--mask", "auto",
                                "--out", tmp_path / "out", "--detector", _bundled()))
    assert result.exit_code == 0, result.output
    assert "clean.png (300x200): no damage found; left as it was" in result.output
    assert np.array_equal(read_image(tmp_path / "out" / "clean.png"), photo)


def test_detect_takes_a_folder_as_its_images(tmp_path):
    # a scanner's TIFF and a PNG directly in the folder; a subfolder (earlier outputs) is not
    # searched, and a photo named again on its own counts once
    y, x = np.mgrid[0:96, 0:128]
    photo = np.stack([60 + x, 80 + y, 120 + 0 * x], axis=-1).astype(np.uint8)
    write_image(tmp_path / "scans" / "a.png", photo)
    from PIL import Image
    Image.fromarray(photo).save(tmp_path / "scans" / "b.tif")
    write_image(tmp_path / "scans" / "old" / "c.png", photo)
    (tmp_path / "scans" / "notes.txt").write_text("not a picture")
    result = run("detect", tmp_path / "scans", tmp_path / "scans" / "a.png",
                 "--out", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png", "b.png"]
    assert read_image(tmp_path / "masks" / "b.png").shape == photo.shape


@pytest.mark.parametrize("make, message", [
    (lambda tmp, model: ["complete", _photo(tmp), "--mask", "auto", "--checkpoint-dir", model,
                         "--out", tmp / "out"],
     r"^Error: finding damage needs a damage detector, and .* has none \(detector\.weights\.h5"
     r"\): train one with `dcgan-complete train-detector --out .*`, or pass the bundled one "
     r"with --detector .*weights$"),
    (lambda tmp, model: ["detect", _photo(tmp), "--detector", _damaged_detector(tmp),
                         "--out", tmp / "out"],
     r"^Error: .*detector\.weights\.h5: damaged or not a detector"),
    (lambda tmp, model: ["detect", _photo(tmp), "--threshold", "1", "--out", tmp / "out"],
     r"Invalid value for '--threshold': 1\.0 is not in the range 0<x<1"),
    (lambda tmp, model: ["detect", _photo(tmp), "--detector", tmp / "nowhere",
                         "--out", tmp / "out"],
     r"^Error: no damage detector in .*nowhere \(no detector\.weights\.h5\)$"),
], ids=["model-without-detector", "damaged-detector", "threshold-outside", "no-detector-there"])
def test_bad_detector_input_gets_one_line(make, message, tiny_model_dir, tmp_path):
    result = run(*make(tmp_path, tiny_model_dir))
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and re.search(message, errors[0]), result.output
    assert not (tmp_path / "out" / "photo.png").exists()


def _bundled():
    from dcgan_complete.detector import BUNDLED_DIR

    return BUNDLED_DIR


def _photo(tmp):
    write_image(tmp / "photo.png", np.ascontiguousarray(data.astronaut()[:128, :160]))
    return tmp / "photo.png"


def _damaged_detector(tmp):
    import shutil

    folder = tmp / "broken"
    folder.mkdir()
    shutil.copy(_bundled() / "detector.json", folder / "detector.json")
    (folder / "detector.weights.h5").write_bytes(
        (_bundled() / "detector.weights.h5").read_bytes()[:5000])
    return folder


def test_train_detector_then_detect_with_it(tmp_path):
    """A tiny detector trained for a few steps through the command line; `detect` uses it and
    writes a mask of the photo's size."""
    photos = tmp_path / "photos"
    for k in range(3):
        write_image(photos / f"p{k}.png", np.ascontiguousarray(data.astronaut()[::4, ::4]))
    result = run("train-detector", photos, "--out", tmp_path / "det", "--steps", "3",
                 "--tile", "32", "--batch-size", "2", "--base-filters", "4", "--levels", "2",
                 "--checkpoint-every", "2", "--seed", "0", "--augment", "0.5")
    assert result.exit_code == 0, result.output
    assert "done at step 3" in result.output
    write_image(tmp_path / "scan.png", np.ascontiguousarray(data.astronaut()[:100, :150]))
    result = run("detect", tmp_path / "scan.png", "--detector", tmp_path / "det",
                 "--out", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "masks" / "scan.png").shape == (100, 150, 3)


def test_evaluate_detect_scores_the_detector_and_the_repairs(tiny_model_dir, tmp_path):
    photos = tmp_path / "clean"
    write_image(photos / "a.png", np.ascontiguousarray(data.astronaut()[::2, ::2]))
    result = run("evaluate", photos, "--detect", "--checkpoint-dir", tiny_model_dir,
                 "--detector", _bundled(), "--iterations", "2", "--init", "random",
                 "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "report" / "summary.csv").read_text().splitlines()
    fields = rows[0].split(",")
    values = dict(zip(fields, rows[1].split(",")))
    assert values["photos"] == "1"
    assert 0 <= float(values["f1"]) <= 1 and 0 <= float(values["flagged_clean"]) <= 1
    # what --mask auto repaints of the photo as it is: what is flagged, grown by --grow
    assert float(values["flagged_original"]) <= float(values["repainted_original"]) <= 1
    # the true mask's repair is closer to the undamaged print than the damage is
    assert float(values["psnr_true_mask"]) > float(values["psnr_damaged"])
    assert "auto recovers" in result.output
    # per_photo.csv: which photo, which kinds of damage, and how each went
    per_photo = (tmp_path / "report" / "per_photo.csv").read_text().splitlines()
    assert len(per_photo) == 2
    row = dict(zip(per_photo[0].split(","), per_photo[1].split(",")))
    assert row["photo"] == "a.png"
    assert row["kinds"] and set(row["kinds"].split("+")) <= set(DAMAGE_KINDS)
    assert 0 < float(row["damage_share"]) < 1
    for field in ("f1", "psnr_auto", "repainted_original", "auto_share_of_gain"):
        assert row[field] == values[field]       # one photo: its row is the summary
    bad = run("evaluate", photos, "--detect", "--photos", "--out", tmp_path / "r2")
    assert bad.exit_code == 1 and "--detect and --photos exclude each other" in bad.output
