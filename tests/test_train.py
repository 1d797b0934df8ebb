import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dcgan_complete.errors import DcganError
from dcgan_complete.images import write_image
from dcgan_complete.model import ModelConfig
from dcgan_complete.train import (GAN, TrainOptions, Trainer, list_checkpoints,
                                  restore_checkpoint, train)

from conftest import TINY, make_faces


def options(ckpt, **kw):
    base = dict(TINY, checkpoint_dir=str(ckpt), progress=False, seed=1, sample_every=5,
                checkpoint_every=5)
    base.update(kw)
    return TrainOptions(**base)


def test_checkpoints_samples_and_exports_appear(tiny_dataset, tmp_path):
    result = train(str(tiny_dataset), options(tmp_path, max_steps=12, keep=2))
    assert result.step == 12 and result.stopped == "done"
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 12]  # keep=2
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == ["train_00000005.png", "train_00000010.png", "train_00000012.png"]
    for name in ("config.json", "generator.weights.h5", "discriminator.weights.h5"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "config.json").read_text())["model"]["gf_dim"] == 8
    assert any((tmp_path / "logs").iterdir())  # TensorBoard events
    assert not list(tmp_path.glob(".tmp*"))
    assert all(np.isfinite(h["d_loss"]) for h in result.history)


def test_second_run_resumes_with_counters(tiny_dataset, tmp_path):
    first = train(str(tiny_dataset), options(tmp_path, max_steps=7, checkpoint_every=100))
    assert first.step == 7
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=13))
    assert (trainer.step, trainer.epoch) == (7, 7 // trainer.steps_per_epoch)
    # the restored weights are the saved ones
    saved = np.load(list_checkpoints(tmp_path)[-1][1])
    first_kernel = trainer.gan.generator.weights[0].numpy()
    assert np.array_equal(first_kernel, saved["g/000"])
    result = trainer.fit()
    assert result.step == 13 and len(result.history) == 6
    assert result.epoch == 13 // trainer.steps_per_epoch


def test_finished_run_does_nothing_more(tiny_dataset, tmp_path):
    train(str(tiny_dataset), options(tmp_path, max_steps=3))
    result = train(str(tiny_dataset), options(tmp_path, max_steps=3))
    assert result.step == 3 and result.history == []


def test_mismatched_checkpoint_names_the_options(tiny_dataset, tmp_path):
    train(str(tiny_dataset), options(tmp_path, max_steps=2))
    with pytest.raises(DcganError) as err:
        Trainer(str(tiny_dataset), options(tmp_path, max_steps=4, gf_dim=16, z_dim=9))
    message = str(err.value)
    assert "--gf-dim 8 (asked 16)" in message and "--z-dim 8 (asked 9)" in message
    assert "--df-dim" not in message and "\n" not in message


def test_odd_and_bad_files_are_skipped_and_counted(tmp_path):
    root = tmp_path / "data"
    faces = make_faces(10, 16)
    for i, f in enumerate(faces[:6]):
        write_image(root / "nested" / f"a{i}.PNG", f)
    write_image(root / "gray.png", faces[6].mean(axis=2).astype(np.uint8))
    rgba = np.dstack([faces[7], np.full((16, 16), 255, np.uint8)])
    write_image(root / "rgba.png", rgba)
    import imageio.v3 as iio
    iio.imwrite(root / "deep.png", faces[8][:, :, 0].astype(np.uint16) * 257)  # 16-bit gray
    write_image(root / "wide.jpg", np.concatenate([faces[9]] * 3, axis=1))  # 16x48
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("ignored")
    trainer = Trainer(str(root), options(tmp_path / "ck", max_steps=1, batch_size=4))
    s = trainer.summary
    assert (s.found, s.used, len(s.unreadable), s.resized) == (12, 10, 2, 1)
    assert trainer.images.shape == (10, 16, 16, 3) and trainer.images.dtype == np.uint8
    assert "skipped 2 unreadable" in s.describe()
    assert trainer.fit().step == 1


def test_missing_and_empty_datasets_are_clear_errors(tmp_path):
    with pytest.raises(DcganError, match="does not exist"):
        Trainer(str(tmp_path / "nope"), options(tmp_path / "ck"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DcganError, match="no .png/.jpg/.jpeg images"):
        Trainer(str(tmp_path / "empty"), options(tmp_path / "ck"))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path):
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=5))
    trainer.fit()
    good = list_checkpoints(tmp_path)[-1][1]
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=20))
    kernel = trainer.gan.discriminator.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(DcganError, match="diverged at step 6"):
        trainer.fit()
    assert list_checkpoints(tmp_path)[-1][1] == good
    gan = GAN(ModelConfig(**{k: TINY[k] for k in ("image_size", "z_dim", "gf_dim", "df_dim")}))
    assert restore_checkpoint(gan, good) == (5, 5 // trainer.steps_per_epoch)
    assert gan.all_finite()


def _spawn_training(dataset, ckpt, steps):
    code = ("import tensorflow as tf; tf.config.threading.set_intra_op_parallelism_threads(1);"
            "from dcgan_complete.train import TrainOptions, train;"
            f"r = train({str(dataset)!r}, TrainOptions(image_size=16, z_dim=8, gf_dim=8, df_dim=8, "
            f"batch_size=8, epochs=10**6, max_steps={steps}, checkpoint_every=1, sample_every=10**6, keep=2, "
            f"checkpoint_dir={str(ckpt)!r}, progress=False)); print('stopped', r.stopped, r.step)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wait_for_checkpoints(ckpt, step, proc, timeout=120):
    """Wait until a checkpoint of at least ``step`` exists; kill the process on failure."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = list_checkpoints(ckpt)
        if found and found[-1][0] >= step:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no checkpoint {step} appeared: {proc.communicate()[1].decode()[-2000:]}")


def test_kill_9_never_leaves_a_broken_checkpoint(tiny_dataset, tmp_path):
    proc = _spawn_training(tiny_dataset, tmp_path, 10 ** 6)
    try:
        _wait_for_checkpoints(tmp_path, 3, proc)
        # kill while it is writing a checkpoint every step
        time.sleep(0.37)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    gan = GAN(ModelConfig(**{k: TINY[k] for k in ("image_size", "z_dim", "gf_dim", "df_dim")}))
    for step, path in list_checkpoints(tmp_path):
        assert restore_checkpoint(gan, path)[0] == step
    # and training resumes from the newest
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=10 ** 6))
    assert trainer.step == list_checkpoints(tmp_path)[-1][0] >= 3


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tiny_dataset, tmp_path):
    proc = _spawn_training(tiny_dataset, tmp_path, 10 ** 6)
    try:
        _wait_for_checkpoints(tmp_path, 2, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    word, stopped, step = out.decode().split()
    assert stopped == "interrupted"
    step = int(step)
    assert list_checkpoints(tmp_path)[-1][0] == step
