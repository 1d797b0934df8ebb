"""How fast the damage detector is, and how much memory it takes, on a large photo.

    .venv/bin/python bench/detect_speed.py [--detector PATH] [--megapixels 12] [--repeat 2]
        [--base-filters 12 --levels 6] [--precision auto] [--tile 512] [--threads N]

Without --detector it times an untrained detector of the given size (the speed does not depend
on the weights), which is how the size was chosen.  The photo is a real one from
../shared/data/raw_photos enlarged to --megapixels (a 4:3 frame), so tiles see real content.
The default (the photo and its mirror image, ``detect_damage(flip=True)``) and one view are
timed in turn in the same run.  The first run compiles the tile function and is not counted;
the best of --repeat runs counts, since other programs on the machine slow single runs down.  The peak
resident memory of the whole process is reported too.  Targets (issue 20): at least 2 megapixels a second, at most
2 GB on a 12-megapixel photo.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import _common  # noqa: E402,F401  (quiet TensorFlow)

PHOTO = REPO.parent / "shared/data/raw_photos/with_faces/dlib_2008_001322.jpg"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detector", help="a trained detector (folder or .weights.h5)")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=12)
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--precision", default="auto",
                        help="auto (mixed_bfloat16 on a CPU with native bfloat16), float32, "
                             "mixed_bfloat16")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)

    import cv2
    import numpy as np

    from dcgan_complete import detector as det
    from dcgan_complete import images

    if args.detector:
        detector = det.load_detector(args.detector, precision=args.precision)
    else:
        from dcgan_complete.model import resolve_precision

        detector = det.new_detector(args.base_filters, args.levels,
                                    resolve_precision(args.precision))
    width = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    if PHOTO.exists():
        photo = cv2.resize(images.read_image(PHOTO), (width, height),
                           interpolation=cv2.INTER_CUBIC)
    else:
        photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    tile = {"tile": args.tile} if args.tile else {}
    config = detector.config
    print(f"detector: base {config['base_filters']}, levels {config['levels']}, "
          f"{det.macs_per_pixel(config['base_filters'], config['levels']):.0f} MAC/px, "
          f"{detector.model.count_params()} parameters, "
          f"{detector.model.get_layer('enc0').dtype_policy.name}")
    det.detect_damage(photo[:600, :600], detector, **tile)   # compile
    # the default (the photo and its mirror image) and one view, timed in turn in this run
    best = {True: float("inf"), False: float("inf")}
    for _ in range(args.repeat):
        for flip in best:
            start = time.perf_counter()
            probabilities = det.detect_damage(photo, detector, flip=flip, **tile)
            best[flip] = min(best[flip], time.perf_counter() - start)
    assert probabilities.shape == photo.shape[:2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    for flip, seconds in best.items():
        print(f"{width}x{height} ({width * height / 1e6:.1f} MP), "
              f"{'with' if flip else 'without'} the mirror view: best {seconds:.2f} s, "
              f"{width * height / 1e6 / seconds:.2f} MP/s (target >= 2)")
    print(f"peak memory {peak:.2f} GB (target <= 2)")


if __name__ == "__main__":
    main()
