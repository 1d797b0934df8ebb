"""The encoder: trained against the tiny model, it starts the search where the answer is."""
import json
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from dcgan_complete.cli import main
from dcgan_complete.encoder import train_encoder
from dcgan_complete.errors import Note
from dcgan_complete.images import to_uint8, write_image
from dcgan_complete.masks import center_mask, make_mask
from dcgan_complete.model import ENCODER_FILE
from dcgan_complete.options import CompleteOptions, EncoderOptions
from dcgan_complete.search import Completer, Targets
from dcgan_complete.train import list_checkpoints

SIZE = 16


@pytest.fixture(scope="module")
def encoder_model_dir(tiny_model_dir, tiny_dataset, tmp_path_factory):
    """A copy of the tiny model with an encoder trained for 300 steps."""
    folder = tmp_path_factory.mktemp("with_encoder") / "model"
    shutil.copytree(tiny_model_dir, folder)
    result = train_encoder(EncoderOptions(checkpoint_dir=str(folder), dataset=str(tiny_dataset),
                                          steps=300, batch_size=16, ef_dim=8, lr=1e-3,
                                          checkpoint_every=100, seed=0, progress=False))
    assert result.stopped == "done" and result.step == 300
    return folder


def _own_samples(model_dir, n=8, seed=5):
    """The tiny generator's own images (their z is known to lie in its range)."""
    completer = Completer.from_checkpoint(model_dir, CompleteOptions(init="random"))
    z = np.random.default_rng(seed).uniform(-1, 1, (n, completer.z_dim)).astype(np.float32)
    return to_uint8(completer.generator(z, training=False).numpy())


def test_encoder_is_written_recorded_and_resumes(encoder_model_dir, tiny_dataset):
    assert (encoder_model_dir / ENCODER_FILE).is_file()
    recorded = json.loads((encoder_model_dir / "config.json").read_text())
    assert recorded["encoder"]["ef_dim"] == 8 and recorded["encoder"]["steps"] == 300
    assert recorded["model"]["gf_dim"] == 8  # the model's own entry is kept
    assert [s for s, _ in list_checkpoints(encoder_model_dir / "encoder")][-1] == 300
    # a second run with more steps resumes (from step 300, not from 0)
    more = train_encoder(EncoderOptions(checkpoint_dir=str(encoder_model_dir), steps=305,
                                        batch_size=16, ef_dim=8, seed=1, progress=False))
    assert more.step == 305 and len(more.history) == 5


def test_encoder_z_lies_in_the_box_and_the_search_starts_there(encoder_model_dir):
    images = _own_samples(encoder_model_dir)
    masks = [center_mask(SIZE)] * len(images)
    options = dict(iterations=10, out_interval=10, seed=0)
    with_encoder = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(**options))
    assert with_encoder.init == "encoder"
    guess = with_encoder.encode(images, masks)
    assert guess.shape == (len(images), with_encoder.z_dim) and np.all(np.abs(guess) <= 1)
    starts = with_encoder.starting_points(images, masks, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(starts, guess)
    encoder_run = with_encoder.complete(images, masks)
    random_run = Completer.from_checkpoint(
        encoder_model_dir, CompleteOptions(init="random", **options)).complete(images, masks)
    first = lambda result: np.mean([t for k, it, c, p, t in result.history if it == 10])  # noqa
    assert first(encoder_run) < first(random_run)


def test_restarts_start_near_the_guess_then_at_random(encoder_model_dir):
    images = _own_samples(encoder_model_dir, n=3)
    masks = [make_mask("left", SIZE)] * 3
    completer = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(init_noise=0.1))
    guess = completer.encode(images, masks)
    starts = completer.starting_points(images, masks, 4, np.random.default_rng(0)).reshape(
        4, 3, -1)
    assert np.array_equal(starts[0], guess)
    near = [np.abs(starts[r] - guess).mean() for r in range(1, 4)]
    assert near[0] < 0.15 and near[1] < 0.15 and near[2] > 0.3  # 2 near the guess, 1 random


def test_the_anchor_holds_the_search_near_the_guess(encoder_model_dir):
    images = _own_samples(encoder_model_dir, n=4, seed=9)
    masks = [center_mask(SIZE)] * 4
    moved = {}
    for anchor in (0.0, 30.0):
        completer = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(
            anchor=anchor, iterations=20, out_interval=20, lr=0.01, seed=0, restarts=2))
        guess = completer.encode(images, masks)
        result = completer.complete(images, masks)
        moved[anchor] = np.abs(result.z - guess).mean()
        # the loss reported and minimised is the paper's plus the pull towards E's guess
        z = np.random.default_rng(1).uniform(-1, 1, guess.shape).astype(np.float32)
        c, p, t = (x.numpy() for x in completer.losses(
            tf.constant(z), Targets.build(images, masks, completer.options).anchored(guess)))
        pull = anchor * np.sum((z - guess) ** 2, axis=1)
        np.testing.assert_allclose(t, c + completer.options.lam * p + pull, rtol=1e-4)
        last = {k: t for k, it, c, p, t in result.history}  # each image's first start, at 20
        assert all(result.loss[k] <= last[k] + 1e-3 for k in range(4))
    assert moved[30.0] < 0.5 * moved[0.0]


def test_a_model_without_an_encoder_starts_at_random_with_a_note(tiny_model_dir, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        completer = Completer.from_checkpoint(tiny_model_dir, CompleteOptions(init="encoder"))
    assert completer.init == "random"
    assert any(issubclass(w.category, Note) and "no encoder" in str(w.message) for w in caught)
    write_image(tmp_path / "a.png", _own_samples(tiny_model_dir, n=1)[0])
    result = CliRunner().invoke(main, ["complete", str(tmp_path / "a.png"), "--checkpoint-dir",
                                       str(tiny_model_dir), "--iterations", "2", "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "note: this model has no encoder: the search starts from random points" in \
        result.output


def test_snapshots_are_what_shorter_searches_return(encoder_model_dir):
    images = _own_samples(encoder_model_dir, n=4)
    masks = [center_mask(SIZE)] * 4
    long = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(
        iterations=30, out_interval=20, seed=0)).complete(images, masks, snapshots=[0, 10, 30])
    assert [s[0] for s in long.snapshots] == [0, 10, 30]
    assert long.snapshots[0][1] <= long.snapshots[1][1] <= long.snapshots[2][1]
    short = Completer.from_checkpoint(encoder_model_dir, CompleteOptions(
        iterations=10, out_interval=10, seed=0)).complete(images, masks)
    np.testing.assert_allclose(long.snapshots[1][2], short.z, atol=1e-5)
    np.testing.assert_allclose(long.snapshots[2][2], long.z, atol=1e-6)


def test_train_encoder_through_the_cli(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    result = CliRunner().invoke(main, ["train-encoder", "--checkpoint-dir", str(folder),
                                       "--steps", "3", "--batch-size", "4", "--ef-dim", "4"])
    assert result.exit_code == 0, result.output
    assert "trained to step 3" in result.output and (folder / ENCODER_FILE).is_file()
    bad = CliRunner().invoke(main, ["train-encoder", "--checkpoint-dir", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "holds no trained model" in bad.output


def test_time_to_quality_sweep_scores_every_point(encoder_model_dir, tiny_dataset, tmp_path):
    result = CliRunner().invoke(main, [
        "evaluate", str(tiny_dataset), "--checkpoint-dir", str(encoder_model_dir), "--limit", "4",
        "--mask", "center", "--sweep", "5,2", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    rows = list(__import__("csv").DictReader(open(tmp_path / "s" / "sweep.csv")))
    # every start and precision, at 2 and 5 iterations
    assert {(r["init"], r["precision"], r["iterations"]) for r in rows} == {
        (i, p, n) for i in ("random", "encoder") for p in ("float32", "mixed_bfloat16")
        for n in ("2", "5")}
    for setting in {(r["init"], r["precision"]) for r in rows}:
        curve = sorted((int(r["iterations"]), float(r["seconds_per_image"]), float(r["loss"]))
                       for r in rows if (r["init"], r["precision"]) == setting)
        assert curve[0][1] < curve[1][1]           # more iterations take longer
        assert curve[1][2] <= curve[0][2] + 1e-6   # and the best loss only goes down
    assert (tmp_path / "s" / "sweep.png").stat().st_size > 10_000
    assert "time to the quality (PSNR and face found) of random starts, float32, 5 iterations" \
        in result.output
