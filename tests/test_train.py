import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dcgan_complete import train as train_module
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.images import write_image
from dcgan_complete.model import (CONFIG_FILE, DISCRIMINATOR_FILE, GENERATOR_FILE, ModelConfig,
                                  load_models)
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


def _tiny_gan():
    return GAN(ModelConfig(**{k: TINY[k] for k in ("image_size", "z_dim", "gf_dim", "df_dim")}))


def test_mismatched_checkpoint_names_the_options(tiny_dataset, tmp_path):
    train(str(tiny_dataset), options(tmp_path, max_steps=2))
    with pytest.raises(OptionError) as err:
        Trainer(str(tiny_dataset), options(tmp_path, max_steps=4, gf_dim=16, z_dim=9))
    message = str(err.value)  # the library names fields; the command line puts its flags there
    assert "gf_dim 8 (asked 16)" in message and "z_dim 8 (asked 9)" in message
    assert message.endswith("or use another checkpoint_dir")
    assert "df_dim" not in message and "--" not in message and "\n" not in message
    assert set(err.value.options) == {"gf_dim", "z_dim", "checkpoint_dir"}


def test_batch_size_larger_than_the_dataset_names_the_field(tiny_dataset, tmp_path):
    with pytest.raises(OptionError) as err:
        Trainer(str(tiny_dataset), options(tmp_path, batch_size=64))
    assert str(err.value) == "batch_size 64 is larger than the dataset (48 readable images)"
    assert err.value.format(lambda name: "--batch-size").startswith("--batch-size 64 ")


@pytest.mark.parametrize("inside", ["checkpoint_dir", "sample_dir"])
def test_output_folders_inside_the_dataset_are_not_training_data(tmp_path, inside):
    root = tmp_path / "data"
    for i, face in enumerate(make_faces(16, 16)):
        write_image(root / f"face_{i:02d}.png", face)
    folders = {"checkpoint_dir": str(tmp_path / "ck"), inside: str(root / "run")}
    used = []
    for steps in (2, 4):
        result = train(str(root), options(folders["checkpoint_dir"], max_steps=steps,
                                          sample_every=1, sample_dir=folders.get("sample_dir")))
        used.append(result.dataset.used)
    assert list(root.rglob("train_*.png"))  # the sample grids are in the dataset's folder
    assert used == [16, 16]


def test_a_full_disk_leaves_no_temporary_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=3, checkpoint_every=2))

    def savez_on_a_full_disk(file, **arrays):
        file.write(b"PK\x03\x04 the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_on_a_full_disk)
    with pytest.raises(DcganError, match=r"^cannot write .*ckpt-00000002\.npz: No space left"):
        trainer.fit()
    assert list_checkpoints(tmp_path) == []
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("damage", ["cut to half", "empty"])
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tiny_dataset, tmp_path, capsys,
                                                               damage):
    train(str(tiny_dataset), options(tmp_path, max_steps=2, checkpoint_every=1))
    newest = list_checkpoints(tmp_path)[-1][1]
    content = newest.read_bytes()
    newest.write_bytes(content[:len(content) // 2] if damage == "cut to half" else b"")
    result = train(str(tiny_dataset), options(tmp_path, max_steps=3, checkpoint_every=1))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert re.match(r"warning: skipped .*ckpt-00000002\.npz: damaged or incomplete \(.+\)$",
                    warnings[0])
    assert result.step == 3 and len(result.history) == 2  # resumed from step 1
    gan = _tiny_gan()
    for step, path in list_checkpoints(tmp_path):  # the damaged one was written again
        assert restore_checkpoint(gan, path)[0] == step


def test_config_json_is_written_with_the_first_checkpoint(tiny_dataset, tmp_path):
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=2, checkpoint_every=2))
    assert not (tmp_path / CONFIG_FILE).exists()  # a run that dies now leaves no model behind
    trainer.fit()
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["model"]["gf_dim"] == 8


def test_a_folder_of_exported_weights_is_trained_on_from_them(tiny_model_dir, tiny_dataset,
                                                              tmp_path, capsys):
    for name in (CONFIG_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    config = (tmp_path / CONFIG_FILE).read_bytes()
    _, generator, discriminator = load_models(tmp_path)
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=1))
    for mine, exported in ((trainer.gan.generator, generator),
                           (trainer.gan.discriminator, discriminator)):
        assert all(np.array_equal(a, b) for a, b in zip(mine.get_weights(),
                                                        exported.get_weights()))
    assert trainer.step == 0 and (tmp_path / CONFIG_FILE).read_bytes() == config
    assert [n for n in trainer.notes if "starting from its exported weights" in n]
    assert trainer.fit().step == 1 and list_checkpoints(tmp_path)[-1][0] == 1


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
    with pytest.raises(DcganError, match=r"no \.png, \.jpg, .* images"):
        Trainer(str(tmp_path / "empty"), options(tmp_path / "ck"))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path):
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=5))
    trainer.fit()
    good = list_checkpoints(tmp_path)[-1][1]
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=20))
    kernel = trainer.gan.discriminator.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(OptionError, match="diverged at step 6") as err:
        trainer.fit()
    assert str(err.value).endswith("Try a lower lr.")
    assert list_checkpoints(tmp_path)[-1][1] == good
    gan = _tiny_gan()
    assert restore_checkpoint(gan, good) == (5, 5 // trainer.steps_per_epoch)
    assert gan.all_finite()


def _spawn_training(dataset, ckpt):
    """``dcgan-complete train`` in a process of its own, writing a checkpoint every step."""
    tiny = [arg for k, v in TINY.items() for arg in ("--" + k.replace("_", "-"), str(v))]
    args = [sys.executable, "-m", "dcgan_complete", "train", "--dataset", str(dataset), *tiny,
            "--epochs", str(10 ** 6), "--checkpoint-every", "1", "--sample-every", str(10 ** 6),
            "--keep", "2", "--checkpoint-dir", str(ckpt), "--threads", "1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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
    proc = _spawn_training(tiny_dataset, tmp_path)
    try:
        _wait_for_checkpoints(tmp_path, 3, proc)
        # kill while it is writing a checkpoint every step
        time.sleep(0.37)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    gan = _tiny_gan()
    for step, path in list_checkpoints(tmp_path):
        assert restore_checkpoint(gan, path)[0] == step
    # and training resumes from the newest
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=10 ** 6))
    assert trainer.step == list_checkpoints(tmp_path)[-1][0] >= 3


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_save_a_checkpoint_and_exit_with_their_status(tiny_dataset, tmp_path,
                                                                         signum, status):
    proc = _spawn_training(tiny_dataset, tmp_path)
    try:
        _wait_for_checkpoints(tmp_path, 2, proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err.decode()[-2000:]
    step = int(re.search(r"interrupted at step (\d+); saved ", out.decode()).group(1))
    assert list_checkpoints(tmp_path)[-1][0] == step
    assert restore_checkpoint(_tiny_gan(), list_checkpoints(tmp_path)[-1][1])[0] == step
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_second_signal_does_not_break_the_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=10 ** 6,
                                                 checkpoint_every=10 ** 6))
    train_step, save_checkpoint = trainer.gan.train_step, train_module.save_checkpoint

    def step_then_ctrl_c(real):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(real)

    def save_amid_signals(*args, **kwargs):
        # Ctrl-C pressed again, and a scheduler's SIGTERM, while the checkpoint is written
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            pytest.fail("SIGTERM would kill the run while it writes its checkpoint")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            pytest.fail("a second signal broke the checkpoint")
        return save_checkpoint(*args, **kwargs)

    trainer.gan.train_step = step_then_ctrl_c
    monkeypatch.setattr(train_module, "save_checkpoint", save_amid_signals)
    result = trainer.fit()
    # the step under way when Ctrl-C came is finished and counted, then the run stops
    assert (result.stopped, result.exit_code, result.step) == ("interrupted", 130, 4)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers given back


def test_a_checkpoint_written_on_ctrl_c_holds_the_weights_of_its_step(tiny_dataset, tmp_path):
    """Ctrl-C landing after a step moved the weights but before it was counted: the checkpoint
    is labelled with the step its weights are at (it was one behind)."""
    trainer = Trainer(str(tiny_dataset), options(tmp_path, max_steps=10 ** 6,
                                                 checkpoint_every=10 ** 6))
    train_step, after = trainer.gan.train_step, {}

    def step_then_ctrl_c(real):
        out = train_step(real)
        after[trainer.step + 1] = [w.copy() for w in trainer.gan.generator.get_weights()]
        if trainer.step + 1 == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the weights are at step 3 now
        return out

    trainer.gan.train_step = step_then_ctrl_c
    result = trainer.fit()
    assert (result.stopped, result.step) == ("interrupted", 3)
    [(step, path)] = list_checkpoints(tmp_path)
    gan = _tiny_gan()
    assert restore_checkpoint(gan, path)[0] == step == 3
    for saved, expected in zip(gan.generator.get_weights(), after[3]):
        np.testing.assert_array_equal(saved, expected)
