"""Completion speed: iterations/s, image-iterations/s, achieved GFLOP/s, time outside the loop.

    python bench/complete_speed.py [--iterations 50] [--checkpoint-dir DIR --faces DIR]

Times ``Completer.complete`` on a batch of 64 images with the default 64 px model (gf = df = 64)
in float32 and mixed bfloat16, against this machine's TensorFlow matmul peak in the same
precision. One iteration costs a forward pass through G and D and a backward pass to z; the
backward pass needs only the gradients of the activations (no weight gradients), so an iteration
is counted as 2x the forward FLOPs. With ``--checkpoint-dir`` and ``--faces`` (a folder of aligned faces) it also
reports, for each optimiser, how many iterations it takes to get within 1% of its final loss.
"""
import argparse
import time

import _common  # noqa: F401  (quiet TensorFlow)
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", action="append", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--faces")
    parser.add_argument("--convergence-iterations", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)

    from dcgan_complete.search import CompleteOptions, Completer, SearchState, Targets
    from dcgan_complete.masks import center_mask
    from dcgan_complete.model import (ModelConfig, build_discriminator, build_generator,
                                      forward_flops, load_models)

    rng = np.random.default_rng(0)
    print(f"{'precision':<16}{'it/s':>7}{'img-it/s':>10}{'GFLOP/s':>9}{'outside loop':>14}"
          f"{'matmul GFLOP/s':>16}{'% of peak':>10}")
    for precision in args.precision or ["float32", "mixed_bfloat16"]:
        if args.checkpoint_dir:
            config, g, d = load_models(args.checkpoint_dir, precision)
        else:
            config = ModelConfig()
            g, d = build_generator(config, precision), build_discriminator(config, precision)
        size = config.image_size
        images = rng.integers(0, 256, (args.batch_size, size, size, 3), dtype=np.uint8)
        masks = np.stack([center_mask(size)] * args.batch_size)
        n = args.iterations
        completer = Completer(g, d, CompleteOptions(iterations=n, out_interval=n,
                                                    batch_size=args.batch_size, seed=0))
        completer.complete(images[:args.batch_size], masks)  # trace
        # time the compiled loop alone, then the whole call
        targets = Targets.build(images, masks, completer.options)
        state = SearchState.start(rng.uniform(-1, 1, (args.batch_size, config.z_dim)))
        completer.search(state, targets, n).z.numpy()
        t = time.perf_counter()
        completer.search(state, targets, n).z.numpy()
        loop = time.perf_counter() - t
        t = time.perf_counter()
        completer.complete(images, masks)
        whole = time.perf_counter() - t
        g_f, d_f = forward_flops(config)
        gflops = 2 * (g_f + d_f) * args.batch_size * n / loop / 1e9
        peak = _common.matmul_gflops(precision)
        print(f"{precision:<16}{n / loop:7.2f}{args.batch_size * n / loop:10.1f}{gflops:9.1f}"
              f"{100 * (whole - loop) / whole:13.1f}%{peak:16.1f}{100 * gflops / peak:9.1f}%")

    if args.checkpoint_dir and args.faces:
        convergence(args, Completer, CompleteOptions, center_mask, load_models)


def convergence(args, Completer, CompleteOptions, center_mask, load_models):
    from dcgan_complete.images import load_crops
    from dcgan_complete.images import find_images

    config, g, d = load_models(args.checkpoint_dir)
    paths = find_images(args.faces)[:args.batch_size]
    _, images, _, _ = load_crops(paths, config.image_size)
    masks = np.stack([center_mask(config.image_size)] * len(images))
    print(f"\niterations to get within 1% of the final loss ({len(images)} faces, center mask, "
          f"{args.convergence_iterations} iterations):")
    for optimizer in ("momentum", "adam"):
        options = CompleteOptions(iterations=args.convergence_iterations, out_interval=10,
                                  optimizer=optimizer, seed=0)
        t = time.perf_counter()
        result = Completer(g, d, options).complete(images, masks)
        seconds = time.perf_counter() - t
        totals = {}
        for k, it, c, p, total in result.history:
            totals.setdefault(it, []).append(total)
        its = sorted(totals)
        best = np.minimum.accumulate(np.array([totals[i] for i in its]), axis=0)
        final = best[-1]
        within = [its[int(np.argmax(np.all(best <= final + 0.01 * np.abs(final), axis=1)))]]
        median = [its[int(np.argmax(best[:, k] <= final[k] + 0.01 * abs(final[k])))]
                  for k in range(best.shape[1])]
        print(f"  {optimizer:<9} final mean loss {final.mean():8.1f}; all images within 1% at "
              f"{within[0]}, median image at {int(np.median(median))}; {seconds:.0f} s")


if __name__ == "__main__":
    main()
