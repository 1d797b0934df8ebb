"""An encoder that starts the search near the answer: E(masked image, mask) -> z.

The search of :mod:`dcgan_complete.search` spends most of its iterations getting from a random z
to the neighbourhood of the face.  An encoder trained against the frozen generator guesses that
neighbourhood in one forward pass:

- on the generator's own samples, where z is known: x = G(z) under a random mask M, the loss is
  ``|E(x M, M) - z|^2`` plus the L1 distance of G(E(...)) to x on the known pixels;
- on real aligned faces (``dataset``), where z is not known: the L1 distance of G(E(...)) to the
  whole face, plus the L1 distance of their discriminator features (its last feature map), which
  favours a guess that looks like the face over a blurred average.

Masks are drawn from :data:`~dcgan_complete.options.ENCODER_MASKS`, so one encoder serves every
kind.  The run is resumable (``CHECKPOINT_DIR/encoder/ckpt-STEP.npz``, atomic, as ``train``'s),
logs to TensorBoard (``CHECKPOINT_DIR/encoder/logs``), and writes ``encoder.weights.h5`` beside
the model with its width recorded in ``config.json``; :class:`~dcgan_complete.search.Completer`
loads it from there.  It holds the model folder for its whole length
(:class:`~dcgan_complete.files.FolderLock`): a ``train`` or ``train-encoder`` run on the same
folder meanwhile is refused.

Example
-------
>>> from dcgan_complete.encoder import train_encoder
>>> from dcgan_complete.options import EncoderOptions
>>> train_encoder(EncoderOptions(checkpoint_dir="run1", dataset="aligned/"))  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_complete import data
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import (DcganError, exit_code_of, signals_deferred, signals_ignored,
                                   signals_interrupt)
from dcgan_complete.files import (FolderLock, atomic_write, display_name, ensure_writable_dir,
                                  write_text)
from dcgan_complete.model import (CONFIG_FILE, ENCODER_FILE, build_encoder, load_models,
                                  resolve_precision)
from dcgan_complete.options import ENCODER_MASKS, EncoderOptions
from dcgan_complete.train import list_checkpoints, restore_checkpoint, save_checkpoint

ENCODER_DIR = "encoder"   # checkpoints and logs, inside the model folder
MASK_BANK = 2048          # masks drawn once, then sampled every step
LOG_EVERY = 10


class EncoderModel:
    """The encoder, its optimiser and the compiled step, against a frozen generator and
    discriminator."""

    def __init__(self, generator, discriminator, config, options: EncoderOptions, precision):
        self.options = options
        self.generator, self.config = generator, config
        self.encoder = build_encoder(config, options.ef_dim, precision)
        # the discriminator's last feature map (before Flatten and the logit)
        self.features = keras.Model(discriminator.inputs, discriminator.layers[-3].output)
        self.optimizer = keras.optimizers.Adam(options.lr, beta_1=0.5)
        self.optimizer.build(self.encoder.trainable_variables)
        self._step = tf.function(self._train_step)

    def variables(self):
        """What a checkpoint holds, keyed by stable names (see :func:`train.save_checkpoint`)."""
        groups = (("e", self.encoder.weights), ("e_opt", self.optimizer.variables))
        return {f"{prefix}/{i:03d}": v for prefix, vs in groups for i, v in enumerate(vs)}

    def train_step(self, z, fake_masks, real, real_masks):
        return self._step(z, fake_masks, real, real_masks)

    def _train_step(self, z, fake_masks, real, real_masks):
        o = self.options
        n_fake = tf.shape(z)[0]
        fake = self.generator(z, training=False)
        x = tf.concat([fake, real], axis=0)
        m = tf.concat([fake_masks, real_masks], axis=0)[..., None]
        with tf.GradientTape() as tape:
            guess = self.encoder(tf.concat([x * m, m], axis=-1), training=True)
            drawn = self.generator(guess, training=False)
            z_loss = tf.reduce_mean(tf.square(guess[:n_fake] - z))
            known = m[:n_fake]
            known_pixels = tf.reduce_sum(tf.abs(known * (drawn[:n_fake] - fake))) / \
                (3.0 * tf.reduce_sum(known) + 1e-6)
            loss = o.z_weight * z_loss + known_pixels
            real_pixels = real_features = tf.constant(0.0)
            if real.shape[0]:
                real_pixels = tf.reduce_mean(tf.abs(drawn[n_fake:] - real))
                real_features = tf.reduce_mean(tf.abs(
                    tf.cast(self.features(drawn[n_fake:], training=False), tf.float32)
                    - tf.cast(self.features(real, training=False), tf.float32)))
                loss += real_pixels + o.feature_weight * real_features
        variables = self.encoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "z_mse": z_loss, "known_l1": known_pixels,
                "real_l1": real_pixels, "real_features": real_features}


def mask_bank(size, n=MASK_BANK, kinds=ENCODER_MASKS, seed=None):
    """``n`` masks (n, size, size) float32, of the kinds in turn, random ones freshly drawn."""
    rng = np.random.default_rng(seed)
    return np.stack([mask_lib.make_mask(kinds[i % len(kinds)], size, rng=rng)
                     for i in range(n)]).astype(np.float32)


@dataclasses.dataclass
class EncoderResult:
    step: int
    stopped: str          # "done", "interrupted"
    seconds: float
    history: list
    exit_code: int = 0


class EncoderTrainer:
    """One encoder training run; building it resumes from the newest checkpoint that loads."""

    def __init__(self, options: EncoderOptions):
        self.options = options
        self.model_dir = Path(options.checkpoint_dir)
        self.run_dir = self.model_dir / ENCODER_DIR
        ensure_writable_dir(self.model_dir, "checkpoint_dir")
        ensure_writable_dir(self.run_dir, "checkpoint_dir")
        # the folder's model is this run's until it ends: not another train-encoder's, and not a
        # train run's, which would change the generator under the encoder
        self._lock = FolderLock(self.model_dir, "train-encoder", "checkpoint_dir")
        try:
            self._start(options)
        except BaseException:
            self.close()
            raise

    def _start(self, options):
        """The rest of the set-up, once the model folder is this run's."""
        self.precision = resolve_precision(options.precision)
        need_real = options.dataset is not None and options.real_fraction > 0
        self.config, generator, discriminator = load_models(
            self.model_dir, self.precision, need_discriminator=need_real)
        self.real = None
        self.notes = []
        if need_real:
            paths = data.find_training_images(options.dataset, exclude=[self.model_dir])
            images, good, self.data_summary = data.load_images(
                paths, self.config.image_size, progress=options.progress, root=options.dataset)
            self.real_batch = max(1, round(options.batch_size * options.real_fraction))
            self.real = iter(data.make_dataset(images, good, self.config.image_size,
                                               self.real_batch, seed=options.seed))
        if options.seed is not None:
            keras.utils.set_random_seed(options.seed)
        self.model = EncoderModel(generator, discriminator, self.config, options, self.precision)
        self.rng = np.random.default_rng(options.seed)
        self.masks = mask_bank(self.config.image_size, seed=options.seed)
        self.step, self.last_checkpoint = 0, None
        self._resume()

    def close(self):
        """Give up the model folder (another run may use it now); :func:`train_encoder` does
        this when it ends."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _resume(self):
        for _, path in reversed(list_checkpoints(self.run_dir)):
            try:
                self.step, _ = restore_checkpoint(self.model, path)
            except DcganError as exc:
                self.notes.append(f"warning: skipped {exc}")
                continue
            self.last_checkpoint = path
            return

    def fit(self):
        """Train to ``options.steps``; Ctrl-C or SIGTERM checkpoints and returns."""
        from tqdm import tqdm

        o = self.options
        result = EncoderResult(self.step, "done", 0.0, [])
        start = time.perf_counter()
        writer = tf.summary.create_file_writer(str(self.run_dir / "logs"))
        bar = tqdm(total=o.steps, initial=self.step, unit="step", desc="train-encoder",
                   disable=not o.progress, dynamic_ncols=True)
        with signals_interrupt():
            try:
                while self.step < o.steps:
                    with signals_deferred():  # the weights and the count move together
                        metrics = {k: float(v) for k, v in self._one_step().items()}
                        if not np.isfinite(metrics["loss"]):
                            raise DcganError(f"the encoder's loss diverged at step "
                                             f"{self.step + 1}; the last good checkpoint is "
                                             f"{self.last_checkpoint}")
                        self.step += 1
                    result.history.append(metrics)
                    if self.step % LOG_EVERY == 0:
                        with writer.as_default(step=self.step):
                            for k, v in metrics.items():
                                tf.summary.scalar(k, v)
                        bar.set_postfix_str(f"loss {metrics['loss']:.3f}, "
                                            f"z {metrics['z_mse']:.3f}")
                    bar.update()
                    if self.step % o.checkpoint_every == 0:
                        self.checkpoint()
                self.checkpoint()
            except KeyboardInterrupt as exc:
                with signals_ignored():
                    result.stopped, result.exit_code = "interrupted", exit_code_of(exc)
                    self.checkpoint()
            finally:
                bar.close()
                writer.close()
        result.step, result.seconds = self.step, time.perf_counter() - start
        return result

    def _one_step(self):
        o = self.options
        n_real = self.real_batch if self.real is not None else 0
        n_fake = o.batch_size - n_real if self.real is not None else o.batch_size
        z = self.rng.uniform(-1, 1, (n_fake, self.config.z_dim)).astype(np.float32)
        picks = self.rng.integers(0, len(self.masks), o.batch_size)
        size = self.config.image_size
        real = next(self.real) if n_real else tf.zeros((0, size, size, 3))
        return self.model.train_step(tf.constant(z), tf.constant(self.masks[picks[:n_fake]]),
                                     real, tf.constant(self.masks[picks[n_fake:]]))

    def checkpoint(self):
        """Save the run's state and export ``encoder.weights.h5`` with its config entry."""
        if self.last_checkpoint is not None and \
                self.last_checkpoint.name == f"ckpt-{self.step:08d}.npz":
            return
        self.last_checkpoint = save_checkpoint(self.model, self.run_dir, self.step, 0,
                                               self.options.keep)
        export_encoder(self.model_dir, self.model.encoder, self.options, self.step)


def export_encoder(directory, encoder, options: EncoderOptions, step):
    """Write ``encoder.weights.h5`` and record the encoder in ``config.json`` (both atomic)."""
    directory = Path(directory)
    with atomic_write(directory / ENCODER_FILE) as tmp:
        encoder.save_weights(str(tmp))
    config_path = directory / CONFIG_FILE
    body = json.loads(config_path.read_text(encoding="utf-8"))
    settings = dataclasses.asdict(options)
    for key in ("progress", "checkpoint_dir"):
        settings.pop(key)
    settings["precision"] = resolve_precision(options.precision)
    body["encoder"] = {"ef_dim": options.ef_dim, "steps": step, "masks": list(ENCODER_MASKS),
                       "train": settings}
    write_text(config_path, json.dumps(body, indent=2, sort_keys=True) + "\n")


def train_encoder(options: EncoderOptions | None = None):
    """Train (or resume) the encoder of the model in ``options.checkpoint_dir``."""
    options = options or EncoderOptions()
    say = print if options.progress else (lambda *a, **k: None)
    with EncoderTrainer(options) as trainer:
        for note in trainer.notes:
            say(note)
        real = f"; real faces from {display_name(options.dataset)}" if trainer.real else ""
        say(f"encoder for {display_name(trainer.model_dir)} ({trainer.config.image_size} px, "
            f"z {trainer.config.z_dim}), precision {trainer.precision}{real}")
        if trainer.step:
            say(f"resuming from {trainer.last_checkpoint.name}: step {trainer.step}")
        result = trainer.fit()
    if result.stopped == "interrupted":
        say(f"interrupted at step {result.step}; saved (run the same command to resume)")
    else:
        say(f"trained to step {result.step} in {result.seconds:.0f} s; encoder in "
            f"{display_name(trainer.model_dir / ENCODER_FILE)}")
    return result
