"""What a 12-megapixel photo costs the command line beyond one aligned crop, in one run.

    python bench/photo_cli_cost.py PHOTO [--checkpoint-dir DIR] [--repeats 2]

Runs, each in a fresh process, ``dcgan-complete complete`` on:

- one aligned crop of the model's size, with one iteration (the program's own cost: importing
  TensorFlow, loading the model, tracing the search);
- PHOTO enlarged to 12 megapixels (4100 x 2928 or the photo's shape), with ``--mask center``
  at the defaults: every face gets the center hole in its aligned frame.  Give a photo with
  three faces (``raw_photos/with_faces/facerec_examples_knn_examples_test_obama_and_biden.jpg``
  of ``../shared/data``).

and prints the wall time and peak memory of each, the difference, and the photo run's own
summary line (its time by stage).  The two runs alternate, ``--repeats`` times, so that load
from other jobs falls on both.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# The child reports its wall time and peak memory (kB) on its last line.
CHILD = """
import resource, sys, time
t = time.perf_counter()
from dcgan_complete.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"BENCH {time.perf_counter() - t:.2f} {peak}", flush=True)
"""
TWELVE_MEGAPIXELS = 12e6


def run(args):
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True,
                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    lines = done.stdout.splitlines()
    bench = [line for line in lines if line.startswith("BENCH ")]
    if done.returncode != 0 or not bench:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}")
    seconds, peak = bench[-1].split()[1:]
    summary = [line for line in lines if line.startswith("completed")]
    return float(seconds), int(peak) / 1024, (summary or [""])[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from PIL import Image

    from dcgan_complete.model import read_config
    from dcgan_complete.search import bundled_model_dir

    model = args.checkpoint_dir or bundled_model_dir()
    size = read_config(model).image_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = Image.open(args.photo).convert("RGB")
        scale = (TWELVE_MEGAPIXELS / (photo.width * photo.height)) ** 0.5
        big = photo.resize((round(photo.width * scale), round(photo.height * scale)),
                           Image.LANCZOS)
        big.save(tmp / "photo.jpg", quality=92)
        crop = np.asarray(big.resize((size, size), Image.LANCZOS))
        Image.fromarray(crop).save(tmp / "crop.png")
        common = ["--checkpoint-dir", model]
        crop_runs, photo_runs = [], []
        for k in range(args.repeats):
            crop_runs.append(run(["complete", tmp / "crop.png", "--mask", "center", "--out",
                                  tmp / f"c{k}", "--iterations", "1", *common]))
            photo_runs.append(run(["complete", tmp / "photo.jpg", "--mask", "center", "--out",
                                   tmp / f"p{k}", *common]))
        print(f"photo {big.width}x{big.height} ({big.width * big.height / 1e6:.1f} MP), "
              f"crop {size}x{size}; mean of {args.repeats}")
        for name, runs in (("crop, 1 iteration", crop_runs), ("12 MP photo, defaults", photo_runs)):
            print(f"{name:<24} {np.mean([r[0] for r in runs]):7.1f} s "
                  f"{max(r[1] for r in runs):8.0f} MB peak")
        extra = np.mean([p[0] - c[0] for p, c in zip(photo_runs, crop_runs)])
        print(f"{'the photo costs':<24} {extra:7.1f} s more")
        print(f"photo run: {photo_runs[-1][2]}")


if __name__ == "__main__":
    main()
