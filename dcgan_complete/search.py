"""The latent-space search (Yeh et al., CVPR 2017): find z with G(z) agreeing with the known pixels.

For images y with masks M (1 = known), minimise per image

    L(z) = sum |W * (G(z) - y)|  +  lam * perceptual(z)  [+ anchor * |z - E|^2],  |z| <= 1

with W = M (``plain``) or the paper's window weighting, and perceptual = log(1 - D(G(z)))
(``log1m``, the paper) or -log D(G(z)) (``nonsat``).  A mask coarser than the image (the
``lowres`` kind: one value per 8x8 block) says that only the block averages are known: the
contextual term then compares block averages.  A search that starts from the encoder's guess E
(:mod:`dcgan_complete.encoder`) is pulled towards it by the last term: the guess holds the face,
and the contextual term alone trades its features for the fit of the surrounding pixels.  Every
start of an image (random restarts too) then minimises this one loss.  With ``variants`` V > 1,
V - 1 more starts per image, kept apart from each other and from E (E plus large noise in
opposite and orthogonal directions), are searched beside the usual ones, each pulled (more
weakly) towards its own start rather than E: their best points are other fills of the hole
(``CompletionResult.variants``, the usual best first).  The optimiser (Nesterov
momentum or Adam, projected back into [-1, 1] after every step) runs inside one ``tf.function``
for ``out_interval`` iterations at a time; Python only sees the state between chunks.  Batch norm
runs in inference mode, so an image's result does not depend on its batch mates.  The lowest-loss
z seen is kept, then M*y + (1-M)*G(z) is Poisson-blended.

This is the package's TensorFlow side of completion; reading and writing files is
:mod:`dcgan_complete.complete`.

Example
-------
>>> from dcgan_complete.search import CompleteOptions, Completer
>>> completer = Completer.from_checkpoint("checkpoint", CompleteOptions(iterations=500))  # doctest: +SKIP
>>> result = completer.complete(images_uint8, masks)  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.blend import PoissonBlender
from dcgan_complete.classical import HOLE_GRAY as HOLE_GRAY_UINT8
from dcgan_complete.errors import Note, OptionError
from dcgan_complete.frozen import FrozenNetwork
from dcgan_complete.model import load_encoder, load_models, resolve_precision
from dcgan_complete.options import CompleteOptions, check_search_memory

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
# --variants: the other fills' starts lie at E plus noise of this standard deviation per
# coordinate (the restarts' init_noise is 0.2), in directions opposite in pairs and orthogonal
# between pairs, and each is pulled towards its own start with this share of ``anchor``.  On 30
# held-out faces (center hole, V = 4; docs/completion.rst) noise 0.2 / 0.35 / 0.5 / 0.7 with the
# full pull gave a mean spread in the hole of 0.013 / 0.022 / 0.029 / 0.036 for a hole PSNR
# 0.3 / 0.75 / 1.25 / 1.9 dB below the usual fill's; with a tenth of the pull, noise 0.5 spread
# 0.023 for 0.25 dB (0.7: 0.027 for 0.6 dB).  With no pull at all the fills may meet again in
# a long search.
VARIANT_NOISE = 0.5
VARIANT_PULL = 0.1
# --variants without an encoder: each extra start is the farthest (from the image's other
# starts) of this many uniform random points
VARIANT_CANDIDATES = 8
HOLE_GRAY = float(imgs.to_float(HOLE_GRAY_UINT8))  # the holes' gray (classical), in [-1, 1]

# the fields of a CompletionResult that --variants fills (None without)
VARIANT_FIELDS = ("variants", "variant_generated", "variant_loss", "variant_z")

__all__ = ["CompleteOptions", "Completer", "CompletionResult", "SearchState", "Targets",
           "bundled_model_dir", "load_completer", "progress_bar"]


class SearchState(NamedTuple):
    """The optimiser's state for a batch of starting points, carried between compiled chunks."""

    z: tf.Tensor          # (B, z_dim) current points
    velocity: tf.Tensor   # (B, z_dim) momentum's velocity, or Adam's second moment
    moment: tf.Tensor     # (B, z_dim) Adam's first moment (unused by momentum)
    step: tf.Tensor       # () Adam's step count
    best_z: tf.Tensor     # (B, z_dim) the lowest-loss point seen so far
    best_loss: tf.Tensor  # (B,) its loss

    @classmethod
    def start(cls, z0):
        """The state before the first step, from starting points ``z0`` (B, z_dim)."""
        z0 = tf.constant(np.asarray(z0, np.float32))
        zeros = tf.zeros_like(z0)
        return cls(z0, zeros, zeros, tf.constant(0.0), z0,
                   tf.fill([int(z0.shape[0])], np.float32(np.inf)))


class Targets(NamedTuple):
    """What a batch is compared with: images in [-1, 1] and the weights of their known parts."""

    y: tf.Tensor              # (B, S, S, 3)
    pixel_weights: tf.Tensor  # (B, S, S, 1) W of the contextual loss, 0 where nothing is known
    block_weights: tf.Tensor  # (B, S/b, S/b, 1) 1 where a block's average is known, or None
    block: int                # b, the side of the averaged blocks (1 when none is)
    anchor: tf.Tensor = None  # (B, z_dim) the point each start is pulled towards, or None
    # the weights of the loss's terms (options.lam, options.anchor) as tensors, not numbers
    # compiled into the search, so that one compiled search serves every value
    lam: tf.Tensor = None     # () the weight of the perceptual term
    pull: tf.Tensor = None    # () the weight of the pull towards the anchor

    @classmethod
    def build(cls, images, masks, options: CompleteOptions, repeat=1):
        """From uint8 images and their masks, each image ``repeat`` times (for restarts)."""
        size = images.shape[1]
        known = [mask_lib.known_parts(m, size) for m in masks]
        blocks = {b for _, b, _ in known if b > 1}
        if len(blocks) > 1:
            raise ValueError(f"one batch can average blocks of one size only, got {sorted(blocks)}")
        block = blocks.pop() if blocks else 1
        weights = np.stack([mask_lib.context_weights(pixels, options.context_weight,
                                                     options.window) for pixels, _, _ in known])
        tile = lambda x: tf.constant(np.tile(x, (repeat,) + (1,) * (x.ndim - 1)))  # noqa: E731
        block_weights = None
        if block > 1:
            side = size // block
            block_weights = tile(np.stack([
                coarse if coarse is not None else np.zeros((side, side), np.float32)
                for _, _, coarse in known])[..., None])
        return cls(tile(imgs.to_float(images)), tile(weights[..., None]), block_weights, block,
                   lam=tf.constant(options.lam, tf.float32),
                   pull=tf.constant(options.anchor, tf.float32))

    def anchored(self, anchor):
        """These targets with every start pulled towards its row of ``anchor`` (B, z_dim), with
        the weight ``options.anchor``."""
        return self._replace(anchor=tf.constant(np.asarray(anchor, np.float32)))


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
    # with ``snapshots``: (iteration, seconds since the start, best z (N, z_dim), its loss (N,))
    snapshots: list = dataclasses.field(default_factory=list)
    # with options.variants V > 1 (else None): V fills per image, variant 0 being the usual best
    # (``completed``, ``generated``, ``loss``), the others from the starts kept apart
    variants: np.ndarray = None           # (N, V, S, S, 3) blended as ``completed`` is
    variant_generated: np.ndarray = None  # (N, V, S, S, 3) G(z) of each
    variant_loss: np.ndarray = None       # (N, V) float32, the loss each one's start minimised
    variant_z: np.ndarray = None          # (N, V, z_dim) float32, each one's z

    def select(self, part):
        """The result of the images in ``part`` (a slice), renumbered from 0."""
        history = [(k - part.start, it, c, p, t) for k, it, c, p, t in self.history
                   if part.start <= k < part.stop]
        each = {name: None if getattr(self, name) is None else getattr(self, name)[part]
                for name in VARIANT_FIELDS}
        return dataclasses.replace(
            self, completed=self.completed[part], generated=self.generated[part],
            masked=self.masked[part], z=self.z[part], loss=self.loss[part], history=history,
            frames=self.frames[part], **each)


class Completer:
    """A generator/discriminator pair (and, if the model has one, its encoder) and the compiled
    search loop.

    With ``options.init == "encoder"`` and an encoder, the search starts from the encoder's guess
    E(masked image, mask); further restarts start from that guess plus noise (the first half of
    them) and from random points (the rest).  Without an encoder it starts from random points and
    says so once (a :class:`~dcgan_complete.errors.Note`).  ``options.variants`` adds the
    starts of the other fills (:meth:`variant_points`).
    """

    def __init__(self, generator, discriminator, options: CompleteOptions | None = None,
                 encoder=None):
        options = options or CompleteOptions()
        self.generator = generator
        self.discriminator = discriminator
        self.encoder = encoder
        self.z_dim = int(generator.inputs[0].shape[-1])
        self.size = int(generator.outputs[0].shape[1])
        # what the search runs: the same networks with batch norm folded in (dcgan_complete.frozen)
        compute = generator.layers[0].dtype_policy.name
        self._frozen_g = FrozenNetwork(generator, compute)
        self._frozen_d = FrozenNetwork(discriminator, compute)
        self._generate_fn = tf.function(self._frozen_g, reduce_retracing=True)
        self.blender = PoissonBlender(clip=(-1.0, 1.0))
        self._chunk = tf.function(self._run_chunk, reduce_retracing=True)
        self._losses_fn = tf.function(self.losses, reduce_retracing=True)
        self._encoder_fn = tf.function(lambda x: encoder(x, training=False),
                                       reduce_retracing=True) if encoder is not None else None
        self.init = options.init if encoder is not None else "random"
        # iterations and lr left open take the defaults of the start actually taken
        self.options = options.for_start(self.init)
        if options.init == "encoder" and encoder is None:
            warnings.warn("this model has no encoder: the search starts from random points "
                          "(`dcgan-complete train-encoder` trains one)", Note, stacklevel=2)

    @classmethod
    def from_checkpoint(cls, directory, options: CompleteOptions | None = None):
        """Load the exported model of a ``train`` run (``config.json`` + ``*.weights.h5``, and
        ``encoder.weights.h5`` when there is one).

        Without ``discriminator.weights.h5`` the perceptual loss would come from an untrained
        network, so such a folder is refused unless ``options.lam`` is 0.
        """
        options = options or CompleteOptions()
        precision = resolve_precision(options.precision)
        config, generator, discriminator = load_models(directory, precision,
                                                       need_discriminator=options.lam > 0)
        encoder = load_encoder(directory, config, precision) if options.init == "encoder" \
            else None
        return cls(generator, discriminator, options, encoder)

    # the options the compiled search reads when it is traced: it takes lam and anchor as
    # tensors (Targets), and the others (seed, iterations, restarts, ...) never reach it
    TRACED_OPTIONS = ("prior", "optimizer", "lr", "momentum")

    def with_options(self, options: CompleteOptions):
        """This completer with other options, sharing its networks and its compiled search: a
        search with another seed, lam, anchor, number of iterations or restarts costs no new
        trace (nor the memory of one).  The options in ``TRACED_OPTIONS`` must be this one's.
        """
        options = options.for_start(self.init)
        changed = [name for name in self.TRACED_OPTIONS
                   if getattr(options, name) != getattr(self.options, name)]
        if changed:
            raise ValueError(f"{', '.join(changed)} are compiled into the search: other values "
                             "need a Completer of their own")
        twin = copy.copy(self)
        twin.options = options
        return twin

    def encode(self, images, masks):
        """The encoder's z for uint8 images and their masks, float32 (N, z_dim)."""
        x = encoder_input(images, masks, self.size)
        return np.concatenate([self._encoder_fn(tf.constant(x[i:i + 256])).numpy()
                               for i in range(0, len(x), 256)]).astype(np.float32)

    def starting_points(self, images, masks, restarts, rng):
        """(restarts * N, z_dim) starting points, restart-major: rows r*N..(r+1)*N-1 are the
        r-th start of every image."""
        n = len(images)
        z = rng.uniform(-1, 1, (restarts * n, self.z_dim)).astype(np.float32)
        if self.init == "encoder":
            guess = self.encode(images, masks)
            z[:n] = guess
            for r in range(1, 1 + restarts // 2):  # the first half of the restarts: near E's z
                noise = rng.normal(0.0, self.options.init_noise, guess.shape)
                z[r * n:(r + 1) * n] = np.clip(guess + noise, -1, 1)
        return z

    def variant_points(self, starts, n, variants, rng):
        """The starts of the other fills: ((variants - 1) * n, z_dim), variant-major like
        :meth:`starting_points`, given that method's ``starts`` for ``n`` images.

        From the encoder's guess E (the first ``n`` rows of ``starts``): E plus noise of
        :data:`VARIANT_NOISE` per coordinate, in directions taken in opposite pairs (d, -d: the
        farthest apart two points of that distance from E can be), the pairs orthogonal to each
        other.  From random starts: per image, the farthest from the image's starts so far of
        :data:`VARIANT_CANDIDATES` uniform random points.  The search pulls each towards itself
        (:data:`VARIANT_PULL`), where the usual starts are pulled towards E.
        """
        extra = variants - 1
        if extra < 1:
            return np.zeros((0, self.z_dim), np.float32)
        if self.init == "encoder":
            guess = starts[:n]
            pairs = -(-extra // 2)
            # per image, `pairs` orthonormal directions (QR of a Gaussian (z_dim, pairs) matrix)
            basis = np.linalg.qr(rng.standard_normal((n, self.z_dim, pairs)))[0]
            basis = np.moveaxis(basis, -1, 0) * np.sqrt(self.z_dim)   # (pairs, n, z_dim)
            directions = np.stack([sign * d for d in basis for sign in (1.0, -1.0)])[:extra]
            z = np.clip(guess[None] + VARIANT_NOISE * directions, -1, 1)
            return z.reshape(extra * n, self.z_dim).astype(np.float32)
        chosen = list(np.asarray(starts, np.float64).reshape(-1, n, self.z_dim))
        for _ in range(extra):
            pool = rng.uniform(-1, 1, (VARIANT_CANDIDATES, n, self.z_dim))
            # each candidate's distance to the nearest start of its image so far
            near = np.min([np.linalg.norm(pool - c[None], axis=-1) for c in chosen], axis=0)
            chosen.append(pool[near.argmax(axis=0), np.arange(n)])
        return np.concatenate(chosen[-extra:]).astype(np.float32)

    def generate(self, z):
        """G(z) as the search computes it: float32 images in [-1, 1] (N, S, S, 3)."""
        z = np.asarray(z, np.float32)
        return np.concatenate([self._generate_fn(tf.constant(z[i:i + 256])).numpy()
                               for i in range(0, len(z), 256)]) if len(z) else \
            np.zeros((0, self.size, self.size, 3), np.float32)

    # ---------------------------------------------------------------- the compiled search
    def losses(self, z, targets: Targets):
        """Per-image (contextual, perceptual, total) losses of z against ``targets``; the total
        is contextual + lam * perceptual, plus the pull towards the anchor where there is one."""
        g = self._frozen_g(z)
        contextual = tf.reduce_sum(tf.abs(targets.pixel_weights * (g - targets.y)), axis=[1, 2, 3])
        if targets.block_weights is not None:
            b = targets.block
            pool = lambda x: tf.nn.avg_pool2d(x, b, b, "VALID")  # noqa: E731
            contextual += b * b * tf.reduce_sum(
                tf.abs(targets.block_weights * (pool(g) - pool(targets.y))), axis=[1, 2, 3])
        logits = self._frozen_d(g)[:, 0]
        if self.options.prior == "log1m":
            perceptual = -tf.nn.softplus(logits)       # log(1 - sigmoid(l)), computed stably
        else:
            perceptual = tf.nn.softplus(-logits)       # -log(sigmoid(l))
        total = contextual + targets.lam * perceptual
        if targets.anchor is not None:
            total += targets.pull * tf.reduce_sum(tf.square(z - targets.anchor), axis=1)
        return contextual, perceptual, total

    def search(self, state: SearchState, targets: Targets, iterations):
        """``iterations`` projected optimiser steps from ``state`` (one compiled call; after
        :meth:`split_across`, its batch split between the replicas)."""
        if self._strategy is not None and len(state.z) >= self._strategy.num_replicas_in_sync:
            return self._search_split(state, targets, iterations)
        return self._chunk(state, targets, tf.constant(iterations))

    # ------------------------------------------------------- several devices (--distribute)
    _strategy = None

    def split_across(self, strategy):
        """Split the batch of every search chunk between the replicas of ``strategy`` (a
        ``MirroredStrategy`` in whose scope this Completer's models were built).  The images'
        searches are independent (batch norm runs in inference mode), so the results are those
        of one device."""
        self._strategy = strategy
        self._split_chunk = tf.function(
            lambda state, targets, n: strategy.run(self._run_chunk, args=(state, targets, n)),
            reduce_retracing=True)

    def _search_split(self, state, targets, iterations):
        strategy = self._strategy
        bounds = np.linspace(0, len(state.z), strategy.num_replicas_in_sync + 1).astype(int)

        def split(x):  # replica r takes rows bounds[r]:bounds[r + 1]
            if x is None or x.shape.rank == 0:
                return x
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: tf.identity(x[bounds[ctx.replica_id_in_sync_group]:
                                          bounds[ctx.replica_id_in_sync_group + 1]]))

        parts = self._split_chunk(SearchState(*map(split, state)),
                                  targets._replace(**{k: split(getattr(targets, k)) for k in
                                                      ("y", "pixel_weights", "block_weights",
                                                       "anchor")}),
                                  tf.constant(iterations))
        joined = []
        for value in parts:
            pieces = strategy.experimental_local_results(value)
            joined.append(pieces[0] if pieces[0].shape.rank == 0 else tf.concat(pieces, axis=0))
        return SearchState(*joined)

    def _run_chunk(self, state, targets, n):
        o = self.options
        z, v, m, t, best_z, best_loss = state
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                tape.watch(z)
                total = self.losses(z, targets)[2]
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
        return SearchState(z, v, m, t, best_z, best_loss)

    # ------------------------------------------------------------------------- public API
    def complete(self, images, masks, frames=False, progress=None, rng=None, snapshots=(),
                 blend=True):
        """Complete a batch (any size; it is split into ``batch_size`` pieces).

        Parameters
        ----------
        images : uint8 array (N, S, S, 3), S the model's image size
        masks : N float arrays, each (S, S) with 1 = known pixel, or coarser, (S/b, S/b), when
            only the b x b block averages are known (the ``lowres`` kind)
        frames : bool
            Keep the completion every ``out_interval`` iterations (for ``--frames``/``--gif``).
        progress : callable(images_done, mean_loss, iterations_done) or None
            Called after every chunk of iterations (``images_done`` is 0 until a batch ends).
        rng : numpy Generator or seed for the starting z (default: ``options.seed``).
        snapshots : iterations at which to record the best z so far and the time taken
            (``result.snapshots``): what a search of that many iterations would have returned.
        blend : bool or sequence of bool
            Blend G(z) into the hole as ``options.blend`` says (per image, or for all); False
            pastes it as it is (a photo's face is blended once, later, at the photo's size).
        """
        images = np.asarray(images)
        masks = [np.asarray(m, np.float32) for m in masks]
        n, s = len(images), self.size
        if images.shape != (n, s, s, 3) or len(masks) != n:
            raise ValueError(f"expected images (N, {s}, {s}, 3) and N masks, got "
                             f"{images.shape} and {len(masks)} masks")
        check_search_memory(self.options, n, self._bytes_per_start())
        rng = np.random.default_rng(self.options.seed if rng is None else rng)
        # the other fills' starts come from a stream of their own, so that the usual starts,
        # and so the usual best, are those of a search without variants (and every batch's)
        apart = _side_stream(rng) if self.options.variants > 1 else None
        blend = np.broadcast_to(np.asarray(blend, bool), (n,))
        start = time.perf_counter()
        parts = []
        for lo in range(0, n, self.options.batch_size):
            hi = min(n, lo + self.options.batch_size)
            parts.append(self._complete_batch(images[lo:hi], masks[lo:hi], frames, rng,
                                              offset=lo, progress=progress,
                                              snapshots=snapshots, blend=blend[lo:hi],
                                              apart_rng=apart))
        each = {name: None if parts[0].variants is None else
                np.concatenate([getattr(p, name) for p in parts]) for name in VARIANT_FIELDS}
        return CompletionResult(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("completed", "generated", "masked", "z", "loss")),
            history=[row for p in parts for row in p.history],
            frames=[f for p in parts for f in p.frames],
            iterations_run=max(p.iterations_run for p in parts),
            seconds=time.perf_counter() - start,
            frame_iterations=max((p.frame_iterations for p in parts), key=len),
            snapshots=[(it, sum(p.snapshots[j][1] for p in parts),
                        np.concatenate([p.snapshots[j][2] for p in parts]),
                        np.concatenate([p.snapshots[j][3] for p in parts]))
                       for j, it in enumerate(it for it, *_ in parts[0].snapshots)],
            **each)

    def _complete_batch(self, images, masks, frames, rng, offset, progress, snapshots=(),
                        blend=None, apart_rng=None):
        o = self.options
        b, r, v = len(images), o.restarts, o.variants
        started = time.perf_counter()
        targets = Targets.build(images, masks, o, repeat=r)  # every image r times: restarts
        starts = self.starting_points(images, masks, r, rng)
        anchored = self.init == "encoder" and o.anchor > 0
        if anchored:
            # every start, random restarts too, minimises the loss pulled towards E's guess, so
            # that the restarts compete on one loss
            targets = targets.anchored(np.tile(starts[:b], (r, 1)))
        state = SearchState.start(starts)
        apart = None  # the other fills' starts (--variants), each pulled towards itself
        if v > 1:
            extra = self.variant_points(starts, b, v, apart_rng)
            apart = [SearchState.start(extra), Targets.build(images, masks, o, repeat=v - 1)]
            if anchored:
                apart[1] = apart[1].anchored(extra)._replace(
                    pull=tf.constant(o.anchor * VARIANT_PULL, tf.float32))
        history, frame_lists, frame_iterations, taken = [], [[] for _ in range(b)], [], []
        stops = sorted({int(i) for i in snapshots if 0 <= i <= o.iterations})
        if stops and stops[0] == 0:
            first = self._totals(state, targets)
            taken.append(self._snapshot(0, started, *self._best(state, first, b, r)))
        done, prev_best = 0, None
        while done < o.iterations:
            n = min(o.out_interval, o.iterations - done,
                    *[s - done for s in stops if s > done])
            state = self.search(state, targets, n)
            if apart is not None:
                # a batch of their own: in the usual starts' batch they would change those
                # starts' numbers (a batch's size changes the order of the sums), so the
                # usual best would not be that of a search without variants
                apart[0] = self.search(*apart, n)
            done += n
            # the losses of the current points: for the history, and for the best so far
            contextual, perceptual, total = (x.numpy() for x in self._losses_fn(state.z, targets))
            if not np.all(np.isfinite(total)):  # stop before a NaN image is written
                raise _diverged(o, done, total)
            if done in stops:
                taken.append(self._snapshot(done, started, *self._best(state, total, b, r)))
            for k in range(b):  # the first restart's trajectory stands for the image
                history.append((offset + k, done, float(contextual[k]), float(perceptual[k]),
                                float(total[k])))
            best = np.minimum(state.best_loss.numpy(), total)
            if progress is not None:
                progress(0, float(np.mean(best)), n)
            if frames:
                frame_iterations.append(done)
                current = self.generate(state.z[:b])
                for k, image in enumerate(self._finish(images, masks, current, blend)):
                    frame_lists[k].append(image)
            if o.tolerance is not None and prev_best is not None:
                gain = (prev_best - best) / np.maximum(np.abs(prev_best), 1e-8)
                if np.all(gain < o.tolerance):
                    break
            prev_best = best
        z_best, loss_best = self._best(state, total, b, r)
        generated = self.generate(z_best)
        completed = self._finish(images, masks, generated, blend)
        each = {}
        if apart is not None:
            each = self._variants(*apart, b, v, images, masks, blend, completed, generated,
                                  z_best, loss_best, done)
        if progress is not None:  # a batch that stopped early skips its remaining iterations
            progress(b, float(loss_best.mean()), o.iterations - done)
        return CompletionResult(completed, imgs.to_uint8(generated),
                                self.masked(images, masks), z_best, loss_best, history,
                                frame_lists, done, frame_iterations=frame_iterations,
                                snapshots=taken, **each)

    def _variants(self, state, targets, b, v, images, masks, blend, completed, generated,
                  z_best, loss, done):
        """The fields ``variants``, ``variant_generated``, ``variant_loss``, ``variant_z`` of a
        batch: the usual best first, then the best point of each other fill's start
        (``state``)."""
        last = self._totals(state, targets)
        if not np.all(np.isfinite(last)):
            raise _diverged(self.options, done, last)
        better = last < state.best_loss.numpy()
        z = np.where(better[:, None], state.z.numpy(), state.best_z.numpy())
        others = np.where(better, last, state.best_loss.numpy())
        g = self.generate(z)                                       # ((v - 1) * b, S, S, 3)
        filled = self._finish(np.tile(images, (v - 1, 1, 1, 1)), list(masks) * (v - 1), g,
                              np.tile(np.asarray(blend, bool), v - 1))
        per_image = lambda first, rest: np.concatenate(  # noqa: E731  (b, v, ...)
            [first[:, None], np.swapaxes(rest.reshape((v - 1, b) + rest.shape[1:]), 0, 1)],
            axis=1)
        return {"variants": per_image(completed, filled),
                "variant_generated": per_image(imgs.to_uint8(generated), imgs.to_uint8(g)),
                "variant_loss": per_image(loss, others).astype(np.float32),
                "variant_z": per_image(z_best, z).astype(np.float32)}

    def _totals(self, state, targets):
        """The total loss of the current points (numpy)."""
        return self._losses_fn(state.z, targets)[2].numpy()

    def _bytes_per_start(self):
        """A lower bound of one start's memory: the outputs of G's and D's dense and convolution
        layers at the compute precision.  0 (nothing checked) on a GPU, whose own memory is not
        what :func:`~dcgan_complete.options.available_memory` tells."""
        if tf.config.list_logical_devices("GPU"):
            return 0
        value = 2 if "bfloat16" in self.generator.layers[0].dtype_policy.name else 4
        return value * sum(int(np.prod(layer.output.shape[1:]))
                           for network in (self.generator, self.discriminator)
                           for layer in network.layers if hasattr(layer, "kernel"))

    @staticmethod
    def _best(state, last, b, r):
        """The best z of every image so far, over its r restarts, the current z (of total loss
        ``last``) included, and its loss."""
        better = last < state.best_loss.numpy()
        best_z = np.where(better[:, None], state.z.numpy(), state.best_z.numpy())
        best_loss = np.where(better, last, state.best_loss.numpy())
        rows = best_loss.reshape(r, b).argmin(axis=0) * b + np.arange(b)
        return best_z[rows], best_loss[rows]

    @staticmethod
    def _snapshot(iteration, started, z, loss):
        return iteration, time.perf_counter() - started, z, loss

    def warm_up(self, images, masks):
        """Trace the compiled search for this batch's shape (one iteration), so that a timed
        run that follows measures the search alone."""
        saved = self.options
        self.options = dataclasses.replace(saved, iterations=1, out_interval=1, tolerance=None)
        try:
            self.complete(images, masks)
        finally:
            self.options = saved

    def completions(self, images, masks, z):
        """The uint8 completions of ``images`` from latent points ``z`` (blended as usual)."""
        generated = self.generate(z)
        return self._finish(np.asarray(images), [np.asarray(m, np.float32) for m in masks],
                            generated)

    def masked(self, images, masks):
        """What the model was given, as uint8: holes gray, block averages where only they are
        known."""
        out = []
        for image, mask in zip(images, masks):
            pixels, block, coarse = mask_lib.known_parts(mask, self.size)
            y = imgs.to_float(image)
            if coarse is not None:
                y = np.where(_upsample(coarse, block)[..., None] > 0.5, _block_average(y, block),
                             HOLE_GRAY)
            else:
                y = y * pixels[..., None] + HOLE_GRAY * (1 - pixels[..., None])
            out.append(imgs.to_uint8(y))
        return np.stack(out)

    def _finish(self, images, masks, generated, blend=None):
        """Paste G(z) into the holes (Poisson-blended, where ``blend`` (per image) allows) with
        the known pixels copied exactly; where only block averages are known, correct G(z) to the
        input's block averages."""
        out = np.empty_like(images)
        blend = [True] * len(images) if blend is None else blend
        for k, (image, mask, g) in enumerate(zip(images, masks, generated)):
            pixels, block, coarse = mask_lib.known_parts(mask, self.size)
            if coarse is not None:
                y = imgs.to_float(image)
                fixed = g + _block_average(y, block) - _block_average(g, block)
                known = _upsample(coarse, block)[..., None] > 0.5
                out[k] = imgs.to_uint8(np.clip(np.where(known, fixed, g), -1, 1))
                continue
            filled = self.blender(imgs.to_float(image), g, pixels) \
                if self.options.blend == "poisson" and blend[k] else g
            out[k] = np.where(pixels[..., None] >= 0.5, image, imgs.to_uint8(filled))
        return out


def _side_stream(rng):
    """A random stream apart from ``rng``'s, taken without drawing from ``rng``."""
    try:
        return rng.spawn(1)[0]
    except (AttributeError, TypeError, ValueError):  # a bit generator without a seed sequence
        return np.random.Generator(rng.bit_generator.jumped())


def _diverged(options, iterations, total):
    """The error of a search whose loss stopped being a finite number."""
    bad = total[~np.isfinite(total)][0]
    return OptionError(("lr", "lam"), f"the search diverged: its loss became {bad} after "
                                      f"{iterations} iteration(s) ({{lr}} {options.lr:g}, "
                                      f"{{lam}} {options.lam:g}): lower them, or check the "
                                      "model (its networks may overflow)")


def encoder_input(images, masks, size):
    """What the encoder sees: the known pixels in [-1, 1] (0 elsewhere) and the mask, as
    float32 (N, size, size, 4).  Where only block averages are known, the averages count as
    known pixels."""
    out = np.zeros((len(images), size, size, 4), np.float32)
    for k, (image, mask) in enumerate(zip(images, masks)):
        pixels, block, coarse = mask_lib.known_parts(mask, size)
        y = imgs.to_float(image)
        if coarse is not None:
            pixels = _upsample(coarse, block).astype(np.float32)
            y = _block_average(y, block)
        out[k, ..., :3] = y * pixels[..., None]
        out[k, ..., 3] = pixels
    return out


def _block_average(x, block):
    """Each block x block tile of one image (S, S, C) replaced by its mean."""
    s, _, c = x.shape
    tiles = x.reshape(s // block, block, s // block, block, c).mean(axis=(1, 3), keepdims=True)
    return np.broadcast_to(tiles, (s // block, block, s // block, block, c)).reshape(x.shape)


def _upsample(coarse, block):
    return np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)


# --------------------------------------------------------------------------------------------
# the model to search with, and the search's progress bar


def bundled_model_dir():
    """The model shipped inside the package, or None while there is none."""
    here = Path(__file__).parent / "weights"
    return here if (here / "config.json").is_file() else None


def load_completer(checkpoint_dir=None, options: CompleteOptions | None = None):
    """A Completer for ``checkpoint_dir``, or for the bundled model when it is None."""
    from dcgan_complete.errors import OptionError

    checkpoint_dir = checkpoint_dir or bundled_model_dir()
    if checkpoint_dir is None:
        raise OptionError("checkpoint_dir", "no model given: train one with `dcgan-complete "
                                            "train` and pass its {checkpoint_dir}")
    return Completer.from_checkpoint(checkpoint_dir, options)


class progress_bar:
    """A tqdm bar over all iterations of all batches, with images done and the mean loss; its
    ``report`` is what :meth:`Completer.complete` calls between chunks."""

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
