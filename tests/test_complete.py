import csv

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

from dcgan_complete.cli import main
from dcgan_complete.complete import complete_files
from dcgan_complete.outputs import output_names
from dcgan_complete.search import CompleteOptions, Completer, Targets
from dcgan_complete.errors import DcganError
from dcgan_complete.images import read_image, write_image
from dcgan_complete.masks import center_mask, make_mask

from conftest import make_faces

SIZE = 16


@pytest.fixture(scope="module")
def faces():
    return make_faces(6, SIZE, seed=42)  # not the training images


def completer(model_dir, **kw):
    kw.setdefault("iterations", 60)
    kw.setdefault("out_interval", 20)
    kw.setdefault("seed", 0)
    return Completer.from_checkpoint(model_dir, CompleteOptions(**kw))


def test_loss_goes_down_z_stays_in_range_known_pixels_exact(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * len(faces))
    result = completer(tiny_model_dir, iterations=100).complete(faces, masks)
    first = {k: t for k, it, c, p, t in result.history if it == 20}
    # the best loss found is below where the search stood after its first chunk
    assert all(result.loss[k] < first[k] for k in range(len(faces)))
    assert np.all(np.abs(result.z) <= 1.0)
    known = masks.astype(bool)
    assert np.array_equal(result.completed[known], faces[known])
    assert not np.array_equal(result.completed[~known], faces[~known])
    assert result.completed.dtype == np.uint8 and result.completed.shape == faces.shape


def test_projection_clips_z_to_the_box(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * 2)
    result = completer(tiny_model_dir, lr=1.0, iterations=5).complete(faces[:2], masks)
    assert np.all(np.abs(result.z) <= 1.0) and np.any(np.abs(result.z) == 1.0)


def test_adam_also_reduces_the_loss(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * 3)
    result = completer(tiny_model_dir, optimizer="adam", iterations=100).complete(faces[:3], masks)
    first = [t for k, it, c, p, t in result.history if it == 20]
    assert np.all(result.loss < np.array(first))


def test_results_do_not_depend_on_batch_mates(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * 2)
    c = completer(tiny_model_dir)
    a = c.complete(faces[[0, 1]], masks)
    b = c.complete(faces[[0, 4]], masks)
    np.testing.assert_allclose(a.z[0], b.z[0], atol=1e-5)
    assert np.array_equal(a.completed[0], b.completed[0])


def test_restarts_keep_the_best_start(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * 3)
    one = completer(tiny_model_dir, restarts=1).complete(faces[:3], masks)
    three = completer(tiny_model_dir, restarts=3).complete(faces[:3], masks)
    # the first of the three starts is the single start, so three can only do better
    assert np.all(three.loss <= one.loss + 1e-4)


def test_perceptual_loss_is_per_image_not_batch_mean(tiny_model_dir, faces):
    c = completer(tiny_model_dir)
    masks = np.stack([center_mask(SIZE)] * 4)
    import tensorflow as tf
    z = tf.random.uniform((4, c.z_dim), -1, 1, seed=1)
    _, p4, _ = c.losses(z, Targets.build(faces[:4], masks, c.options))
    _, p1, _ = c.losses(z[:1], Targets.build(faces[:1], masks[:1], c.options))
    assert p4.shape == (4,)
    np.testing.assert_allclose(p4[0], p1[0], rtol=1e-5)
    logit = float(c.discriminator(c.generator(z[:1], training=False), training=False)[0, 0])
    # the search runs the networks with batch norm folded in (dcgan_complete.frozen): in
    # bfloat16 (the default here) that agrees with the Keras models to bfloat16's round-off
    np.testing.assert_allclose(p1[0], np.log(1 - 1 / (1 + np.exp(-logit))), rtol=3e-3)


def test_tolerance_stops_early(tiny_model_dir, faces):
    masks = np.stack([center_mask(SIZE)] * 2)
    result = completer(tiny_model_dir, iterations=1000, out_interval=10,
                       tolerance=1.0).complete(faces[:2], masks)
    assert result.iterations_run == 20  # the second chunk cannot improve by 100%


def test_lowres_matches_block_averages(tiny_model_dir, faces):
    masks = [make_mask("lowres", SIZE)] * 2  # the mask itself says: block averages known
    result = completer(tiny_model_dir).complete(faces[:2], masks)
    blocks = lambda x: x.astype(float).reshape(2, 2, 8, 2, 8, 3).mean(axis=(2, 4))
    # block averages of the output match the input's (up to rounding and clipping)
    assert np.abs(blocks(result.completed) - blocks(faces[:2])).max() < 3.0


def test_lowres_and_pixel_masks_share_a_batch(tiny_model_dir, faces):
    """The demo searches every mask kind in one batch: a lowres face beside a center one."""
    masks = [make_mask("lowres", SIZE), center_mask(SIZE)]
    result = completer(tiny_model_dir).complete(faces[:2], masks)
    alone = completer(tiny_model_dir).complete(faces[:1], masks[:1])
    np.testing.assert_allclose(result.z[0], alone.z[0], atol=1e-5)
    known = center_mask(SIZE).astype(bool)
    assert np.array_equal(result.completed[1][known], faces[1][known])
    # lowres: nothing is known exactly, so the masked input shows the block averages
    assert not np.array_equal(result.masked[0], faces[0])
    assert len(np.unique(result.masked[0][:8, :8].reshape(-1, 3), axis=0)) == 1


def test_files_end_to_end_with_gif_frames_and_summary(tiny_model_dir, faces, tmp_path):
    src = tmp_path / "in"
    for k, face in enumerate(faces[:3]):
        write_image(src / f"f{k}.png", face)
    out = tmp_path / "out"
    summary = complete_files(sorted(src.iterdir()), mask="random", out_dir=out,
                             checkpoint_dir=tiny_model_dir, frames=True, gif=True,
                             options=CompleteOptions(iterations=40, out_interval=10, seed=3),
                             progress=False)
    assert summary.completed == 3
    for k in range(3):
        for suffix in ("", ".masked", ".generated"):
            assert read_image(out / f"f{k}{suffix}.png").shape == (SIZE, SIZE, 3)
        assert sorted(p.name for p in (out / "frames" / f"f{k}").iterdir()) == [
            "00010.png", "00020.png", "00030.png", "00040.png"]
        gif = iio.imread(out / f"f{k}.gif", index=None)
        assert len(gif) == 1 + 4  # masked, one per out_interval (the last is the final result)
        assert np.array_equal(gif[-1][..., :3], read_image(out / f"f{k}.png"))
    assert read_image(out / "summary.png").shape[1] > 3 * SIZE * 3
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert len(rows) == 3 * 4 and set(rows[0]) == {"image", "iteration", "contextual",
                                                   "perceptual", "total"}


def test_65_images_give_65_outputs_none_black(tiny_model_dir, tmp_path):
    src = tmp_path / "in"
    for k, face in enumerate(make_faces(65, SIZE, seed=7)):
        write_image(src / f"img{k:02d}.png", face)
    out = tmp_path / "out"
    summary = complete_files(sorted(src.iterdir()), out_dir=out, checkpoint_dir=tiny_model_dir,
                             options=CompleteOptions(iterations=10, out_interval=10,
                                                     batch_size=64), progress=False)
    finals = [p for p in out.glob("img*.png") if p.name.count(".") == 1]
    assert summary.completed == 65 and len(finals) == 65
    assert min(read_image(p).mean() for p in finals) > 20  # a black image would be 0


def test_same_stem_gets_distinct_names_and_inputs_are_never_overwritten(tiny_model_dir, faces,
                                                                      tmp_path):
    assert output_names(["a/x.png", "b/x.jpg", "x_2.png"]) == ["x", "x_2", "x_2_2"]
    write_image(tmp_path / "x.masked.png", faces[0])
    with pytest.raises(DcganError, match="holds the input"):
        # an output folder that holds an input is refused before any work
        complete_files([tmp_path / "x.masked.png"], out_dir=tmp_path,
                       checkpoint_dir=tiny_model_dir,
                       options=CompleteOptions(iterations=1), progress=False)


def test_mask_directory_pairs_by_stem(tiny_model_dir, faces, tmp_path):
    for k in range(2):
        write_image(tmp_path / "in" / f"p{k}.png", faces[k])
    left = (make_mask("left", SIZE) * 255).astype(np.uint8)
    top = (make_mask("top", SIZE) * 255).astype(np.uint8)
    write_image(tmp_path / "masks" / "p0.png", left)
    write_image(tmp_path / "masks" / "p1.png", top)
    complete_files(sorted((tmp_path / "in").iterdir()), mask=str(tmp_path / "masks"),
                   out_dir=tmp_path / "out", checkpoint_dir=tiny_model_dir,
                   options=CompleteOptions(iterations=1), progress=False)
    for k, m in ((0, left), (1, top)):
        masked = read_image(tmp_path / "out" / f"p{k}.masked.png")
        known = m > 0
        assert np.array_equal(masked[known], faces[k][known])
        assert np.all(masked[~known] == 128)  # holes shown mid-gray


def test_cli_errors_are_one_line(tiny_model_dir, faces, tmp_path):
    write_image(tmp_path / "a.png", faces[0])
    runner = CliRunner()
    no_model = runner.invoke(main, ["complete", str(tmp_path / "a.png"), "--checkpoint-dir",
                                    str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert no_model.exit_code == 1 and "holds no trained model" in no_model.output
    write_image(tmp_path / "big.png", np.full((32, 32, 3), 255, np.uint8))
    wrong = runner.invoke(main, ["complete", str(tmp_path / "a.png"), "--mask",
                                 str(tmp_path / "big.png"), "--checkpoint-dir",
                                 str(tiny_model_dir), "--out", str(tmp_path / "o")])
    assert wrong.exit_code == 1 and "is 32x32 pixels" in wrong.output
    # one error line (besides the note that this model has no encoder), no traceback
    assert [line for line in wrong.output.splitlines() if not line.startswith("note:")] == [
        line for line in wrong.output.splitlines() if line.startswith("Error:")]
    assert len(wrong.output.strip().splitlines()) == 2


def test_cli_completes_and_says_where(tiny_model_dir, faces, tmp_path):
    write_image(tmp_path / "a.png", faces[0])
    write_image(tmp_path / "big.png", np.repeat(np.repeat(faces[1], 2, 0), 2, 1))
    result = CliRunner().invoke(main, ["complete", str(tmp_path / "a.png"),
                                       str(tmp_path / "big.png"), "--mask", "scratches",
                                       "--input", "crop", "--iterations", "5", "--checkpoint-dir",
                                       str(tiny_model_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "completed 2 image(s)" in result.output and "1 image(s) were not 16x16" in result.output
    strict = CliRunner().invoke(main, ["complete", str(tmp_path / "big.png"), "--strict",
                                       "--checkpoint-dir", str(tiny_model_dir),
                                       "--out", str(tmp_path / "o2")])
    assert strict.exit_code == 1 and "without --strict it would be resized" in strict.output


def test_precision_default_is_auto_bfloat16_where_the_cpu_has_it(tiny_model_dir):
    """The README: complete, evaluate and demo run mixed bfloat16 on CPUs with native bfloat16
    (AVX512-BF16 or AMX) and no GPU, float32 elsewhere."""
    assert CompleteOptions().precision == "auto"
    flags = open("/proc/cpuinfo").read()
    expected = "mixed_bfloat16" if "avx512_bf16" in flags or "amx_bf16" in flags else "float32"
    completer = Completer.from_checkpoint(tiny_model_dir, CompleteOptions())
    assert completer.generator.layers[0].dtype_policy.name == expected
