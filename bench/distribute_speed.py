"""Training-step time on 1 and on 2 replicas (``--distribute none`` against ``mirrored``).

    python bench/distribute_speed.py [--steps 10] [--devices CPU:0,CPU:1] [--precision float32]

Each configuration runs in a process of its own (logical CPU devices can only be made before
TensorFlow starts): the default model (64 px, gf = df = 64, batch 64, 1 D + 2 G updates) fed
by the real per-replica tf.data pipeline, with synchronized batch norm on 2 replicas.  On a CPU
the 2 "devices" are logical ones sharing the same cores, so this measures the cost of the
machinery (splitting, all-reduce, synchronized batch norm), not a speed-up; on GPUs pass
``--devices GPU:0,GPU:1``.
"""
import argparse
import json
import subprocess
import sys
import time

import _common  # noqa: F401  (quiet TensorFlow)
import numpy as np


def measure(args):
    """One configuration, in this process: seconds per step."""
    _common.set_threads(args.threads)
    from dcgan_complete import data, distribute
    from dcgan_complete.model import ModelConfig
    from dcgan_complete.train import GAN

    kind = "mirrored" if args.devices else "none"
    cluster = distribute.start(kind, args.devices)
    config = ModelConfig(image_size=args.image_size, gf_dim=args.filters, df_dim=args.filters)
    pool = np.random.default_rng(0).integers(0, 256, (1024, args.image_size, args.image_size, 3),
                                             dtype=np.uint8)
    gan = GAN(config, precision=args.precision, seed=0, strategy=cluster.strategy)
    batches = iter(cluster.strategy.distribute_datasets_from_function(
        lambda context: data.make_dataset(pool, list(range(len(pool))), args.image_size,
                                          args.batch_size, seed=0, z_dim=config.z_dim,
                                          input_context=context)))
    for _ in range(2):  # trace, warm up
        gan.train_step(next(batches))["d_loss"].numpy()
    start = time.perf_counter()
    for _ in range(args.steps):
        gan.train_step(next(batches))["d_loss"].numpy()
    return {"replicas": cluster.replicas, "seconds": (time.perf_counter() - start) / args.steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16", "auto"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--devices", default="CPU:0,CPU:1",
                        help="the devices of the mirrored run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args)))
        return
    print(f"model {args.image_size} px, gf = df = {args.filters}, batch {args.batch_size} "
          f"(global), {args.precision}, {args.steps} steps")
    print(f"{'distribute':<34}{'replicas':>9}{'s/step':>9}{'img/s':>8}")
    for devices in ("", args.devices):
        argv = [a for a in sys.argv[1:] if a != "--one"]
        if "--devices" in argv:
            del argv[argv.index("--devices"):argv.index("--devices") + 2]
        proc = subprocess.run([sys.executable, __file__, *argv, "--one", "--devices", devices],
                              capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        name = f"mirrored {devices}" if devices else "none"
        print(f"{name:<34}{result['replicas']:>9}{result['seconds']:>9.3f}"
              f"{args.batch_size / result['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
