"""Where a completion run's results go: every output's name, and the writers of the files.

Before any work the output folder is checked (:func:`check_out_dir`): it must be writable and
must not hold the run's inputs or masks.  Every output name is planned so that no two outputs
(nor an output and the run's own ``summary.png``, ``losses.csv``, ``frames/``) share a name: an
input whose outputs would collide is given the next free name (``x_2``).

Per aligned crop NAME: ``NAME.png``, ``NAME.masked.png``, ``NAME.generated.png``, ``NAME.gif``,
``frames/NAME/``; per photo NAME: ``NAME.png`` (or ``.jpg``), ``NAME.masked.png``,
``NAME.faceK.png``, ``NAME.faceK.gif``, ``frames/NAME/faceK/``; with ``--variants N`` (N > 1),
for either, ``NAME.variant1.png`` ... ``NAME.variantN.png`` (variant1 is NAME's fill) and
``NAME.spread.png``; per run ``summary.png`` and ``losses.csv``.  Everything is written
atomically (:mod:`dcgan_complete.files`).

Example
-------
>>> output_names(["a/x.png", "b/x.jpg"])
['x', 'x_2']
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name, ensure_writable_dir, is_inside, write_csv
from dcgan_complete.options import AUTO_MASK, PhotoOptions
from dcgan_complete.variants import spread_map, spread_picture

# Per input NAME: NAME.png, NAME.masked.png, NAME.generated.png, NAME.gif, frames/NAME/.
OUTPUT_SUFFIXES = ("", ".masked", ".generated")
SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR = "summary.png", "losses.csv", "frames"
RUN_FILES = (SUMMARY_FILE, LOSSES_FILE, FRAMES_DIR)
# With --variants N (N > 1): NAME.variant1.png ... NAME.variantN.png, and NAME.spread.png.
VARIANT_SUFFIX, SPREAD_SUFFIX = ".variant", ".spread"


def variant_files(name, variants=1):
    """The files ``--variants`` adds for an input named ``name``: none for one fill, else
    NAME.variant1.png ... NAME.variantN.png and NAME.spread.png."""
    if variants <= 1:
        return []
    return [f"{name}{VARIANT_SUFFIX}{k}.png" for k in range(1, variants + 1)] + \
        [f"{name}{SPREAD_SUFFIX}.png"]


def output_files(name, faces=None, photo_format="png", variants=1):
    """The files and folders one input named ``name`` writes in the output folder; for a photo
    (``faces``: its number of faces to repair) NAME.png or .jpg, NAME.masked.png, NAME.faceK.png
    and NAME.faceK.gif; and for either, with ``variants`` > 1, :func:`variant_files`."""
    if faces is not None:
        return [f"{name}.{photo_format}", f"{name}.masked.png", f"{FRAMES_DIR}/{name}"] + \
            [f"{name}.face{k}.{ext}" for k in range(faces) for ext in ("png", "gif")] + \
            variant_files(name, variants)
    return [f"{name}{suffix}.png" for suffix in OUTPUT_SUFFIXES] + \
        [f"{name}.gif", f"{FRAMES_DIR}/{name}"] + variant_files(name, variants)


def output_names(paths, faces=None, photo_format="png", variants=1):
    """A distinct output name for every input, such that no output of one input has the name of
    another's or of the run's own files: its stem, else ``STEM_2``, ``STEM_3``...

    Names are compared case-insensitively, so the outputs are distinct on any file system.
    ``faces`` (one entry per path: None for an aligned crop, a photo's number of faces),
    ``photo_format`` and ``variants`` say which files an input writes (see
    :func:`output_files`).

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
        files = lambda name: output_files(name, count, photo_format, variants)  # noqa: E731
        while any(f.casefold() in taken for f in files(name)):
            name, k = f"{stem}_{k}", k + 1
        taken.update(f.casefold() for f in files(name))
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


def check_shard_names(paths, n, variants=1):
    """Refuse inputs whose outputs would collide across N shards: a shard names its outputs
    without knowing the others' inputs, so no two inputs may need the same name (nor a name
    of a shard's summary or losses file).  ``variants``: as :func:`output_files` takes it.

    Raises
    ------
    OptionError
        Naming ``shard`` and the first such input.
    """
    ordered = sorted(paths, key=str)
    reserved = {f.casefold() for k in range(1, n + 1) for f in shard_run_files((k, n))}
    names = output_names(ordered, variants=variants)
    stems = {name.casefold() for name in names}
    for path, name in zip(ordered, names):
        # a photo NAME writes NAME.faceK.png for its K-th face, however many it turns out to have
        face_of = re.fullmatch(r"(.+)\.face\d+", name, flags=re.IGNORECASE)
        if name != Path(path).stem or any(f.casefold() in reserved
                                          for f in output_files(name, variants=variants)) \
                or (face_of and face_of.group(1).casefold() in stems):
            raise OptionError("shard", f"with {{shard}} every input needs outputs of its own "
                                       f"name: rename {display_name(path)}, whose name another "
                                       "input or a shard's summary has")


def check_inputs(paths):
    """The run's inputs as Paths, refused in one line when there are none or one is missing.

    A folder stands for the image files directly in it, sorted (not those in its subfolders,
    where earlier outputs may lie; see :func:`~dcgan_complete.images.find_images`); a file
    named twice (itself and in its folder) counts once.

    Raises
    ------
    DcganError
        If there are no inputs, one does not exist, or a folder holds no image file.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DcganError("no input images given")
    found, seen = [], set()
    for path in paths:
        if not path.exists():
            raise DcganError(f"input {display_name(path)} does not exist")
        inside = imgs.find_images(path, recursive=False) if path.is_dir() else [path]
        if not inside:
            raise DcganError(f"input folder {display_name(path)} holds no "
                             f"{imgs.IMAGE_KINDS} images")
        for p in inside:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


def check_out_dir(out_dir, inputs, mask_spec=None):
    """Refuse an output folder that holds any input or mask of the run, or cannot be written.

    Raises
    ------
    OptionError
        Naming ``out_dir``.
    """
    out_dir = Path(out_dir)
    mask_path = None if mask_spec is None or mask_spec == AUTO_MASK or \
        mask_lib.is_mask_kind(mask_spec) else Path(mask_spec)
    for path in list(inputs) + ([mask_path] if mask_path is not None else []):
        if path.exists() and is_inside(path, out_dir):
            what = "the masks" if path == mask_path else "the input"
            raise OptionError("out_dir", f"{{out_dir}} {display_name(out_dir)} holds {what} "
                                         f"{display_name(path)}: outputs could overwrite it; "
                                         "choose another folder")
    ensure_writable_dir(out_dir, "out_dir")


def write_outputs(out_dir, names, images, result, frames=False, gif=False,
                  run_files=True, shard=None):
    """Write NAME.png, NAME.masked.png, NAME.generated.png (+ frames, GIF; with the result's
    ``variants``, NAME.variantK.png and NAME.spread.png), and with ``run_files`` summary.png
    and losses.csv, for a CompletionResult (``names`` from :func:`output_names`)."""
    out_dir = Path(out_dir)
    for k, name in enumerate(names):
        for suffix, image in zip(OUTPUT_SUFFIXES, (result.completed[k], result.masked[k],
                                                   result.generated[k])):
            imgs.write_image(out_dir / f"{name}{suffix}.png", image)
        if result.variants is not None:
            # known pixels are copied into every fill, so they spread nowhere
            write_variants(out_dir, name, list(result.variants[k]),
                           spread_map(result.variants[k]), result.completed[k])
        if frames:
            for iteration, frame in zip(result.frame_iterations, result.frames[k]):
                imgs.write_image(out_dir / FRAMES_DIR / name / f"{iteration:05d}.png", frame)
        if gif:
            # the masked input, the search every out_interval, and the final (best-z) result last
            imgs.write_animation(out_dir / f"{name}.gif", crop_animation(result, k))
    if run_files:
        write_run_files(out_dir, names, images, result, shard)


def write_run_files(out_dir, names, images, result, shard=None):
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


def write_variants(out_dir, name, variants, spread, under):
    """Write NAME.variant1.png ... (``variants``: uint8 images, the first being NAME's fill)
    and NAME.spread.png, the picture of ``spread`` drawn over ``under``
    (:func:`~dcgan_complete.variants.spread_picture`)."""
    files = variant_files(name, len(variants))
    for file, image in zip(files, variants):
        imgs.write_image(Path(out_dir) / file, image)
    imgs.write_image(Path(out_dir) / files[-1], spread_picture(spread, under))


def write_photo_outputs(out_dir, name, repair, photo_options: PhotoOptions | None = None,
                        frames=False, gif=False, frame_iterations=()):
    """Write one photo's outputs (see the module's docstring) for a
    :class:`~dcgan_complete.photo.PhotoRepair`."""
    from concurrent.futures import ThreadPoolExecutor

    photo_options = photo_options or PhotoOptions()
    out_dir = Path(out_dir)
    target = out_dir / f"{name}.{photo_options.format}"
    # the two photo-sized files are encoded side by side (zlib and libjpeg let go of the GIL):
    # the masked view then costs no extra wall time on two cores
    with ThreadPoolExecutor(2) as pool:
        writes = [pool.submit(imgs.write_jpeg, target, repair.repaired, photo_options.quality)
                  if photo_options.format == "jpg" else
                  pool.submit(imgs.write_image, target, repair.repaired),
                  pool.submit(imgs.write_image, out_dir / f"{name}.masked.png", repair.masked)]
        for write in writes:
            write.result()
    if repair.variants is not None:
        write_variants(out_dir, name, repair.variants, repair.spread, repair.repaired)
    for k, face in enumerate(repair.faces):
        imgs.write_image(out_dir / f"{name}.face{k}.png", face.completed)
        if frames:
            for iteration, frame in zip(frame_iterations, face.frames):
                imgs.write_image(out_dir / FRAMES_DIR / name / f"face{k}" / f"{iteration:05d}.png",
                                 frame)
        if gif:
            # the damaged region, the search every out_interval, the repaired region last
            imgs.write_animation(out_dir / f"{name}.face{k}.gif", face_animation(repair, k))


def crop_animation(result, k):
    """The search of crop ``k`` of a CompletionResult (with frames) as pictures: the masked
    input, the search every out_interval, and the final (best-z) result last."""
    return [result.masked[k]] + list(result.frames[k][:-1]) + [result.completed[k]]


def face_animation(repair, k):
    """The search of face ``k`` of a PhotoRepair (with frames) as pictures of the photo around
    it: the damaged region, the search every out_interval, the repaired region last."""
    return [repair.face_region(k, masked=True)] + \
        [repair.face_region(k, frame) for frame in repair.faces[k].frames[:-1]] + \
        [repair.face_region(k)]
