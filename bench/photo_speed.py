"""Photo repair speed: seconds per photo of about one megapixel, with one and with four faces,
split into detection, search, warps and blending.

    python bench/photo_speed.py [--iterations N] [--init random] [--checkpoint-dir DIR]

The photos are built from scikit-image's astronaut (public domain), her head and shoulders
enlarged to 1024 x 1024 (one face, dlib's box 310 px wide), and four copies of them in a 2 x 2
grid (1024 x 1024, four faces of 150 px).  Every face gets the ``center`` hole in its aligned
frame (as ``complete --mask center``); the model is the bundled one unless ``--checkpoint-dir``
is given.  The first repair (which traces the search) is not timed; each row is the mean of
``--repeats`` repairs:

- detect: dlib's detector and landmarks (for a mask kind, on the photo before the hole is cut);
- warp: the aligned crops, the masks carried into them, the completions carried back;
- search: the batched latent search (the photo's faces in one batch);
- blend: Poisson blending at the photo's resolution, Telea, grain.
"""
import argparse
import time

import _common  # noqa: F401  (quiet TensorFlow)
import numpy as np


def photos():
    from PIL import Image
    from skimage import data

    # her head and shoulders: lower down, dlib's detector also "finds" a face in the space suit
    head = Image.fromarray(np.ascontiguousarray(data.astronaut()[0:320, 96:416]))
    one = np.asarray(head.resize((1024, 1024), Image.LANCZOS))
    tile = np.asarray(head.resize((512, 512), Image.LANCZOS))
    four = np.concatenate([np.concatenate([tile, tile[:, ::-1]], axis=1)] * 2, axis=0)
    return {"1 face": one, "4 faces": np.ascontiguousarray(four)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int,
                        help="default: complete's for the start taken (see --init)")
    parser.add_argument("--init", choices=["encoder", "random"], default="encoder")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    _common.set_threads(args.threads)

    from dcgan_complete.search import load_completer
    from dcgan_complete.options import CompleteOptions
    from dcgan_complete.photo import TIMING_KEYS, PhotoRepairer

    completer = load_completer(args.checkpoint_dir, CompleteOptions(
        iterations=args.iterations, init=args.init, seed=0))
    repairer = PhotoRepairer(completer)
    print(f"{completer.size} px model, start {completer.init}, {completer.options.iterations} "
          f"iterations, {completer.options.precision}, mean of {args.repeats}")
    print(f"{'photo':<10}{'pixels':>12}{'faces':>7}" + "".join(f"{k:>9}" for k in TIMING_KEYS)
          + f"{'total s':>9}")
    for name, photo in photos().items():
        repairer.repair([photo], ["center"])  # traces the search for this batch size
        seconds, faces = [], 0
        for _ in range(args.repeats):
            tic = time.perf_counter()
            [repair] = repairer.repair([photo], ["center"])
            total = time.perf_counter() - tic
            seconds.append([repair.timings[k] for k in TIMING_KEYS] + [total])
            faces = len(repair.faces)
        mean = np.mean(seconds, axis=0)
        h, w = photo.shape[:2]
        print(f"{name:<10}{f'{w}x{h}':>12}{faces:>7}" + "".join(f"{s:9.2f}" for s in mean))


if __name__ == "__main__":
    main()
