"""`complete --variants N`: several fills to choose from, and the spread map of where they differ.

The tiny 16 px model of conftest fills the holes (from random starts, and from a quickly trained
encoder's guess); photos are scikit-image's astronaut, as in test_photo, with dlib's real
detector and landmarks; `--mask auto` runs the bundled damage detector on a drawn crack.
"""
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data

from dcgan_complete.cli import main
from dcgan_complete.damage import damage_photo
from dcgan_complete.encoder import train_encoder
from dcgan_complete.errors import OptionError
from dcgan_complete.images import read_image, write_image
from dcgan_complete.masks import center_mask
from dcgan_complete.options import CompleteOptions, EncoderOptions
from dcgan_complete.outputs import output_names
from dcgan_complete.photo import PhotoRepairer
from dcgan_complete.search import Completer
from dcgan_complete.variants import spread_map, spread_picture

from conftest import make_faces
from test_photo import astronaut_photo, damage

SEARCH = dict(iterations=20, out_interval=10, seed=0)


@pytest.fixture(scope="module")
def encoder_model_dir(tiny_model_dir, tiny_dataset, tmp_path_factory):
    """A copy of the tiny model with a (briefly trained) encoder: the default start."""
    folder = tmp_path_factory.mktemp("variants_encoder") / "model"
    shutil.copytree(tiny_model_dir, folder)
    train_encoder(EncoderOptions(checkpoint_dir=str(folder), dataset=str(tiny_dataset),
                                 steps=20, batch_size=16, ef_dim=8, checkpoint_every=20,
                                 seed=0, progress=False))
    return folder


@pytest.fixture(scope="module")
def faces():
    images = make_faces(5, 16, seed=3)
    return images, [center_mask(16)] * len(images)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def complete_args(model, *args):
    return ["complete", *args, "--checkpoint-dir", model, "--iterations", "20",
            "--out-interval", "10", "--init", "random", "--seed", "0"]


@pytest.mark.parametrize("init", ["random", "encoder"])
def test_variants_differ_in_the_hole_and_keep_every_known_pixel(init, faces, tiny_model_dir,
                                                                encoder_model_dir):
    images, masks = faces
    model = encoder_model_dir if init == "encoder" else tiny_model_dir
    completer = Completer.from_checkpoint(model, CompleteOptions(init=init, variants=3,
                                                                 **SEARCH))
    assert completer.init == init
    result = completer.complete(images, masks)
    assert result.variants.shape == result.variant_generated.shape == (5, 3, 16, 16, 3)
    assert result.variants.dtype == np.uint8 and result.variant_loss.shape == (5, 3)
    hole = masks[0] < 0.5
    for k in range(len(images)):
        fills = result.variants[k]
        assert (fills[:, ~hole] == images[k][~hole]).all()
        for a in range(3):
            for b in range(a + 1, 3):
                assert np.abs(fills[a][hole].astype(int) - fills[b][hole]).mean() > 0.5, (k, a, b)


def test_variant_0_is_the_search_without_variants(faces, encoder_model_dir):
    images, masks = faces
    # two images a batch: the other fills' starts must not shift the next batch's usual ones
    one = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(batch_size=2, **SEARCH))
    plain = one.complete(images, masks)
    assert plain.variants is plain.variant_generated is plain.variant_loss is None
    four = one.with_options(CompleteOptions(batch_size=2, variants=4, **SEARCH))
    result = four.complete(images, masks)
    assert np.array_equal(result.z, plain.z) and np.array_equal(result.loss, plain.loss)
    assert np.array_equal(result.completed, plain.completed)
    assert np.array_equal(result.variants[:, 0], plain.completed)
    assert np.array_equal(result.variant_generated[:, 0], plain.generated)
    assert np.array_equal(result.variant_loss[:, 0], plain.loss)
    part = result.select(slice(1, 3))
    assert np.array_equal(part.variants, result.variants[1:3])
    assert np.array_equal(part.variant_loss, result.variant_loss[1:3])


def test_the_spread_is_0_outside_the_hole_and_positive_inside(faces, tiny_model_dir):
    images, masks = faces
    completer = Completer.from_checkpoint(tiny_model_dir, CompleteOptions(
        init="random", variants=4, **SEARCH))
    result = completer.complete(images, masks)
    hole = masks[0] < 0.5
    for fills in result.variants:
        spread = spread_map(fills, hole)
        assert spread.dtype == np.float32 and spread.shape == (16, 16)
        assert (spread[~hole] == 0).all() and spread[hole].mean() > 0
        assert 0 <= spread.max() <= 0.5
        # the known pixels are the same in every fill: no spread there even without the hole
        assert (spread_map(fills)[~hole] == 0).all()
        picture = spread_picture(spread, fills[0])
        assert picture.shape == (16, 16, 3) and picture.dtype == np.uint8


def test_cli_writes_the_variants_and_the_spread_of_a_crop(tiny_model_dir, tmp_path):
    for k, image in enumerate(make_faces(2, 16, seed=4)):
        write_image(tmp_path / "in" / f"face{k}.png", image)
    result = run(*complete_args(tiny_model_dir, tmp_path / "in" / "face0.png",
                                tmp_path / "in" / "face1.png", "--variants", "3",
                                "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "3 variants each" in result.output, result.output
    out = tmp_path / "out"
    for name in ("face0", "face1"):
        fills = [read_image(out / f"{name}.variant{k}.png") for k in (1, 2, 3)]
        assert all(f.shape == (16, 16, 3) for f in fills)
        assert np.array_equal(fills[0], read_image(out / f"{name}.png"))
        assert not np.array_equal(fills[1], fills[2])
        assert read_image(out / f"{name}.spread.png").shape == (16, 16, 3)
    assert not (out / "face0.variant4.png").exists()


def test_cli_writes_the_variants_and_the_spread_of_a_photo(tiny_model_dir, tmp_path):
    photo = astronaut_photo()
    known = damage(photo.shape[:2]) > 0
    write_image(tmp_path / "photo.png", photo)
    write_image(tmp_path / "damage.png", damage(photo.shape[:2]))
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--mask",
                                tmp_path / "damage.png", "--variants", "3",
                                "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    fills = [read_image(out / f"photo.variant{k}.png") for k in (1, 2, 3)]
    assert np.array_equal(fills[0], read_image(out / "photo.png"))
    for fill in fills:
        assert fill.shape == photo.shape and np.array_equal(fill[known], photo[known])
    assert np.abs(fills[1][~known].astype(int) - fills[2][~known]).mean() > 0
    assert read_image(out / "photo.spread.png").shape == photo.shape


def test_cli_variants_with_the_damage_found_by_the_detector(tiny_model_dir, tmp_path):
    from dcgan_complete.detector import BUNDLED_DIR

    drawn = damage_photo(np.ascontiguousarray(data.astronaut()), 2, kinds=("crack",),
                         look=False, scene_lines=0)
    write_image(tmp_path / "scan.png", drawn.damaged)
    result = run(*complete_args(tiny_model_dir, tmp_path / "scan.png", "--mask", "auto",
                                "--detector", BUNDLED_DIR, "--variants", "2",
                                "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert re.search(r"damage found in \d+\.\d+% of the pixels", result.output), result.output
    out = tmp_path / "out"
    fills = [read_image(out / f"scan.variant{k}.png") for k in (1, 2)]
    assert np.array_equal(fills[0], read_image(out / "scan.png"))
    assert fills[1].shape == drawn.damaged.shape
    assert read_image(out / "scan.spread.png").shape == drawn.damaged.shape


def test_the_photo_api_gives_the_variants_and_their_spread(tiny_model_dir):
    photo = astronaut_photo()
    mask = damage(photo.shape[:2]).astype(np.float32) / 255
    completer = Completer.from_checkpoint(tiny_model_dir, CompleteOptions(init="random",
                                                                          **SEARCH))
    one = PhotoRepairer(completer)
    plan = one.plan(photo, mask)
    [part] = one.search([plan])                      # as the web page calls it
    repair = one.finish(plan, *part, rng=0)
    assert repair.variants is None and repair.spread is None
    three = PhotoRepairer(completer.with_options(CompleteOptions(init="random", variants=3,
                                                                 **SEARCH)))
    plan = three.plan(photo, mask)
    [part] = three.search([plan])
    assert len(part) == 5 and part[4].shape == (1, 3, 16, 16, 3)
    repair3 = three.finish(plan, *part, rng=0)
    assert len(repair3.variants) == 3 and repair3.variants[0] is repair3.repaired
    assert np.array_equal(repair3.repaired, repair.repaired)   # the usual repair, unchanged
    hole = mask < 0.5
    for fill in repair3.variants:
        assert np.array_equal(fill[~hole], photo[~hole])
    assert repair3.spread.shape == hole.shape and (repair3.spread[~hole] == 0).all()
    assert repair3.spread[repair3.owner >= 0].mean() > 0      # the faces' share of the hole
    assert (repair3.spread[hole & (repair3.owner < 0)] == 0).all()  # Telea's: the same fill


@pytest.mark.parametrize("value", ["0", "9"])
def test_a_number_of_variants_out_of_range_is_one_line(value, tmp_path):
    result = run("complete", tmp_path / "missing.png", "--variants", value,
                 "--out", tmp_path / "out")
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "--variants" in errors[0] and "1<=x<=8" in errors[0], errors[0]
    with pytest.raises(OptionError, match="variants"):
        CompleteOptions(variants=int(value))


def test_variant_file_names_are_kept_apart_from_other_inputs():
    assert output_names(["a.png", "a.variant1.png", "a.spread.png"], variants=2) == \
        ["a", "a.variant1_2", "a.spread_2"]
    assert output_names(["a.png", "a.variant1.png"]) == ["a", "a.variant1"]
