"""Training-step speed: steps/s, images/s, achieved GFLOP/s, input wait, and the matmul peak.

    python bench/train_speed.py [--steps 10] [--precision float32 --precision mixed_bfloat16]

The model is the default one (64 px, gf = df = 64, batch 64, 1 D + 2 G updates). Each precision is
timed twice: fed from one in-memory tensor (the upper bound) and fed through the real tf.data
pipeline of ``dcgan_complete.data`` from decoded images; the fraction of step time spent waiting
for the next batch is measured around ``next()``.
"""
import argparse
import time

import _common  # noqa: F401  (quiet TensorFlow)
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--precision", action="append",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)
    import tensorflow as tf

    from dcgan_complete import data
    from dcgan_complete.model import ModelConfig, step_flops
    from dcgan_complete.train import GAN

    config = ModelConfig(image_size=args.image_size, gf_dim=args.filters, df_dim=args.filters)
    flops = step_flops(config, args.batch_size)
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (max(1024, 4 * args.batch_size), args.image_size,
                                 args.image_size, 3), dtype=np.uint8)
    print(f"model {args.image_size} px, gf = df = {args.filters}, batch {args.batch_size}: "
          f"{flops / 1e9:.0f} GFLOP per step (1 D + 2 G updates)")
    print(f"{'precision':<16}{'feed':<10}{'s/step':>8}{'steps/s':>9}{'img/s':>8}"
          f"{'GFLOP/s':>9}{'wait':>7}{'matmul GFLOP/s':>16}")
    for precision in args.precision or ["float32", "mixed_bfloat16"]:
        gan = GAN(config, precision=precision, seed=0)
        fixed = tf.constant(pool[:args.batch_size] / 127.5 - 1.0, tf.float32)
        dataset = iter(data.make_dataset(pool, list(range(len(pool))), args.image_size,
                                         args.batch_size, seed=0))
        gan.train_step(fixed)  # trace
        rates = {}
        for feed in ("memory", "tf.data"):
            wait = 0.0
            gan.train_step(fixed if feed == "memory" else next(dataset))["d_loss"].numpy()
            start = time.perf_counter()
            for _ in range(args.steps):
                if feed == "memory":
                    batch = fixed
                else:
                    t = time.perf_counter()
                    batch = next(dataset)
                    wait += time.perf_counter() - t
                gan.train_step(batch)["d_loss"].numpy()
            seconds = (time.perf_counter() - start) / args.steps
            rates[feed] = 1 / seconds
            peak = matmul_peak(precision) if feed == "memory" else None
            print(f"{precision:<16}{feed:<10}{seconds:8.3f}{1 / seconds:9.3f}"
                  f"{args.batch_size / seconds:8.1f}{flops / seconds / 1e9:9.1f}"
                  f"{100 * wait / args.steps / seconds:6.1f}%"
                  + (f"{peak:16.1f}" if peak else ""))
        print(f"{precision:<16}tf.data throughput = {100 * rates['tf.data'] / rates['memory']:.1f}%"
              f" of in-memory")


_peaks = {}


def matmul_peak(precision):
    if precision not in _peaks:
        _peaks[precision] = _common.matmul_gflops(precision)
    return _peaks[precision]


if __name__ == "__main__":
    main()
