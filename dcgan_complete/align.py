"""Face alignment: detect faces with dlib and warp each to a fixed landmark template.

The geometry is OpenFace's (``align_dlib.py``): dlib's 68 facial landmarks are found in the photo,
three of them are chosen (by default the inner eye corners and the bottom lip), and the one affine
map that sends those three points exactly onto the same three points of a mean-face template,
scaled to ``size``, is used to warp the photo bilinearly into a ``size`` x ``size`` crop.

:class:`FaceAligner` does this for one image; :func:`align_folder` does it for a folder of photos,
in parallel, resumably, and writes a report of every photo it could not use.

References
----------
.. [1] B. Amos, B. Ludwiczuk, M. Satyanarayanan, "OpenFace: A general-purpose face recognition
       library with mobile applications", CMU-CS-16-118, 2016.
.. [2] V. Kazemi, J. Sullivan, "One millisecond face alignment with an ensemble of regression
       trees", CVPR 2014 (the 68-point landmark model).
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
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name
from dcgan_complete.images import ImageReadError, find_images, read_image, write_image
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
FAILED = "failed"
_ALIGNED = "aligned"
_STOP = "stop"  # a write error that stops the run (FATAL_WRITE_ERRORS)


def default_predictor_path():
    """Return the path of dlib's 68-point landmark model shipped by ``face-recognition-models``.

    The package is located with :mod:`importlib` instead of being imported: its ``__init__``
    needs ``pkg_resources``, which current setuptools no longer provides.

    Raises
    ------
    DcganError
        If the package or the model file is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise DcganError(f"dlib's landmark model {PREDICTOR_FILE} was not found: "
                     "pip install face-recognition-models==0.3.0")


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


@dataclass
class AlignSummary:
    """What :func:`align_folder` did.

    ``aligned`` counts photos that gave output in this run, ``faces`` the crops written;
    ``skipped`` counts photos whose output already existed.  Every photo counted in
    ``no_face``, ``several_faces``, ``unreadable`` or ``failed`` has a row in ``report_path``.
    """

    found: int = 0
    aligned: int = 0
    faces: int = 0
    no_face: int = 0
    several_faces: int = 0
    unreadable: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    report_path: Path | None = None
    rejected: list = field(default_factory=list, repr=False)  # (relative path, reason, detail)

    def __str__(self):
        minutes, seconds = divmod(round(self.seconds), 60)
        faces = f" ({self.faces} faces)" if self.faces != self.aligned else ""
        failed = f", failed {self.failed}" if self.failed else ""
        return (f"aligned {self.aligned}{faces}, no face {self.no_face}, "
                f"several faces {self.several_faces}, unreadable {self.unreadable}{failed}, "
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
        except ImageReadError as exc:  # says why: a folder, not an image, damaged, too large
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
    # Ctrl-C goes to the parent, which stops the pool; workers must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        raise DcganError(f"no .png, .jpg or .jpeg images in {display_name(raw_dir)}")
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
             FAILED: "failed"}


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

    ``raw_dir`` is searched recursively for .png, .jpg and .jpeg files (any case).  Each output is
    named after its photo (``Person/Person_0001.jpg`` -> ``Person_0001.png``; folder names are
    prepended only where stems clash).  Outputs that already exist are skipped, so an
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
