"""Scores for a completion against its ground truth: PSNR, SSIM, and two face checks.

PSNR and SSIM are pure numpy functions on arrays (SSIM is scikit-image's).  PSNR rewards blur,
as Yeh et al. note themselves, so :class:`FaceChecker` adds two checks that blur fails: does dlib's
HOG detector still find a face, and does dlib's face-recognition network still see the same
person?  Nothing here imports TensorFlow.

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from
       error visibility to structural similarity", IEEE TIP 13(4), 2004.
.. [2] D. E. King, "Dlib-ml: A machine learning toolkit", JMLR 10, 2009; the face-recognition
       ResNet of dlib 19.3 (99.38% on LFW), shipped by ``face-recognition-models``.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete.errors import (DcganError, MissingDependencyError,  # noqa: F401 (API)
                                   OptionError, import_optional)
from dcgan_complete.files import display_name, is_inside
from dcgan_complete.masks import MASK_KINDS
from dcgan_complete.options import EVALUATE_METHODS


PSNR_CAP_DB = 100.0
SSIM_WINDOW = 11  # the side of Wang et al.'s Gaussian window (sigma 1.5, truncated at 3.5 sigma)

# The face checks look at the image enlarged this many times (bicubic): dlib's HOG detector
# scans an 80x80 window, so a 64 px crop (256 px enlarged) holds a face it can find.
FACE_UPSCALE = 4
# Before detection the crop is padded by this fraction of its side on every edge, repeating the
# edge pixels: in an aligned crop the face reaches the border, and the detector's box must fit
# inside the image.  On 600 held-out aligned 64 px crops (LFW and UTKFace) the detector found a
# face in 88.7% of the originals unpadded and in 95.8% padded by 1/16 (4 px).
FACE_PAD = 1 / 16
# dlib's usual threshold: embeddings closer than this belong to the same person.
SAME_PERSON_DISTANCE = 0.6
# Where dlib's HOG detector puts the face box in an aligned crop (OpenFace template, see
# align.py), as fractions of the side (left, top, right, bottom): the mean box over held-out
# aligned LFW crops.  It may reach past the crop; the landmark model copes with that.
ALIGNED_FACE_BOX = (-0.02, -0.16, 0.94, 0.86)
RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


# --------------------------------------------------------------------------------------------
# PSNR and SSIM


def _check_pair(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"the images differ in shape: {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {a.shape}")
    for x in (a, b):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"images must be numeric, got dtype {x.dtype}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a, b, mask=None, data_range=255, max_db=PSNR_CAP_DB):
    """Peak signal-to-noise ratio between two images, over all pixels or over the hole only.

    ``PSNR = 10 log10(data_range**2 / MSE)``, with the mean squared error taken over every
    channel of the pixels counted.

    Parameters
    ----------
    a, b : array_like, shape (H, W) or (H, W, C)
        The two images (e.g. the ground truth and the completion), same shape, any numeric dtype;
        their values are used as they are (``uint8`` pixels with ``data_range=255``).
    mask : array_like, shape (H, W), optional
        A completion mask (1 = known pixel, 0 = pixel to fill).  When given, only the pixels where
        it is 0 count (values below 0.5 count as 0): the PSNR of the hole.  Since a completion
        keeps the known pixels exactly, this is the PSNR of what was filled in.  By default every
        pixel counts.
    data_range : float, optional
        The largest possible difference between two pixel values: 255 for ``uint8``, 2 for
        ``[-1, 1]``.
    max_db : float or None, optional
        The cap.  The PSNR is ``min(PSNR, max_db)``, so identical images (MSE 0) give exactly
        ``max_db`` (100 dB by default, far above any real completion) and averages stay finite.
        ``None``: no cap; identical images give ``inf``.

    Returns
    -------
    float
        In dB.

    Raises
    ------
    ValueError
        If the images differ in shape or are not 2-D or 3-D, if the mask is not (H, W) or has no
        pixel to fill, or if ``data_range`` or ``max_db`` is not positive.

    Examples
    --------
    >>> a = np.zeros((4, 4), np.uint8)
    >>> b = np.full((4, 4), 255, np.uint8)
    >>> psnr(a, b)
    0.0
    >>> psnr(a, a)
    100.0
    >>> m = np.ones((4, 4)); m[0, 0] = 0   # the hole is one pixel, and b differs from a there
    >>> b = a.copy(); b[0, 0] = 255; b[3, 3] = 255
    >>> psnr(a, b, mask=m)
    0.0
    """
    a, b = _check_pair(a, b)
    if not (isinstance(data_range, numbers.Real) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    if max_db is not None and not (isinstance(max_db, numbers.Real) and max_db > 0):
        raise ValueError(f"max_db must be a positive number or None, got {max_db!r}")
    squared = (a - b) ** 2
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != a.shape[:2]:
            raise ValueError(f"mask must have shape {a.shape[:2]} (H, W), got {mask.shape}")
        hole = mask < 0.5
        if not hole.any():
            raise ValueError("the mask has no pixel to fill (0): the hole PSNR is undefined")
        squared = squared[hole]
    mse = float(squared.mean())
    if mse == 0.0:
        return float("inf") if max_db is None else float(max_db)
    value = 10.0 * np.log10(float(data_range) ** 2 / mse)
    return float(value if max_db is None else min(value, max_db))


def ssim(a, b, data_range=255):
    """Structural similarity of two images: scikit-image's ``structural_similarity``.

    It is computed with the settings of Wang et al. [1]_: a Gaussian window (sigma 1.5, 11 x 11
    pixels), population (co)variances, K1 = 0.01, K2 = 0.03, averaged over the image (minus a
    5-pixel border, where the window does not fit) and, for colour images, over the channels
    (``channel_axis=-1``).  These are also the settings of ``tf.image.ssim``.

    Parameters
    ----------
    a, b : array_like, shape (H, W) or (H, W, C)
        The two images, same shape, at least 11 x 11 pixels (the window).
    data_range : float, optional
        The largest possible difference between two pixel values (255 for ``uint8``).

    Returns
    -------
    float
        1 for identical images; at most 1.

    Raises
    ------
    ValueError
        If the images differ in shape, are not 2-D or 3-D, or are smaller than 11 x 11.
    MissingDependencyError
        If scikit-image is not installed.

    Examples
    --------
    >>> a = np.full((16, 16), 100, np.uint8)
    >>> ssim(a, a)
    1.0
    >>> b = np.full((16, 16), 200, np.uint8)    # constant images: only the luminance term is left
    >>> c1 = (0.01 * 255) ** 2
    >>> round(ssim(a, b), 6) == round((2 * 100 * 200 + c1) / (100 ** 2 + 200 ** 2 + c1), 6)
    True
    """
    a, b = _check_pair(a, b)
    if not (isinstance(data_range, numbers.Real) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, "
                         f"got {a.shape[:2]}")
    metrics = import_optional("skimage.metrics", "SSIM")
    return float(metrics.structural_similarity(
        a, b, data_range=float(data_range), channel_axis=-1 if a.ndim == 3 else None,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


# --------------------------------------------------------------------------------------------
# face checks


def _upscaled(image, factor):
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC))


def recognition_model_path():
    """The path of dlib's face-recognition ResNet, next to the landmark model of
    ``face-recognition-models`` (found the same way as in :mod:`dcgan_complete.align`)."""
    from dcgan_complete.align import default_predictor_path

    try:
        path = default_predictor_path().parent / RECOGNITION_MODEL_FILE
    except DcganError:
        path = None
    if path is None or not path.is_file():
        raise DcganError(f"dlib's face-recognition model {RECOGNITION_MODEL_FILE} was not found: "
                         "pip install face-recognition-models==0.3.0")
    return path


class FaceChecker:
    """Does a completion still show a face, and the same person as the original?

    ``face_found`` runs dlib's HOG detector (:class:`~dcgan_complete.align.FaceAligner`) on the
    image padded by ``FACE_PAD`` (1/16 of its side, edge pixels repeated) and enlarged
    ``FACE_UPSCALE`` (4) times.  ``embedding`` is dlib's 128-d face descriptor;
    two faces whose descriptors lie closer than ``SAME_PERSON_DISTANCE`` (0.6, Euclidean) are
    taken for the same person.

    How a small crop is prepared for the descriptor: the image is enlarged 4 times with bicubic
    interpolation (a 64 px crop becomes 256 px); dlib's 68-point landmark model is run in a fixed
    box, ``ALIGNED_FACE_BOX`` (where the HOG detector puts the face in an aligned crop; any other
    box can be given); ``compute_face_descriptor`` then cuts dlib's own 150 x 150 face chip
    (padding 0.25) along those landmarks and runs the network on it, without jitter.  The box is
    fixed rather than detected so that an original and its completion are measured the same way,
    and so that a completion the detector misses still gets a distance.

    The distance means most where both images show a face: the descriptor of a picture without
    one (a gray square, a street scene) can still lie near 0.6 from a face's, which is why
    ``face_found`` is reported beside it.  In a small check on held-out aligned 64 px LFW crops
    (31 same-person and 672 different-person pairs), 84% of the same-person pairs and 2% of the
    others lay under 0.6.

    Parameters
    ----------
    predictor : str or Path, optional
        dlib's ``shape_predictor_68_face_landmarks.dat``; by default that of
        ``face-recognition-models``.
    recognizer : str or Path, optional
        dlib's ``dlib_face_recognition_resnet_model_v1.dat``; by default that of
        ``face-recognition-models``.

    Examples
    --------
    >>> from skimage import data
    >>> from dcgan_complete.images import center_crop_resize
    >>> face = center_crop_resize(data.astronaut()[55:195, 155:295], 64)      # doctest: +SKIP
    >>> checker = FaceChecker()                                              # doctest: +SKIP
    >>> checker.face_found(face), checker.distance(face, face)               # doctest: +SKIP
    (True, 0.0)
    """

    def __init__(self, predictor=None, recognizer=None):
        import dlib

        from dcgan_complete.align import FaceAligner

        self._aligner = FaceAligner(predictor)
        path = recognizer if recognizer is not None else recognition_model_path()
        try:
            self._network = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise DcganError(f"cannot load the face-recognition model {path}: {exc}") from None
        self._dlib = dlib

    def face_found(self, image):
        """True if dlib's HOG detector finds a face in ``image`` (uint8 (H, W, 3)), padded by
        ``FACE_PAD`` of its side and enlarged ``FACE_UPSCALE`` times."""
        image = np.asarray(image)
        pad = int(round(FACE_PAD * max(image.shape[:2]))) if image.ndim == 3 else 0
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else image
        return bool(self._aligner.face_boxes(_upscaled(padded, FACE_UPSCALE), upsample=0))

    def embedding(self, image, box=None):
        """dlib's 128-d face descriptor of ``image`` (uint8 (H, W, 3)).

        Parameters
        ----------
        image : ndarray, uint8, shape (H, W, 3)
        box : (left, top, right, bottom), optional
            The face, in pixels of ``image``; by default ``ALIGNED_FACE_BOX`` of its side.

        Returns
        -------
        ndarray of float64, shape (128,)
        """
        dlib = self._dlib
        big = _upscaled(image, FACE_UPSCALE)
        if box is None:
            h, w = np.asarray(image).shape[:2]
            left, top, right, bottom = ALIGNED_FACE_BOX
            box = (left * w, top * h, right * w, bottom * h)
        if len(box) != 4:
            raise ValueError(f"box must be (left, top, right, bottom), got {box!r}")
        rect = dlib.rectangle(*(int(round(v * FACE_UPSCALE)) for v in box))
        points = self._aligner.landmarks(big, rect)
        shape = dlib.full_object_detection(
            rect, dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in points]))
        return np.asarray(self._network.compute_face_descriptor(big, shape), dtype=np.float64)

    def distance(self, a, b):
        """Euclidean distance between the descriptors of two images (or of given descriptors).

        Below ``SAME_PERSON_DISTANCE`` (0.6), dlib takes them for the same person.
        """
        ea = a if np.asarray(a).shape == (128,) else self.embedding(a)
        eb = b if np.asarray(b).shape == (128,) else self.embedding(b)
        return float(np.linalg.norm(np.asarray(ea, np.float64) - np.asarray(eb, np.float64)))


# --------------------------------------------------------------------------------------------
# what an evaluation scores, and tables of scores

# Kinds that leave no pixel exactly known or none to fill cannot be scored against a hole.
UNSCORABLE_MASKS = ("full", "lowres")


def check_choices(masks, methods):
    """The mask kinds and methods of an evaluation, checked and without repeats.

    Raises
    ------
    DcganError
        For a kind that cannot be scored (``full``, ``lowres``), an unknown method, or none.
    """
    masks, methods = tuple(masks), tuple(methods)
    scorable = [k for k in MASK_KINDS if k not in UNSCORABLE_MASKS]
    for kind in masks:
        if kind not in scorable:
            raise DcganError(f"cannot evaluate mask {kind!r}: choose from {', '.join(scorable)}")
    for method in methods:
        if method not in EVALUATE_METHODS:
            raise DcganError(f"unknown method {method!r}: choose from {', '.join(EVALUATE_METHODS)}")
    if not masks or not methods:
        raise DcganError("give at least one mask and one method")
    # repeats would only repeat rows
    return tuple(dict.fromkeys(masks)), tuple(dict.fromkeys(methods))


def choose_images(aligned_dir, out_dir, limit, seed):
    """The images an evaluation scores: every image in ``aligned_dir`` (searched recursively)
    that is not inside ``out_dir`` (an earlier report), or ``limit`` of them drawn with ``seed``.
    """
    where = display_name(aligned_dir)
    if not aligned_dir.is_dir():
        raise DcganError(f"ALIGNED_DIR {where} is not a folder" if aligned_dir.exists()
                         else f"ALIGNED_DIR {where} does not exist")
    if Path(out_dir).resolve() == aligned_dir.resolve():
        raise OptionError("out_dir", "{out_dir} must not be ALIGNED_DIR itself")
    # an earlier report inside ALIGNED_DIR is not ground truth
    paths = [p for p in imgs.find_images(aligned_dir) if not is_inside(p, out_dir)]
    if not paths:
        raise DcganError(f"no {imgs.IMAGE_KINDS} images in {where}")
    if limit is not None and limit < len(paths):
        chosen = np.random.default_rng([seed]).choice(len(paths), int(limit), replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    return paths


def rst_table(header, body, right=None):
    """Rows of strings as a reStructuredText simple table; ``right[i]``: right-align column i."""
    right = right or (False,) * len(header)
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([rule, line(header), rule, *map(line, body), rule])
