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
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name
from dcgan_complete.options import DEMO_MASKS, DEMO_OUT, CompleteOptions, DemoOptions
from dcgan_complete.outputs import check_out_dir, output_names, write_outputs
from dcgan_complete.search import load_completer, progress_bar

__all__ = ["DEMO_MASKS", "DemoOptions", "run_demo"]


def run_demo(out_dir=DEMO_OUT, checkpoint_dir=None, demo: DemoOptions | None = None,
             options: CompleteOptions | None = None, progress=True):
    """Complete every sample face with every mask kind; returns the path of ``summary.png``.

    All (face, mask) pairs are searched in one batch.  Per mask kind, ``OUT/KIND/`` gets what
    ``complete`` writes (with GIFs); ``OUT/summary.png`` has one row per face: the original,
    then masked | completed for each kind.

    ``demo`` holds the sample folder, the mask kinds and the search settings a user may set
    (:class:`~dcgan_complete.options.DemoOptions`; its defaults by default); ``options``, when
    given, replaces the whole search's settings (its seed draws the random masks).
    """
    demo = demo or DemoOptions()
    options = options or demo.search_options()
    mask_kinds = demo.mask_kinds
    paths = _sample_paths(demo.samples)
    check_out_dir(out_dir, paths)
    completer = load_completer(checkpoint_dir, options)
    size = completer.size
    good, faces, _, _ = imgs.load_crops(paths, size)
    if faces is None:
        raise DcganError(f"none of the sample images in {display_name(paths[0].parent)} could "
                         "be read")
    rng = np.random.default_rng(options.seed)
    try:
        masks = [mask_lib.make_mask(kind, size, rng=rng) for kind in mask_kinds for _ in good]
    except ValueError as exc:
        raise DcganError(str(exc)) from None
    batch = np.concatenate([faces] * len(mask_kinds))
    with progress_bar(len(batch), completer.options.iterations, options.batch_size, progress,
                      desc="demo") as report:
        result = completer.complete(batch, masks, frames=True, progress=report)
    names = output_names(good)
    n = len(good)
    for j, kind in enumerate(mask_kinds):
        write_outputs(Path(out_dir) / kind, names, faces, result.select(slice(j * n, (j + 1) * n)),
                      gif=True)
    rows = []
    for i in range(n):
        rows.append(faces[i])
        for j in range(len(mask_kinds)):
            rows += [result.masked[j * n + i], result.completed[j * n + i]]
    summary = Path(out_dir) / "summary.png"
    imgs.write_image(summary, imgs.image_grid(np.stack(rows), cols=1 + 2 * len(mask_kinds)))
    return summary


def _sample_paths(samples):
    """The sample images: those in ``samples``, or the bundled ones."""
    if samples is None:
        samples = imgs.samples_dir()
        if samples is None:
            raise OptionError("samples", "the bundled sample faces are missing from this "
                                         "installation: pass {samples} with a folder of "
                                         "aligned faces")
    samples = Path(samples)
    if not samples.is_dir():
        state = "is not a folder" if samples.exists() else "does not exist"
        raise OptionError("samples", f"{{samples}} {display_name(samples)} {state}")
    paths = imgs.find_images(samples, recursive=False)
    if not paths:
        raise OptionError("samples", f"{{samples}} {display_name(samples)} holds no "
                                     f"{imgs.IMAGE_KINDS} images")
    return paths
