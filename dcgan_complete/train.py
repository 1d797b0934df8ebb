"""Training: the adversarial step, the loop, checkpoints that survive anything, samples and logs.

A checkpoint is one ``ckpt-STEP.npz`` holding every variable (both networks, batch-norm
statistics, both Adam states) and the step/epoch counters.  Like every file the package writes it
goes through :func:`dcgan_complete.files.atomic_write`, so a kill or a full disk at any moment
leaves either the new checkpoint or none (a ``kill -9`` leaves a hidden temporary file, which the
next run removes).  One damaged anyway (cut short by a copy) is skipped, with a warning, when a
run resumes.  ``config.json`` beside it records the architecture; it is written with a run's
first checkpoint, not at its start, so a run that dies early leaves the folder as it found it.
The portable ``*.weights.h5`` files are what ``complete`` loads; a folder holding only those (and
``config.json``) is trained on from them.  A run holds its checkpoint folder until it ends
(:class:`~dcgan_complete.files.FolderLock`): a second ``train`` (or ``train-encoder``) on the
same folder is refused at its start, naming the first's PID.

On several devices or machines (:mod:`dcgan_complete.distribute`) every replica trains on its
share of the global batch with synchronized batch norm, so that N replicas train like one device
on the same batch; only the chief writes, and the checkpoints are the same files, so a run can
resume with another number of replicas.

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
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from dcgan_complete import data, distribute
from dcgan_complete.errors import (DcganError, OptionError, exit_code_of, signals_deferred,
                                   signals_ignored, signals_interrupt)
from dcgan_complete.files import (FolderLock, atomic_write, display_name, ensure_writable_dir,
                                  write_text)
from dcgan_complete.images import image_grid, write_image
from dcgan_complete.options import TrainOptions
from dcgan_complete.model import (CONFIG_FILE, DISCRIMINATOR_FILE, GENERATOR_FILE, ModelConfig,
                                  build_discriminator, build_generator, export_weights,
                                  load_models, read_config, resolve_precision)

CHECKPOINT_PATTERN = re.compile(r"^ckpt-(\d{8})\.npz$")
SAMPLE_GRID = 64  # an 8x8 grid
LOG_EVERY = 10

# The options that fix the networks' shapes: a folder's model can only be resumed with the same.
_ARCHITECTURE = tuple(f.name for f in dataclasses.fields(ModelConfig))


class GAN:
    """The two networks, their optimisers and the compiled training step.

    ``strategy`` (a ``tf.distribute`` strategy; default: the current one, one device) holds the
    variables; with several replicas batch norm is synchronized across them.
    """

    def __init__(self, config: ModelConfig, lr=TrainOptions.lr, beta1=TrainOptions.beta1,
                 g_steps=TrainOptions.g_steps, precision="float32", seed=None, strategy=None):
        import keras

        if seed is not None:
            keras.utils.set_random_seed(seed)
        self.config = config
        self.g_steps = g_steps
        self.precision = precision = resolve_precision(precision)
        self.strategy = strategy or tf.distribute.get_strategy()
        synchronized = self.strategy.num_replicas_in_sync > 1
        with self.strategy.scope():
            self.generator = build_generator(config, precision, synchronized)
            self.discriminator = build_discriminator(config, precision, synchronized)
            self.g_opt = keras.optimizers.Adam(lr, beta_1=beta1)
            self.d_opt = keras.optimizers.Adam(lr, beta_1=beta1)
            self.g_opt.build(self.generator.trainable_variables)
            self.d_opt.build(self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed if seed is not None else
                                                 np.random.SeedSequence().entropy % 2 ** 63)
        self._step = tf.function(self._distributed_step)

    def variables(self):
        """Every variable a checkpoint must hold, in a fixed order, keyed by a stable name."""
        groups = (("g", self.generator.weights), ("d", self.discriminator.weights),
                  ("g_opt", self.g_opt.variables), ("d_opt", self.d_opt.variables))
        return {f"{prefix}/{i:03d}": v for prefix, vs in groups for i, v in enumerate(vs)}

    def sample_z(self, n):
        return self.rng.uniform((n, self.config.z_dim), -1.0, 1.0)

    def train_step(self, batch):
        """One discriminator update and ``g_steps`` generator updates; returns the losses.

        ``batch`` is what the training pipeline yields, ``(images in [-1, 1], z)``, split
        between the replicas when there are several; or images alone, with z drawn here.
        """
        if not isinstance(batch, tuple):
            batch = (batch, self.sample_z(tf.shape(batch)[0]))
        return self._step(batch)

    def _distributed_step(self, batch):
        per_replica = self.strategy.run(self._replica_step, args=batch)
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in per_replica.items()}

    def _replica_step(self, real, z):
        """The step on one replica's share of the batch.  Its losses are means over that share;
        the gradients are of the loss divided by the number of replicas, which the optimiser
        sums over the replicas: the gradient of the mean over the global batch."""
        replicas = self.strategy.num_replicas_in_sync
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            real_logits = tf.cast(self.discriminator(real, training=True), tf.float32)
            fake_logits = tf.cast(self.discriminator(fake, training=True), tf.float32)
            d_loss = (tf.reduce_mean(bce(tf.ones_like(real_logits), real_logits))
                      + tf.reduce_mean(bce(tf.zeros_like(fake_logits), fake_logits)))
            d_share = d_loss / replicas
        d_vars = self.discriminator.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(d_share, d_vars), d_vars))

        g_vars = self.generator.trainable_variables
        for _ in range(self.g_steps):
            with tf.GradientTape() as tape:
                fake_logits = tf.cast(
                    self.discriminator(self.generator(z, training=True), training=True),
                    tf.float32)
                g_loss = tf.reduce_mean(bce(tf.ones_like(fake_logits), fake_logits))
                g_share = g_loss / replicas
            self.g_opt.apply_gradients(zip(tape.gradient(g_share, g_vars), g_vars))
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
    """Write ``ckpt-STEP.npz`` atomically, then delete all but the newest ``keep`` up to ``step``.

    Checkpoints of later steps are left alone: they can only be ones that did not load when this
    run resumed, and training replaces each when it reaches its step.  Counting them would delete
    the good checkpoints instead (with ``keep=1``, the one just written).
    """
    directory = Path(directory)
    arrays = {name: v.numpy() for name, v in gan.variables().items()}
    arrays["meta"] = np.array(json.dumps({"step": step, "epoch": epoch}))
    path = directory / f"ckpt-{step:08d}.npz"
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    for _, old in [c for c in list_checkpoints(directory) if c[0] <= step][:-keep]:
        old.unlink(missing_ok=True)
    return path


# What numpy's loader raises for a file that is cut short, empty or not a checkpoint.
_DAMAGED = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


def read_checkpoint(path):
    """``(arrays, step, epoch)`` of the checkpoint ``path``, read whole into memory.

    Raises
    ------
    DcganError
        Naming the file, if it is empty, cut short or not a checkpoint.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = json.loads(str(arrays.pop("meta")))
        return arrays, int(meta["step"]), int(meta["epoch"])
    except _DAMAGED as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DcganError(f"{display_name(path)}: damaged or incomplete ({reason})") from None


def restore_checkpoint(gan: GAN, path):
    """Load every variable from ``path``; returns the stored (step, epoch).

    Every array is checked before the first is assigned, so a checkpoint that does not fit leaves
    ``gan`` as it was.
    """
    stored, step, epoch = read_checkpoint(path)
    variables = gan.variables()
    missing = set(variables) - set(stored)
    if missing:
        raise DcganError(f"{display_name(path)} does not match this model "
                         f"({len(missing)} variables missing)")
    for name, var in variables.items():
        if tuple(stored[name].shape) != tuple(var.shape):
            raise DcganError(f"{display_name(path)}: variable {name} has shape "
                             f"{stored[name].shape}, the model needs {tuple(var.shape)}")
    for name, var in variables.items():
        var.assign(stored[name])
    return step, epoch


def check_compatible(directory, config: ModelConfig):
    """Refuse to train in ``directory`` with other architecture options than its model's.

    The model is the one ``directory/config.json`` describes, with or without checkpoints
    (exported weights alone are a model too); without that file there is nothing to check.

    Raises
    ------
    OptionError
        Naming every architecture option that differs, and ``checkpoint_dir``.
    DcganError
        If ``config.json`` is not a model description (naming it).
    """
    if not (Path(directory) / CONFIG_FILE).exists():
        return
    saved = read_config(directory)
    differ = [k for k in _ARCHITECTURE if getattr(saved, k) != getattr(config, k)]
    if differ:
        said = ", ".join(f"{{{k}}} {getattr(saved, k)} (asked {getattr(config, k)})"
                         for k in differ)
        raise OptionError((*differ, "checkpoint_dir"),
                          f"the model in {display_name(directory)} was trained with "
                          f"{said}: pass the same options to resume, or use another "
                          "{checkpoint_dir}")


def write_config(directory, options: TrainOptions, dataset):
    """Record the architecture and the training options in ``directory/config.json``."""
    train_options = dataclasses.asdict(options)
    train_options.pop("progress")
    train_options["precision"] = resolve_precision(options.precision)
    body = {"model": options.model_config.to_dict(), "train": train_options,
            "dataset": str(dataset)}
    write_text(Path(directory) / CONFIG_FILE, json.dumps(body, indent=2, sort_keys=True) + "\n")


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
    exit_code: int = 0  # the shell's status for the run: 130 after Ctrl-C, 143 after SIGTERM


# The options that may differ between the workers of one run: where each writes, and whether
# it shows progress.  The others must be the same on every worker.
_PER_WORKER = ("checkpoint_dir", "sample_dir", "log_dir", "progress")


class Trainer:
    """Owns one training run: data, GAN, checkpoints, samples, logs.

    ``Trainer(dataset, options).fit()`` is what ``dcgan-complete train`` does.  Building a
    Trainer resumes from the newest checkpoint in ``options.checkpoint_dir`` that loads, or else
    starts from the exported weights there, if any.  ``notes`` holds what the user should be told
    about that (checkpoints skipped as damaged, the exported weights used).

    With ``options.distribute`` it first sets up the devices or the workers
    (:mod:`dcgan_complete.distribute`); ``cluster`` says which, and whether this process is the
    chief.  Only the chief reads and writes the checkpoint folder; the other workers take its
    state, and every worker trains on its own share of the images.
    """

    def __init__(self, dataset, options: TrainOptions):
        self.options = options
        self.dataset_root = dataset
        self.ckpt_dir = Path(options.checkpoint_dir)
        self.sample_dir = Path(options.sample_dir or self.ckpt_dir / "samples")
        self.log_dir = Path(options.log_dir or self.ckpt_dir / "logs")
        self.notes = []
        self._config_written = False
        outputs = {"checkpoint_dir": self.ckpt_dir, "sample_dir": self.sample_dir,
                   "log_dir": self.log_dir}
        paths = data.find_training_images(dataset, exclude=outputs.values())
        # Before anything else runs on TensorFlow (the workers' runtime needs that).
        self.cluster = distribute.start(options.distribute, options.devices)
        replicas = self.cluster.replicas
        if options.batch_size % replicas:
            raise OptionError("batch_size", f"{{batch_size}} {options.batch_size} must be a "
                                            f"multiple of the {replicas} replicas, which share "
                                            "it evenly")
        config = options.model_config
        self._lock = None
        if self.cluster.is_chief:
            # Before the long work (decoding, training): a folder that cannot be written fails
            # now, not at the first sample or checkpoint.
            for option, folder in outputs.items():
                ensure_writable_dir(folder, option)
            # Another run on this folder (train or train-encoder) would write its checkpoints
            # over this one's: the second to start is refused.
            self._lock = FolderLock(self.ckpt_dir, "train", "checkpoint_dir")
        try:
            self._start(dataset, options, paths, config)
        except BaseException:
            self.close()
            raise

    def _start(self, dataset, options, paths, config):
        """The rest of the set-up, once the checkpoint folder is this run's."""
        if self.cluster.is_chief:
            check_compatible(self.ckpt_dir, config)
        self.cluster.agree("options", json.dumps(
            {k: v for k, v in dataclasses.asdict(options).items() if k not in _PER_WORKER},
            sort_keys=True))
        # The networks come before the data, so that checkpoints that do not load are reported
        # before the images are decoded (minutes for a large set).
        self.gan = GAN(config, options.lr, options.beta1, options.g_steps, options.precision,
                       options.seed, strategy=self.cluster.strategy)
        self.step, self.epoch = 0, 0
        self.last_checkpoint = None
        # the shuffling and the z of the training batches; workers must share it
        self.data_seed = options.seed if options.seed is not None else \
            int(np.random.SeedSequence().entropy % 2 ** 31)
        if self.cluster.is_chief:
            self._resume()
        self._take_the_chiefs_state()

        self.images, self.good_paths, self.summary = data.load_images(
            paths, options.image_size, progress=options.progress and self.cluster.is_chief,
            root=dataset)
        self.cluster.agree("datasets", f"{len(self.good_paths)} readable images")
        self.steps_per_epoch = len(self.good_paths) // options.batch_size
        if self.steps_per_epoch == 0:
            raise OptionError("batch_size", f"{{batch_size}} {options.batch_size} is larger than "
                                            f"the dataset ({len(self.good_paths)} readable images)")
        seed = options.seed if options.seed is not None else 0
        self.fixed_z = np.random.default_rng(seed).uniform(
            -1, 1, (SAMPLE_GRID, config.z_dim)).astype(np.float32)

    def close(self):
        """Give up the checkpoint folder (another run may use it now); :func:`train` does this
        when it ends.  A Trainer that is dropped gives it up too."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _take_the_chiefs_state(self):
        """Every worker starts from the chief's weights, counters and data seed, whatever its
        own checkpoint folder holds (the workers of a run may not share one)."""
        if self.cluster.workers == 1:
            return
        variables = list(self.gan.variables().values())
        counters = np.array([self.step, self.epoch, self.data_seed], np.int64)
        *values, counters = self.cluster.from_chief([v.numpy() for v in variables] + [counters])
        for var, value in zip(variables, values):
            var.assign(value)
        self.step, self.epoch, self.data_seed = (int(c) for c in counters)

    def _resume(self):
        """Restore the newest checkpoint that loads; without any, the exported weights if there
        are.  A folder whose checkpoints all fail to load is an error, not a fresh start."""
        found = list_checkpoints(self.ckpt_dir)
        failures = []
        for _, path in reversed(found):
            try:
                self.step, self.epoch = restore_checkpoint(self.gan, path)
            except DcganError as exc:
                failures.append(str(exc))
                self.notes.append(f"warning: skipped {exc}")
                continue
            self.last_checkpoint = path
            return
        where = display_name(self.ckpt_dir)
        if found:
            raise DcganError(f"none of the {len(found)} checkpoint(s) in {where} loads (newest: "
                             f"{failures[0]}): move the ckpt-*.npz files away to start without "
                             "them")
        if (self.ckpt_dir / CONFIG_FILE).exists() and (self.ckpt_dir / GENERATOR_FILE).is_file():
            # Exported weights alone (a model copied here, or checkpoints deleted): training
            # on from them keeps the user's model, which a fresh start would overwrite.
            _, generator, discriminator = load_models(self.ckpt_dir, self.gan.precision,
                                                      need_discriminator=False)
            self.gan.generator.set_weights(generator.get_weights())
            fresh = ""
            if (self.ckpt_dir / DISCRIMINATOR_FILE).is_file():
                self.gan.discriminator.set_weights(discriminator.get_weights())
            else:
                fresh = ", a fresh discriminator"
            self.notes.append(f"note: no checkpoint in {where}: starting from its exported "
                              f"weights (step 0, fresh optimiser state{fresh})")

    @property
    def total_steps(self):
        total = self.options.epochs * self.steps_per_epoch
        return min(total, self.options.max_steps) if self.options.max_steps else total

    def fit(self):
        """Train until ``total_steps``; returns a TrainResult.

        Ctrl-C or SIGTERM (a batch scheduler, ``docker stop``) writes a checkpoint and returns,
        with ``stopped == "interrupted"`` and the exit status for the signal.  A worker of a
        multi-worker run that stops answering ends the run with a DcganError on the others,
        without a checkpoint (the step in progress is incomplete).
        """
        from tqdm import tqdm

        opts = self.options
        chief = self.cluster.is_chief
        start = time.perf_counter()
        result = TrainResult(self.step, self.epoch, self.last_checkpoint, "done", 0.0, 0.0,
                             self.summary)
        if self.step >= self.total_steps:
            self._export()
            return result
        batches = iter(self._batches())
        writer = tf.summary.create_file_writer(str(self.log_dir)) if chief else \
            tf.summary.create_noop_writer()
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", desc="train",
                   disable=not (opts.progress and chief), dynamic_ncols=True)
        # The command line does this around every command; here it serves library callers too.
        with signals_interrupt():
            try:
                self._loop(batches, writer, bar, result)
                self._checkpoint()
                self._sample(None)
                self.cluster.barrier()  # the other workers end once the chief has written
            except tf.errors.OpError as exc:
                lost = distribute.lost_worker(exc, self.cluster)
                if lost is None:
                    raise
                where = f"the chief's last checkpoint ({self._last_good()})" if chief else \
                    "the chief's last checkpoint"
                raise DcganError(f"{lost} at step {self.step + 1}: the run stops; start every "
                                 f"worker again with the same command to resume from "
                                 f"{where}") from None
            except KeyboardInterrupt as exc:
                # a second signal (an impatient Ctrl-C, a scheduler's repeated SIGTERM) must not
                # break the checkpoint being written
                with signals_ignored():
                    result.stopped, result.exit_code = "interrupted", exit_code_of(exc)
                    self._checkpoint()
            finally:
                bar.close()
                writer.close()
        result.step, result.epoch = self.step, self.epoch
        result.checkpoint = self.last_checkpoint
        result.seconds = time.perf_counter() - start
        return result

    def _batches(self):
        """The training pipeline: ``(images, z)``, every replica its own share of each batch."""
        opts = self.options

        def pipeline(input_context):
            return data.make_dataset(self.images, self.good_paths, opts.image_size,
                                     opts.batch_size, seed=self.data_seed,
                                     z_dim=opts.model_config.z_dim, input_context=input_context)

        return self.cluster.strategy.distribute_datasets_from_function(pipeline)

    def _loop(self, batches, writer, bar, result):
        opts = self.options
        images_done, t_rate = 0, time.perf_counter()
        while self.step < self.total_steps:
            t0 = time.perf_counter()
            batch = next(batches)
            result.input_wait += time.perf_counter() - t0
            with signals_deferred():  # the weights and the count move together
                metrics = {k: float(v) for k, v in self.gan.train_step(batch).items()}
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

    def _checkpoint(self):
        if self.last_checkpoint is not None and \
                self.last_checkpoint.name == f"ckpt-{self.step:08d}.npz":
            return
        if not self.gan.all_finite():
            raise DcganError(f"weights are not finite at step {self.step}: not saved; "
                             f"the last good checkpoint is {self._last_good()}")
        if not self.cluster.is_chief:
            return
        self.last_checkpoint = save_checkpoint(self.gan, self.ckpt_dir, self.step, self.epoch,
                                               self.options.keep)
        self._export()

    def _export(self):
        """The portable model: ``config.json`` (once a run, written only now that there is a
        checkpoint) and both networks' ``.weights.h5``.  The chief's job alone."""
        if not self.cluster.is_chief:
            return
        if not self._config_written:
            write_config(self.ckpt_dir, self.options, self.dataset_root)
            self._config_written = True
        export_weights(self.ckpt_dir, self.gan.generator, self.gan.discriminator)

    def _sample(self, writer):
        if not self.cluster.is_chief:
            return None
        samples = self.gan.generate(self.fixed_z)
        grid = image_grid(samples, cols=8)
        path = write_image(self.sample_dir / f"train_{self.step:08d}.png", grid)
        if writer is not None:
            with writer.as_default(step=self.step):
                tf.summary.image("samples", grid[None], step=self.step)
        return path

    def _last_good(self):
        return display_name(self.last_checkpoint) if self.last_checkpoint else "none"

    def _stop_on_nan(self, metrics):
        bad = ", ".join(k for k, v in metrics.items() if not np.isfinite(v))
        where = (f"the last good checkpoint is {self._last_good()}"
                 if self.last_checkpoint else "no checkpoint was written yet")
        raise OptionError("lr", f"training diverged at step {self.step + 1} ({bad} not finite); "
                                f"stopped without saving: {where}. Try a lower {{lr}}.")


def train(dataset, options: TrainOptions | None = None):
    """Train (or resume) a DCGAN on the images under ``dataset``; prints a summary line.

    Warnings (a damaged checkpoint skipped) and notes go to stderr even without ``progress``.
    """
    options = options or TrainOptions()
    with Trainer(dataset, options) as trainer:
        for note in trainer.notes:
            print(note, file=sys.stderr)
        say = print if options.progress else (lambda *a, **k: None)
        cluster = trainer.cluster
        say(f"dataset: {trainer.summary.describe()}; precision {trainer.gan.precision}")
        if cluster.kind != "none":
            say(f"distribute: {cluster.describe()}")
        if trainer.step:
            source = trainer.last_checkpoint.name if trainer.last_checkpoint else \
                "the chief's checkpoint"
            say(f"resuming from {source}: step {trainer.step}, epoch {trainer.epoch + 1}")
        result = trainer.fit()
        if not cluster.is_chief:
            say(f"{result.stopped} at step {result.step}; the chief wrote the checkpoints, samples "
                "and logs")
        elif result.stopped == "interrupted":
            say(f"interrupted at step {result.step}; saved {display_name(result.checkpoint)} "
                f"(run the same command to resume)")
        else:
            say(f"trained to step {result.step} ({result.epoch} epochs) in {result.seconds:.0f} s; "
                f"model in {display_name(trainer.ckpt_dir)}/, samples in "
                f"{display_name(trainer.sample_dir)}/")
        return result
