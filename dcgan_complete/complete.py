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

from dcgan_complete import distribute
from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import DcganError, Note, OptionError
from dcgan_complete.files import display_name, ensure_writable_dir, is_inside, write_csv
from dcgan_complete.options import (COMPLETE_OUT, BulkOptions, CompleteOptions, MaskOptions,
                                    PhotoOptions)
from dcgan_complete.search import Completer, CompletionResult

# Per input NAME: NAME.png, NAME.masked.png, NAME.generated.png, NAME.gif, frames/NAME/.
OUTPUT_SUFFIXES = ("", ".masked", ".generated")
SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR = "summary.png", "losses.csv", "frames"
RUN_FILES = (SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR)


class ResizeWarning(Note):
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
    photos: list = dataclasses.field(default_factory=list)   # PhotoSummary per photo


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


def output_files(name, faces=None, photo_format="png"):
    """The files and folders one input named ``name`` writes in the output folder; for a photo
    (``faces``: its number of faces to repair) NAME.png or .jpg, NAME.masked.png, NAME.faceK.png
    and NAME.faceK.gif."""
    if faces is not None:
        return [f"{name}.{photo_format}", f"{name}.masked.png", f"{FRAMES_DIR}/{name}"] + \
            [f"{name}.face{k}.{ext}" for k in range(faces) for ext in ("png", "gif")]
    return [f"{name}{suffix}.png" for suffix in OUTPUT_SUFFIXES] + \
        [f"{name}.gif", f"{FRAMES_DIR}/{name}"]


def output_names(paths, faces=None, photo_format="png"):
    """A distinct output name for every input, such that no output of one input has the name of
    another's or of the run's own files: its stem, else ``STEM_2``, ``STEM_3``...

    Names are compared case-insensitively, so the outputs are distinct on any file system.
    ``faces`` (one entry per path: None for an aligned crop, a photo's number of faces) and
    ``photo_format`` say which files a photo writes (see :func:`output_files`).

    Example
    -------
    >>> output_names(["a/x.png", "b/x.jpg", "x.masked.png", "summary.png"])
    ['x', 'x_2', 'x.masked_2', 'summary_2']
    """
    taken = {f.casefold() for f in RUN_FILES}
    names = []
    for path, count in zip(paths, faces or [None] * len(paths)):
        stem = Path(path).stem
        name, k = stem, 2
        while any(f.casefold() in taken for f in output_files(name, count, photo_format)):
            name, k = f"{stem}_{k}", k + 1
        taken.update(f.casefold() for f in output_files(name, count, photo_format))
        names.append(name)
    return names


def select_shard(paths, k, n):
    """The K-th (from 1) of N deterministic slices of ``paths``, by sorted path: N processes
    given the same inputs with K = 1..N complete each exactly once.  Slices differ in length by
    one at most; with fewer inputs than N some are empty.

    Example
    -------
    >>> [select_shard(["d.png", "b.png", "a.png", "c.png", "e.png"], k, 2) for k in (1, 2)]
    [['a.png', 'b.png'], ['c.png', 'd.png', 'e.png']]
    """
    ordered = sorted(paths, key=str)
    return ordered[(k - 1) * len(ordered) // n:k * len(ordered) // n]


def shard_run_files(shard):
    """The names of summary.png and losses.csv for ``shard`` (K, N): ``summary-K-of-N.png``,
    ``losses-K-of-N.csv``; without a shard, the plain ones."""
    if shard is None:
        return SUMMARY_FILE, LOSSES_FILE
    tag = "-{}-of-{}".format(*shard)
    return (f"{Path(SUMMARY_FILE).stem}{tag}{Path(SUMMARY_FILE).suffix}",
            f"{Path(LOSSES_FILE).stem}{tag}{Path(LOSSES_FILE).suffix}")


def check_shard_names(paths, n):
    """Refuse inputs whose outputs would collide across N shards: a shard names its outputs
    without knowing the others' inputs, so no two inputs may need the same name (nor a name
    of a shard's summary or losses file).

    Raises
    ------
    OptionError
        Naming ``shard`` and the first such input.
    """
    ordered = sorted(paths, key=str)
    reserved = {f.casefold() for k in range(1, n + 1) for f in shard_run_files((k, n))}
    for path, name in zip(ordered, output_names(ordered)):
        if name != Path(path).stem or any(f.casefold() in reserved for f in output_files(name)):
            raise OptionError("shard", f"with {{shard}} every input needs outputs of its own "
                                       f"name: rename {display_name(path)}, whose name another "
                                       "input or a shard's summary has")


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
                   mask_options: MaskOptions | None = None, progress=True,
                   photo_options: PhotoOptions | None = None, bulk: BulkOptions | None = None):
    """What ``dcgan-complete complete`` does: read, mask, complete, blend and write everything.

    Writes, for every input NAME: NAME.png, NAME.masked.png, NAME.generated.png, and with
    ``frames``/``gif`` frames/NAME/NNNNN.png and NAME.gif; plus summary.png and losses.csv.
    Everything that can be checked is checked before the search starts.

    With ``photo_options.input_mode`` ``auto`` (the default) an image that is not the model's
    size is a photo, repaired at its own size by :func:`complete_photo_files`; ``photo`` takes
    every image for a photo, ``crop`` none.  ``strict`` refuses any image that is not the
    model's size (none is a photo, none is resized).

    ``bulk.shard`` (K/N) completes only the K-th of N slices of ``paths`` (see
    :func:`select_shard`) and names the run's files ``summary-K-of-N.png`` and
    ``losses-K-of-N.csv``; ``bulk.distribute`` ``mirrored`` splits every batch between the
    local devices.
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
    bulk = bulk or BulkOptions()
    shard = bulk.shard_of
    if shard is not None:
        check_shard_names(paths, shard[1])
        paths = select_shard(paths, *shard)
        if not paths:
            return CompletionSummary(0, [], 0, Path(out_dir), 0.0, 0)
    cluster = distribute.start(bulk.distribute, bulk.devices)
    with cluster.strategy.scope():  # the models' weights on every device
        completer = load_completer(checkpoint_dir, options)
    if cluster.replicas > 1:
        completer.split_across(cluster.strategy)
    size = completer.size
    photo_options = photo_options or PhotoOptions()
    if strict and photo_options.input_mode == "photo":
        raise OptionError(("strict", "input_mode"), "{strict} refuses images that are not the "
                                                    "model's size, {input_mode} photo repairs "
                                                    "every image at its own size: choose one")
    # strict: every input must be an aligned crop of the model's size
    crop_paths, photo_paths = split_inputs(paths, size,
                                           "crop" if strict else photo_options.input_mode)
    if photo_paths:
        return complete_photo_files(crop_paths, photo_paths, mask, out_dir, completer, frames,
                                    gif, mask_options, photo_options, progress, shard)
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
    with progress_bar(len(good), completer.options.iterations, options.batch_size,
                      progress) as report:
        result = completer.complete(images, masks, frames=frames or gif, progress=report)
    write_outputs(out_dir, names, images, result, frames=frames, gif=gif, shard=shard)
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


def write_outputs(out_dir, names, images, result: CompletionResult, frames=False, gif=False,
                  run_files=True, shard=None):
    """Write NAME.png, NAME.masked.png, NAME.generated.png (+ frames, GIF), and with
    ``run_files`` summary.png and losses.csv, for a CompletionResult (``names`` from
    :func:`output_names`)."""
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
    if run_files:
        write_run_files(out_dir, names, images, result, shard)


def write_run_files(out_dir, names, images, result: CompletionResult, shard=None):
    """summary.png (input | masked | completed, four images a row) and losses.csv, for the
    images of one search named ``names`` (named after ``shard``, see :func:`shard_run_files`)."""
    out_dir = Path(out_dir)
    summary_file, losses_file = shard_run_files(shard)
    triplets = [x for k in range(len(names)) for x in
                (images[k], result.masked[k], result.completed[k])]
    imgs.write_image(out_dir / summary_file,
                     imgs.image_grid(np.stack(triplets), cols=3 * min(4, len(names))))
    write_csv(out_dir / losses_file, ["image", "iteration", "contextual", "perceptual", "total"],
              [[names[k], it, f"{c:.4f}", f"{p:.4f}", f"{t:.4f}"]
               for k, it, c, p, t in result.history])


# ------------------------------------------------------------------------------------- photos
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


def split_inputs(paths, size, input_mode="auto"):
    """Which inputs are aligned crops and which are photos: ``(crop paths, photo paths)``.

    ``auto`` takes an image of exactly ``size`` x ``size`` for a crop and any other for a photo
    (only the header is read); an unreadable file goes with the crops, whose reader reports it.
    """
    if input_mode == "crop":
        return list(paths), []
    if input_mode == "photo":
        return [], list(paths)
    from PIL import Image

    crops, photos = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                is_crop = image.size == (size, size)
        except Exception:  # not an image: the crop reader says why
            is_crop = True
        (crops if is_crop else photos).append(path)
    return crops, photos


def load_photo_mask(path, shape, photo_name="the photo"):
    """Read a photo's mask (white = known, black = fill), which must have the photo's ``shape``.

    Returns a boolean (H, W) array, True = known.

    Raises
    ------
    DcganError
        For an unreadable mask or one of another size, in one line.
    """
    try:
        pixels = imgs.read_image(path)
    except imgs.ImageReadError as exc:
        raise DcganError(str(exc)) from None
    height, width = pixels.shape[:2]
    if (height, width) != tuple(shape):
        hint = " (the photo is shown upright, turned by its EXIF orientation: draw the mask on " \
               "the upright photo)" if (width, height) == tuple(shape) else ""
        raise DcganError(f"mask {display_name(path)} is {width}x{height} pixels, but "
                         f"{photo_name} is {shape[1]}x{shape[0]}: a photo's mask must have its "
                         f"size{hint}")
    known = pixels.astype(np.float32).mean(axis=2) >= 128
    if not known.any():
        raise DcganError(f"mask {display_name(path)} has no known pixel: it is all black "
                         "(white = known, black = fill)")
    return known


def photo_masks(paths, shapes, mask_spec):
    """One mask per photo: a mask kind (drawn in every face's frame), one mask file for all, or a
    folder of masks paired by file stem; files must have their photo's size."""
    if isinstance(mask_spec, str) and mask_spec in mask_lib.MASK_KINDS:
        return [mask_spec] * len(paths)
    spec = Path(mask_spec)
    if spec.is_dir():
        available = mask_lib.masks_by_stem(spec)
        missing = [p for p in paths if p.stem not in available]
        if missing:
            raise DcganError(f"no mask for image {display_name(missing[0])} in "
                             f"{display_name(spec)} (expected "
                             f"{display_name(spec / (missing[0].stem + '.png'))}); "
                             f"{len(missing)} image(s) have no mask")
        files = [available[p.stem] for p in paths]
    elif spec.is_file():
        files = [spec] * len(paths)
    else:
        raise DcganError(f"mask {display_name(mask_spec)!r} is neither a mask kind "
                         f"({', '.join(mask_lib.MASK_KINDS)}) nor an existing mask image or "
                         "directory")
    return [load_photo_mask(f, shape, display_name(p)) for f, p, shape in zip(files, paths, shapes)]


def complete_photo_files(crop_paths, photo_paths, mask, out_dir, completer, frames=False,
                         gif=False, mask_options: MaskOptions | None = None,
                         photo_options: PhotoOptions | None = None, progress=True, shard=None):
    """``complete`` on photos (and on the aligned crops of the same run): read, find the faces,
    one batched search over every face and crop, and write everything.

    Writes, per photo NAME: NAME.png (or NAME.jpg with ``photo_options.format``) at the photo's
    size, NAME.masked.png, NAME.faceK.png per repaired face (the completed crop), with ``gif``
    NAME.faceK.gif (the search shown on the face's region of the photo), with ``frames``
    frames/NAME/faceK/NNNNN.png; per crop what :func:`write_outputs` writes; summary.png and
    losses.csv over every crop and face.  A photo with a hole and no face is filled by Telea,
    with a :class:`NoFaceNote`.
    """
    import warnings

    from dcgan_complete.photo import PhotoRepairer

    mask_options = mask_options or MaskOptions()
    photo_options = photo_options or PhotoOptions()
    size = completer.size
    crops, crop_images, skipped = [], None, []
    if crop_paths:
        crops, crop_images, _, skipped = load_inputs(crop_paths, size)
    good, photos = [], []
    for path in photo_paths:
        try:
            photos.append(imgs.read_image(path))
            good.append(Path(path))
        except imgs.ImageReadError as exc:
            skipped.append((display_name(path), str(exc)))
    if not good and not crops:
        raise DcganError(f"none of the {len(crop_paths) + len(photo_paths)} inputs could be "
                         f"read: {skipped[0][1]}")
    masks = photo_masks(good, [p.shape[:2] for p in photos], mask)
    crop_masks = []
    if crops:
        try:
            crop_masks = mask_lib.masks_for_images(crops, mask, size, rng=completer.options.seed,
                                                   **mask_options.params())
        except ValueError as exc:
            raise DcganError(str(exc)) from None
    repairer = PhotoRepairer(completer, photo_options)
    rng = np.random.default_rng(completer.options.seed)
    plans = [repairer.plan(photo, m, rng, **mask_options.params())
             for photo, m in zip(photos, masks)]
    names = output_names(crops + good, [None] * len(crops) + [len(p.faces) for p in plans],
                         photo_options.format)
    crop_names, photo_names = names[:len(crops)], names[len(crops):]
    renamed = [(display_name(p), n) for p, n in zip(crops + good, names) if n != p.stem]
    batch = len(crops) + sum(len(p.faces) for p in plans)
    with progress_bar(batch, completer.options.iterations, completer.options.batch_size,
                      progress and batch > 0) as report:
        parts, result = repairer.search(plans, frames=frames or gif, progress=report,
                                        extra=(crop_images if crops else [], crop_masks))
    repairs = [repairer.finish(plan, *part, rng=rng) for plan, part in zip(plans, parts)]
    out_dir = Path(out_dir)
    if crops:
        write_outputs(out_dir, crop_names, crop_images, result.select(slice(0, len(crops))),
                      frames=frames, gif=gif, run_files=False)
    for name, repair in zip(photo_names, repairs):
        write_photo_outputs(out_dir, name, repair, photo_options, frames, gif,
                            result.frame_iterations if result is not None else [])
    if result is not None:
        batch_names = crop_names + [f"{name}.face{k}" for name, repair in
                                    zip(photo_names, repairs) for k in range(len(repair.faces))]
        inputs = list(crop_images if crops else []) + [face.crop for repair in repairs
                                                       for face in repair.faces]
        write_run_files(out_dir, batch_names, inputs, result, shard)
    summaries = []
    for path, name, photo, repair in zip(good, photo_names, photos, repairs):
        if repair.faces_found == 0 and repair.classical_pixels:
            warnings.warn(f"{display_name(path)}: no face found; its {repair.classical_pixels} "
                          "hole pixels were filled classically (Telea)", NoFaceNote,
                          stacklevel=2)
        summaries.append(PhotoSummary(display_name(path), name, (photo.shape[1], photo.shape[0]),
                                      repair.faces_found, len(repair.faces), repair.model_pixels,
                                      repair.classical_pixels, repair.timings))
    seconds = result.seconds if result is not None else 0.0
    iterations = result.iterations_run if result is not None else 0
    return CompletionSummary(len(crops) + len(good), skipped, 0, out_dir, seconds, iterations,
                             renamed, summaries)


def write_photo_outputs(out_dir, name, repair, photo_options: PhotoOptions | None = None,
                        frames=False, gif=False, frame_iterations=()):
    """Write one photo's outputs (see :func:`complete_photo_files`) for a
    :class:`~dcgan_complete.photo.PhotoRepair`."""
    photo_options = photo_options or PhotoOptions()
    out_dir = Path(out_dir)
    target = out_dir / f"{name}.{photo_options.format}"
    if photo_options.format == "jpg":
        write_jpeg(target, repair.repaired, photo_options.quality)
    else:
        imgs.write_image(target, repair.repaired)
    imgs.write_image(out_dir / f"{name}.masked.png", repair.masked)
    for k, face in enumerate(repair.faces):
        imgs.write_image(out_dir / f"{name}.face{k}.png", face.completed)
        if frames:
            for iteration, frame in zip(frame_iterations, face.frames):
                imgs.write_image(out_dir / FRAMES_DIR / name / f"face{k}" / f"{iteration:05d}.png",
                                 frame)
        if gif:
            # the damaged region, the search every out_interval, the repaired region last
            sequence = [repair.face_region(k, masked=True)] + \
                [repair.face_region(k, frame) for frame in face.frames[:-1]] + \
                [repair.face_region(k)]
            imgs.write_animation(out_dir / f"{name}.face{k}.gif", sequence)


def write_jpeg(path, image, quality=95):
    """Write ``image`` (uint8 (H, W, 3)) as a JPEG of ``quality`` (1-100), atomically."""
    from PIL import Image

    from dcgan_complete.files import atomic_write

    with atomic_write(path) as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="JPEG", quality=quality)
    return Path(path)
