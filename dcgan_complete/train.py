"""Training: the adversarial step, the loop, checkpoints that survive anything, samples and logs.

A checkpoint is one ``ckpt-STEP.npz`` holding every variable (both networks, batch-norm
statistics, both Adam states) and the step/epoch counters.  It is written to a temporary file and
renamed, so a kill at any moment leaves either the new checkpoint or none: never a broken one.
``config.json`` beside it records the architecture; the portable ``*.weights.h5`` files are what
``complete`` loads.

Example
-------
>>> from dcgan_complete.train import TrainOptions, train
>>> train("aligned/", TrainOptions(epochs=1, checkpoint_dir="run1"))  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from dcgan_complete import data
from dcgan_complete.errors import DcganError
from dcgan_complete.images import image_grid, write_image
from dcgan_complete.model import (CONFIG_FILE, ModelConfig, build_discriminator, build_generator,
                                  export_weights, resolve_precision)

CHECKPOINT_PATTERN = re.compile(r"^ckpt-(\d{8})\.npz$")
SAMPLE_GRID = 64  # an 8x8 grid
LOG_EVERY = 10


@dataclasses.dataclass
class TrainOptions:
    """Every option of ``dcgan-complete train`` except the dataset (defaults match the CLI)."""

    epochs: int = 25
    max_steps: int | None = None
    batch_size: int = 64
    image_size: int = 64
    z_dim: int = 100
    gf_dim: int = 64
    df_dim: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    g_steps: int = 2
    checkpoint_dir: str = "checkpoint"
    sample_dir: str | None = None
    log_dir: str | None = None
    sample_every: int = 100
    checkpoint_every: int = 500
    keep: int = 3
    seed: int | None = None
    precision: str = "auto"
    progress: bool = True

    @property
    def model_config(self):
        return ModelConfig(image_size=self.image_size, z_dim=self.z_dim, gf_dim=self.gf_dim,
                           df_dim=self.df_dim)


# Map ModelConfig fields to the CLI options that set them, for error messages.
_OPTION_NAMES = {"image_size": "--image-size", "z_dim": "--z-dim", "gf_dim": "--gf-dim",
                 "df_dim": "--df-dim"}


class GAN:
    """The two networks, their optimisers and the compiled training step."""

    def __init__(self, config: ModelConfig, lr=2e-4, beta1=0.5, g_steps=2, precision="float32",
                 seed=None):
        import keras

        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.config = config
        self.g_steps = g_steps
        self.precision = precision = resolve_precision(precision)
        self.generator = build_generator(config, precision)
        self.discriminator = build_discriminator(config, precision)
        self.g_opt = keras.optimizers.Adam(lr, beta_1=beta1)
        self.d_opt = keras.optimizers.Adam(lr, beta_1=beta1)
        self.g_opt.build(self.generator.trainable_variables)
        self.d_opt.build(self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed if seed is not None else
                                                 np.random.SeedSequence().entropy % 2 ** 63)
        self._step = tf.function(self._train_step)

    def variables(self):
        """Every variable a checkpoint must hold, in a fixed order, keyed by a stable name."""
        groups = (("g", self.generator.weights), ("d", self.discriminator.weights),
                  ("g_opt", self.g_opt.variables), ("d_opt", self.d_opt.variables))
        return {f"{prefix}/{i:03d}": v for prefix, vs in groups for i, v in enumerate(vs)}

    def sample_z(self, n):
        return self.rng.uniform((n, self.config.z_dim), -1.0, 1.0)

    def train_step(self, real):
        """One discriminator update and ``g_steps`` generator updates on a batch in [-1, 1]."""
        return self._step(real)

    def _train_step(self, real):
        batch = tf.shape(real)[0]
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        z = self.sample_z(batch)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            real_logits = tf.cast(self.discriminator(real, training=True), tf.float32)
            fake_logits = tf.cast(self.discriminator(fake, training=True), tf.float32)
            d_loss = (tf.reduce_mean(bce(tf.ones_like(real_logits), real_logits))
                      + tf.reduce_mean(bce(tf.zeros_like(fake_logits), fake_logits)))
        d_vars = self.discriminator.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

        g_vars = self.generator.trainable_variables
        for _ in range(self.g_steps):
            with tf.GradientTape() as tape:
                fake_logits = tf.cast(
                    self.discriminator(self.generator(z, training=True), training=True),
                    tf.float32)
                g_loss = tf.reduce_mean(bce(tf.ones_like(fake_logits), fake_logits))
            self.g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        return {"d_loss": d_loss, "g_loss": g_loss,
                "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def generate(self, z):
        return self.generator(z, training=False).numpy()

    def all_finite(self):
        return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in
                   self.generator.weights + self.discriminator.weights)


# ------------------------------------------------------------------------------- checkpoints
def list_checkpoints(directory):
    """Checkpoint files in ``directory``, oldest first, as (step, path)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        m = CHECKPOINT_PATTERN.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def save_checkpoint(gan: GAN, directory, step, epoch, keep=3):
    """Write ``ckpt-STEP.npz`` atomically, then delete all but the newest ``keep``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {name: v.numpy() for name, v in gan.variables().items()}
    arrays["meta"] = np.array(json.dumps({"step": step, "epoch": epoch}))
    path = directory / f"ckpt-{step:08d}.npz"
    tmp = directory / f".tmp-{os.getpid()}-{path.name}"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def restore_checkpoint(gan: GAN, path):
    """Load every variable from ``path``; returns the stored (step, epoch)."""
    with np.load(path, allow_pickle=False) as stored:
        variables = gan.variables()
        missing = set(variables) - set(stored.files)
        if missing:
            raise DcganError(f"{path} does not match this model ({len(missing)} variables missing)")
        for name, var in variables.items():
            value = stored[name]
            if tuple(value.shape) != tuple(var.shape):
                raise DcganError(f"{path}: variable {name} has shape {value.shape}, "
                                 f"the model needs {tuple(var.shape)}")
            var.assign(value)
        meta = json.loads(str(stored["meta"]))
    return meta["step"], meta["epoch"]


def check_compatible(directory, config: ModelConfig):
    """Raise a one-line DcganError naming every architecture option that differs from the model
    already trained in ``directory``; do nothing if there is none."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        return
    try:
        saved = ModelConfig.from_dict(json.loads(path.read_text())["model"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DcganError(f"{path} is unreadable ({exc}); move it away to start afresh") from None
    diffs = [f"{_OPTION_NAMES[k]} {getattr(saved, k)} (asked {getattr(config, k)})"
             for k in _OPTION_NAMES if getattr(saved, k) != getattr(config, k)]
    if diffs:
        raise DcganError(f"the checkpoint in {directory} was trained with " + ", ".join(diffs)
                         + ": pass the same options to resume, or use another --checkpoint-dir")


def write_config(directory, options: TrainOptions, dataset):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train_options = dataclasses.asdict(options)
    train_options.pop("progress")
    train_options["precision"] = resolve_precision(options.precision)
    body = {"model": options.model_config.to_dict(), "train": train_options,
            "dataset": str(dataset)}
    tmp = directory / f".tmp-{os.getpid()}-{CONFIG_FILE}"
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / CONFIG_FILE)


# ---------------------------------------------------------------------------------- the loop
@dataclasses.dataclass
class TrainResult:
    step: int
    epoch: int
    checkpoint: Path | None
    stopped: str  # "done", "interrupted"
    seconds: float
    input_wait: float  # seconds spent waiting for the next batch
    dataset: data.DatasetSummary | None = None
    history: list = dataclasses.field(default_factory=list)


class Trainer:
    """Owns one training run: data, GAN, checkpoints, samples, logs.

    ``Trainer(dataset, options).fit()`` is what ``dcgan-complete train`` does.  Building a
    Trainer resumes from the newest checkpoint in ``options.checkpoint_dir`` if there is one.
    """

    def __init__(self, dataset, options: TrainOptions):
        self.options = options
        self.dataset_root = dataset
        self.ckpt_dir = Path(options.checkpoint_dir)
        self.sample_dir = Path(options.sample_dir or self.ckpt_dir / "samples")
        self.log_dir = Path(options.log_dir or self.ckpt_dir / "logs")
        config = options.model_config
        existing = list_checkpoints(self.ckpt_dir)
        if existing:
            check_compatible(self.ckpt_dir, config)

        paths = data.find_training_images(dataset)
        self.images, self.good_paths, self.summary = data.load_images(
            paths, options.image_size, progress=options.progress, root=dataset)
        self.steps_per_epoch = len(self.good_paths) // options.batch_size
        if self.steps_per_epoch == 0:
            raise DcganError(f"--batch-size {options.batch_size} is larger than the dataset "
                             f"({len(self.good_paths)} readable images)")
        self.gan = GAN(config, options.lr, options.beta1, options.g_steps, options.precision,
                       options.seed)
        self.step, self.epoch = 0, 0
        self.last_checkpoint = None
        if existing:
            self.last_checkpoint = existing[-1][1]
            self.step, self.epoch = restore_checkpoint(self.gan, self.last_checkpoint)
        write_config(self.ckpt_dir, options, dataset)
        seed = options.seed if options.seed is not None else 0
        self.fixed_z = np.random.default_rng(seed).uniform(
            -1, 1, (SAMPLE_GRID, config.z_dim)).astype(np.float32)

    @property
    def total_steps(self):
        total = self.options.epochs * self.steps_per_epoch
        return min(total, self.options.max_steps) if self.options.max_steps else total

    def fit(self):
        """Train until ``total_steps``; returns a TrainResult.  Ctrl-C saves and returns."""
        from tqdm import tqdm

        opts = self.options
        start = time.perf_counter()
        result = TrainResult(self.step, self.epoch, self.last_checkpoint, "done", 0.0, 0.0,
                             self.summary)
        if self.step >= self.total_steps:
            self._export()
            return result
        batches = iter(data.make_dataset(self.images, self.good_paths, opts.image_size,
                                         opts.batch_size, seed=opts.seed))
        writer = tf.summary.create_file_writer(str(self.log_dir))
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", desc="train",
                   disable=not opts.progress, dynamic_ncols=True)
        images_done, t_rate = 0, time.perf_counter()
        try:
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                real = next(batches)
                result.input_wait += time.perf_counter() - t0
                metrics = {k: float(v) for k, v in self.gan.train_step(real).items()}
                if not all(np.isfinite(v) for v in metrics.values()):
                    self._stop_on_nan(metrics)
                self.step += 1
                self.epoch = self.step // self.steps_per_epoch
                images_done += opts.batch_size
                result.history.append(metrics)
                if self.step % LOG_EVERY == 0 or self.step == self.total_steps:
                    rate = images_done / max(time.perf_counter() - t_rate, 1e-9)
                    images_done, t_rate = 0, time.perf_counter()
                    with writer.as_default(step=self.step):
                        for k, v in metrics.items():
                            tf.summary.scalar(k, v)
                        tf.summary.scalar("images_per_second", rate)
                    bar.set_postfix(epoch=self.epoch + 1, d_loss=f"{metrics['d_loss']:.3f}",
                                    g_loss=f"{metrics['g_loss']:.3f}",
                                    Dx=f"{metrics['d_real']:.2f}", DGz=f"{metrics['d_fake']:.2f}",
                                    img_s=f"{rate:.0f}")
                bar.update(1)
                if self.step % opts.sample_every == 0:
                    self._sample(writer)
                if self.step % opts.checkpoint_every == 0:
                    self._checkpoint()
        except KeyboardInterrupt:
            result.stopped = "interrupted"
            # a second Ctrl-C must not break the checkpoint being written
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                self._checkpoint()
            finally:
                signal.signal(signal.SIGINT, previous)
        finally:
            bar.close()
            writer.close()
        if result.stopped == "done":
            self._checkpoint()
            self._sample(None)
        result.step, result.epoch = self.step, self.epoch
        result.checkpoint = self.last_checkpoint
        result.seconds = time.perf_counter() - start
        return result

    def _checkpoint(self):
        if self.last_checkpoint is not None and self.last_checkpoint.name == f"ckpt-{self.step:08d}.npz":
            return
        if not self.gan.all_finite():
            raise DcganError(f"weights are not finite at step {self.step}: not saved; "
                             f"the last good checkpoint is {self.last_checkpoint}")
        self.last_checkpoint = save_checkpoint(self.gan, self.ckpt_dir, self.step, self.epoch,
                                               self.options.keep)
        self._export()

    def _export(self):
        export_weights(self.ckpt_dir, self.gan.generator, self.gan.discriminator)

    def _sample(self, writer):
        samples = self.gan.generate(self.fixed_z)
        grid = image_grid(samples, cols=8)
        path = write_image(self.sample_dir / f"train_{self.step:08d}.png", grid)
        if writer is not None:
            with writer.as_default(step=self.step):
                tf.summary.image("samples", grid[None], step=self.step)
        return path

    def _stop_on_nan(self, metrics):
        bad = ", ".join(k for k, v in metrics.items() if not np.isfinite(v))
        where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                 else "no checkpoint was written yet")
        raise DcganError(f"training diverged at step {self.step + 1} ({bad} not finite); "
                         f"stopped without saving: {where}. Try a lower --lr.")


def train(dataset, options: TrainOptions | None = None):
    """Train (or resume) a DCGAN on the images under ``dataset``; prints a summary line."""
    options = options or TrainOptions()
    trainer = Trainer(dataset, options)
    say = print if options.progress else (lambda *a, **k: None)
    say(f"dataset: {trainer.summary.describe()}; precision {trainer.gan.precision}")
    if trainer.step:
        say(f"resuming from {trainer.last_checkpoint.name}: step {trainer.step}, "
            f"epoch {trainer.epoch + 1}")
    result = trainer.fit()
    if result.stopped == "interrupted":
        say(f"interrupted at step {result.step}; saved {result.checkpoint} "
            f"(run the same command to resume)")
    else:
        say(f"trained to step {result.step} ({result.epoch} epochs) in {result.seconds:.0f} s; "
            f"model in {options.checkpoint_dir}/, samples in {trainer.sample_dir}/")
    return result
