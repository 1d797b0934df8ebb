"""Face alignment: detect faces with dlib and warp each to a fixed landmark template.

The geometry is OpenFace's (``align_dlib.py``): dlib's 68 facial landmarks are found in the photo,
three of them are chosen (by default the inner eye corners and the bottom lip), and the one affine
map that sends those three points exactly onto the same three points of a mean-face template,
scaled to ``size``, is used to warp the photo bilinearly into a ``size`` x ``size`` crop.

:class:`FaceAligner` does this for one image; :func:`align_folder` does it for a folder of photos,
in parallel, resumably, and writes a report of every photo it could not use.

:func:`find_damaged_faces` finds and aligns the faces of a photo with a hole (1 = known pixel):
it looks with the HOG detector on the photo with its hole filled by Telea, and around every large
part of the hole that no face found explains, with dlib's CNN detector and HOG again on a window
resized so that a face the hole may hide is 70-230 px (then blurred, and closer).  Each face's
frame is fitted to the landmarks that lie on known pixels only, through a shape model of the 68
landmarks in the aligned frame (:func:`fit_frame`); a face that cannot be aligned comes back with
the reason.

References
----------
.. [1] B. Amos, B. Ludwiczuk, M. Satyanarayanan, "OpenFace: A general-purpose face recognition
       library with mobile applications", CMU-CS-16-118, 2016.
.. [2] V. Kazemi, J. Sullivan, "One millisecond face alignment with an ensemble of regression
       trees", CVPR 2014 (the 68-point landmark model).
.. [3] D. E. King, "Max-margin object detection", arXiv:1502.00046, 2015 (the CNN detector).
.. [4] T. F. Cootes, C. J. Taylor, D. H. Cooper, J. Graham, "Active shape models - their training
       and application", CVIU 61(1), 1995 (the shape model the frame is fitted with).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import importlib.util
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcgan_complete import files
from dcgan_complete.classical import telea_fill
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name
from dcgan_complete.images import (IMAGE_KINDS, ImageReadError, ImageTooLargeError,
                                   find_images, read_image, write_image)
from dcgan_complete.options import ALIGN_BORDERS, ALIGN_LANDMARKS, AlignOptions

# dlib's 68-point landmark indices (0-based) of the two triples OpenFace aligns on.
INNER_EYES_AND_BOTTOM_LIP = (39, 42, 57)
OUTER_EYES_AND_NOSE = (36, 45, 33)

LANDMARK_SETS = dict(zip(ALIGN_LANDMARKS, (INNER_EYES_AND_BOTTOM_LIP, OUTER_EYES_AND_NOSE)))

# Where those landmarks sit in the aligned crop, as fractions of its side (x, y): OpenFace's mean
# landmarks, min-max normalised to the unit square.
TEMPLATE = {
    36: (0.194157, 0.169267),  # outer corner of the right eye (left in the image)
    39: (0.363785, 0.177947),  # inner corner of the right eye
    42: (0.618963, 0.172778),  # inner corner of the left eye
    45: (0.788859, 0.158171),  # outer corner of the left eye
    33: (0.494951, 0.514441),  # bottom of the nose
    57: (0.500204, 0.750584),  # middle of the bottom lip
}

BORDERS = ALIGN_BORDERS
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"
# The 68-point shape model in the aligned frame (built by scripts/face_shape.py from LFW).
SHAPE_FILE = "face_shape.npz"
# dlib's CNN box moved onto where its HOG detector puts the box of the same face, since the
# landmark model was trained on HOG boxes: the side times 1.03, the centre moved by (0.02, 0.05)
# of the CNN box's side (mean IoU 0.75 with the HOG box on 250 LFW faces; scripts/face_shape.py).
CNN_TO_HOG_BOX = (1.03, 0.02, 0.05)

# Faces in damaged photos (find_damaged_faces).  A part of the hole is searched for the face it
# may hide in a window around it, resized: for each (extent, margin, view) of HOLE_LOOKS in turn,
# until a face is found, the window is `margin` times the part's extent wider on every side and
# the extent spans `extent` pixels.  The first looks put a face 0.8 to 2.5 times the hole's extent
# at 72 to 225 px, where the CNN detector works (it finds no face under about 70 px); the closer
# ones find smaller faces around the hole (a hole over most of a face), and larger ones.  The
# views: "telea" (the photo's Telea fill), "blurred" (that fill blurred by a Gaussian of 1/20 of
# the extent: the sharp seams of Telea no longer hide the face from the CNN) and "smooth" (the
# hole filled by a Gaussian-weighted mean of the known pixels around it, 1/8 of the extent).  On
# 24 LFW faces the first look missed, the blurred one found 7 and the smooth one 4.
HOLE_LOOKS = ((90, 0.75, "telea"), (90, 0.75, "blurred"), (90, 0.75, "smooth"),
              (126, 1.0, "telea"), (126, 1.0, "blurred"))
MIN_HOLE_EXTENT = 16      # px: a smaller hole does not hide a face of 40 px from HOG
MIN_HOLE_THICKNESS = 4    # px from its middle to a known pixel: a thinner part (a crack, a
                          # scratch) hides no face from HOG once Telea has filled it
MIN_HOLE_AREA = 100       # px
MAX_HOLE_PARTS = 16       # the largest parts of the hole searched (the first look: ~0.1 s each)
MAX_LOOKED_AGAIN = 4      # ... and of those where it finds nothing, the parts looked at again
LOOK_AGAIN_DEPTH = 8      # ... if this deep (px from the middle to a known pixel) somewhere
COVERED_SHARE = 0.75      # a part of the hole this much inside faces found is not searched again
SAME_FACE_IOU = 0.3       # two boxes overlapping this much are one face
# A face found near the hole (where the detectors look hardest, and so are most often wrong) is
# kept when the hole covers at least NEAR_HOLE_SHARE of its box (a face the hole damaged), or
# when its detector is sure of it: a score (HOG's, or the CNN's confidence) of SURE_NEAR_HOLE or
# more (a small face beside the hole, which HOG missed on the whole photo).  What the search
# found beside a hole and not in it was a pattern (a mission patch, a cup) at scores of 0.03 to
# 0.08; the real faces beside one scored 0.7 to 1.5, and every damaged face had 0.15 or more of
# its box in the hole (runs/falsefaces/measure.py).
NEAR_HOLE_SHARE = 0.1
SURE_NEAR_HOLE = 0.3
# A landmark counts as seen when it lies this share of its box's width away from the hole.
VISIBLE_MARGIN = 0.04
MIN_VISIBLE = 8           # landmarks on known pixels needed to fit a frame
MIN_VISIBLE_SPAN = 0.4    # ... spread over this much of the mean shape's width and height
SHAPE_MODES = 16          # the shape model's modes used in the fit
LANDMARK_NOISE = 0.03     # a landmark's error, in units of the crop's side (the fit's weighting)
# A fitted frame is trusted when the visible landmarks fit a face's shape to within
# MAX_FIT_RESIDUAL of the crop's side (root mean square), the face it frames is at most
# MAX_BOX_DISAGREEMENT times larger or smaller than the box, and it stretches one direction at most
# MAX_ANISOTROPY times more than the other.  Measured on 300 damaged faces: at most 0.022, 1.29
# and 1.39.
MAX_FIT_RESIDUAL = 0.05
MAX_BOX_DISAGREEMENT = 1.6
MAX_ANISOTROPY = 1.6

# How a face was found (FoundFace.found_by) and aligned (FoundFace.aligned_by).
FOUND_BY_HOG = "HOG"
FOUND_BY_HOG_NEAR_HOLE = "HOG near the hole"
FOUND_BY_CNN_NEAR_HOLE = "CNN near the hole"
ALIGNED_BY_LANDMARKS = "landmarks"
ALIGNED_BY_VISIBLE = "visible landmarks"
REPORT_NAME = "align_report.csv"
# The options that decide what a crop looks like and how it is named, kept in ALIGNED_DIR.
RECORD_NAME = "align_options.json"
RECORDED_OPTIONS = ("size", "landmarks", "border", "all_faces")
# Write errors that no other photo would escape: the run stops instead of failing every photo.
FATAL_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)

# Reasons an input produced no output, as written in the report.
NO_FACE = "no face"
SEVERAL_FACES = "several faces"
UNREADABLE = "unreadable"
TOO_LARGE = "too large"  # more pixels than images.megapixel_limit(): readable, but not read
FAILED = "failed"
_ALIGNED = "aligned"
_STOP = "stop"  # a write error that stops the run (FATAL_WRITE_ERRORS)


def _shipped_model(name, what):
    """The path of dlib model file ``name`` shipped by ``face-recognition-models``.

    The package is located with :mod:`importlib` instead of being imported: its ``__init__``
    needs ``pkg_resources``, which current setuptools no longer provides.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / name
        if path.is_file():
            return path
    raise DcganError(f"dlib's {what} {name} was not found: "
                     "pip install face-recognition-models==0.3.0")


def default_predictor_path():
    """Return the path of dlib's 68-point landmark model shipped by ``face-recognition-models``.

    Raises
    ------
    DcganError
        If the package or the model file is not installed.
    """
    return _shipped_model(PREDICTOR_FILE, "landmark model")


def default_cnn_detector_path():
    """Return the path of dlib's CNN face detector (MMOD) shipped by ``face-recognition-models``.

    Raises
    ------
    DcganError
        If the package or the model file is not installed.
    """
    return _shipped_model(CNN_DETECTOR_FILE, "CNN face detector")


def template_points(landmark_indices, size):
    """Return the template positions of ``landmark_indices`` in a ``size`` x ``size`` crop.

    Returns
    -------
    ndarray of shape (len(landmark_indices), 2)
        ``(x, y)`` pixel coordinates.

    Examples
    --------
    >>> template_points(INNER_EYES_AND_BOTTOM_LIP, 64).round(2)
    array([[23.28, 11.39],
           [39.61, 11.06],
           [32.01, 48.04]])
    """
    unknown = [i for i in landmark_indices if i not in TEMPLATE]
    if unknown:
        raise ValueError(f"no template position for landmark(s) {unknown}; "
                         f"known: {sorted(TEMPLATE)}")
    return size * np.array([TEMPLATE[i] for i in landmark_indices], dtype=np.float64)


def affine_from_points(src, dst):
    """Return the 2x3 affine matrix that maps three ``src`` points exactly onto ``dst``.

    Parameters
    ----------
    src, dst : array_like of shape (3, 2)
        ``(x, y)`` points; ``src`` must not be collinear.

    Returns
    -------
    ndarray of shape (2, 3)
        ``M`` such that ``M @ [x, y, 1] = [x', y']`` for each pair.

    Examples
    --------
    >>> affine_from_points([[0, 0], [1, 0], [0, 1]], [[1, 1], [3, 1], [1, 3]])
    array([[2., 0., 1.],
           [0., 2., 1.]])
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != (3, 2) or dst.shape != (3, 2):
        raise ValueError(f"need three (x, y) points each, got shapes {src.shape} and {dst.shape}")
    homogeneous = np.hstack([src, np.ones((3, 1))])
    if abs(np.linalg.det(homogeneous)) < 1e-9:
        raise ValueError(f"the source points are collinear: {src.tolist()}")
    return np.linalg.solve(homogeneous, dst).T


def warp_affine(image, matrix, size, border="reflect"):
    """Warp ``image`` by the affine ``matrix`` into a ``size`` x ``size`` crop, bilinearly.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    matrix : array_like of shape (2, 3)
        Maps photo coordinates ``(x, y)`` (pixel centres at integers) to crop coordinates.
    size : int
        Side of the output.
    border : {'reflect', 'black'}
        How the crop is filled where it reaches past the photo's edge: the photo mirrored at
        its edge, or black (OpenFace's behaviour).

    Returns
    -------
    ndarray of shape (size, size, 3), uint8

    Notes
    -----
    Where the map shrinks the photo by a factor of two or more, the photo is first reduced by
    the integer part of that factor (box average) so the bilinear samples do not alias.
    """
    from PIL import Image
    from scipy.ndimage import map_coordinates

    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    forward = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)  # crop -> photo

    shrink = 1.0 / np.sqrt(abs(np.linalg.det(forward[:2, :2])))
    factor = int(shrink) if shrink >= 2 else 1
    if factor > 1:
        image = np.asarray(Image.fromarray(image).reduce(factor))
        # Reduced pixel i averages photo pixels factor*i ... factor*i + factor-1.
        to_reduced = np.array([[1 / factor, 0, -(factor - 1) / (2 * factor)],
                               [0, 1 / factor, -(factor - 1) / (2 * factor)],
                               [0, 0, 1]])
        inverse = to_reduced @ inverse

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    coords = np.stack([inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2],
                       inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]])
    mode = "reflect" if border == "reflect" else "grid-constant"
    channels = [map_coordinates(image[:, :, c], coords, output=np.float32, order=1,
                                mode=mode, cval=0.0) for c in range(3)]
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def _as_rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _box_area(box):
    return max(box.width(), 0) * max(box.height(), 0)


def _box_tuple(box):
    """``(left, top, right, bottom)`` of a dlib.rectangle or a sequence of four numbers."""
    if hasattr(box, "left"):
        return (box.left(), box.top(), box.right(), box.bottom())
    return tuple(box)


def box_iou(a, b):
    """Intersection over union of two boxes ``(left, top, right, bottom)`` (or dlib.rectangle).

    Examples
    --------
    >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    a, b = _box_tuple(a), _box_tuple(b)
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _move_box(box, move):
    """``box`` scaled by ``move[0]`` about its centre, and its centre moved by ``move[1:]``
    times its width: a square box."""
    scale, dx, dy = move
    left, top, right, bottom = box
    side = right - left
    x, y = (left + right) / 2 + dx * side, (top + bottom) / 2 + dy * side
    half = scale * side / 2
    return (x - half, y - half, x + half, y + half)


class FaceAligner:
    """dlib's HOG face detector and 68-point landmark model, and the crop to :data:`TEMPLATE`.

    Parameters
    ----------
    predictor : str or Path, optional
        dlib's ``shape_predictor_68_face_landmarks.dat``; by default the one shipped by the
        ``face-recognition-models`` package.

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> aligner = FaceAligner()
    >>> aligner.align(astronaut()).shape
    (64, 64, 3)
    """

    INNER_EYES_AND_BOTTOM_LIP = INNER_EYES_AND_BOTTOM_LIP
    OUTER_EYES_AND_NOSE = OUTER_EYES_AND_NOSE

    def __init__(self, predictor=None):
        import dlib

        path = Path(predictor) if predictor is not None else default_predictor_path()
        if path.is_dir():
            raise DcganError(f"landmark model {display_name(path)} is a folder, not dlib's "
                             f"{PREDICTOR_FILE}")
        if not path.is_file():
            raise DcganError(f"landmark model not found: {display_name(path)}")
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "not a model"
            raise DcganError(f"cannot load the landmark model {display_name(path)}: {reason}") \
                from None
        self._detector = dlib.get_frontal_face_detector()
        self._rectangle = dlib.rectangle
        self._cnn = None
        self.predictor_path = path

    def face_boxes(self, image, upsample="auto"):
        """Return the boxes (``dlib.rectangle``) of all faces dlib's HOG detector finds.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
        upsample : int or 'auto'
            How many times to double the image before detecting (finds smaller faces, slower).
            ``'auto'`` tries 0 and, only when that finds nothing, 1.
        """
        image = _as_rgb(image)
        if upsample == "auto":
            return list(self._detector(image, 0)) or list(self._detector(image, 1))
        if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) \
                or upsample < 0:
            raise ValueError(f"upsample must be 'auto' or an integer >= 0, got {upsample!r}")
        return list(self._detector(image, int(upsample)))

    def cnn_face_boxes(self, image, upsample=0, calibrated=True):
        """Return the faces dlib's CNN detector (MMOD) finds, as ``(box, confidence)`` pairs.

        It finds faces that the HOG detector misses (turned, partly hidden, damaged), but only
        from about 70 px up, and costs about 5 microseconds a pixel on one CPU core: run it on a
        small image (:func:`find_damaged_faces` runs it on windows around a photo's hole).

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
        upsample : int
            How many times to double the image first.
        calibrated : bool
            Move and scale each box to where the HOG detector puts its box on the same face
            (:data:`CNN_TO_HOG_BOX`), which is what :meth:`landmarks` expects.

        Returns
        -------
        list of ((left, top, right, bottom) floats, float)
        """
        import dlib

        if self._cnn is None:
            path = default_cnn_detector_path()
            try:
                self._cnn = dlib.cnn_face_detection_model_v1(str(path))
            except RuntimeError as exc:
                raise DcganError(f"cannot load the CNN face detector {display_name(path)}: "
                                 f"{_first_line(exc) or 'not a model'}") from None
        found = []
        for detection in self._cnn(_as_rgb(image), int(upsample)):
            r = detection.rect
            box = (float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
            found.append((_move_box(box, CNN_TO_HOG_BOX) if calibrated else box,
                          float(detection.confidence)))
        return found

    def largest_box(self, image, upsample="auto"):
        """Return the box of the largest face, or None if there is none."""
        return max(self.face_boxes(image, upsample), key=_box_area, default=None)

    def landmarks(self, image, box):
        """Return dlib's 68 landmarks in ``box`` as an array of shape (68, 2) of ``(x, y)``.

        ``box`` is a ``dlib.rectangle`` or ``(left, top, right, bottom)``.
        """
        if not isinstance(box, self._rectangle):
            box = self._rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(_as_rgb(image), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def align(self, image, box=None, size=64, landmark_indices=INNER_EYES_AND_BOTTOM_LIP,
              border="reflect"):
        """Return the face in ``box`` warped to the template, as a ``size`` x ``size`` crop.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), uint8
        box : dlib.rectangle or (left, top, right, bottom), optional
            The face; by default the largest one found (with ``upsample='auto'``).
        size : int
            Side of the crop in pixels.
        landmark_indices : sequence of three ints
            Which landmarks are sent exactly onto the template.
        border : {'reflect', 'black'}
            See :func:`warp_affine`.

        Returns
        -------
        ndarray of shape (size, size, 3), uint8, or None
            None only when ``box`` was not given and no face was found.
        """
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if len(landmark_indices) != 3:
            raise ValueError(f"need exactly three landmark indices, got {landmark_indices}")
        target = template_points(landmark_indices, size)
        if box is None:
            box = self.largest_box(image)
            if box is None:
                return None
        points = self.landmarks(image, box)[list(landmark_indices)]
        return warp_affine(image, affine_from_points(points, target), size, border)


@functools.lru_cache(maxsize=2)
def _load_aligner(predictor_path):
    """One FaceAligner per process and model file (worker processes load theirs once)."""
    return FaceAligner(predictor_path)


# ------------------------------------------------------------------------- faces in damaged photos
@dataclass
class FoundFace:
    """A face found in a photo with a hole, and its aligned frame.

    Attributes
    ----------
    box : tuple of int
        ``(left, top, right, bottom)`` in photo pixels, where dlib's HOG detector puts its box
        (a CNN box is moved there, see :data:`CNN_TO_HOG_BOX`).
    transform : ndarray of shape (2, 3), or None
        Photo ``(x, y)`` to crop ``(u, v)`` of the ``size`` x ``size`` aligned frame, as
        :func:`warp_affine` takes it; None when the face could not be aligned (``reason``).
    size : int
        Side of the aligned frame.
    landmarks : ndarray of shape (68, 2)
        dlib's landmarks ``(x, y)``, found on the photo with its hole filled: those in the hole
        are guesses.
    visible : ndarray of bool, shape (68,)
        The landmarks on known pixels (at least ``VISIBLE_MARGIN`` of the box's width from the
        hole), which the frame is fitted to.
    found_by : str
        :data:`FOUND_BY_HOG` (the whole photo, hole filled by Telea),
        :data:`FOUND_BY_HOG_NEAR_HOLE` or :data:`FOUND_BY_CNN_NEAR_HOLE` (a window around a part
        of the hole that no other face explained).
    aligned_by : str or None
        :data:`ALIGNED_BY_LANDMARKS`: ``align``'s three landmarks, all on known pixels (or no
        hole near the face), exactly as ``align`` crops; :data:`ALIGNED_BY_VISIBLE`: the frame
        fitted to the visible landmarks (:func:`fit_frame`); None when not aligned.
    reason : str or None
        Why the face could not be aligned, in words for a summary; None when it was.
    hole_share : float
        The share of the box's pixels in the hole.
    score : float or None
        For a face found near the hole: the detector's score (HOG's detection score, or the CNN
        detector's confidence); None otherwise.
    fit_residual : float or None
        How far the visible landmarks are from a face's shape: the root mean square residual of
        :func:`fit_frame` on them, as a share of the frame's side; None when too few are
        visible to fit.
    """

    box: tuple
    transform: np.ndarray | None
    size: int
    landmarks: np.ndarray = field(repr=False)
    visible: np.ndarray = field(repr=False)
    found_by: str = FOUND_BY_HOG
    aligned_by: str | None = ALIGNED_BY_LANDMARKS
    reason: str | None = None
    hole_share: float = 0.0
    score: float | None = None
    fit_residual: float | None = None

    @property
    def aligned(self):
        return self.transform is not None


@functools.lru_cache(maxsize=1)
def face_shape():
    """The shape model of dlib's 68 landmarks in the aligned frame, in units of the crop's side.

    Returns
    -------
    dict
        ``mean`` (68, 2), ``modes`` (K, 68, 2) and their ``variances`` (K,), ``box`` (where the
        HOG box falls in the frame on average: left, top, right, bottom) and ``faces`` (how many
        LFW faces it was measured on); float64.
    """
    path = Path(__file__).parent / "weights" / SHAPE_FILE
    try:
        with np.load(path) as data:
            return {key: np.asarray(data[key], np.float64) for key in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise DcganError(f"the face shape model {display_name(path)} is missing or damaged "
                         f"({_first_line(exc)}); reinstall dcgan-complete") from None


def fit_frame(landmarks, visible, size, modes=SHAPE_MODES):
    """The aligned frame that best explains the ``visible`` landmarks.

    The visible landmarks are fitted, in the least-squares sense, by an affine map of the photo
    into the aligned frame and a shape drawn from the shape model (:func:`face_shape`: the mean
    shape plus ``modes`` principal modes, held near the mean by their variances).  Modelling the
    shape, not only its mean, lets a turned or open-mouthed face be aligned from its jaw and
    brows as ``align`` would align it from its eyes and lip.  Landmarks in a hole are left out:
    dlib puts them where the fill suggests, not where the face is.

    Parameters
    ----------
    landmarks : array_like of shape (68, 2)
        ``(x, y)`` in the photo.
    visible : array_like of bool, shape (68,)
        The landmarks to fit (at least three, not all on one line).
    size : int
        Side of the aligned frame.
    modes : int
        How many of the shape model's modes to fit (0: the mean shape only).

    Returns
    -------
    transform : ndarray of shape (2, 3)
        Photo ``(x, y)`` to crop ``(u, v)``, as :func:`warp_affine` takes it.
    residual : float
        The root mean square distance, in crop pixels, between the visible landmarks mapped by
        ``transform`` and the fitted shape.
    shape : ndarray of shape (68, 2)
        The fitted shape in crop pixels: where the model puts every landmark, hidden ones too.

    Examples
    --------
    >>> mean = face_shape()["mean"] * 50 + [20, 30]      # the mean face, 50 px, in a photo
    >>> transform, residual, _ = fit_frame(mean, np.ones(68, bool), 64)
    >>> np.round(transform, 3), round(residual, 6)
    (array([[  1.28,   0.  , -25.6 ],
           [  0.  ,   1.28, -38.4 ]]), 0.0)
    """
    model = face_shape()
    points = np.asarray(landmarks, np.float64)
    visible = np.asarray(visible, bool)
    if points.shape != (68, 2) or visible.shape != (68,):
        raise ValueError(f"need 68 (x, y) landmarks and 68 flags, got {points.shape} and "
                         f"{visible.shape}")
    if visible.sum() < 3:
        raise ValueError(f"need at least three visible landmarks, got {int(visible.sum())}")
    modes = int(min(modes, len(model["variances"])))
    seen = points[visible]
    # Normalised coordinates keep the system well conditioned for any photo size.
    centre = seen.mean(axis=0)
    spread = np.sqrt(((seen - centre) ** 2).sum(axis=1).mean()) or 1.0
    unit = (seen - centre) / spread
    n = len(seen)
    mean = model["mean"][visible]
    basis = model["modes"][:modes, visible].transpose(1, 2, 0)  # (n, 2, modes)
    # Unknowns: the six numbers of the affine map, then the modes' weights b:
    # affine(point) - basis @ b = mean, for each visible point, both coordinates.
    system = np.zeros((2 * n + modes, 6 + modes))
    target = np.zeros(2 * n + modes)
    system[0:2 * n:2, 0:2] = unit
    system[0:2 * n:2, 2] = 1.0
    system[1:2 * n:2, 3:5] = unit
    system[1:2 * n:2, 5] = 1.0
    system[0:2 * n:2, 6:] = -basis[:, 0]
    system[1:2 * n:2, 6:] = -basis[:, 1]
    target[0:2 * n:2], target[1:2 * n:2] = mean[:, 0], mean[:, 1]
    system[:2 * n] /= LANDMARK_NOISE
    target[:2 * n] /= LANDMARK_NOISE
    # The prior: each mode's weight is drawn with that mode's variance.
    system[2 * n + np.arange(modes), 6 + np.arange(modes)] = 1.0 / np.sqrt(
        model["variances"][:modes])
    if np.linalg.matrix_rank(system[:2 * n, :6]) < 6:
        raise ValueError("the visible landmarks lie on one line")
    solution = np.linalg.lstsq(system, target, rcond=None)[0]
    normalise = np.array([[1 / spread, 0, -centre[0] / spread],
                          [0, 1 / spread, -centre[1] / spread], [0, 0, 1]])
    transform = size * (np.vstack([solution[:6].reshape(2, 3), [0, 0, 1]]) @ normalise)[:2]
    shape = size * (model["mean"] + model["modes"][:modes].transpose(1, 2, 0) @ solution[6:])
    mapped = np.hstack([seen, np.ones((n, 1))]) @ transform.T
    residual = float(np.sqrt(((mapped - shape[visible]) ** 2).sum(axis=1).mean()))
    return transform, residual, shape


def _hole_distance(known, box):
    """Distance (px) of each pixel to the nearest hole pixel, in a window around ``box``, as a
    function ``(xs, ys) -> distances``; far away from any hole, infinite."""
    from scipy import ndimage

    height, width = known.shape
    left, top, right, bottom = box
    margin = int(right - left) // 2 + 2
    t, b = max(int(top) - margin, 0), min(int(bottom) + margin + 1, height)
    l, r = max(int(left) - margin, 0), min(int(right) + margin + 1, width)
    window = known[t:b, l:r] if t < b and l < r else np.ones((1, 1), bool)
    distance = ndimage.distance_transform_edt(window) if not window.all() else None

    def lookup(xs, ys):
        if distance is None:
            return np.full(len(xs), np.inf)
        xi = np.clip(np.rint(xs).astype(int) - l, 0, distance.shape[1] - 1)
        yi = np.clip(np.rint(ys).astype(int) - t, 0, distance.shape[0] - 1)
        outside = (xs < 0) | (ys < 0) | (xs > width - 1) | (ys > height - 1)
        return np.where(outside, np.inf, distance[yi, xi])  # off the photo: not in the hole

    return lookup


def _hole_share(known, box):
    """The share of the pixels of ``box`` (left, top, right, bottom; clipped to the photo) in
    the hole."""
    left, top, right, bottom = (max(int(round(v)), 0) for v in box)
    area = max((right - left) * (bottom - top), 1)
    return float((~known[top:bottom, left:right]).sum() / area)


def _frame_problem(box, transform, residual, size):
    """Why a fitted frame is not to be trusted (a reason for the summary), or None."""
    if residual > MAX_FIT_RESIDUAL * size:
        return (f"its landmarks outside the hole do not fit a face's shape "
                f"({residual / size:.0%} of the frame off)")
    # The box the frame implies (the HOG box's mean place in the frame, carried back).
    inverse = np.linalg.inv(np.vstack([transform, [0, 0, 1]]))[:2]
    expected = np.array(face_shape()["box"]) * size
    corners = np.array([[expected[0], expected[1], 1.0], [expected[2], expected[3], 1.0]])
    (x0, y0), (x1, y1) = corners @ inverse.T
    ratio = np.sqrt(abs((x1 - x0) * (y1 - y0))) / max(box[2] - box[0], 1)
    singular = np.linalg.svd(transform[:, :2], compute_uv=False)
    if not 1 / MAX_BOX_DISAGREEMENT <= ratio <= MAX_BOX_DISAGREEMENT:
        return (f"its landmarks outside the hole make a face {ratio:.1f} times the size of its "
                f"box")
    if singular[0] > MAX_ANISOTROPY * singular[1]:
        stretch = singular[0] / singular[1]
        return (f"its landmarks outside the hole make a face stretched {stretch:.1f} times more "
                f"one way than the other")
    return None


def align_face(aligner, filled, known, box, size, landmark_indices=INNER_EYES_AND_BOTTOM_LIP,
               found_by=FOUND_BY_HOG, score=None):
    """Align one face of a photo with a hole, from the landmarks that lie on known pixels.

    dlib's 68 landmarks are found in ``box`` on ``filled`` (the photo with its hole filled).  If
    the three landmarks ``landmark_indices`` lie on known pixels, the frame is ``align``'s: those
    three sent onto :data:`TEMPLATE`.  Otherwise the frame is fitted to the visible landmarks
    (:func:`fit_frame`) and checked against the box.  Call it again on a better fill (the
    model's completion, say) to refine a frame: only the fill changes, not which landmarks
    count.

    Parameters
    ----------
    aligner : FaceAligner
    filled : ndarray of uint8, shape (H, W, 3)
        The photo, its hole filled (Telea, or a completion); its known pixels are the photo's.
    known : ndarray of bool, shape (H, W)
        True = known pixel.
    box : dlib.rectangle or (left, top, right, bottom)
        The face, where dlib's HOG detector would put its box.
    size : int
        Side of the aligned frame.
    landmark_indices : sequence of three ints
        ``align``'s landmarks (those the model's crops were aligned on).
    found_by : str
        Kept in the result.
    score : float, optional
        The detector's score, kept in the result.

    Returns
    -------
    FoundFace
        With ``transform`` None and a ``reason`` when it cannot be aligned: too few landmarks
        outside the hole, all on one side of the face, or a frame that disagrees with the box.
        Its ``fit_residual`` tells how well the visible landmarks fit a face's shape, whichever
        way it was aligned.
    """
    box = tuple(int(round(v)) for v in _box_tuple(box))
    known = np.asarray(known, bool)
    landmarks = aligner.landmarks(filled, box)
    width = max(box[2] - box[0], 1)
    distance = _hole_distance(known, box)(landmarks[:, 0], landmarks[:, 1])
    visible = distance > VISIBLE_MARGIN * width
    hole_share = _hole_share(known, box)
    face = FoundFace(box, None, size, landmarks, visible, found_by, None, None, hole_share,
                     score)
    count = int(visible.sum())
    spread = np.ptp(face_shape()["mean"][visible], axis=0) if count else np.zeros(2)
    fit, problem = None, None
    if count < MIN_VISIBLE:
        problem = (f"the hole covers {68 - count} of its 68 landmarks, too many to align it "
                   f"(at most {68 - MIN_VISIBLE})")
    elif spread.min() < MIN_VISIBLE_SPAN:
        problem = (f"the hole leaves only one side of the face ({count} landmarks), too little "
                   f"to align it")
    else:
        try:
            fit = fit_frame(landmarks, visible, size)
            face.fit_residual = fit[1] / size
        except ValueError as exc:
            problem = f"its landmarks outside the hole cannot be fitted ({exc})"
    indices = list(landmark_indices)
    if visible[indices].all():
        try:
            face.transform = affine_from_points(landmarks[indices],
                                                template_points(indices, size))
            face.aligned_by = ALIGNED_BY_LANDMARKS
        except ValueError:
            face.reason = "its landmarks lie on one line"
        return face
    if fit is None:
        face.reason = problem
        return face
    transform, residual, shape = fit
    face.reason = _frame_problem(box, transform, residual, size)
    if face.reason is None:
        # The shape model's frame is align's default one (INNER_EYES_AND_BOTTOM_LIP on the
        # template); for other landmarks, where the fitted shape puts them goes onto the template.
        to_template = affine_from_points(shape[indices], template_points(indices, size))
        face.transform = (np.vstack([to_template, [0, 0, 1]]) @
                          np.vstack([transform, [0, 0, 1]]))[:2]
        face.aligned_by = ALIGNED_BY_VISIBLE
    return face


def _hole_depth(hole):
    """The distance (px) from each hole pixel to the nearest known one, 0 outside the hole."""
    import cv2

    return cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)


def _hole_parts(hole, boxes, depth=None):
    """The parts of the hole to search for a face: the ``(top, bottom, left, right)`` of each
    part that the faces found (``boxes``) do not already explain, the largest first, at most
    MAX_HOLE_PARTS of them.

    The parts are found on the hole reduced to about a megapixel (blocks of ``step`` x ``step``
    pixels), so a large photo costs no more than a small one; each block counts its hole pixels.
    A part thinner than MIN_HOLE_THICKNESS everywhere is not searched: ``depth`` is
    :func:`_hole_depth` of ``hole``, if the caller has it.
    """
    from scipy import ndimage

    height, width = hole.shape
    step = max(1, int(np.ceil(np.sqrt(height * width / 1e6))))
    rows, cols = -(-height // step), -(-width // step)
    padded = np.zeros((rows * step, cols * step), bool)
    padded[:height, :width] = hole
    counts = padded.reshape(rows, step, cols, step).sum(axis=(1, 3))
    labels, count = ndimage.label(ndimage.binary_dilation(counts > 0, iterations=2))
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    area = ndimage.sum_labels(counts, labels, index)
    covered = np.zeros(counts.shape, bool)
    for left, top, right, bottom in boxes:
        grow = 0.1 * (right - left)
        covered[max(int((top - grow) / step), 0):max(int((bottom + grow) / step) + 1, 0),
                max(int((left - grow) / step), 0):max(int((right + grow) / step) + 1, 0)] = True
    explained = ndimage.sum_labels(counts * covered, labels, index) / np.maximum(area, 1)
    depth = _hole_depth(hole) if depth is None else depth
    deep = np.zeros((rows * step, cols * step), bool)
    deep[:height, :width] = depth >= MIN_HOLE_THICKNESS
    thick = ndimage.sum_labels(deep.reshape(rows, step, cols, step).any(axis=(1, 3)), labels,
                               index) > 0
    # Each part's extent without the dilation (which only joins nearby pieces).
    objects = ndimage.find_objects(np.where(counts > 0, labels, 0), max_label=count)
    parts = []
    for k in np.argsort(-area, kind="stable"):
        rows, cols = objects[k]
        part = (rows.start * step, min(rows.stop * step, height),
                cols.start * step, min(cols.stop * step, width))
        extent = max(part[1] - part[0], part[3] - part[2])
        if area[k] >= MIN_HOLE_AREA and extent >= MIN_HOLE_EXTENT and thick[k] and \
                explained[k] < COVERED_SHARE:
            parts.append(part)
        if len(parts) == MAX_HOLE_PARTS:
            break
    return parts


def _view(window, known, view, extent_px):
    """A window of the Telea fill as one of HOLE_LOOKS's views sees it."""
    import cv2

    if view == "blurred":
        return cv2.GaussianBlur(window, (0, 0), extent_px / 20)
    if view == "smooth":
        sigma = extent_px / 8
        weight = cv2.GaussianBlur(known.astype(np.float32), (0, 0), sigma)
        total = cv2.GaussianBlur(window.astype(np.float32) * known[..., None], (0, 0), sigma)
        mean = total / np.maximum(weight, 1e-6)[..., None]
        return np.where(known[..., None], window, np.clip(np.rint(mean), 0, 255).astype(np.uint8))
    return window


def _search_part(aligner, filled, known, part, looks):
    """Faces found around one part of the hole: ``(box, found_by, score)``, boxes in photo
    pixels, scores HOG's or the CNN's confidence.  Each of ``looks`` (from HOLE_LOOKS) in turn,
    until one finds something; of that, only the boxes the hole covers NEAR_HOLE_SHARE of, or
    found with a score of SURE_NEAR_HOLE or more."""
    import cv2

    top, bottom, left, right = part
    extent = max(bottom - top, right - left)
    height, width = filled.shape[:2]
    for extent_px, margin, view in looks:
        grow, scale = margin * extent, extent_px / extent
        t, b = max(int(top - grow), 0), min(int(bottom + grow), height)
        l, r = max(int(left - grow), 0), min(int(right + grow), width)
        size = (max(round((r - l) * scale), 1), max(round((b - t) * scale), 1))
        window = cv2.resize(np.ascontiguousarray(filled[t:b, l:r]), size,
                            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        seen = cv2.resize(known[t:b, l:r].astype(np.uint8), size,
                          interpolation=cv2.INTER_NEAREST) > 0
        window = _view(window, seen, view, extent_px)

        def to_photo(box):
            return tuple(v / scale + offset for v, offset in zip(box, (l, t, l, t)))

        boxes, scores, _ = aligner._detector.run(np.ascontiguousarray(window), 1, 0.0)
        found = [(to_photo(_box_tuple(box)), FOUND_BY_HOG_NEAR_HOLE, float(score))
                 for box, score in zip(boxes, scores)]
        found += [(to_photo(box), FOUND_BY_CNN_NEAR_HOLE, confidence)
                  for box, confidence in aligner.cnn_face_boxes(window)]
        if found:  # what a look finds ends the search, even when it is no face (as it was)
            return [(box, by, score) for box, by, score in found
                    if score >= SURE_NEAR_HOLE or _hole_share(known, box) >= NEAR_HOLE_SHARE]
    return []


def find_damaged_faces(photo, known, size=64, *, filled=None, upsample="auto", aligner=None,
                       landmark_indices=INNER_EYES_AND_BOTTOM_LIP):
    """Find the faces of a photo with a hole, and align each despite the hole.

    1. dlib's HOG detector looks at the photo with its hole filled by Telea (``upsample`` as in
       :meth:`FaceAligner.face_boxes`): this finds every face of an undamaged photo, as
       ``align`` does, and most damaged ones.
    2. Each large part of the hole (at least MIN_HOLE_AREA pixels) that the faces found do not
       already cover is searched again in a window around it, resized so that a face the hole
       may hide is 70-230 px, with HOG (upsample 1) and with dlib's CNN detector, which finds
       faces whose eyes, nose or mouth are gone.  If neither finds a face there, the window is
       looked at blurred, with the hole smoothly filled, then closer (1.4 times larger), sharp
       and blurred (HOLE_LOOKS).  At most MAX_HOLE_PARTS parts, the largest first, get the first
       look (about 0.1 s of one CPU core each, whatever the photo's size), and at most
       MAX_LOOKED_AGAIN of them the others (up to about 1 s each), only those at least
       LOOK_AGAIN_DEPTH px deep somewhere (a date stamp or dust found by ``--mask auto`` hides
       no face the first look misses; measured on 40 damaged photos: the same faces found, in
       60% less time).  Parts less than MIN_HOLE_THICKNESS deep are not searched at all.  What
       is found there is kept only when the hole covers NEAR_HOLE_SHARE of its box or its
       detector is sure of it (SURE_NEAR_HOLE): a pattern beside a hole (a badge, a cup) is
       not taken for a face.
    3. Boxes that overlap (IoU of SAME_FACE_IOU or more) are one face, the first detector's box
       kept (HOG, then HOG near the hole, then CNN).
    4. Each face is aligned by :func:`align_face`: ``align``'s frame when its three landmarks
       are on known pixels, else a frame fitted to the landmarks outside the hole.

    Only the known pixels of ``photo`` are looked at: whatever its hole holds (damage, or the
    original, for a measurement) makes no difference.

    Parameters
    ----------
    photo : ndarray of uint8, shape (H, W, 3)
    known : array_like of shape (H, W)
        True (or >= 0.5) = known pixel, False = hole.
    size : int
        Side of the aligned frames.
    filled : ndarray of uint8, shape (H, W, 3), optional
        ``photo`` with its hole filled by Telea, if the caller has it already
        (:func:`dcgan_complete.classical.telea_fill`); made here otherwise.
    upsample : int or 'auto'
        For the HOG detector on the whole photo.
    aligner : FaceAligner, optional
        dlib's models (one shared per process by default).
    landmark_indices : sequence of three ints
        ``align``'s landmarks.

    Returns
    -------
    list of FoundFace
        Every face found, largest box first.  A face that could not be aligned has
        ``transform`` None and a ``reason``; none is left out.

    Example
    -------
    >>> faces = find_damaged_faces(photo, mask >= 0.5, 64)                # doctest: +SKIP
    >>> [(f.box, f.found_by, f.aligned_by or f.reason) for f in faces]    # doctest: +SKIP
    """
    photo = _as_rgb(photo)
    known = np.asarray(known)
    if known.shape != photo.shape[:2]:
        raise ValueError(f"the mask has shape {known.shape}, the photo {photo.shape[:2]}")
    known = known >= 0.5 if known.dtype != bool else known
    if not known.any():
        return []
    aligner = aligner or _load_aligner(default_predictor_path())
    hole = ~known
    if filled is None:
        filled = telea_fill(photo, known) if hole.any() else photo
    filled = _as_rgb(filled)
    if filled.shape != photo.shape:
        raise ValueError(f"filled has shape {filled.shape}, the photo {photo.shape}")
    found = [(_box_tuple(b), FOUND_BY_HOG, 1.0) for b in aligner.face_boxes(filled, upsample)]
    if hole.any():
        near, again, depth = [], [], _hole_depth(hole)
        for part in _hole_parts(hole, [box for box, _, _ in found], depth):
            first = _search_part(aligner, filled, known, part, HOLE_LOOKS[:1])
            near += first
            if not first:
                again.append(part)
        again = [p for p in again if depth[p[0]:p[1], p[2]:p[3]].max() >= LOOK_AGAIN_DEPTH]
        for part in again[:MAX_LOOKED_AGAIN]:
            near += _search_part(aligner, filled, known, part, HOLE_LOOKS[1:])
        rank = {FOUND_BY_HOG_NEAR_HOLE: 0, FOUND_BY_CNN_NEAR_HOLE: 1}
        found += sorted(near, key=lambda f: (rank[f[1]], -f[2]))
    faces = []
    for box, found_by, score in found:
        if all(box_iou(box, face.box) < SAME_FACE_IOU for face in faces):
            faces.append(align_face(aligner, filled, known, box, size, landmark_indices,
                                    found_by, None if found_by == FOUND_BY_HOG else score))
    return sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]),
                  reverse=True)


@dataclass
class AlignSummary:
    """What :func:`align_folder` did.

    ``aligned`` counts photos that gave output in this run, ``faces`` the crops written;
    ``skipped`` counts photos whose output already existed.  Every photo counted in
    ``no_face``, ``several_faces``, ``unreadable``, ``too_large`` or ``failed`` has a row in
    ``report_path``.
    """

    found: int = 0
    aligned: int = 0
    faces: int = 0
    no_face: int = 0
    several_faces: int = 0
    unreadable: int = 0
    too_large: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    report_path: Path | None = None
    rejected: list = field(default_factory=list, repr=False)  # (relative path, reason, detail)

    def __str__(self):
        minutes, seconds = divmod(round(self.seconds), 60)
        faces = f" ({self.faces} faces)" if self.faces != self.aligned else ""
        failed = f", failed {self.failed}" if self.failed else ""
        large = f", too large {self.too_large}" if self.too_large else ""
        return (f"aligned {self.aligned}{faces}, no face {self.no_face}, "
                f"several faces {self.several_faces}, unreadable {self.unreadable}{large}"
                f"{failed}, "
                f"skipped as existing {self.skipped} (of {self.found} images, "
                f"{minutes}m{seconds:02d}s)")


def _first_line(message):
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def _write_failure(exc):
    """FAILED for a crop that could not be written, or _STOP if no other crop could be either."""
    cause = exc.__context__  # files.atomic_write raises its one-line DcganError from the OSError
    fatal = isinstance(cause, OSError) and cause.errno in FATAL_WRITE_ERRORS
    return _STOP if fatal else FAILED


@dataclass(frozen=True)
class _AlignJob:
    """Aligns one photo and writes its crop(s); picklable, so worker processes can run it."""

    aligned_dir: Path
    predictor_path: Path
    landmark_indices: tuple
    options: AlignOptions

    def __call__(self, task):
        """Return ``(relative path, status, number of crops, detail)`` for one photo."""
        source, relative, name = task
        try:
            image = read_image(source)
        except ImageTooLargeError as exc:  # says how large, and the limit's variable
            return relative, TOO_LARGE, 0, _first_line(exc)
        except ImageReadError as exc:  # says why: a folder, not an image, damaged
            return relative, UNREADABLE, 0, _first_line(exc)
        try:
            status, crops, detail = self._align(image)
            self._write(name, crops)
        except DcganError as exc:  # a crop could not be written (files.atomic_write)
            return relative, _write_failure(exc), 0, _first_line(exc)
        except Exception as exc:  # report the photo and go on with the others
            return relative, FAILED, 0, _first_line(f"{exc.__class__.__name__}: {exc}")
        return relative, status, len(crops), detail

    def _align(self, image):
        """Return ``(status, crops, detail)``: the crops of the faces to keep, largest first."""
        options, aligner = self.options, _load_aligner(self.predictor_path)
        boxes = aligner.face_boxes(image, options.upsample)
        if not boxes:
            return NO_FACE, [], ""
        if len(boxes) > 1 and options.skip_multi:
            return SEVERAL_FACES, [], f"{len(boxes)} faces"
        boxes = sorted(boxes, key=_box_area, reverse=True)[:None if options.all_faces else 1]
        return _ALIGNED, [aligner.align(image, box, options.size, self.landmark_indices,
                                        options.border) for box in boxes], ""

    def _write(self, name, crops):
        # Last face first: once NAME_0.png exists, the photo is done (see _output_path).
        for index in reversed(range(len(crops))):
            suffix = f"_{index}" if self.options.all_faces else ""
            write_image(self.aligned_dir / f"{name}{suffix}.png", crops[index])


def _init_worker():
    """Ctrl-C is the parent's to handle: it stops the pool (``pool.terminate()``, SIGTERM to
    every worker) and prints the one line.  A worker ends on SIGTERM without a traceback: the
    handler it inherits from the command line (``signals_interrupt``) would raise Interrupted
    in it, which multiprocessing prints in full."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum, frame):
    # SystemExit runs the clean-up on its way out (a crop being written is not left as a
    # temporary file) and multiprocessing ends the process with its code, printing nothing.
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the worker at once
    raise SystemExit(128 + signum)


def _flat_names(relative_paths):
    """Unique, traceable output stems for paths relative to RAW_DIR (case-insensitively unique).

    A photo's own stem where that is unique (``Person/Person_0001.jpg`` -> ``Person_0001``),
    else its folders joined by ``__`` (``a/x.jpg`` -> ``a__x``), then the extension, then a count.
    """
    names = [p.stem for p in relative_paths]
    for rename in (lambda p: "__".join(p.parent.parts + (p.stem,)),
                   lambda p: "__".join(p.parent.parts + (p.stem,)) + "_" + p.suffix[1:]):
        clashes = Counter(n.casefold() for n in names)
        names = [rename(p) if clashes[n.casefold()] > 1 else n
                 for p, n in zip(relative_paths, names)]
    seen = Counter()
    unique = []
    for name in names:
        seen[name.casefold()] += 1
        count = seen[name.casefold()]
        unique.append(name if count == 1 else f"{name}_{count}")
    return unique


def _output_path(aligned_dir, name, all_faces):
    return aligned_dir / (f"{name}_0.png" if all_faces else f"{name}.png")


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------- align_folder's steps
def _options(options, overrides):
    """The AlignOptions to use (validated) and the three landmark indices they name."""
    options = dataclasses.replace(options or AlignOptions(), **overrides)
    indices = LANDMARK_SETS.get(options.landmarks) if isinstance(options.landmarks, str) else \
        tuple(options.landmarks)
    unknown = [i for i in indices if i not in TEMPLATE]
    if unknown:
        raise OptionError("landmarks", f"{{landmarks}}: no template position for landmark(s) "
                                       f"{unknown}; known: {sorted(TEMPLATE)}")
    return options, indices


def _find_sources(raw_dir, aligned_dir):
    """The photos under ``raw_dir``, without any in ``aligned_dir``."""
    if not raw_dir.is_dir():
        raise DcganError(f"RAW_DIR {display_name(raw_dir)} is a file, not a folder of photos"
                         if raw_dir.exists() else f"RAW_DIR {display_name(raw_dir)} does not exist")
    if raw_dir.resolve() == aligned_dir.resolve():
        raise DcganError("ALIGNED_DIR must not be RAW_DIR itself")
    sources = find_images(raw_dir)
    if files.is_inside(aligned_dir, raw_dir):  # its crops are not photos to align
        sources = [p for p in sources if not files.is_inside(p, aligned_dir)]
    if not sources:
        raise DcganError(f"no {IMAGE_KINDS} images in {display_name(raw_dir)}")
    return sources


def _record(options, indices):
    """What :data:`RECORD_NAME` keeps: the options that decide a crop's pixels and name."""
    landmarks = next((name for name, s in LANDMARK_SETS.items() if s == tuple(indices)),
                     list(indices))
    return {"size": options.size, "landmarks": landmarks, "border": options.border,
            "all_faces": options.all_faces}


def _read_record(aligned_dir):
    """The options recorded in ``aligned_dir``, or None for a folder without the record."""
    path = aligned_dir / RECORD_NAME
    if not path.is_file():
        return None
    try:
        saved = AlignOptions(**{k: v for k, v in json.loads(path.read_text()).items()
                                if k in RECORDED_OPTIONS})
        return _record(saved, _options(saved, {})[1])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise DcganError(f"{display_name(path)} is unreadable ({_first_line(exc)}); move it "
                         f"away to start afresh") from None


def _first_crop(aligned_dir):
    """A crop already in ``aligned_dir`` (any .png but temporary files), or None."""
    with os.scandir(aligned_dir) as entries:
        return next((Path(e.path) for e in entries if e.name.lower().endswith(".png")
                     and not e.name.startswith(".") and e.is_file()), None)


def _show(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _check_output_folder(aligned_dir, options, indices):
    """Make sure ``aligned_dir`` can be written and holds no crops made with other options.

    Returns the record to keep there.  A folder from before the record was kept is checked by
    the size of one of its crops.
    """
    files.ensure_writable_dir(aligned_dir, "aligned_dir")
    wanted = _record(options, indices)
    crop = _first_crop(aligned_dir)
    if crop is None:
        return wanted
    where = display_name(aligned_dir)
    saved = _read_record(aligned_dir)
    if saved is None:
        from PIL import Image

        try:
            with Image.open(crop) as image:
                width, height = image.size
        except Exception:  # not a crop of ours: nothing to compare with
            return wanted
        if (width, height) != (options.size, options.size):
            raise OptionError(("size", "aligned_dir"),
                              f"{where} holds {width}x{height} crops, not {{size}} "
                              f"{options.size}: pass {{size}} {width} to add to them, or choose "
                              f"another {{aligned_dir}}")
        return wanted
    differ = [k for k in RECORDED_OPTIONS if saved[k] != wanted[k]]
    if differ:
        made = ", ".join(f"{{{k}}} {_show(saved[k])} (asked {_show(wanted[k])})" for k in differ)
        raise OptionError(tuple(differ) + ("aligned_dir",),
                          f"{where} holds crops made with {made}: pass the same options to add "
                          f"to them, or choose another {{aligned_dir}}")
    return wanted


def _load_model(options):
    """The FaceAligner, loaded before any work: a missing model fails at once, and forked
    workers inherit it."""
    if options.predictor is not None:
        return _load_aligner(Path(options.predictor))
    try:
        return _load_aligner(default_predictor_path())
    except DcganError as exc:
        raise OptionError("predictor", f"{exc}, or pass {{predictor}} PATH") \
            from None


def _plan(raw_dir, aligned_dir, sources, all_faces):
    """The summary to fill and the ``(source, relative path, name)`` of each photo to do."""
    relative = [p.relative_to(raw_dir) for p in sources]
    summary = AlignSummary(found=len(sources), report_path=aligned_dir / REPORT_NAME)
    tasks = []
    for source, rel, name in zip(sources, relative, _flat_names(relative)):
        if _output_path(aligned_dir, name, all_faces).exists():
            summary.skipped += 1
        else:
            tasks.append((source, rel.as_posix(), name))
    return summary, tasks


_COUNTERS = {NO_FACE: "no_face", SEVERAL_FACES: "several_faces", UNREADABLE: "unreadable",
             TOO_LARGE: "too_large", FAILED: "failed"}


def _run_all(job, tasks, workers, progress, summary):
    """Run ``job`` on every task and count the results into ``summary``."""
    workers = min(workers or _available_cores(), max(len(tasks), 1))
    results = _run(job, tasks, workers, progress, summary.found, summary.skipped)
    with contextlib.closing(results):  # stops the workers if this stops early
        for relative_path, status, faces, detail in results:
            if status == _STOP:
                raise DcganError(f"{detail}: stopped (the crops written are kept; run again "
                                 "to go on)")
            if status == _ALIGNED:
                summary.aligned += 1
                summary.faces += faces
                continue
            summary.rejected.append((relative_path, status, detail))
            setattr(summary, _COUNTERS[status], getattr(summary, _COUNTERS[status]) + 1)


def _write_report(summary):
    files.write_csv(summary.report_path, ["path", "reason", "detail"], sorted(summary.rejected))


def align_folder(raw_dir, aligned_dir, options=None, *, progress=True, **overrides):
    """Align the faces in the photos under ``raw_dir`` to flat square PNGs in ``aligned_dir``.

    ``raw_dir`` is searched recursively for image files (any case of
    :data:`~dcgan_complete.images.IMAGE_EXTENSIONS`).  Each output is named after its photo
    (``Person/Person_0001.jpg`` -> ``Person_0001.png``; folder names are prepended only where
    stems clash).  Outputs that already exist are skipped, so an
    interrupted run can simply be started again; files are written under a temporary name and
    renamed, so none is ever half-written.  Every photo that gave no output is listed with the
    reason in ``aligned_dir/align_report.csv``.  The options that decide the crops (``size``,
    ``landmarks``, ``border``, ``all_faces``) are kept in ``aligned_dir/align_options.json``; a
    later run into the same folder must use the same ones.

    Parameters
    ----------
    raw_dir, aligned_dir : str or Path
        Input photos, and where the crops go (created if needed).  ``aligned_dir`` may lie
        inside ``raw_dir``; its contents are then not taken as input.
    options : AlignOptions, optional
        The settings (see :class:`~dcgan_complete.options.AlignOptions` for the defaults).
    progress : bool
        Show a tqdm progress bar on stderr.
    **overrides
        Any field of AlignOptions, over ``options``:

        size : int
            Side of the crops in pixels (at least 8).
        landmarks : str or sequence of three ints
            ``'inner-eyes-and-bottom-lip'`` (OpenFace's default), ``'outer-eyes-and-nose'``, or
            three dlib landmark indices that have a :data:`TEMPLATE` position.
        all_faces : bool
            Write every face as ``NAME_0.png``, ``NAME_1.png``, ... (largest first) instead of
            only the largest as ``NAME.png``.
        skip_multi : bool
            Skip photos in which more than one face is found (reported as "several faces").
        upsample : int or 'auto'
            See :meth:`FaceAligner.face_boxes`.
        border : {'reflect', 'black'}
            See :func:`warp_affine`.
        workers : int, optional
            Processes to use; by default one per available core.
        predictor : str or Path, optional
            The 68-point landmark model, if not the one from ``face-recognition-models``.

    Returns
    -------
    AlignSummary

    Raises
    ------
    OptionError
        For a bad option value, an ``aligned_dir`` that cannot be written, or one that holds
        crops made with other options.
    DcganError
        If ``raw_dir`` is missing or holds no images, the landmark model cannot be loaded, or a
        write error (a full disk) stops the run.
    """
    start = time.perf_counter()
    options, indices = _options(options, overrides)
    raw_dir, aligned_dir = Path(raw_dir), Path(aligned_dir)
    sources = _find_sources(raw_dir, aligned_dir)
    record = _check_output_folder(aligned_dir, options, indices)
    aligner = _load_model(options)
    files.write_text(aligned_dir / RECORD_NAME, json.dumps(record, indent=2) + "\n")
    summary, tasks = _plan(raw_dir, aligned_dir, sources, options.all_faces)
    job = _AlignJob(aligned_dir, aligner.predictor_path, indices, options)
    _run_all(job, tasks, options.workers, progress, summary)
    _write_report(summary)
    summary.seconds = time.perf_counter() - start
    return summary


def _run(job, tasks, workers, progress, total, done):
    """Yield the job's result for every task, from ``workers`` processes, with a progress bar."""
    import multiprocessing

    from tqdm import tqdm

    # The pool starts before the bar, whose monitor thread a forked worker must not inherit.
    pool = multiprocessing.get_context().Pool(workers, initializer=_init_worker) \
        if workers > 1 else None
    bar = tqdm(total=total, initial=done, unit="img", desc="align", disable=not progress,
               smoothing=0.05, dynamic_ncols=True)
    with bar:
        if pool is None:
            for task in tasks:
                yield job(task)
                bar.update()
            return
        chunksize = max(1, min(16, len(tasks) // (workers * 16)))
        try:
            for result in pool.imap_unordered(job, tasks, chunksize=chunksize):
                yield result
                bar.update()
        except BaseException:  # Ctrl-C or an error in the caller: stop the workers now
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            pool.join()
