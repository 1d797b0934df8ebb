"""What ``dcgan-complete complete`` does with files: read the images and masks, run the search of
:mod:`dcgan_complete.search`, and write every output without ever touching an input.

Before any work: the output folder must be writable and must not hold the run's inputs or masks,
and every output name is planned so that no two outputs (nor an output and the run's own
``summary.png``, ``losses.csv``, ``frames/``) share a name; an input whose outputs would collide
is given the next free name (``x_2``) and the summary says so.

Example
-------
>>> from dcgan_complete.complete import complete_files
>>> summary = complete_files(["a.png", "b.png"], mask="center", out_dir="out")  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name, ensure_writable_dir, is_inside, write_csv
from dcgan_complete.options import COMPLETE_OUT, CompleteOptions, MaskOptions
from dcgan_complete.search import Completer, CompletionResult

# Per input NAME: NAME.png, NAME.masked.png, NAME.generated.png, NAME.gif, frames/NAME/.
OUTPUT_SUFFIXES = ("", ".masked", ".generated")
SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR = "summary.png", "losses.csv", "frames"
RUN_FILES = (SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR)


class ResizeWarning(UserWarning):
    """Inputs were not the model's size and were resized."""


@dataclasses.dataclass
class CompletionSummary:
    completed: int
    skipped: list          # (path, reason)
    resized: int
    out_dir: Path
    seconds: float
    iterations: int
    renamed: list = dataclasses.field(default_factory=list)  # (path, output name)


def load_inputs(paths, size, strict=False):
    """Read the images to complete at the model's size.

    Returns (good paths, uint8 array, number resized, skipped [(path, reason)]).
    """
    good, arrays, skipped, resized = [], [], [], 0
    for path in paths:
        try:
            image = imgs.read_image(path)
        except imgs.ImageReadError as exc:
            skipped.append((display_name(path), str(exc)))
            continue
        if image.shape[:2] != (size, size):
            if strict:
                raise OptionError("strict", f"{display_name(path)} is {image.shape[1]}x"
                                            f"{image.shape[0]}, the model makes {size}x{size} "
                                            "images (without {strict} it would be resized)")
            image = imgs.center_crop_resize(image, size)
            resized += 1
        good.append(Path(path))
        arrays.append(image)
    return good, (np.stack(arrays) if arrays else None), resized, skipped


def output_files(name):
    """The files and folders one input named ``name`` writes in the output folder."""
    return [f"{name}{suffix}.png" for suffix in OUTPUT_SUFFIXES] + \
        [f"{name}.gif", f"{FRAMES_DIR}/{name}"]


def output_names(paths):
    """A distinct output name for every input, such that no output of one input has the name of
    another's or of the run's own files: its stem, else ``STEM_2``, ``STEM_3``...

    Names are compared case-insensitively, so the outputs are distinct on any file system.

    Example
    -------
    >>> output_names(["a/x.png", "b/x.jpg", "x.masked.png", "summary.png"])
    ['x', 'x_2', 'x.masked_2', 'summary_2']
    """
    taken = {f.casefold() for f in RUN_FILES}
    names = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 2
        while any(f.casefold() in taken for f in output_files(name)):
            name, k = f"{stem}_{k}", k + 1
        taken.update(f.casefold() for f in output_files(name))
        names.append(name)
    return names


def check_out_dir(out_dir, inputs, mask_spec=None):
    """Refuse an output folder that holds any input or mask of the run, or cannot be written.

    Raises
    ------
    OptionError
        Naming ``out_dir``.
    """
    out_dir = Path(out_dir)
    mask_path = None if mask_spec is None or str(mask_spec) in mask_lib.MASK_KINDS \
        else Path(mask_spec)
    for path in list(inputs) + ([mask_path] if mask_path is not None else []):
        if path.exists() and is_inside(path, out_dir):
            what = "the masks" if path == mask_path else "the input"
            raise OptionError("out_dir", f"{{out_dir}} {display_name(out_dir)} holds {what} "
                                         f"{display_name(path)}: outputs could overwrite it; "
                                         "choose another folder")
    ensure_writable_dir(out_dir, "out_dir")


def bundled_model_dir():
    """The model shipped inside the package, or None while there is none."""
    here = Path(__file__).parent / "weights"
    return here if (here / "config.json").is_file() else None


def load_completer(checkpoint_dir=None, options: CompleteOptions | None = None):
    """A Completer for ``checkpoint_dir``, or for the bundled model when it is None."""
    checkpoint_dir = checkpoint_dir or bundled_model_dir()
    if checkpoint_dir is None:
        raise OptionError("checkpoint_dir", "no model given: train one with `dcgan-complete "
                                            "train` and pass its {checkpoint_dir}")
    return Completer.from_checkpoint(checkpoint_dir, options)


def complete_files(paths, mask="center", out_dir=COMPLETE_OUT, checkpoint_dir=None,
                   options: CompleteOptions | None = None, frames=False, gif=False, strict=False,
                   mask_options: MaskOptions | None = None, progress=True):
    """What ``dcgan-complete complete`` does: read, mask, complete, blend and write everything.

    Writes, for every input NAME: NAME.png, NAME.masked.png, NAME.generated.png, and with
    ``frames``/``gif`` frames/NAME/NNNNN.png and NAME.gif; plus summary.png and losses.csv.
    Everything that can be checked is checked before the search starts.
    """
    options = options or CompleteOptions()
    mask_options = mask_options or MaskOptions()
    paths = [Path(p) for p in paths]
    if not paths:
        raise DcganError("no input images given")
    for p in paths:
        if not p.exists():
            raise DcganError(f"input {display_name(p)} does not exist")
    check_out_dir(out_dir, paths, mask)
    completer = load_completer(checkpoint_dir, options)
    size = completer.size
    good, images, resized, skipped = load_inputs(paths, size, strict)
    if resized:
        warnings.warn(f"{resized} image(s) were not {size}x{size} and were centre-cropped and "
                      f"resized", ResizeWarning, stacklevel=2)
    if images is None:
        raise DcganError(f"none of the {len(paths)} inputs could be read: {skipped[0][1]}")
    try:
        masks = mask_lib.masks_for_images(good, mask, size, rng=options.seed,
                                          **mask_options.params())
    except ValueError as exc:
        raise DcganError(str(exc)) from None
    names = output_names(good)
    renamed = [(display_name(p), n) for p, n in zip(good, names) if n != p.stem]
    with progress_bar(len(good), options.iterations, options.batch_size, progress) as report:
        result = completer.complete(images, masks, frames=frames or gif, progress=report)
    write_outputs(out_dir, names, images, result, frames=frames, gif=gif)
    return CompletionSummary(len(good), skipped, resized, Path(out_dir), result.seconds,
                             result.iterations_run, renamed)


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


def write_outputs(out_dir, names, images, result: CompletionResult, frames=False, gif=False):
    """Write NAME.png, NAME.masked.png, NAME.generated.png (+ frames, GIF), summary.png and
    losses.csv for a CompletionResult (``names`` from :func:`output_names`)."""
    out_dir = Path(out_dir)
    for k, name in enumerate(names):
        for suffix, image in zip(OUTPUT_SUFFIXES, (result.completed[k], result.masked[k],
                                                   result.generated[k])):
            imgs.write_image(out_dir / f"{name}{suffix}.png", image)
        if frames:
            for iteration, frame in zip(result.frame_iterations, result.frames[k]):
                imgs.write_image(out_dir / FRAMES_DIR / name / f"{iteration:05d}.png", frame)
        if gif:
            # the masked input, the search every out_interval, and the final (best-z) result last
            sequence = [result.masked[k]] + list(result.frames[k][:-1]) + [result.completed[k]]
            imgs.write_animation(out_dir / f"{name}.gif", sequence)
    triplets = [x for k in range(len(names)) for x in
                (images[k], result.masked[k], result.completed[k])]
    imgs.write_image(out_dir / SUMMARY_FILE,
                     imgs.image_grid(np.stack(triplets), cols=3 * min(4, len(names))))
    write_csv(out_dir / LOSSES_FILE, ["image", "iteration", "contextual", "perceptual", "total"],
              [[names[k], it, f"{c:.4f}", f"{p:.4f}", f"{t:.4f}"]
               for k, it, c, p, t in result.history])
