"""What ``dcgan-complete complete`` does: check everything, read the images and masks, search,
and write every output without ever touching an input.

Before any work: the inputs must exist, the output folder must be writable and must not hold
the run's inputs or masks (:func:`dcgan_complete.outputs.check_out_dir`), and the masks must
fit their images.  Aligned crops are completed by the search of
:mod:`dcgan_complete.search`; photos (images that are not the model's size) are repaired at
their own size by :class:`dcgan_complete.photo.PhotoRepairer`, crops of the same run in the
same batched search.  With ``options.variants`` N > 1 every input also gets N fills to choose
from and their spread map (:mod:`dcgan_complete.variants`).  The run's wall time is reported by
stage.

Example
-------
>>> from dcgan_complete.complete import complete_files
>>> summary = complete_files(["a.png", "b.png"], mask="center", out_dir="out")  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np

from dcgan_complete import distribute
from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete import outputs
from dcgan_complete.errors import DcganError, Note, OptionError
from dcgan_complete.files import FolderLock, display_name
from dcgan_complete.options import (AUTO_MASK, COMPLETE_OUT, BulkOptions, CompleteOptions,
                                    DetectOptions, MaskOptions, PhotoOptions)
from dcgan_complete.photo import RUN_TIMING_KEYS, PhotoRepairer
from dcgan_complete.search import load_completer

# the stages of a run, as the summary reports them: "startup" is the program's own start
# (importing TensorFlow) when the caller says when that was
TIMING_KEYS = ("startup", "model", RUN_TIMING_KEYS[0], "find damage") + RUN_TIMING_KEYS[1:]


class ResizeWarning(Note):
    """Inputs were not the model's size and were resized."""


class NoFaceNote(Note):
    """A photo had a hole but no face: it was filled classically."""


@dataclasses.dataclass
class PhotoSummary:
    """What happened to one photo (``name``: its output name)."""

    path: str
    name: str
    size: tuple             # (width, height)
    faces_found: int
    faces_repaired: int
    model_pixels: int       # hole pixels filled from the faces' completions
    classical_pixels: int   # hole pixels filled by Telea
    timings: dict
    faces: list = dataclasses.field(default_factory=list)  # per face met: who repaired it, why
    damage_found: float | None = None  # with --mask auto: the share of pixels found damaged


@dataclasses.dataclass
class CompletionSummary:
    completed: int
    skipped: list          # (path, reason)
    resized: int
    out_dir: Path
    seconds: float         # the whole run's wall time
    iterations: int
    renamed: list = dataclasses.field(default_factory=list)  # (path, output name)
    photos: list = dataclasses.field(default_factory=list)   # PhotoSummary per photo
    timings: dict = dataclasses.field(default_factory=dict)  # seconds per stage (TIMING_KEYS)
    variants: int = 1      # fills written per input (NAME.variantK.png, NAME.spread.png)

    def lines(self):
        """What the command line prints after the run: skipped inputs, renamed outputs, each
        photo, and the wall time by stage."""
        out = [f"skipped {path}: {reason}" for path, reason in self.skipped]
        out += [f"note: {path} is written as {name}.png (its own name is taken by another "
                "output)" for path, name in self.renamed]
        for photo in self.photos:
            found = "" if photo.damage_found is None else \
                f"damage found in {photo.damage_found:.2%} of the pixels; "
            if photo.damage_found == 0:
                out.append(f"{photo.path} ({photo.size[0]}x{photo.size[1]}): no damage found; "
                           "left as it was")
                continue
            out.append(f"{photo.path} ({photo.size[0]}x{photo.size[1]}): {found}"
                       f"{photo.faces_found} face(s) found, {photo.faces_repaired} repaired; hole "
                       f"pixels filled by the model {photo.model_pixels}, by Telea "
                       f"{photo.classical_pixels}")
            out += [f"  {line}" for line in photo.faces]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items() if v >= 0.05)
        variants = f", {self.variants} variants each (NAME.variant1-{self.variants}.png, " \
            "NAME.spread.png)" if self.variants > 1 else ""
        out.append(f"completed {self.completed} image(s) in {self.seconds:.1f} s"
                   f"{f' ({stages})' if stages else ''}, {self.iterations} iterations"
                   f"{variants}; results in {display_name(self.out_dir)}/")
        return out


def split_inputs(paths, size, input_mode="auto"):
    """Which inputs are aligned crops and which are photos: ``(crop paths, photo paths)``.

    ``auto`` takes an image of exactly ``size`` x ``size`` for a crop and any other for a photo
    (only the header is read); an unreadable file goes with the crops, whose reader reports it.
    """
    if input_mode == "crop":
        return list(paths), []
    if input_mode == "photo":
        return [], list(paths)
    crops, photos = [], []
    for path in paths:
        found = imgs.image_size(path)  # None: not an image (the crop reader says why)
        (crops if found is None or found == (size, size) else photos).append(path)
    return crops, photos


def complete_files(paths, mask="center", out_dir=COMPLETE_OUT, checkpoint_dir=None,
                   options: CompleteOptions | None = None, frames=False, gif=False, strict=False,
                   mask_options: MaskOptions | None = None, progress=True,
                   photo_options: PhotoOptions | None = None, bulk: BulkOptions | None = None,
                   started=None, detect_options: DetectOptions | None = None):
    """What ``dcgan-complete complete`` does: read, mask, complete, blend and write everything.

    Writes, for every input NAME: NAME.png, NAME.masked.png, NAME.generated.png, and with
    ``frames``/``gif`` frames/NAME/NNNNN.png and NAME.gif, with ``options.variants`` N > 1
    NAME.variant1.png ... NAME.variantN.png and NAME.spread.png; plus summary.png and
    losses.csv (see :mod:`dcgan_complete.outputs`).  Everything that can be checked is checked
    before the search starts.

    With ``photo_options.input_mode`` ``auto`` (the default) an image that is not the model's
    size is a photo, repaired at its own size by :class:`~dcgan_complete.photo.PhotoRepairer`;
    ``photo`` takes every image for a photo, ``crop`` none.  ``strict`` refuses any image that
    is not the model's size (none is a photo, none is resized).

    ``bulk.shard`` (K/N) completes only the K-th of N slices of ``paths`` (see
    :func:`~dcgan_complete.outputs.select_shard`) and names the run's files
    ``summary-K-of-N.png`` and ``losses-K-of-N.csv``; ``bulk.distribute`` ``mirrored`` splits
    every batch between the local devices.

    ``mask`` ``auto`` finds the damage with the damage detector
    (:func:`~dcgan_complete.detector.detect_damage`, ``detect_options``): photos and crops are
    then repaired wherever it finds damage, and one where it finds none is written unchanged.

    ``started`` (a ``time.perf_counter()`` reading) is when the program started: the summary's
    wall time then counts from there, and its ``startup`` stage is the time until this call.
    """
    begun = time.perf_counter()
    started = begun if started is None else started
    options = options or CompleteOptions()
    mask_options = mask_options or MaskOptions()
    photo_options = photo_options or PhotoOptions()
    bulk = bulk or BulkOptions()
    paths = outputs.check_inputs(paths)
    if strict and photo_options.input_mode == "photo":
        raise OptionError(("strict", "input_mode"), "{strict} refuses images that are not the "
                                                    "model's size, {input_mode} photo repairs "
                                                    "every image at its own size: choose one")
    outputs.check_out_dir(out_dir, paths, mask)
    shard = bulk.shard_of
    if shard is not None:
        outputs.check_shard_names(paths, shard[1], options.variants)
        paths = outputs.select_shard(paths, *shard)
        if not paths:
            return CompletionSummary(0, [], 0, Path(out_dir), 0.0, 0)
    # two runs into one folder would write over each other's outputs and run files; the shards
    # of one run share their folder by design, with outputs of their own names
    lock = FolderLock(out_dir, "complete", "out_dir") if shard is None else None
    try:
        return _complete(paths, mask, out_dir, checkpoint_dir, options, frames, gif, strict,
                         mask_options, progress, photo_options, bulk, shard, begun, started,
                         detect_options or DetectOptions())
    finally:
        if lock is not None:
            lock.release()


def _complete(paths, mask, out_dir, checkpoint_dir, options, frames, gif, strict, mask_options,
              progress, photo_options, bulk, shard, begun, started, detect_options):
    """The run of :func:`complete_files`, once its inputs and folder are checked."""
    timings = dict.fromkeys(TIMING_KEYS, 0.0)
    timings["startup"] = begun - started
    tic = time.perf_counter()
    cluster = distribute.start(bulk.distribute, bulk.devices)
    with cluster.strategy.scope():  # the models' weights on every device
        completer = load_completer(checkpoint_dir, options)
    if cluster.replicas > 1:
        completer.split_across(cluster.strategy)
    size = completer.size
    timings["model"] = time.perf_counter() - tic

    tic = time.perf_counter()
    crop_paths, photo_paths = split_inputs(paths, size,
                                           "crop" if strict else photo_options.input_mode)
    crops, crop_images, resized, skipped = imgs.load_crops(crop_paths, size, strict)
    if resized:
        warnings.warn(f"{resized} image(s) were not {size}x{size} and were centre-cropped and "
                      f"resized", ResizeWarning, stacklevel=2)
    photo_files, photos = [], []
    for path in photo_paths:
        try:
            photos.append(imgs.read_image(path))
            photo_files.append(path)
        except imgs.ImageReadError as exc:
            skipped.append((display_name(path), str(exc)))
    if not crops and not photos:
        raise DcganError(f"none of the {len(paths)} inputs could be read: {skipped[0][1]}")
    timings["read"] = time.perf_counter() - tic
    found = None
    if mask == AUTO_MASK:
        tic = time.perf_counter()
        crop_masks, photo_masks = _find_damage(crop_images if crops else [], photos,
                                               detect_options, checkpoint_dir)
        found = [1.0 - float(m.mean()) for m in photo_masks]
        timings["find damage"] = time.perf_counter() - tic
    else:
        try:
            crop_masks = mask_lib.masks_for_images(crops, mask, size, rng=options.seed,
                                                   **mask_options.params()) if crops else []
            photo_masks = mask_lib.masks_for_images(photo_files, mask,
                                                    [p.shape[:2] for p in photos])
        except ValueError as exc:
            raise DcganError(str(exc)) from None

    repairer = PhotoRepairer(completer, photo_options)
    run = repairer.repair_files(
        list(zip(photo_files, photos, photo_masks)), out_dir,
        crops=(crops, crop_images, crop_masks) if crops else None, frames=frames, gif=gif,
        progress=progress, shard=shard, rng=np.random.default_rng(options.seed),
        mask_params=mask_options.params())
    for key, seconds in run.timings.items():
        timings[key] += seconds
    summaries = []
    rows = zip(photo_files, run.photo_names, photos, run.repairs)
    for k, (path, name, photo, repair) in enumerate(rows):
        if repair.faces_found == 0 and repair.classical_pixels:
            warnings.warn(f"{display_name(path)}: no face found; its {repair.classical_pixels} "
                          "hole pixels were filled classically (Telea)", NoFaceNote,
                          stacklevel=2)
        summaries.append(PhotoSummary(display_name(path), name, (photo.shape[1], photo.shape[0]),
                                      repair.faces_found, len(repair.faces), repair.model_pixels,
                                      repair.classical_pixels, repair.timings,
                                      repair.face_reports(),
                                      None if found is None else found[k]))
    names = run.crop_names + run.photo_names
    renamed = [(display_name(p), n) for p, n in zip(list(crops) + photo_files, names)
               if n != p.stem]
    iterations = run.result.iterations_run if run.result is not None else 0
    return CompletionSummary(len(crops) + len(photo_files), skipped, resized, Path(out_dir),
                             time.perf_counter() - started, iterations, renamed, summaries,
                             timings, options.variants)


def _find_damage(crops, photos, options, checkpoint_dir):
    """``--mask auto``: the masks of the crops and photos, from the damage detector (white =
    intact); a crop or photo with no damage found gets a mask with no hole."""
    from dcgan_complete.detector import damage_mask, detect_damage, locate_detector

    detector = locate_detector(options.detector, checkpoint_dir)
    return ([damage_mask(detect_damage(c, detector), options.threshold, options.grow)
             for c in crops],
            [damage_mask(detect_damage(p, detector), options.threshold, options.grow)
             for p in photos])
