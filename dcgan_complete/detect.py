"""What ``dcgan-complete detect`` does: find the damage in photos and write it as masks.

Every photo gets ``OUT/NAME.png`` at its own size and upright (EXIF applied), in the convention
of every mask here: white = intact, black = damage.  ``complete --mask OUT/`` takes the folder as
it is, so the masks can be checked, or touched up in any paint program, first.  With
``overlay``, ``OUT/NAME.overlay.png`` shows what was found in colour over the photo.

Example
-------
>>> from dcgan_complete.detect import detect_files
>>> summary = detect_files(["scan.jpg"], "damage")            # doctest: +SKIP
>>> summary.photos[0].share                                     # doctest: +SKIP
0.012
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete.detector import damage_mask, damage_overlay, detect_damage, locate_detector
from dcgan_complete.errors import DcganError
from dcgan_complete.files import display_name
from dcgan_complete.options import DETECT_OUT, DetectOptions
from dcgan_complete.outputs import check_inputs, check_out_dir


@dataclasses.dataclass
class FoundDamage:
    """One photo's damage: its mask file and the share of its pixels found."""

    path: str
    mask: Path
    share: float


@dataclasses.dataclass
class DetectSummary:
    photos: list            # FoundDamage per photo
    skipped: list           # (path, reason)
    out_dir: Path
    seconds: float

    def lines(self):
        out = [f"skipped {path}: {reason}" for path, reason in self.skipped]
        out += [f"{p.path}: {p.share:.2%} of the pixels found damaged -> "
                f"{display_name(p.mask)}" for p in self.photos]
        out.append(f"found the damage in {len(self.photos)} photo(s) in {self.seconds:.1f} s; "
                   f"masks in {display_name(self.out_dir)}/ (white = intact, black = damage)")
        return out


def detect_files(paths, out_dir=DETECT_OUT, options: DetectOptions | None = None,
                 model_dir=None, progress=True):
    """Find the damage in every photo of ``paths`` and write its mask (and overlay) to
    ``out_dir``; the detector is ``options.detector``, else the model folder's, else the
    bundled one (:func:`~dcgan_complete.detector.locate_detector`)."""
    from tqdm import tqdm

    started = time.perf_counter()
    options = options or DetectOptions()
    paths = check_inputs(paths)
    check_out_dir(out_dir, paths)
    detector = locate_detector(options.detector, model_dir)
    names = _mask_names(paths)
    found, skipped = [], []
    for path, name in tqdm(list(zip(paths, names)), desc="detect", unit="photo",
                           disable=not progress, dynamic_ncols=True):
        try:
            photo = imgs.read_image(path)
        except imgs.ImageReadError as exc:
            skipped.append((display_name(path), str(exc)))
            continue
        probabilities = detect_damage(photo, detector)
        mask = damage_mask(probabilities, options.threshold, options.grow)
        target = Path(out_dir) / f"{name}.png"
        imgs.write_image(target, (mask * 255).astype(np.uint8))
        if options.overlay:
            imgs.write_image(Path(out_dir) / f"{name}.overlay.png",
                             damage_overlay(photo, 1.0 - mask, 0.5))
        found.append(FoundDamage(display_name(path), target, float(1.0 - mask.mean())))
    if not found:
        raise DcganError(f"none of the {len(paths)} inputs could be read: {skipped[0][1]}")
    return DetectSummary(found, skipped, Path(out_dir), time.perf_counter() - started)


def _mask_names(paths):
    """A mask name per photo: its stem (what ``complete --mask DIR/`` pairs by), ``STEM_2``...
    when two photos share one."""
    taken, names = set(), []
    for path in paths:
        name, k = path.stem, 2
        while name.casefold() in taken or name.endswith(".overlay"):
            name, k = f"{path.stem}_{k}", k + 1
        taken.add(name.casefold())
        names.append(name)
    return names
