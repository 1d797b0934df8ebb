"""What ``dcgan-complete evaluate`` does: mask ground-truth faces, fill them, score the fills.

Every image is masked with each mask kind and filled by every method: the model (``ours``, the
search of :mod:`dcgan_complete.search`) and the classical fills of
:mod:`dcgan_complete.classical` (biharmonic, Telea, Navier-Stokes, mean).  The scores are those
of :mod:`dcgan_complete.metrics`.  The biharmonic fill and SSIM need scikit-image, which comes
with the ``eval`` extra (``pip install 'dcgan-complete[eval]'``).  This module imports
TensorFlow (through :mod:`dcgan_complete.search`).

References
----------
.. [1] R. A. Yeh, C. Chen, T. Y. Lim, A. G. Schwing, M. Hasegawa-Johnson and M. N. Do,
       "Semantic Image Inpainting with Deep Generative Models", CVPR 2017, Table 1.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete import metrics
from dcgan_complete.classical import BASELINE_MODULES, BASELINES, HOLE_GRAY, TELEA_RADIUS
from dcgan_complete.errors import DcganError
from dcgan_complete.files import display_name, ensure_writable_dir, write_csv, write_text
from dcgan_complete.options import (EVALUATE_MASKS, EVALUATE_METHODS, EVALUATE_OUT,
                                    PHOTO_EVALUATE_MASKS, PHOTO_EVALUATE_METHODS,
                                    CompleteOptions, EvaluateOptions, MaskOptions, PhotoOptions)
from dcgan_complete.search import bundled_model_dir, load_completer

# The paper's four masks; "left" is its "half".
DEFAULT_MASKS = EVALUATE_MASKS
METHODS = EVALUATE_METHODS
OURS = METHODS[0]
COMPARISON_METHODS = (OURS, "biharmonic", "telea")
COMPARISON_IMAGES = 4

# Yeh et al. (2017), Table 1: PSNR in dB on CelebA, (Context Encoder, Yeh et al.).
PAPER_PSNR = {"center": (21.3, 19.4), "pattern": (19.2, 17.4), "random": (20.6, 22.8),
              "left": (15.5, 13.7)}
PAPER_MASK_NAMES = {"center": "center", "pattern": "pattern", "random": "random 80%",
                    "left": "half"}

SUMMARY_FIELDS = ("mask", "method", "images", "psnr", "psnr_hole", "ssim", "face_found",
                  "distance", "same_person", "seconds_per_image")
PER_IMAGE_FIELDS = ("image", "mask", "method", "psnr", "psnr_hole", "ssim", "face_found",
                    "distance", "same_person", "seconds")


# --------------------------------------------------------------------------------------------
# the evaluation


@dataclasses.dataclass
class EvaluationSummary:
    """What :func:`evaluate` measured and wrote.

    ``rows`` holds one dict per (mask, method) with the fields of ``SUMMARY_FIELDS`` (shares as
    fractions in [0, 1]); ``per_image`` one dict per (image, mask, method).
    """

    rows: list
    per_image: list
    images: int
    originals_face_found: float
    skipped: list            # (path, reason)
    resized: int
    out_dir: Path
    seconds: float
    settings: dict

    def table(self):
        """The summary as a reStructuredText simple table (paste it into a README)."""
        return format_table(self.rows)

    def report(self):
        """The table, the originals' face-found share, and the paper's PSNR for comparison."""
        paper = ", ".join(f"{PAPER_MASK_NAMES[k]}{'' if PAPER_MASK_NAMES[k] == k else f' ({k})'}"
                          f" {ce} / {ours}" for k, (ce, ours) in PAPER_PSNR.items())
        return "\n".join([
            self.table(), "",
            f"{self.images} image(s); dlib finds a face in {self.originals_face_found:.0%} of "
            "the originals.",
            "same person: mean embedding distance to the original (share below "
            f"{metrics.SAME_PERSON_DISTANCE}).",
            "s/image: for ours, the batched search's time divided by the images.", "",
            "Yeh et al. (CVPR 2017), Table 1, PSNR (dB) on CelebA, Context Encoder / theirs:",
            paper])


def evaluate(aligned_dir, checkpoint_dir=None, evaluation: EvaluateOptions | None = None,
             out_dir=EVALUATE_OUT, options: CompleteOptions | None = None,
             mask_options: MaskOptions | None = None, progress=True, **fields):
    """Mask ground-truth faces, fill them with the model and the baselines, and score the fills.

    Writes into ``out_dir``: ``summary.csv`` and ``summary.json`` (one row per mask and method,
    the means over the images), ``per_image.csv`` (every score of every fill) and
    ``comparison.png`` (for the first four images, per mask: original | masked | ours |
    biharmonic | telea, as far as those methods were run).

    Scores, per fill (see :mod:`dcgan_complete.metrics`): PSNR of the whole image and of the hole
    (capped at 100 dB), SSIM (scikit-image, Wang et al.'s settings), whether dlib finds a face in
    it (4x enlarged), and the distance of its dlib face embedding to the original's (below 0.6:
    the same person), and the time per image.  For ``ours`` the time is that of the whole batched
    search divided by the number of images; the first mask's includes tracing the graph.

    Parameters
    ----------
    aligned_dir : str or Path
        Aligned ground-truth faces (image files, searched recursively), ideally ones the
        model never saw; resized (centre-cropped) to the model's size where needed.
    checkpoint_dir : str or Path, optional
        A ``train`` output folder; by default the bundled model.  Not needed without ``ours``.
    evaluation : EvaluateOptions, optional
        What to score: ``masks``, mask kinds (see :data:`dcgan_complete.masks.MASK_KINDS`; not
        ``full`` or ``lowres``; the random kinds draw a fresh mask per image, every method gets
        the same masks; default :data:`DEFAULT_MASKS`); ``methods``, any of :data:`METHODS`
        (default all); ``limit``, use only this many images, drawn at random (with ``seed``)
        from the sorted list; ``seed``, which seeds the choice of images, the random masks and
        the model's starting z: a run with the same arguments repeats exactly.
    **fields
        Fields of ``evaluation`` to replace, as ``masks=("center",), seed=3``.
    out_dir : str or Path
        Where the report goes (created if needed).
    options : CompleteOptions, optional
        The model's search settings (as for ``complete``; its ``seed`` is not used).
    mask_options : MaskOptions, optional
        The parameters of the mask kinds (``center_scale``, ``fraction``).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    EvaluationSummary

    Raises
    ------
    DcganError
        For an unknown mask or method, a missing folder or model, no readable image, or a missing
        library of the ``eval`` extra.
    """
    start = time.perf_counter()
    evaluation = dataclasses.replace(evaluation or EvaluateOptions(), **fields)
    masks, methods = metrics.check_choices(evaluation.mask_kinds, evaluation.method_names)
    limit, seed = evaluation.limit, evaluation.seed
    _check_libraries(methods)
    mask_options = mask_options or MaskOptions()
    aligned_dir = Path(aligned_dir)
    paths = metrics.choose_images(aligned_dir, out_dir, limit, seed)
    ensure_writable_dir(out_dir, "out_dir")
    completer, checkpoint_dir = _load_model(checkpoint_dir, options) if OURS in methods \
        else (None, None)
    size = completer.size if completer else _first_image_size(paths)
    good, images, resized, skipped = imgs.load_crops(paths, size)
    if images is None:
        raise DcganError(f"none of the {len(paths)} images could be read: {skipped[0][1]}")
    names = [p.relative_to(aligned_dir).as_posix() for p in good]
    checker = metrics.FaceChecker()
    batch_size = completer.options.batch_size if completer else 1
    iterations = completer.options.iterations if completer else 0
    with _Progress(len(images), masks, methods, batch_size, iterations, progress) as bar:
        originals = _score_originals(images, checker, bar)
        per_image, shown = _fill_and_score(images, names, good, masks, methods, completer,
                                           checker, originals, seed, mask_options, bar)
    rows = [_mean_row(kind, method, [r for r in per_image
                                     if r["mask"] == kind and r["method"] == method])
            for kind in masks for method in methods]
    settings = _settings(aligned_dir, checkpoint_dir, size, masks, methods, limit, seed,
                         mask_options, completer)
    summary = EvaluationSummary(rows, per_image, len(images),
                                float(np.mean([found for found, _ in originals])), skipped,
                                resized, Path(out_dir), 0.0, settings)
    _write_report(summary, images, shown, masks, methods)
    summary.seconds = time.perf_counter() - start
    return summary


class _Progress:
    """One bar for the whole evaluation.  With the model among the methods it counts the
    model's search iterations, which take nearly all the time, so its estimate holds; the
    baselines and the scoring only update its label.  Without the model it counts fills."""

    def __init__(self, n, masks, methods, batch_size, iterations, enabled):
        from tqdm import tqdm

        self.by_iterations = OURS in methods
        total = len(masks) * -(-n // batch_size) * iterations if self.by_iterations \
            else n * len(masks) * len(methods)
        self.bar = tqdm(total=total, unit="it" if self.by_iterations else "fill",
                        desc="evaluate", disable=not enabled, dynamic_ncols=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def label(self, text):
        self.bar.set_postfix_str(text)

    def search_report(self, label):
        """The progress callback of Completer.complete."""
        def report(images_done, loss, iterations):
            self.bar.set_postfix_str(f"{label}, loss {loss:.1f}")
            self.bar.update(iterations)
        return report

    def filled(self):
        if not self.by_iterations:
            self.bar.update()


def _score_originals(images, checker, bar):
    """(face found, embedding) of every original."""
    bar.label("originals")
    return [(checker.face_found(image), checker.embedding(image)) for image in images]


def _fill_and_score(images, names, paths, masks, methods, completer, checker, originals, seed,
                    mask_options, bar):
    """Every image masked with every kind and filled by every method, and the scores of each
    fill; also the fills shown in comparison.png."""
    per_image, shown = [], {}
    size = images.shape[1]
    for kind in masks:
        kind_key = mask_lib.MASK_KINDS.index(kind)
        try:
            mask_stack = np.stack(mask_lib.masks_for_images(
                paths, kind, size, rng=np.random.default_rng([seed, kind_key, 0]),
                **mask_options.params()))
        except ValueError as exc:
            raise DcganError(str(exc)) from None
        shown[kind, "masked"] = np.where(mask_stack[:COMPARISON_IMAGES, ..., None] >= 0.5,
                                         images[:COMPARISON_IMAGES], HOLE_GRAY).astype(np.uint8)
        for method in methods:
            bar.label(f"{kind}/{method}")
            filled, seconds = _fill(method, images, mask_stack, completer,
                                    np.random.default_rng([seed, kind_key, 1]),
                                    bar.search_report(f"{kind}/{method}"), bar)
            shown[kind, method] = filled[:COMPARISON_IMAGES]
            bar.label(f"{kind}/{method}: scoring")
            for k in range(len(images)):
                scores = _scores(images[k], filled[k], mask_stack[k], checker, originals[k][1])
                per_image.append({"image": names[k], "mask": kind, "method": method, **scores,
                                  "seconds": seconds[k]})
    return per_image, shown


def _settings(aligned_dir, checkpoint_dir, size, masks, methods, limit, seed, mask_options,
              completer):
    """What the run used, for summary.json."""
    return {
        "aligned_dir": display_name(aligned_dir),
        "checkpoint_dir": display_name(checkpoint_dir) if checkpoint_dir else None,
        "image_size": size, "masks": list(masks), "methods": list(methods), "limit": limit,
        "seed": seed, "mask_options": dataclasses.asdict(mask_options),
        "options": dataclasses.asdict(completer.options) if completer else None,
        "psnr_cap_db": metrics.PSNR_CAP_DB,
        "ssim": "skimage.metrics.structural_similarity, Gaussian window 11, sigma 1.5",
        "face_upscale": metrics.FACE_UPSCALE,
        "face_pad": metrics.FACE_PAD,
        "same_person_distance": metrics.SAME_PERSON_DISTANCE,
        "opencv_radius": TELEA_RADIUS}


def _check_libraries(methods):
    """Fail before any work when a library the chosen methods need is missing."""
    metrics.import_optional("skimage.metrics", "SSIM")
    for method in methods:
        if BASELINE_MODULES.get(method):
            metrics.import_optional(BASELINE_MODULES[method], f"the {method} baseline")


def _first_image_size(paths):
    """Without a model, the images are scored at the (shorter) side of the first readable one."""
    for path in paths:
        found = imgs.image_size(path)  # the header alone: nothing is decoded
        if found is not None:
            return min(found)
    raise DcganError(f"none of the {len(paths)} images could be read")


def _load_model(checkpoint_dir, options):
    completer = load_completer(checkpoint_dir, options)
    return completer, checkpoint_dir or bundled_model_dir()


def _fill(method, images, masks, completer, rng, progress, bar):
    """All images filled by ``method``, and the seconds each took."""
    if method == OURS:
        result = completer.complete(images, masks, rng=rng, progress=progress)
        return result.completed, [result.seconds / len(images)] * len(images)
    filled, seconds = _fill_each(BASELINES[method], images, masks, bar)
    return np.stack(filled), seconds


def _fill_each(fill, images, masks, bar):
    """``fill(image, mask)`` for every image, and the seconds each took."""
    filled, seconds = [], []
    for image, mask in zip(images, masks):
        tic = time.perf_counter()
        filled.append(fill(image, mask))
        seconds.append(time.perf_counter() - tic)
        bar.filled()
    return filled, seconds


def _scores(original, filled, mask, checker, original_embedding):
    distance = checker.distance(original_embedding, checker.embedding(filled))
    return {"psnr": metrics.psnr(original, filled),
            "psnr_hole": metrics.psnr(original, filled, mask=mask),
            "ssim": metrics.ssim(original, filled),
            "face_found": checker.face_found(filled),
            "distance": distance,
            "same_person": distance < metrics.SAME_PERSON_DISTANCE}


def _mean_row(kind, method, rows):
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    return {"mask": kind, "method": method, "images": len(rows), "psnr": mean("psnr"),
            "psnr_hole": mean("psnr_hole"), "ssim": mean("ssim"),
            "face_found": mean("face_found"), "distance": mean("distance"),
            "same_person": mean("same_person"), "seconds_per_image": mean("seconds")}


# --------------------------------------------------------------------------------------------
# output


def format_table(rows):
    """Summary rows as a reStructuredText simple table.

    Columns: mask, method, PSNR and PSNR-hole (dB), SSIM, face found (share of fills in which
    dlib finds a face), same person (mean embedding distance to the original, and in brackets
    the share below 0.6), s/image.
    """
    header = ("mask", "method", "PSNR", "PSNR-hole", "SSIM", "face found", "same person",
              "s/image")
    right = (False, False, True, True, True, True, True, True)
    body = [(r["mask"], r["method"], f"{r['psnr']:.2f}", f"{r['psnr_hole']:.2f}",
             f"{r['ssim']:.3f}", f"{r['face_found']:.0%}",
             f"{r['distance']:.2f} ({r['same_person']:.0%})", f"{r['seconds_per_image']:.3f}")
            for r in rows]
    return metrics.rst_table(header, body, right)


def _write_report(summary, images, shown, masks, methods):
    out = summary.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _write_rows(out / "summary.csv", SUMMARY_FIELDS, summary.rows)
    _write_rows(out / "per_image.csv", PER_IMAGE_FIELDS, summary.per_image)
    document = {"settings": summary.settings, "images": summary.images,
                "originals_face_found": summary.originals_face_found,
                "rows": summary.rows, "skipped": [list(s) for s in summary.skipped],
                "paper_psnr": {k: {"context_encoder": ce, "yeh_et_al": ours}
                               for k, (ce, ours) in PAPER_PSNR.items()}}
    write_text(out / "summary.json", json.dumps(document, indent=2) + "\n")
    columns = ["masked"] + [m for m in COMPARISON_METHODS if m in methods]
    tiles = [image for kind in masks for k in range(min(COMPARISON_IMAGES, len(images)))
             for image in [images[k]] + [shown[kind, c][k] for c in columns]]
    imgs.write_image(out / "comparison.png",
                     imgs.image_grid(np.stack(tiles), cols=1 + len(columns)))


def _format_value(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _write_rows(path, fields, rows):
    write_csv(path, fields, [[_format_value(row[f]) for f in fields] for row in rows])


# --------------------------------------------------------------------------------------------
# ordinary photos, at their own size

PHOTO_MASKS, PHOTO_METHODS = PHOTO_EVALUATE_MASKS, PHOTO_EVALUATE_METHODS
PHOTO_SUMMARY_FIELDS = ("mask", "method", "photos", "faces", "psnr_hole", "face_found",
                        "model_faces", "seconds_per_photo")
PER_PHOTO_FIELDS = ("photo", "mask", "method", "faces", "hole_pixels", "psnr_hole",
                    "faces_found", "model_faces", "seconds")
PER_FACE_FIELDS = ("photo", "face", "box", "mask", "method", "repaired_by", "why",
                   "hole_pixels", "psnr_hole", "found_again")
FACE_MATCH_IOU = 0.5     # a detection is the same face when the boxes overlap this much
PHOTO_TILE = 128         # side of a face's tile in comparison.png and worst.png
WORST_FACES = 5          # worst.png: the faces of the lowest hole PSNR (ours)


@dataclasses.dataclass
class PhotoEvaluationSummary:
    """What :func:`evaluate_photos` measured and wrote.

    ``rows`` holds one dict per (mask, method) with the fields of ``PHOTO_SUMMARY_FIELDS``;
    ``per_photo`` one dict per (photo, mask, method) with those of ``PER_PHOTO_FIELDS``.
    """

    rows: list
    per_photo: list
    photos: int
    faces: int
    skipped: list            # (path, reason): unreadable, or no face found in the original
    out_dir: Path
    seconds: float
    settings: dict
    per_face: list = dataclasses.field(default_factory=list)  # PER_FACE_FIELDS per face

    def table(self):
        """The summary as a reStructuredText simple table."""
        return format_photo_table(self.rows)

    def report(self):
        return "\n".join([
            self.table(), "",
            f"{self.photos} photo(s) with {self.faces} face(s); every face had its hole cut at "
            "the photo's scale, in its own aligned frame.",
            "PSNR-hole: over the hole pixels of each photo at full resolution, mean over photos.",
            "face found: share of the faces dlib's detector finds again in the filled photo, at "
            "the photo's own scale (the boxes overlapping by IoU >= "
            f"{FACE_MATCH_IOU}).",
            "reached: share of the damaged faces (those dlib finds in the undamaged photo) that "
            "the pipeline found in the damaged photo and repaired with the model (ours); "
            "per_face.csv says for each face who repaired it, and why Telea did.",
            "s/photo: for ours detection, warps, the photo's share of the batched search and "
            "blending."])


def format_photo_table(rows):
    """Photo-evaluation rows as a reStructuredText simple table."""
    header = ("mask", "method", "photos", "faces", "PSNR-hole", "face found", "reached",
              "s/photo")
    right = (False, False, True, True, True, True, True, True)
    body = [(r["mask"], r["method"], str(r["photos"]), str(r["faces"]), f"{r['psnr_hole']:.2f}",
             f"{r['face_found']:.0%}",
             f"{r['reached']:.0%} ({r['model_faces']})" if r["method"] == OURS else "-",
             f"{r['seconds_per_photo']:.2f}") for r in rows]
    return metrics.rst_table(header, body, right)


def _box_iou(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(right - left, 0) * max(bottom - top, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _found_again(aligner, image, boxes, upsample):
    """For each of ``boxes`` (left, top, right, bottom), whether dlib's detector finds it again
    in ``image``."""
    found = [(b.left(), b.top(), b.right(), b.bottom())
             for b in aligner.face_boxes(image, upsample)]
    return [any(_box_iou(box, f) >= FACE_MATCH_IOU for f in found) for box in boxes]


def _face_tile(image, box):
    """A square around a face box (1.6 times its side), PHOTO_TILE pixels."""
    from PIL import Image

    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 0.8 * max(box[2] - box[0], box[3] - box[1])
    top, bottom = max(int(cy - half), 0), min(int(cy + half), h)
    left, right = max(int(cx - half), 0), min(int(cx + half), w)
    tile = Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))
    return np.asarray(tile.resize((PHOTO_TILE, PHOTO_TILE), Image.LANCZOS))


def evaluate_photos(raw_dir, checkpoint_dir=None, evaluation: EvaluateOptions | None = None,
                    out_dir=EVALUATE_OUT, options: CompleteOptions | None = None,
                    mask_options: MaskOptions | None = None,
                    photo_options: PhotoOptions | None = None, progress=True, **fields):
    """Cut a hole over the middle of every face of ordinary photos, at the photo's scale, repair
    the photos with the model (``complete``'s photo pipeline) and the baselines, and score them
    against the originals at full resolution.

    Every face dlib finds in an original gets each mask kind drawn in its aligned frame and
    carried into the photo (``center``: the middle half of the frame's side, as ``complete
    --mask center`` on a photo).  ``ours`` then repairs the damaged photo without being told
    where the faces are: it finds them itself, on the photo with its hole filled by Telea.  The
    baselines fill the same hole in the whole photo.  Scores, per photo: PSNR over the hole
    pixels, and how many of the original's faces dlib's detector finds again (same upsampling
    as on the original; the boxes overlapping by IoU >= 0.5).

    Writes into ``out_dir``: ``summary.csv``, ``summary.json``, ``per_photo.csv``,
    ``per_face.csv`` (per damaged face: repaired by the model, or by Telea and why; its hole
    PSNR; found again), ``comparison.png`` (for the first four faces: original | masked | each
    method) and ``worst.png`` (the same for the five faces ours filled worst, by hole PSNR).

    Parameters
    ----------
    raw_dir : str or Path
        Ordinary photos (image files, searched recursively); those without a face are
        skipped and listed.
    checkpoint_dir, evaluation, out_dir, options, mask_options, progress, **fields
        As for :func:`evaluate` (``limit`` counts photos; the default masks and methods are
        :data:`PHOTO_MASKS` and :data:`PHOTO_METHODS`).
    photo_options : PhotoOptions, optional
        ``grain`` and ``upsample`` of the photo pipeline; ``upsample`` also finds the faces of
        the originals.

    Returns
    -------
    PhotoEvaluationSummary
    """
    from dcgan_complete.align import FaceAligner
    from dcgan_complete.photo import PhotoRepairer, find_faces, kind_hole

    start = time.perf_counter()
    evaluation = dataclasses.replace(evaluation or EvaluateOptions(), photos=True, **fields)
    masks, methods = metrics.check_choices(evaluation.mask_kinds, evaluation.method_names)
    limit, seed = evaluation.limit, evaluation.seed
    _check_libraries(methods)
    mask_options = mask_options or MaskOptions()
    photo_options = photo_options or PhotoOptions()
    raw_dir = Path(raw_dir)
    paths = metrics.choose_images(raw_dir, out_dir, limit, seed)
    ensure_writable_dir(out_dir, "out_dir")
    completer, checkpoint_dir = _load_model(checkpoint_dir, options) if OURS in methods \
        else (None, None)
    size = completer.size if completer else 64
    aligner = FaceAligner()
    names, photos, frames, levels, skipped = [], [], [], [], []
    for path in paths:
        name = path.relative_to(raw_dir).as_posix()
        try:
            photo = imgs.read_image(path)
        except imgs.ImageReadError as exc:
            skipped.append((display_name(name), str(exc)))
            continue
        level = photo_options.upsample
        if level == "auto":
            level = 0 if aligner.face_boxes(photo, 0) else 1
        found = find_faces(aligner, photo, size, level)
        if not found:
            skipped.append((display_name(name), "no face"))
            continue
        names.append(name)
        photos.append(photo)
        frames.append(found)
        levels.append(level)
    if not photos:
        raise DcganError(f"no face in any of the {len(paths)} photos"
                         + (f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    n_faces = sum(len(f) for f in frames)
    repairer = PhotoRepairer(completer, photo_options, aligner) if completer else None
    batch_size = completer.options.batch_size if completer else 1
    iterations = completer.options.iterations if completer else 0
    per_photo, per_face, tiles = [], [], {}
    with _Progress(n_faces if completer else len(photos), masks, methods, batch_size,
                   iterations, progress) as bar:
        for kind in masks:
            kind_key = mask_lib.MASK_KINDS.index(kind)
            rng = np.random.default_rng([seed, kind_key, 0])
            known = [~kind_hole(f, kind, p.shape[:2], rng, **mask_options.params())
                     for p, f in zip(photos, frames)]
            masked = [np.where(k[..., None], p, HOLE_GRAY).astype(np.uint8)
                      for p, k in zip(photos, known)]
            tiles[kind, "masked"] = masked
            for method in methods:
                bar.label(f"{kind}/{method}")
                filled, seconds, repairs = _fill_photos(
                    method, photos, known, repairer, np.random.default_rng([seed, kind_key, 1]),
                    bar.search_report(f"{kind}/{method}"), bar)
                tiles[kind, method] = filled
                bar.label(f"{kind}/{method}: scoring")
                for k, name in enumerate(names):
                    boxes = [f.box for f in frames[k]]
                    again = _found_again(aligner, filled[k], boxes, levels[k])
                    faces = _per_face(name, kind, method, photos[k], filled[k], known[k],
                                      frames[k], again, repairs[k] if repairs else None)
                    per_face += faces
                    per_photo.append({
                        "photo": name, "mask": kind, "method": method, "faces": len(boxes),
                        "hole_pixels": int((~known[k]).sum()),
                        "psnr_hole": metrics.psnr(photos[k], filled[k], mask=known[k]),
                        "faces_found": sum(again),
                        "model_faces": sum(f["repaired_by"] == "model" for f in faces),
                        "seconds": seconds[k]})
    rows = [_photo_row(kind, method, [r for r in per_photo
                                      if r["mask"] == kind and r["method"] == method])
            for kind in masks for method in methods]
    settings = {
        "raw_dir": display_name(raw_dir),
        "checkpoint_dir": display_name(checkpoint_dir) if checkpoint_dir else None,
        "image_size": size, "masks": list(masks), "methods": list(methods), "limit": limit,
        "seed": seed, "mask_options": dataclasses.asdict(mask_options),
        "photo_options": dataclasses.asdict(photo_options),
        "options": dataclasses.asdict(completer.options) if completer else None,
        "face_match_iou": FACE_MATCH_IOU, "opencv_radius": TELEA_RADIUS,
        "upsample": dict(zip(names, levels)), "photos_order": names}
    summary = PhotoEvaluationSummary(rows, per_photo, len(photos), n_faces, skipped,
                                     Path(out_dir), 0.0, settings, per_face)
    _write_photo_report(summary, photos, frames, tiles, masks, methods)
    summary.seconds = time.perf_counter() - start
    return summary


def _fill_photos(method, photos, known, repairer, rng, progress, bar):
    """All photos filled by ``method``: (filled, seconds per photo, faces the model filled)."""
    if method == OURS:
        repairs = repairer.repair(photos, [k.astype(np.float32) for k in known],
                                  progress=progress, rng=rng)
        return [r.repaired for r in repairs], [sum(r.timings.values()) for r in repairs], repairs
    filled, seconds = _fill_each(BASELINES[method], photos, known, bar)
    return filled, seconds, None


def _per_face(name, kind, method, photo, filled, known, frames, again, repair):
    """One row per face of the undamaged photo (``frames``): who repaired it (for ours: the model
    when the pipeline found and searched it in the damaged photo, else Telea and why), the hole
    PSNR over the hole pixels of its frame, and whether dlib finds it again."""
    rows = []
    for j, (frame, found) in enumerate(zip(frames, again)):
        top, bottom, left, right = frame.footprint(photo.shape[:2])
        part = known[top:bottom, left:right]
        by, why = method, ""
        if repair is not None:
            by, why = _who_repaired(frame.box, repair)
        rows.append({
            "photo": name, "face": j, "box": " ".join(map(str, frame.box)), "mask": kind,
            "method": method, "repaired_by": by, "why": why,
            "hole_pixels": int((~part).sum()),
            "psnr_hole": metrics.psnr(photo[top:bottom, left:right],
                                      filled[top:bottom, left:right], mask=part)
            if (~part).any() else float("nan"),
            "found_again": bool(found)})
    return rows


def _who_repaired(box, repair):
    """``("model", "")`` when a face the repair searched is the face at ``box``, else
    ``("telea", why)``."""
    if any(_box_iou(box, face.box) >= FACE_MATCH_IOU for face in repair.faces):
        return "model", ""
    for face in repair.unaligned:
        if _box_iou(box, face.box) >= FACE_MATCH_IOU:
            return "telea", f"found ({face.found_by}) but not aligned: {face.reason}"
    return "telea", "not found in the damaged photo"


def _photo_row(kind, method, rows):
    faces = sum(r["faces"] for r in rows)
    return {"mask": kind, "method": method, "photos": len(rows), "faces": faces,
            "psnr_hole": float(np.mean([r["psnr_hole"] for r in rows])),
            "face_found": sum(r["faces_found"] for r in rows) / max(faces, 1),
            "reached": sum(r["model_faces"] for r in rows) / max(faces, 1),
            "model_faces": sum(r["model_faces"] for r in rows),
            "seconds_per_photo": float(np.mean([r["seconds"] for r in rows]))}


def _write_photo_report(summary, photos, frames, tiles, masks, methods):
    out = summary.out_dir
    _write_rows(out / "summary.csv", PHOTO_SUMMARY_FIELDS, summary.rows)
    _write_rows(out / "per_photo.csv", PER_PHOTO_FIELDS, summary.per_photo)
    _write_rows(out / "per_face.csv", PER_FACE_FIELDS, summary.per_face)
    document = {"settings": summary.settings, "photos": summary.photos, "faces": summary.faces,
                "rows": summary.rows, "skipped": [list(s) for s in summary.skipped]}
    write_text(out / "summary.json", json.dumps(document, indent=2) + "\n")
    shown = [(k, f.box) for k in range(len(photos)) for f in frames[k]][:COMPARISON_IMAGES]
    columns = ["masked"] + list(methods)
    cells = [_face_tile(image, box) for kind in masks for k, box in shown
             for image in [photos[k]] + [tiles[kind, c][k] for c in columns]]
    imgs.write_image(out / "comparison.png",
                     imgs.image_grid(np.stack(cells), cols=1 + len(columns)))
    # the failures, for anyone to see: the faces ours filled worst, by hole PSNR
    index = {name: k for k, name in enumerate(summary.settings["photos_order"])}
    ours = sorted((r for r in summary.per_face if r["method"] == OURS
                   and np.isfinite(r["psnr_hole"])), key=lambda r: r["psnr_hole"])[:WORST_FACES]
    if ours:
        cells = [_face_tile(image, frames[index[r["photo"]]][r["face"]].box)
                 for r in ours for image in [photos[index[r["photo"]]]] +
                 [tiles[r["mask"], c][index[r["photo"]]] for c in columns]]
        imgs.write_image(out / "worst.png",
                         imgs.image_grid(np.stack(cells), cols=1 + len(columns)))


# --------------------------------------------------------------------------------------------
# the damage detector (evaluate --detect)

DETECT_TOLERANCE = 2     # px: a damaged pixel counts as found this close to one flagged
DETECT_FIELDS = ("photos", "precision", "recall", "f1", "iou", "flagged_clean",
                 "flagged_original", "repainted_original", "psnr_damaged", "psnr_auto",
                 "psnr_true_mask", "psnr_telea", "auto_share_of_gain")
# per_photo.csv of evaluate --detect: which photos and kinds of damage it gets wrong
DETECT_PER_PHOTO_FIELDS = ("photo", "kinds", "damage_share", "precision", "recall", "f1",
                           "flagged_original", "repainted_original", "psnr_damaged",
                           "psnr_auto", "psnr_true_mask", "psnr_telea", "auto_share_of_gain")


@dataclasses.dataclass
class DetectionSummary:
    """What :func:`evaluate_detection` measured and wrote."""

    scores: dict
    photos: int
    out_dir: Path
    seconds: float

    def report(self):
        s = self.scores
        header = ("photos", "precision", "recall", "F1", "IoU", "flagged clean",
                  "PSNR damaged", "auto", "true mask", "Telea")
        body = [(str(s["photos"]), f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                 f"{s['f1']:.3f}", f"{s['iou']:.3f}", f"{s['flagged_clean']:.2%}",
                 f"{s['psnr_damaged']:.2f}", f"{s['psnr_auto']:.2f}",
                 f"{s['psnr_true_mask']:.2f}", f"{s['psnr_telea']:.2f}")]
        return "\n".join([
            metrics.rst_table(header, body, (True,) * len(header)), "",
            f"precision, recall, F1: pixels, a damaged one found within {DETECT_TOLERANCE} px of "
            "one flagged (and the other way round); IoU exact. flagged clean: share of the "
            "pixels flagged on the same photos aged and scanned without damage "
            f"({s['flagged_original']:.2%} on the photos as they are; grown by --grow, what "
            f"--mask auto would repaint of them: {s['repainted_original']:.2%}).",
            "PSNR (dB, whole photo, against the undamaged print): the damaged input, "
            "complete --mask auto, the repair given the true mask, and Telea given the true "
            f"mask; auto recovers {s['auto_share_of_gain']:.0%} of the true mask's gain."])


def _share_of_gain(damaged, auto, true):
    """The share of the true mask's PSNR gain that ``--mask auto`` recovers (1 where the true
    mask gains nothing)."""
    gain = true - damaged
    return (auto - damaged) / gain if gain else 1.0


def evaluate_detection(photo_dir, checkpoint_dir=None, evaluation: EvaluateOptions | None = None,
                       out_dir=EVALUATE_OUT, options: CompleteOptions | None = None,
                       detect_options=None, photo_options: PhotoOptions | None = None,
                       progress=True, **fields):
    """Score the damage detector and ``--mask auto`` on synthetic damage over clean photos.

    Photo ``i`` of ``photo_dir`` (or ``limit`` of them, drawn with ``seed``) gets one to three
    kinds of damage with the old-photo look, drawn with the seed ``seed + i`` (see
    :func:`dcgan_complete.damage.damage_photo`).  Writes ``summary.csv``, ``summary.json`` and
    ``per_photo.csv`` (each photo's kinds of damage, scores and PSNRs).
    """
    from dcgan_complete.damage import damage_photo
    from dcgan_complete.detector import (damage_mask, detect_damage, detection_scores,
                                         locate_detector, pooled_scores)
    from tqdm import tqdm

    from dcgan_complete.options import DetectOptions
    from dcgan_complete.photo import PhotoRepairer

    start = time.perf_counter()
    evaluation = dataclasses.replace(evaluation or EvaluateOptions(), detect=True, **fields)
    detect_options = detect_options or DetectOptions()
    paths = metrics.choose_images(Path(photo_dir), out_dir, evaluation.limit, evaluation.seed)
    ensure_writable_dir(out_dir, "out_dir")
    detector = locate_detector(detect_options.detector, checkpoint_dir)
    completer, _ = _load_model(checkpoint_dir, options)
    repairer = PhotoRepairer(completer, photo_options)
    found, clean, original, repainted = [], [], [], np.zeros(2)  # (repainted, all) pixels
    psnr = {k: [] for k in ("damaged", "auto", "true", "telea")}
    per_photo = []
    for i, path in enumerate(tqdm(paths, desc="evaluate --detect", unit="photo",
                                  disable=not progress, dynamic_ncols=True)):
        try:
            photo = imgs.read_image(path)
        except imgs.ImageReadError:
            continue
        example = damage_photo(photo, np.random.default_rng(evaluation.seed + i))
        probabilities = detect_damage(example.damaged, detector)
        found.append(detection_scores(probabilities, example.damage,
                                      detect_options.threshold, DETECT_TOLERANCE))
        clean.append(detection_scores(detect_damage(example.clean, detector),
                                      np.zeros(photo.shape[:2], bool), detect_options.threshold))
        as_they_are = detect_damage(photo, detector)
        original.append(detection_scores(as_they_are, np.zeros(photo.shape[:2], bool),
                                         detect_options.threshold))
        repainted_here = (damage_mask(as_they_are, detect_options.threshold,
                                      detect_options.grow) < 0.5).sum()
        repainted += (repainted_here, as_they_are.size)
        auto = damage_mask(probabilities, detect_options.threshold, detect_options.grow)
        true = (~example.damage).astype(np.float32)
        fills = {"damaged": example.damaged}
        for name, mask in (("auto", auto), ("true", true)):
            fills[name] = example.damaged if mask.min() >= 0.5 else \
                repairer.repair([example.damaged], [mask], rng=evaluation.seed)[0].repaired
        fills["telea"] = BASELINES["telea"](example.damaged, true) if true.min() < 0.5 \
            else example.damaged
        for name, filled in fills.items():
            psnr[name].append(metrics.psnr(example.clean, filled))
        here = pooled_scores(found[-1:])
        per_photo.append({
            "photo": display_name(Path(path).name), "kinds": "+".join(example.kinds),
            "damage_share": float(example.damage.mean()), "precision": here["precision"],
            "recall": here["recall"], "f1": here["f1"],
            "flagged_original": pooled_scores(original[-1:])["flagged"],
            "repainted_original": float(repainted_here / as_they_are.size),
            "psnr_damaged": psnr["damaged"][-1], "psnr_auto": psnr["auto"][-1],
            "psnr_true_mask": psnr["true"][-1], "psnr_telea": psnr["telea"][-1],
            "auto_share_of_gain": _share_of_gain(psnr["damaged"][-1], psnr["auto"][-1],
                                                 psnr["true"][-1])})
    if not found:
        raise DcganError(f"none of the {len(paths)} photos in {display_name(photo_dir)} could "
                         "be read")
    scores = pooled_scores(found)
    mean = {k: float(np.mean(v)) for k, v in psnr.items()}
    scores.update(photos=len(found), flagged_clean=pooled_scores(clean)["flagged"],
                  flagged_original=pooled_scores(original)["flagged"],
                  repainted_original=float(repainted[0] / repainted[1]),
                  psnr_damaged=mean["damaged"], psnr_auto=mean["auto"],
                  psnr_true_mask=mean["true"], psnr_telea=mean["telea"],
                  auto_share_of_gain=_share_of_gain(mean["damaged"], mean["auto"], mean["true"]))
    summary = DetectionSummary(scores, len(found), Path(out_dir), 0.0)
    _write_rows(Path(out_dir) / "summary.csv", DETECT_FIELDS, [scores])
    _write_rows(Path(out_dir) / "per_photo.csv", DETECT_PER_PHOTO_FIELDS, per_photo)
    settings = {"photo_dir": display_name(photo_dir), "seed": evaluation.seed,
                "limit": evaluation.limit, "threshold": detect_options.threshold,
                "grow": detect_options.grow, "tolerance": DETECT_TOLERANCE}
    write_text(Path(out_dir) / "summary.json",
               json.dumps({"settings": settings, "scores": scores}, indent=2) + "\n")
    summary.seconds = time.perf_counter() - start
    return summary
