"""What ``dcgan-complete evaluate`` does: mask ground-truth faces, fill them, score the fills.

Every image is masked with each mask kind and filled by every method: the model (``ours``, the
search of :mod:`dcgan_complete.complete`) and four classical baselines, each a function
``(image, mask) -> image`` on ``uint8`` arrays that keeps the known pixels exactly:

- ``biharmonic``: scikit-image's ``restoration.inpaint_biharmonic``;
- ``telea`` and ``navier-stokes``: OpenCV's ``cv2.inpaint`` (Telea 2004; Bertalmio et al. 2001);
- ``mean``: every hole pixel gets the mean colour of the known pixels (the floor).

The scores are those of :mod:`dcgan_complete.metrics`.  scikit-image and OpenCV come with the
``eval`` extra (``pip install 'dcgan-complete[eval]'``).  The baselines need neither TensorFlow
nor a model; :func:`evaluate` imports TensorFlow (through :mod:`dcgan_complete.complete`).

References
----------
.. [1] R. A. Yeh, C. Chen, T. Y. Lim, A. G. Schwing, M. Hasegawa-Johnson and M. N. Do,
       "Semantic Image Inpainting with Deep Generative Models", CVPR 2017, Table 1.
.. [2] A. Telea, "An image inpainting technique based on the fast marching method", Journal of
       Graphics Tools 9(1), 2004.
.. [3] M. Bertalmio, A. L. Bertozzi and G. Sapiro, "Navier-Stokes, fluid dynamics, and image and
       video inpainting", CVPR 2001.
.. [4] S. B. Damelin and N. S. Hoang, "On surface completion and image inpainting by biharmonic
       functions: numerical aspects", International Journal of Mathematics and Mathematical
       Sciences, 2018.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete import metrics
from dcgan_complete.errors import DcganError

if TYPE_CHECKING:  # complete.py imports TensorFlow; only evaluate() needs it, and only for "ours"
    from dcgan_complete.complete import CompleteOptions

# The paper's four masks; "left" is its "half".
DEFAULT_MASKS = ("center", "pattern", "random", "left")
# Kinds that leave no pixel exactly known or none to fill cannot be scored against a hole.
UNSCORABLE_MASKS = ("full", "lowres")
OURS = "ours"
METHODS = (OURS, "biharmonic", "telea", "navier-stokes", "mean")
COMPARISON_METHODS = (OURS, "biharmonic", "telea")
COMPARISON_IMAGES = 4
OPENCV_RADIUS = 3        # cv2.inpaint's neighbourhood radius in pixels
HOLE_GRAY = 128          # how holes look in comparison.png

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
# baselines


def _check_image_mask(image, mask):
    image, mask = np.asarray(image), np.asarray(mask)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must have shape {image.shape[:2]} (H, W), got {mask.shape}")
    known = mask >= 0.5
    if not known.any():
        raise ValueError("the mask has no known pixel: there is nothing to fill from")
    return image, known


def _keep_known(image, known, filled):
    """``filled`` (float, 0-255) in the hole, ``image`` exactly elsewhere, as uint8."""
    filled = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
    return np.where(known[..., None], image, filled)


def biharmonic_fill(image, mask):
    """Fill the hole with scikit-image's biharmonic inpainting.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : array_like, shape (H, W)
        1 = known pixel, 0 = pixel to fill (values below 0.5 count as 0).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The known pixels are those of ``image``, exactly.

    Raises
    ------
    ValueError
        For a wrong shape or dtype, or a mask without a known pixel.
    MissingDependencyError
        If scikit-image is not installed.

    Example
    -------
    >>> image = np.full((8, 8, 3), 200, np.uint8); mask = np.ones((8, 8)); mask[2:6, 2:6] = 0
    >>> int(biharmonic_fill(image, mask)[4, 4, 0])
    200
    """
    image, known = _check_image_mask(image, mask)
    restoration = metrics.import_optional("skimage.restoration", "the biharmonic baseline")
    filled = restoration.inpaint_biharmonic(image / 255.0, ~known, channel_axis=-1)
    return _keep_known(image, known, filled * 255.0)


def _opencv_fill(image, mask, method_flag_name):
    image, known = _check_image_mask(image, mask)
    cv2 = metrics.import_optional("cv2", "the OpenCV baselines")
    hole = (~known).astype(np.uint8) * 255
    # cv2.inpaint treats the channels alike, so RGB order needs no conversion.
    filled = cv2.inpaint(np.ascontiguousarray(image), hole, OPENCV_RADIUS,
                         getattr(cv2, method_flag_name))
    return _keep_known(image, known, filled)


def telea_fill(image, mask):
    """Fill the hole with OpenCV's ``cv2.inpaint`` by Telea's fast marching method.

    Parameters and returns as for :func:`biharmonic_fill`; the neighbourhood radius is
    ``OPENCV_RADIUS`` (3 pixels).  Raises ``MissingDependencyError`` without OpenCV.
    """
    return _opencv_fill(image, mask, "INPAINT_TELEA")


def navier_stokes_fill(image, mask):
    """Fill the hole with OpenCV's ``cv2.inpaint`` by the Navier-Stokes method.

    Parameters and returns as for :func:`biharmonic_fill`; the neighbourhood radius is
    ``OPENCV_RADIUS`` (3 pixels).  Raises ``MissingDependencyError`` without OpenCV.
    """
    return _opencv_fill(image, mask, "INPAINT_NS")


def mean_fill(image, mask):
    """Fill the hole with the mean colour of the known pixels: the floor any method must beat.

    Parameters and returns as for :func:`biharmonic_fill`; needs numpy only.

    Example
    -------
    >>> image = np.zeros((2, 2, 3), np.uint8); image[0] = 100
    >>> mean_fill(image, [[1, 1], [1, 0]])[1, 1].tolist()
    [67, 67, 67]
    """
    image, known = _check_image_mask(image, mask)
    colour = image[known].mean(axis=0)
    return _keep_known(image, known, np.broadcast_to(colour, image.shape))


BASELINES = {"biharmonic": biharmonic_fill, "telea": telea_fill,
             "navier-stokes": navier_stokes_fill, "mean": mean_fill}
# The optional module each needs, checked before any work is done.
_BASELINE_MODULES = {"biharmonic": "skimage.restoration", "telea": "cv2",
                     "navier-stokes": "cv2", "mean": None}


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


def evaluate(aligned_dir, checkpoint_dir=None, masks=DEFAULT_MASKS, methods=METHODS, limit=None,
             seed=0, out_dir="report", options: CompleteOptions | None = None, mask_params=None,
             progress=True):
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
        Aligned ground-truth faces (.png/.jpg/.jpeg, searched recursively), ideally ones the
        model never saw; resized (centre-cropped) to the model's size where needed.
    checkpoint_dir : str or Path, optional
        A ``train`` output folder; by default the bundled model.  Not needed without ``ours``.
    masks : sequence of str
        Mask kinds (see :data:`dcgan_complete.masks.MASK_KINDS`; not ``full`` or ``lowres``).
        The random kinds draw a fresh mask per image; every method gets the same masks.
    methods : sequence of str
        Any of :data:`METHODS`.
    limit : int, optional
        Use only this many images, drawn at random (with ``seed``) from the sorted list.
    seed : int
        Seeds the choice of images, the random masks and the model's starting z: a run with the
        same arguments repeats exactly.
    out_dir : str or Path
        Where the report goes (created if needed).
    options : CompleteOptions, optional
        The model's search settings (as for ``complete``; its ``seed`` is not used).
    mask_params : dict, optional
        Passed to :func:`dcgan_complete.masks.make_mask` (``scale``, ``fraction``).
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
    from tqdm import tqdm

    start = time.perf_counter()
    masks, methods = _check_choices(masks, methods)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise DcganError(f"limit must be a positive integer, got {limit!r}")
    mask_params = dict(mask_params or {})
    metrics.import_optional("skimage.metrics", "SSIM")
    for method in methods:
        if _BASELINE_MODULES.get(method):
            metrics.import_optional(_BASELINE_MODULES[method], f"the {method} baseline")

    from dcgan_complete.complete import load_inputs

    aligned_dir = Path(aligned_dir)
    paths = _choose_images(aligned_dir, out_dir, limit, seed)
    completer, checkpoint_dir = _load_model(checkpoint_dir, options) if OURS in methods \
        else (None, None)
    size = completer.size if completer else _first_image_size(paths)
    good, images, resized, skipped = load_inputs(paths, size)
    if images is None:
        raise DcganError(f"none of the {len(paths)} images could be read: {skipped[0][1]}")
    names = [p.relative_to(aligned_dir).as_posix() for p in good]
    checker = metrics.FaceChecker()
    n = len(images)
    bar = tqdm(total=n * (1 + len(masks) * len(methods)), unit="fill", desc="evaluate",
               disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str("originals")
    original_found, original_embeddings = [], []
    for image in images:
        original_found.append(checker.face_found(image))
        original_embeddings.append(checker.embedding(image))
        bar.update()

    per_image, shown = [], {}
    for kind in masks:
        kind_key = mask_lib.MASK_KINDS.index(kind)
        try:
            mask_list = mask_lib.masks_for_images(
                good, kind, size, rng=np.random.default_rng([seed, kind_key, 0]), **mask_params)
        except ValueError as exc:
            raise DcganError(str(exc)) from None
        mask_stack = np.stack(mask_list)
        shown[kind, "masked"] = np.where(mask_stack[:COMPARISON_IMAGES, ..., None] >= 0.5,
                                         images[:COMPARISON_IMAGES], HOLE_GRAY).astype(np.uint8)
        for method in methods:
            bar.set_postfix_str(f"{kind}/{method}")
            filled, seconds = _fill(
                method, images, mask_stack, completer, np.random.default_rng([seed, kind_key, 1]),
                lambda done, loss, iterations: bar.set_postfix_str(f"{kind}/{method}, loss {loss:.1f}"))
            shown[kind, method] = filled[:COMPARISON_IMAGES]
            for k in range(n):
                scores = _scores(images[k], filled[k], mask_stack[k], checker,
                                 original_embeddings[k])
                per_image.append({"image": names[k], "mask": kind, "method": method, **scores,
                                  "seconds": seconds[k]})
                bar.update()
    bar.close()

    rows = [_mean_row(kind, method, [r for r in per_image
                                     if r["mask"] == kind and r["method"] == method])
            for kind in masks for method in methods]
    settings = {
        "aligned_dir": str(aligned_dir),
        "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir else None,
        "image_size": size, "masks": list(masks), "methods": list(methods), "limit": limit,
        "seed": seed, "mask_params": mask_params,
        "options": dataclasses.asdict(completer.options) if completer else None,
        "psnr_cap_db": metrics.PSNR_CAP_DB,
        "ssim": "skimage.metrics.structural_similarity, Gaussian window 11, sigma 1.5",
        "face_upscale": metrics.FACE_UPSCALE,
        "face_pad": metrics.FACE_PAD,
        "same_person_distance": metrics.SAME_PERSON_DISTANCE,
        "opencv_radius": OPENCV_RADIUS}
    summary = EvaluationSummary(rows, per_image, n, float(np.mean(original_found)), skipped,
                                resized, Path(out_dir), 0.0, settings)
    _write_report(summary, images, shown, masks, methods)
    summary.seconds = time.perf_counter() - start
    return summary


def _check_choices(masks, methods):
    masks, methods = tuple(masks), tuple(methods)
    scorable = [k for k in mask_lib.MASK_KINDS if k not in UNSCORABLE_MASKS]
    for kind in masks:
        if kind not in scorable:
            raise DcganError(f"cannot evaluate mask {kind!r}: choose from {', '.join(scorable)}")
    for method in methods:
        if method not in METHODS:
            raise DcganError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")
    if not masks or not methods:
        raise DcganError("give at least one mask and one method")
    # repeats would only repeat rows
    return tuple(dict.fromkeys(masks)), tuple(dict.fromkeys(methods))


def _choose_images(aligned_dir, out_dir, limit, seed):
    if not aligned_dir.is_dir():
        raise DcganError(f"ALIGNED_DIR {aligned_dir} is not a folder" if aligned_dir.exists()
                         else f"ALIGNED_DIR {aligned_dir} does not exist")
    out_resolved = Path(out_dir).resolve()
    if out_resolved == aligned_dir.resolve():
        raise DcganError("--out must not be ALIGNED_DIR itself")
    # an earlier report inside ALIGNED_DIR is not ground truth
    paths = [p for p in imgs.find_images(aligned_dir)
             if out_resolved not in p.resolve().parents]
    if not paths:
        raise DcganError(f"no .png, .jpg or .jpeg images in {aligned_dir}")
    if limit is not None and limit < len(paths):
        chosen = np.random.default_rng([seed]).choice(len(paths), int(limit), replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    return paths


def _first_image_size(paths):
    """Without a model, the images are scored at the (shorter) side of the first readable one."""
    for path in paths:
        try:
            return min(imgs.read_image(path).shape[:2])
        except imgs.ImageReadError:
            continue
    raise DcganError(f"none of the {len(paths)} images could be read")


def _load_model(checkpoint_dir, options):
    from dcgan_complete.complete import bundled_model_dir, load_completer

    checkpoint_dir = checkpoint_dir or bundled_model_dir()
    return load_completer(checkpoint_dir, options), checkpoint_dir


def _fill(method, images, masks, completer, rng, progress):
    """All images filled by ``method``, and the seconds each took."""
    if method == OURS:
        result = completer.complete(images, masks, rng=rng, progress=progress)
        return result.completed, [result.seconds / len(images)] * len(images)
    fill = BASELINES[method]
    filled, seconds = [], []
    for image, mask in zip(images, masks):
        tic = time.perf_counter()
        filled.append(fill(image, mask))
        seconds.append(time.perf_counter() - tic)
    return np.stack(filled), seconds


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
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([rule, line(header), rule, *map(line, body), rule])


def _write_report(summary, images, shown, masks, methods):
    out = summary.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "summary.csv", SUMMARY_FIELDS, summary.rows)
    _write_csv(out / "per_image.csv", PER_IMAGE_FIELDS, summary.per_image)
    document = {"settings": summary.settings, "images": summary.images,
                "originals_face_found": summary.originals_face_found,
                "rows": summary.rows, "skipped": [list(s) for s in summary.skipped],
                "paper_psnr": {k: {"context_encoder": ce, "yeh_et_al": ours}
                               for k, (ce, ours) in PAPER_PSNR.items()}}
    _write_text(out / "summary.json", json.dumps(document, indent=2) + "\n")
    columns = ["masked"] + [m for m in COMPARISON_METHODS if m in methods]
    tiles = [image for kind in masks for k in range(min(COMPARISON_IMAGES, len(images)))
             for image in [images[k]] + [shown[kind, c][k] for c in columns]]
    imgs.write_image(out / "comparison.png", imgs.image_grid(np.stack(tiles),
                                                              cols=1 + len(columns)))


def _format_value(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _write_csv(path, fields, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_format_value(row[f]) for f in fields])
    _write_text(path, buffer.getvalue())


def _write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file, so no file is ever half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
