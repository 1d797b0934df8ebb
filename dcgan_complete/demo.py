"""``dcgan-complete demo``: complete the bundled sample faces with several masks, in one batch.

Example
-------
>>> from dcgan_complete.demo import run_demo
>>> summary_png = run_demo("demo-out")  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.complete import (CompleteOptions, load_completer, load_inputs, output_names,
                                     progress_bar, write_outputs)
from dcgan_complete.errors import DcganError

DEMO_MASKS = ("center", "random", "scratches", "text")


def samples_dir():
    """The sample faces: ``data/samples`` of a source checkout, or the installed copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "samples", here.parent / "data" / "samples"):
        if candidate.is_dir() and any(candidate.glob("*.png")):
            return candidate
    return None


def run_demo(out_dir="demo-out", checkpoint_dir=None, samples=None, mask_kinds=DEMO_MASKS,
             options: CompleteOptions | None = None, progress=True):
    """Complete every sample face with every mask kind; returns the path of ``summary.png``.

    All (face, mask) pairs are searched in one batch.  Per mask kind, ``OUT/KIND/`` gets what
    ``complete`` writes (with GIFs); ``OUT/summary.png`` has one row per face: the original,
    then masked | completed for each kind.
    """
    options = options or CompleteOptions(iterations=600, seed=0)
    samples = Path(samples) if samples else samples_dir()
    if samples is None or not samples.is_dir():
        raise DcganError("no sample faces found: pass --samples DIR (a folder of aligned faces)")
    paths = imgs.find_images(samples, recursive=False)
    if not paths:
        raise DcganError(f"no images in {samples}")
    completer = load_completer(checkpoint_dir, options)
    size = completer.size
    good, faces, _, _ = load_inputs(paths, size)
    if faces is None:
        raise DcganError(f"none of the sample images in {samples} could be read")
    rng = np.random.default_rng(options.seed)
    masks = np.stack([mask_lib.make_mask(kind, size, rng=rng) for kind in mask_kinds
                      for _ in good])
    batch = np.concatenate([faces] * len(mask_kinds))
    with progress_bar(len(batch), options.iterations, options.batch_size, progress,
                      desc="demo") as report:
        result = completer.complete(batch, masks, frames=True, progress=report)
    names = output_names(good)
    n = len(good)
    for j, kind in enumerate(mask_kinds):
        part = _slice(result, slice(j * n, (j + 1) * n))
        write_outputs(Path(out_dir) / kind, names, faces, part, gif=True)
    rows = []
    for i in range(n):
        rows.append(faces[i])
        for j in range(len(mask_kinds)):
            rows += [result.masked[j * n + i], result.completed[j * n + i]]
    summary = Path(out_dir) / "summary.png"
    imgs.write_image(summary, imgs.image_grid(np.stack(rows), cols=1 + 2 * len(mask_kinds)))
    return summary


def _slice(result, part):
    """The CompletionResult of the images in ``part`` (a slice)."""
    import dataclasses

    history = [(k - part.start, it, c, p, t) for k, it, c, p, t in result.history
               if part.start <= k < part.stop]
    return dataclasses.replace(result, completed=result.completed[part],
                               generated=result.generated[part], masked=result.masked[part],
                               z=result.z[part], loss=result.loss[part], history=history,
                               frames=result.frames[part])
