"""Completion iterations per second: the original 2016 design against this project's defaults.

    python bench/complete_vs_original.py [--iterations 40] [--batch-size 64] [--checkpoint-dir DIR]

The original design (the reference TensorFlow 1 implementations) runs one session call per
iteration that returns the loss and its gradient to Python, and updates z in numpy (Nesterov
momentum, then clipping), in float32.  Here that is ported as directly as TensorFlow 2 allows: one
``tf.function`` call per iteration for the loss and gradient, the update in numpy.  Against it:
``Completer.complete`` at this project's defaults (compiled chunks of ``out_interval``
iterations, ``--precision auto``, the default start), timed as a whole call, blending included.
Both run in this one process on the same batch of faces (random pixels by default: speed does
not depend on them) with the same model, one after the other.
"""
import argparse
import time

import _common  # noqa: F401  (quiet TensorFlow)
import numpy as np


def original_design(generator, discriminator, images, masks, iterations, lam=0.1, lr=0.01,
                    momentum=0.9, seed=0):
    """The reference loop: per iteration one compiled call for (loss, gradient), numpy update."""
    import tensorflow as tf

    y = tf.constant(images / 127.5 - 1.0, tf.float32)
    m = tf.constant(masks[..., None], tf.float32)

    @tf.function
    def loss_and_gradient(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            g = generator(z, training=False)
            contextual = tf.reduce_sum(tf.abs(m * (g - y)), axis=[1, 2, 3])
            perceptual = -tf.nn.softplus(discriminator(g, training=False)[:, 0])
            loss = contextual + lam * perceptual
        return loss, tape.gradient(loss, z)

    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (len(images), int(generator.inputs[0].shape[-1]))).astype(np.float32)
    v = np.zeros_like(z)
    loss_and_gradient(tf.constant(z))  # trace
    start = time.perf_counter()
    for _ in range(iterations):
        loss, grad = loss_and_gradient(tf.constant(z))
        grad = grad.numpy()
        v_prev = v.copy()
        v = momentum * v - lr * grad
        z = np.clip(z - momentum * v_prev + (1 + momentum) * v, -1, 1)
    return iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)

    import dataclasses

    from dcgan_complete.search import load_completer
    from dcgan_complete.masks import center_mask
    from dcgan_complete.model import load_models, resolve_precision
    from dcgan_complete.options import CompleteOptions

    defaults = CompleteOptions()
    precision = resolve_precision(defaults.precision)
    completer = load_completer(args.checkpoint_dir, dataclasses.replace(
        defaults, iterations=args.iterations, batch_size=args.batch_size, seed=0))
    size, n = completer.size, args.batch_size
    images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    masks = np.stack([center_mask(size)] * n)
    _, g32, d32 = load_models(args.checkpoint_dir or _bundled(), "float32")
    original = original_design(g32, d32, images, masks, args.iterations)
    completer.warm_up(images, masks)
    start = time.perf_counter()
    completer.complete(images, masks)
    ours = args.iterations / (time.perf_counter() - start)
    print(f"batch {n}, {size} px, {args.iterations} iterations each")
    print(f"original design (float32, one call per iteration): {original:6.2f} it/s")
    print(f"this project's defaults ({precision}, start {completer.init}, out_interval "
          f"{defaults.out_interval}): {ours:6.2f} it/s  ({ours / original:.2f}x)")


def _bundled():
    from dcgan_complete.search import bundled_model_dir

    return bundled_model_dir()


if __name__ == "__main__":
    main()
