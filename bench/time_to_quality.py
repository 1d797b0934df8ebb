"""Seconds to reach the quality of the original search, for random and encoder starts.

    python bench/time_to_quality.py FACES [--checkpoint-dir DIR] [--limit 32] [--mask center ...]

Runs ``dcgan_complete.sweep.time_to_quality`` (what ``evaluate --sweep`` runs) on aligned faces
the model never saw: random starts and the encoder's, float32 and mixed bfloat16, scored after
25 ... 1000 iterations, and prints, per mask, the seconds per image each setting needs to reach
the PSNR and face-found share of 1000 float32 iterations from random starts, and the share of
that reference's time.  Every setting runs in this one process, one after the other, so the
times compare side by side.
"""
import argparse

import _common  # noqa: F401  (quiet TensorFlow)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--mask", action="append")
    parser.add_argument("--iterations", default="25,50,100,200,500,1000")
    parser.add_argument("--encoder-stop", type=int, default=200,
                        help="the largest count to run the encoder's start to")
    parser.add_argument("--out", default="sweep-out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)

    from dcgan_complete.options import EVALUATE_MASKS
    from dcgan_complete.sweep import time_to_quality

    summary = time_to_quality(args.faces, checkpoint_dir=args.checkpoint_dir,
                              masks=args.mask or EVALUATE_MASKS,
                              iterations=[int(i) for i in args.iterations.split(",")],
                              limit=args.limit, seed=args.seed, out_dir=args.out,
                              stop_at={"encoder": args.encoder_stop})
    print(summary.report())
    print(f"\n{summary.images} faces, {summary.seconds:.0f} s in all; {args.out}/sweep.png")


if __name__ == "__main__":
    main()
