"""Latent-space completion (Yeh et al., CVPR 2017): find z with G(z) agreeing with the known pixels.

For images y with masks M (1 = known), minimise per image

    L(z) = sum |W * (G(z) - y)|  +  lam * perceptual(z),     z in [-1, 1]^z_dim

with W = M (``plain``) or the paper's window weighting, and perceptual = log(1 - D(G(z)))
(``log1m``, the paper) or -log D(G(z)) (``nonsat``).  The optimiser (Nesterov momentum or Adam,
projected back into [-1, 1] after every step) runs inside one ``tf.function`` for
``out_interval`` iterations at a time; Python only sees the state between chunks.  Batch norm runs
in inference mode, so an image's result does not depend on its batch mates.  The lowest-loss z
seen is kept, then M*y + (1-M)*G(z) is Poisson-blended.

Example
-------
>>> from dcgan_complete.complete import CompleteOptions, Completer
>>> completer = Completer.from_checkpoint("checkpoint", CompleteOptions(iterations=500))  # doctest: +SKIP
>>> result = completer.complete(images_uint8, masks)  # doctest: +SKIP
"""
from __future__ import annotations

import csv
import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.blend import PoissonBlender
from dcgan_complete.errors import DcganError

PRIORS = ("log1m", "nonsat")
OPTIMIZERS = ("momentum", "adam")
BLENDS = ("poisson", "none")
LOWRES_BLOCK = 8
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
HOLE_GRAY = 0.0  # how holes look in NAME.masked.png: mid-gray in [-1, 1]


class ResizeWarning(UserWarning):
    """Inputs were not the model's size and were resized."""


@dataclasses.dataclass
class CompleteOptions:
    """The search and output settings of ``dcgan-complete complete`` (defaults match the CLI)."""

    lam: float = 0.1
    prior: str = "log1m"
    context_weight: str = "window"  # +0.8 dB PSNR over plain on center holes (README)
    window: int = 7
    optimizer: str = "momentum"
    lr: float = 0.01
    momentum: float = 0.9
    iterations: int = 1000
    restarts: int = 1
    out_interval: int = 50
    batch_size: int = 64
    tolerance: float | None = None
    blend: str = "poisson"
    seed: int | None = None
    precision: str = "float32"

    def __post_init__(self):
        for name, value, allowed in (("prior", self.prior, PRIORS),
                                     ("optimizer", self.optimizer, OPTIMIZERS),
                                     ("blend", self.blend, BLENDS),
                                     ("context_weight", self.context_weight,
                                      mask_lib.CONTEXT_WEIGHT_KINDS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.iterations < 1 or self.out_interval < 1 or self.restarts < 1:
            raise ValueError("iterations, out_interval and restarts must be at least 1")


@dataclasses.dataclass
class CompletionResult:
    """Per image: the final blended completion and what led to it (all uint8 unless noted)."""

    completed: np.ndarray   # (N, S, S, 3) blended result; known pixels identical to the input
    generated: np.ndarray   # (N, S, S, 3) G(z) for the best z
    masked: np.ndarray      # (N, S, S, 3) the input as the model saw it (holes gray)
    z: np.ndarray           # (N, z_dim) float32, the best z
    loss: np.ndarray        # (N,) float32, its total loss
    history: list           # rows (image index, iteration, contextual, perceptual, total)
    frames: list            # per image, a list of uint8 completions every out_interval iterations
    iterations_run: int = 0
    seconds: float = 0.0
    frame_iterations: list = dataclasses.field(default_factory=list)  # iteration of each frame


class Completer:
    """A generator/discriminator pair and the compiled search loop."""

    def __init__(self, generator, discriminator, options: CompleteOptions | None = None):
        self.options = options or CompleteOptions()
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = int(generator.inputs[0].shape[-1])
        self.size = int(generator.outputs[0].shape[1])
        self.blender = PoissonBlender(clip=(-1.0, 1.0))
        self._chunk = tf.function(self._run_chunk, reduce_retracing=True)
        self._losses_fn = tf.function(self._losses, reduce_retracing=True)

    @classmethod
    def from_checkpoint(cls, directory, options: CompleteOptions | None = None):
        """Load the exported model of a ``train`` run (``config.json`` + ``*.weights.h5``)."""
        from dcgan_complete.model import load_models

        options = options or CompleteOptions()
        try:
            _, generator, discriminator = load_models(directory, options.precision)
        except FileNotFoundError as exc:
            raise DcganError(str(exc)) from None
        return cls(generator, discriminator, options)

    # ---------------------------------------------------------------- the compiled search
    def _losses(self, z, y, w, lowres):
        """Per-image (contextual, perceptual) losses of z against targets y with weights w."""
        g = self.generator(z, training=False)
        if lowres:
            pool = lambda x: tf.nn.avg_pool2d(x, LOWRES_BLOCK, LOWRES_BLOCK, "VALID")
            contextual = tf.reduce_sum(tf.abs(pool(g) - pool(y)), axis=[1, 2, 3]) * LOWRES_BLOCK ** 2
        else:
            contextual = tf.reduce_sum(tf.abs(w * (g - y)), axis=[1, 2, 3])
        logits = tf.cast(self.discriminator(g, training=False), tf.float32)[:, 0]
        if self.options.prior == "log1m":
            perceptual = -tf.nn.softplus(logits)       # log(1 - sigmoid(l)), computed stably
        else:
            perceptual = tf.nn.softplus(-logits)       # -log(sigmoid(l))
        return contextual, perceptual

    def _run_chunk(self, state, y, w, n, lowres):
        """``n`` projected optimiser steps; tracks the best z per image."""
        o = self.options
        z, v, m, t, best_z, best_loss = state
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                tape.watch(z)
                contextual, perceptual = self._losses(z, y, w, lowres)
                total = contextual + o.lam * perceptual
            grad = tape.gradient(total, z)
            better = total < best_loss
            best_loss = tf.where(better, total, best_loss)
            best_z = tf.where(better[:, None], z, best_z)
            if o.optimizer == "momentum":
                v_new = o.momentum * v - o.lr * grad
                z = z - o.momentum * v + (1.0 + o.momentum) * v_new
                v = v_new
            else:
                t = t + 1.0
                b1, b2 = ADAM_BETAS
                m = b1 * m + (1.0 - b1) * grad
                v = b2 * v + (1.0 - b2) * tf.square(grad)
                z = z - o.lr * (m / (1.0 - b1 ** t)) / (tf.sqrt(v / (1.0 - b2 ** t)) + ADAM_EPS)
            z = tf.clip_by_value(z, -1.0, 1.0)
        return z, v, m, t, best_z, best_loss

    # ------------------------------------------------------------------------- public API
    def complete(self, images, masks, lowres=False, frames=False, progress=None, rng=None):
        """Complete a batch (any size; it is split into ``batch_size`` pieces).

        Parameters
        ----------
        images : uint8 array (N, S, S, 3), S the model's image size
        masks : float array (N, S, S), 1 = known pixel
        lowres : bool
            Treat the images as known only through their 8x8 block averages (``--mask lowres``).
        frames : bool
            Keep the completion every ``out_interval`` iterations (for ``--frames``/``--gif``).
        progress : callable(images_done, mean_loss, iterations_done) or None
            Called after every chunk of iterations (``images_done`` is 0 until a batch ends).
        rng : numpy Generator or seed for the starting z (default: ``options.seed``).
        """
        images = np.asarray(images)
        masks = np.asarray(masks, np.float32)
        n, s = len(images), self.size
        if images.shape != (n, s, s, 3) or masks.shape != (n, s, s):
            raise ValueError(f"expected images (N, {s}, {s}, 3) and masks (N, {s}, {s}), got "
                             f"{images.shape} and {masks.shape}")
        rng = np.random.default_rng(self.options.seed if rng is None else rng)
        start = time.perf_counter()
        parts = []
        for lo in range(0, n, self.options.batch_size):
            hi = min(n, lo + self.options.batch_size)
            parts.append(self._complete_batch(images[lo:hi], masks[lo:hi], lowres, frames, rng,
                                              offset=lo, progress=progress))
        result = CompletionResult(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("completed", "generated", "masked", "z", "loss")),
            history=[row for p in parts for row in p.history],
            frames=[f for p in parts for f in p.frames],
            iterations_run=max(p.iterations_run for p in parts),
            seconds=time.perf_counter() - start,
            frame_iterations=max((p.frame_iterations for p in parts), key=len))
        return result

    def _complete_batch(self, images, masks, lowres, frames, rng, offset, progress):
        o = self.options
        b, r = len(images), o.restarts
        y = imgs.to_float(images)
        if lowres:
            y_seen = _block_average(y, LOWRES_BLOCK)
            weights = np.zeros_like(masks)
            masked = y_seen
        else:
            weights = np.stack([mask_lib.context_weights(m, o.context_weight, o.window)
                                for m in masks])
            masked = y * masks[..., None] + HOLE_GRAY * (1 - masks[..., None])
        # restarts: every image appears r times in the search batch
        y_t = tf.constant(np.tile(y, (r, 1, 1, 1)))
        w_t = tf.constant(np.tile(weights, (r, 1, 1))[..., None])
        z0 = rng.uniform(-1, 1, (b * r, self.z_dim)).astype(np.float32)
        zeros = tf.zeros_like(z0)
        state = (tf.constant(z0), zeros, zeros, tf.constant(0.0), tf.constant(z0),
                 tf.fill([b * r], np.float32(np.inf)))
        history, frame_lists, frame_iterations = [], [[] for _ in range(b)], []
        done, prev_best = 0, None
        while done < o.iterations:
            n = min(o.out_interval, o.iterations - done)
            state = self._chunk(state, y_t, w_t, tf.constant(n), lowres)
            done += n
            contextual, perceptual = (x.numpy() for x in self._losses_fn(state[0], y_t, w_t, lowres))
            total = contextual + o.lam * perceptual
            for k in range(b):  # the first restart's trajectory stands for the image
                history.append((offset + k, done, float(contextual[k]), float(perceptual[k]),
                                float(total[k])))
            best = state[5].numpy()
            if progress is not None:
                progress(0, float(np.mean(np.minimum(best, total))), n)
            if frames:
                frame_iterations.append(done)
                current = self.generator(state[0][:b], training=False).numpy()
                for k, image in enumerate(self._finish(images, masks, current, lowres)):
                    frame_lists[k].append(image)
            if o.tolerance is not None and prev_best is not None:
                gain = (prev_best - np.minimum(best, total)) / np.maximum(np.abs(prev_best), 1e-8)
                if np.all(gain < o.tolerance):
                    break
            prev_best = np.minimum(best, total)
        # the last z has not been compared with the best yet
        z, best_z, best_loss = state[0], state[4], state[5]
        c, p = self._losses_fn(z, y_t, w_t, lowres)
        last = c + o.lam * p
        better = last < best_loss
        best_z = tf.where(better[:, None], z, best_z).numpy()
        best_loss = tf.where(better, last, best_loss).numpy()
        # pick the best restart of every image
        pick = best_loss.reshape(r, b).argmin(axis=0)
        rows = pick * b + np.arange(b)
        z_best, loss_best = best_z[rows], best_loss[rows]
        generated = self.generator(tf.constant(z_best), training=False).numpy()
        completed = self._finish(images, masks, generated, lowres)
        if progress is not None:  # a batch that stopped early skips its remaining iterations
            progress(b, float(loss_best.mean()), o.iterations - done)
        return CompletionResult(completed, imgs.to_uint8(generated), imgs.to_uint8(masked),
                                z_best, loss_best, history, frame_lists, done,
                                frame_iterations=frame_iterations)

    def _finish(self, images, masks, generated, lowres):
        """Paste G(z) into the holes (Poisson-blended) with the known pixels copied exactly."""
        if lowres:
            # nothing is known exactly: correct G(z) so its block averages match the input's
            y = imgs.to_float(images)
            fixed = generated + _block_average(y, LOWRES_BLOCK) - _block_average(generated,
                                                                                 LOWRES_BLOCK)
            return imgs.to_uint8(np.clip(fixed, -1, 1))
        out = np.empty_like(images)
        for k, (image, mask, g) in enumerate(zip(images, masks, generated)):
            if self.options.blend == "poisson":
                filled = self.blender(imgs.to_float(image), g, mask)
            else:
                filled = g
            known = mask[..., None] >= 0.5
            out[k] = np.where(known, image, imgs.to_uint8(filled))
        return out


def _block_average(x, block):
    """Each block x block tile replaced by its mean (x: (N, S, S, C))."""
    n, s, _, c = x.shape
    tiles = x.reshape(n, s // block, block, s // block, block, c).mean(axis=(2, 4), keepdims=True)
    return np.broadcast_to(tiles, (n, s // block, block, s // block, block, c)).reshape(x.shape)


# ----------------------------------------------------------------------------- files in, out
@dataclasses.dataclass
class CompletionSummary:
    completed: int
    skipped: list          # (path, reason)
    resized: int
    out_dir: Path
    seconds: float
    iterations: int


def load_inputs(paths, size, strict=False):
    """Read the images to complete at the model's size.

    Returns (good paths, uint8 array, number resized, skipped [(path, reason)]).
    """
    good, arrays, skipped, resized = [], [], [], 0
    for path in paths:
        try:
            image = imgs.read_image(path)
        except imgs.ImageReadError as exc:
            skipped.append((str(path), str(exc)))
            continue
        if image.shape[:2] != (size, size):
            if strict:
                raise DcganError(f"{path} is {image.shape[1]}x{image.shape[0]}, the model makes "
                                 f"{size}x{size} images (drop --strict to resize)")
            image = imgs.center_crop_resize(image, size)
            resized += 1
        good.append(Path(path))
        arrays.append(image)
    return good, (np.stack(arrays) if arrays else None), resized, skipped


def output_names(paths):
    """A distinct output stem for every input: NAME, and NAME_2, NAME_3... for repeated stems."""
    seen, names = {}, []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    taken = set()
    unique = []
    for name in names:  # NAME_2 might itself be an input stem
        candidate, k = name, 2
        while candidate in taken:
            candidate, k = f"{name}_{k}", k + 1
        taken.add(candidate)
        unique.append(candidate)
    return unique


def load_completer(checkpoint_dir=None, options: CompleteOptions | None = None):
    """A Completer for ``checkpoint_dir``, or for the bundled model when it is None."""
    checkpoint_dir = checkpoint_dir or bundled_model_dir()
    if checkpoint_dir is None:
        raise DcganError("no model given: train one with `dcgan-complete train` and pass its "
                         "--checkpoint-dir")
    return Completer.from_checkpoint(checkpoint_dir, options)


def complete_files(paths, mask="center", out_dir="out", checkpoint_dir=None,
                   options: CompleteOptions | None = None, frames=False, gif=False, strict=False,
                   mask_params=None, progress=True):
    """What ``dcgan-complete complete`` does: read, mask, complete, blend and write everything.

    Writes, for every input NAME: NAME.png, NAME.masked.png, NAME.generated.png, and with
    ``frames``/``gif`` frames/NAME/NNNNN.png and NAME.gif; plus summary.png and losses.csv.
    """
    options = options or CompleteOptions()
    completer = load_completer(checkpoint_dir, options)
    size = completer.size
    paths = [Path(p) for p in paths]
    if not paths:
        raise DcganError("no input images given")
    for p in paths:
        if not p.exists():
            raise DcganError(f"input {p} does not exist")
    good, images, resized, skipped = load_inputs(paths, size, strict)
    if resized:
        warnings.warn(f"{resized} image(s) were not {size}x{size} and were centre-cropped and "
                      f"resized (use --strict to refuse them)", ResizeWarning, stacklevel=2)
    if images is None:
        raise DcganError(f"none of the {len(paths)} inputs could be read: {skipped[0][1]}")
    try:
        masks = np.stack(mask_lib.masks_for_images(good, mask, size, rng=options.seed,
                                                   **(mask_params or {})))
    except ValueError as exc:
        raise DcganError(str(exc)) from None
    names = output_names(good)
    inputs = {p.resolve() for p in paths}
    check_outputs(out_dir, names, inputs)
    with progress_bar(len(good), options.iterations, options.batch_size, progress) as report:
        result = completer.complete(images, masks, lowres=mask == "lowres",
                                    frames=frames or gif, progress=report)
    write_outputs(out_dir, names, images, result, inputs, frames=frames, gif=gif)
    return CompletionSummary(len(good), skipped, resized, Path(out_dir), result.seconds,
                             result.iterations_run)


def check_outputs(out_dir, names, inputs):
    """Stop before any work if an output would land on an input file."""
    out_dir = Path(out_dir)
    planned = [out_dir / f"{name}{suffix}" for name in names
               for suffix in (".png", ".masked.png", ".generated.png", ".gif")]
    for path in planned + [out_dir / "summary.png", out_dir / "losses.csv"]:
        if path.resolve() in inputs:
            raise DcganError(f"refusing to overwrite input file {path}: choose another --out")


class progress_bar:
    """A tqdm bar over all iterations of all batches, with images done and the mean loss; its
    ``report`` is what ``Completer.complete`` calls between chunks."""

    def __init__(self, images, iterations, batch_size, enabled=True, desc="complete"):
        from tqdm import tqdm

        self.images, self.done = images, 0
        batches = -(-images // batch_size)
        self.bar = tqdm(total=batches * iterations, unit="it", desc=desc, disable=not enabled,
                        dynamic_ncols=True)

    def __enter__(self):
        def report(images_done, loss, iterations):
            self.done += images_done
            self.bar.set_postfix_str(f"images {self.done}/{self.images}, loss {loss:.1f}")
            self.bar.update(iterations)
        return report

    def __exit__(self, *exc):
        self.bar.close()


def write_outputs(out_dir, names, images, result: CompletionResult, inputs=(), frames=False,
                  gif=False):
    """Write NAME.png, NAME.masked.png, NAME.generated.png (+ frames, GIF), summary.png and
    losses.csv for a CompletionResult."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = set(inputs)
    for k, name in enumerate(names):
        targets = {"": result.completed[k], ".masked": result.masked[k],
                   ".generated": result.generated[k]}
        for suffix, image in targets.items():
            _write_safely(out_dir / f"{name}{suffix}.png", image, inputs)
        if frames:
            for iteration, frame in zip(result.frame_iterations, result.frames[k]):
                _write_safely(out_dir / "frames" / name / f"{iteration:05d}.png", frame, inputs)
        if gif:
            # the masked input, the search every out_interval, and the final (best-z) result last
            sequence = [result.masked[k]] + list(result.frames[k][:-1]) + [result.completed[k]]
            _write_gif(out_dir / f"{name}.gif", sequence, inputs)
    triplets = [x for k in range(len(names)) for x in
                (images[k], result.masked[k], result.completed[k])]
    _write_safely(out_dir / "summary.png",
                  imgs.image_grid(np.stack(triplets), cols=3 * min(4, len(names))), inputs)
    _write_losses(out_dir / "losses.csv", result.history, names)


def _write_safely(path, image, inputs):
    if path.resolve() in inputs:
        raise DcganError(f"refusing to overwrite input file {path}: choose another --out")
    imgs.write_image(path, image)


def _write_gif(path, frames, inputs):
    if path.resolve() in inputs:
        raise DcganError(f"refusing to overwrite input file {path}: choose another --out")
    imgs.write_animation(path, frames)


def _write_losses(path, history, names):
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "iteration", "contextual", "perceptual", "total"])
        for k, it, c, p, t in history:
            writer.writerow([names[k], it, f"{c:.4f}", f"{p:.4f}", f"{t:.4f}"])
    tmp.replace(path)


def bundled_model_dir():
    """The model shipped inside the package, or None while there is none."""
    here = Path(__file__).parent / "weights"
    return here if (here / "config.json").is_file() else None
