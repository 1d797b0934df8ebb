"""Repair the faces inside an ordinary photo, at the photo's own size.

A photo of any size and its mask (1 = known, 0 = to fill, the photo's size) go in; the same
photo comes out, changed only in the hole:

1. the faces are found despite the hole (:func:`~dcgan_complete.align.find_damaged_faces`, on
   the photo shrunk to at most :data:`WORK_SIDE` pixels): dlib's HOG detector on the photo with
   its hole filled by Telea, then HOG and dlib's CNN detector around the parts of the hole that
   no face found explains;
2. each face gets ``align``'s affine (three landmarks sent onto the template, at the model's
   size) when those landmarks lie on known pixels, or else a frame fitted to the landmarks
   outside the hole; a face over the hole that cannot be aligned is reported, with why, and
   Telea fills its part of the hole;
3. the mask is carried into each face's aligned frame: a crop pixel counts as known only where
   every photo pixel its value is interpolated from is known;
4. every face with a hole in its frame is completed in one batched search
   (:class:`~dcgan_complete.search.Completer`), which pastes G(z) without blending it;
5. each face's G(z) is carried back with the inverse warp (cubic) onto the hole pixels its
   frame covers (a pixel inside several frames goes to the face whose frame centre it is
   nearest), and Poisson-blended there, once, at the photo's resolution: G(z)'s gradients
   inside, the photo's own pixels as the boundary (:func:`~dcgan_complete.blend.poisson_blend`);
6. hole pixels that no face frame covers (damage in the background) are filled classically,
   with OpenCV's Telea;
7. the fill is drawn at the model's size (64 px) and so is smoother than a large face around
   it; with ``grain`` the photo's own fine noise, measured around the hole, is added to it;
8. with the search's ``variants`` V > 1, steps 5-7 are done again for each face's other fills
   (the same grain), giving V repaired photos and their spread map
   (:func:`~dcgan_complete.variants.spread_map`) over the hole.

Pixels outside the hole are bit-identical to the input; faces whose frame holds no hole are not
searched.  Everything here is numpy, scipy, OpenCV and dlib; the search is the Completer's.

Example
-------
>>> from dcgan_complete.photo import repair_photo
>>> repair = repair_photo(photo, mask)                     # doctest: +SKIP
>>> repair.repaired.shape == photo.shape, [f.box for f in repair.faces]   # doctest: +SKIP
"""
from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from dcgan_complete import masks as mask_lib
from dcgan_complete import outputs
from dcgan_complete.align import (INNER_EYES_AND_BOTTOM_LIP, FaceAligner, affine_from_points,
                                  find_damaged_faces, template_points, warp_affine)
from dcgan_complete.blend import poisson_blend
from dcgan_complete.classical import HOLE_GRAY, telea_fill
from dcgan_complete.options import PhotoOptions
from dcgan_complete.variants import spread_map

LUMA = np.array([0.299, 0.587, 0.114])  # gray of a fill in a grayscale photo (ITU-R BT.601)
# Grain: the fine noise is what a Gaussian blur of this sigma removes; it is measured on the known
# pixels between GRAIN_RING[0] and GRAIN_RING[1] pixels from the hole.
GRAIN_SIGMA = 1.0
GRAIN_RING = (2, 8)
_CROSS = ndimage.generate_binary_structure(2, 1)
TIMING_KEYS = ("detect", "warp", "search", "blend")
# Faces are looked for on the photo shrunk to at most this side: a 12-megapixel photo is
# searched at 2048 x 1463 (a face of 80 px there is 160 px in the photo), its frames then
# scaled back to the photo's own pixels.
WORK_SIDE = 2048
RUN_TIMING_KEYS = ("read", "detect", "search", "blend", "write")  # a run's stages, in order


# --------------------------------------------------------------------------------------------
# geometry


@dataclasses.dataclass
class FaceFrame:
    """One face found in a photo and the affine map of its aligned frame.

    Attributes
    ----------
    box : tuple of int
        dlib's detection ``(left, top, right, bottom)`` in photo pixels.
    transform : ndarray of shape (2, 3)
        Photo ``(x, y)`` to crop ``(u, v)`` (pixel centres at integers), as
        :func:`~dcgan_complete.align.warp_affine` takes it.
    size : int
        Side of the aligned crop (the model's size).
    landmarks : ndarray of shape (68, 2)
        dlib's 68 landmarks ``(x, y)`` in the photo.
    found_by, aligned_by : str
        How the face was found and its frame fitted (see
        :func:`~dcgan_complete.align.find_damaged_faces`).
    """

    box: tuple
    transform: np.ndarray
    size: int
    landmarks: np.ndarray = dataclasses.field(repr=False, default=None)
    found_by: str = "HOG"                 # which detector found it (align.FOUND_BY_*)
    aligned_by: str = "landmarks"         # align's three landmarks, or the visible ones

    @property
    def inverse(self):
        """Crop ``(u, v)`` to photo ``(x, y)``, shape (2, 3)."""
        full = np.vstack([self.transform, [0.0, 0.0, 1.0]])
        return np.linalg.inv(full)[:2]

    @property
    def scale(self):
        """Photo pixels per crop pixel (the square root of the area ratio)."""
        return 1.0 / np.sqrt(abs(np.linalg.det(self.transform[:, :2])))

    def to_crop(self, ys, xs):
        """Crop coordinates ``(v, u)`` of photo pixels ``(ys, xs)`` (arrays of any shape)."""
        m = self.transform
        return (m[1, 0] * xs + m[1, 1] * ys + m[1, 2], m[0, 0] * xs + m[0, 1] * ys + m[0, 2])

    def depth(self, ys, xs):
        """How far photo pixels lie inside the frame, in crop pixels (negative outside)."""
        v, u = self.to_crop(ys, xs)
        last = self.size - 1
        return np.minimum(np.minimum(u, last - u), np.minimum(v, last - v))

    def footprint(self, shape, margin=0):
        """The photo window ``(top, bottom, left, right)`` the frame covers, ``margin`` pixels
        wider on every side, clipped to a photo of ``shape``; None if it lies outside."""
        last = self.size - 1
        corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], float)
        xy = corners @ self.inverse.T
        top = max(int(np.floor(xy[:, 1].min())) - margin, 0)
        left = max(int(np.floor(xy[:, 0].min())) - margin, 0)
        bottom = min(int(np.ceil(xy[:, 1].max())) + margin + 1, shape[0])
        right = min(int(np.ceil(xy[:, 0].max())) + margin + 1, shape[1])
        return (top, bottom, left, right) if top < bottom and left < right else None


def find_faces(aligner, photo, size, upsample="auto",
               landmark_indices=INNER_EYES_AND_BOTTOM_LIP):
    """Every face ``aligner`` (a FaceAligner) finds in ``photo``, largest first, with the affine
    map of its ``size`` x ``size`` aligned frame (``align``'s template and landmarks).

    Returns
    -------
    list of FaceFrame
    """
    target = template_points(landmark_indices, size)
    frames = []
    boxes = sorted(aligner.face_boxes(photo, upsample), key=lambda b: b.width() * b.height(),
                   reverse=True)
    for box in boxes:
        landmarks = aligner.landmarks(photo, box)
        try:
            transform = affine_from_points(landmarks[list(landmark_indices)], target)
        except ValueError:  # collinear landmarks: no frame to align to
            continue
        frames.append(FaceFrame((box.left(), box.top(), box.right(), box.bottom()), transform,
                                size, landmarks))
    return frames


def crop_mask(frame, known):
    """Carry a photo's mask into a face's aligned frame.

    A crop pixel counts as known only where every photo pixel that
    :func:`~dcgan_complete.align.warp_affine` interpolates it from is known: the hole is widened
    by that support (two reduced pixels when the warp shrinks the photo, one pixel otherwise,
    plus one for rounding) before it is sampled at the crop's pixel centres.

    Parameters
    ----------
    frame : FaceFrame
    known : ndarray of bool, shape (H, W)
        The photo's known pixels.

    Returns
    -------
    ndarray of float32, shape (size, size)
        1 = known, 0 = to fill.
    """
    hole = ~np.asarray(known, bool)
    factor = int(frame.scale) if frame.scale >= 2 else 1
    reach = (2 * factor if factor > 1 else 1) + 1
    window = frame.footprint(hole.shape, margin=reach + 1)
    if window is None or not hole[window[0]:window[1], window[2]:window[3]].any():
        return np.ones((frame.size, frame.size), np.float32)
    top, bottom, left, right = window
    near_hole = ndimage.maximum_filter(hole[top:bottom, left:right].astype(np.uint8),
                                       size=2 * reach + 1, mode="mirror")
    ys, xs = np.mgrid[0:frame.size, 0:frame.size].astype(np.float64)
    inverse = frame.inverse
    coords = np.stack([inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2] - top,
                       inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2] - left])
    # 'reflect' is warp_affine's border: where the crop reaches past the photo it sees the
    # photo mirrored, holes included.  The window is the whole frame, so it reflects at the
    # photo's own edge.
    in_hole = ndimage.map_coordinates(near_hole, coords, order=0, mode="reflect")
    return (in_hole == 0).astype(np.float32)


def kind_hole(frames, kind, shape, rng=None, **params):
    """The photo's hole for a mask kind drawn in every face's aligned frame.

    Each face gets its own mask of ``kind`` (a fresh draw from ``rng`` for the random kinds),
    and a photo pixel is in the hole when its position in some face's frame falls in that
    face's hole (nearest crop pixel).

    Returns
    -------
    ndarray of bool, shape ``shape``: True = to fill.
    """
    hole = np.zeros(shape, bool)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    for frame in frames:
        drawn = mask_lib.make_mask(kind, frame.size, rng=rng, **params)
        window = frame.footprint(shape)
        if window is None:
            continue
        top, bottom, left, right = window
        ys, xs = np.mgrid[top:bottom, left:right]
        v, u = frame.to_crop(ys, xs)
        vi, ui = np.rint(v).astype(int), np.rint(u).astype(int)
        inside = (vi >= 0) & (vi < frame.size) & (ui >= 0) & (ui < frame.size)
        cut = np.zeros(ys.shape, bool)
        cut[inside] = drawn[vi[inside], ui[inside]] < 0.5
        hole[top:bottom, left:right] |= cut
    return hole


# --------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class FaceRepair:
    """One face of a photo that the search repaired.

    Attributes
    ----------
    frame : FaceFrame
        Where it is (``box``) and its aligned frame (``transform``).
    crop, completed, generated : ndarray of uint8, shape (S, S, 3)
        The face as the search saw it, its completion (Poisson-blended in the crop), G(z).
    mask : ndarray of float32, shape (S, S)
        The photo's mask carried into the frame (1 = known).
    z : ndarray of float32
        The best latent vector; ``loss`` its total loss.
    pixels : int
        Photo pixels filled from this face.
    frames : list of ndarray
        The completion every ``out_interval`` iterations (with ``frames=True``).
    variant_generated : ndarray of uint8, shape (V, S, S, 3), or None
        With the search's ``variants`` V > 1: G(z) of each fill, the first being ``generated``.
    """

    frame: FaceFrame
    crop: np.ndarray
    mask: np.ndarray
    completed: np.ndarray = None
    generated: np.ndarray = None
    z: np.ndarray = None
    loss: float = float("nan")
    pixels: int = 0
    frames: list = dataclasses.field(default_factory=list, repr=False)
    variant_generated: np.ndarray = dataclasses.field(default=None, repr=False)

    @property
    def box(self):
        return self.frame.box

    @property
    def transform(self):
        return self.frame.transform


@dataclasses.dataclass
class PhotoRepair:
    """A repaired photo and how it was repaired.

    Attributes
    ----------
    repaired : ndarray of uint8, shape (H, W, 3)
        The photo with its hole filled; every other pixel is the input's, bit for bit.
    masked : ndarray of uint8, shape (H, W, 3)
        The photo with its hole gray.
    known : ndarray of bool, shape (H, W)
        The mask (True = known).
    faces : list of FaceRepair
        The faces whose frame held part of the hole, largest first.
    faces_found : int
        All faces found, including those without a hole (left untouched).
    model_pixels, classical_pixels : int
        Hole pixels filled from a face's completion, and by Telea.
    timings : dict
        Seconds spent on ``detect`` (dlib, and the Telea pre-fill it looks at), ``warp`` (crops,
        masks, carrying back), ``search`` (this photo's share of the batched search) and
        ``blend`` (Poisson, grain).
    owner : ndarray of int16, shape (H, W)
        For every hole pixel, the index in ``faces`` whose fill it took (-1: Telea, or known).
    unaligned : list of UnalignedFace
        Faces found over the hole that could not be aligned: Telea filled them.
    variants : list of ndarray of uint8, shape (H, W, 3), or None
        With the search's ``variants`` V > 1: V repaired photos, ``variants[0]`` being
        ``repaired`` itself, each filled from every face's fill of that rank and otherwise made
        as ``repaired`` is (Telea and the grain the same; identical outside the hole).  None
        with one fill.
    spread : ndarray of float32, shape (H, W), or None
        With ``variants``: their per-pixel spread (:func:`~dcgan_complete.variants.spread_map`),
        0 outside the hole and where Telea filled it.  None with one fill.
    """

    repaired: np.ndarray
    masked: np.ndarray
    known: np.ndarray
    faces: list
    faces_found: int
    model_pixels: int
    classical_pixels: int
    timings: dict
    owner: np.ndarray = dataclasses.field(repr=False, default=None)
    unaligned: list = dataclasses.field(default_factory=list)
    variants: list = dataclasses.field(repr=False, default=None)
    spread: np.ndarray = dataclasses.field(repr=False, default=None)

    @property
    def hole_pixels(self):
        return self.model_pixels + self.classical_pixels

    def face_reports(self):
        """One line per face that met the hole: who repaired it, and for Telea's, why; where
        faces were found but none met the hole, one line that says so.

        Example: ``face at (120, 80)-(260, 230): the model (found by CNN near the hole,
        aligned on the visible landmarks)`` or ``face at (...): Telea, could not be aligned:
        too few landmarks outside the hole``.
        """
        lines = []
        for face in self.faces:
            how = f"found by {face.frame.found_by}, aligned on {face.frame.aligned_by}"
            lines.append(f"face at {_show_box(face.box)}: the model ({how})")
        for face in self.unaligned:
            lines.append(f"face at {_show_box(face.box)}: Telea, could not be aligned: "
                         f"{face.reason}")
        if not lines and self.faces_found and self.classical_pixels:
            lines.append(f"no face met the hole: Telea filled it ({self.faces_found} face(s) "
                         "elsewhere left as they were)")
        return lines

    def face_region(self, k, completion=None, masked=False, max_side=256):
        """The photo around face ``k`` (its frame's footprint), at most ``max_side`` pixels.

        With ``completion`` (a crop of the model's size, e.g. one of ``faces[k].frames``), its
        carried-back pixels fill face ``k``'s share of the hole as they are (not blended): a
        frame of the search shown in the photo.  Otherwise the repaired photo, or with
        ``masked`` the masked one.
        """
        from PIL import Image

        face = self.faces[k]
        top, bottom, left, right = face.frame.footprint(self.repaired.shape[:2])
        source = self.masked if masked else self.repaired
        region = source[top:bottom, left:right].copy()
        if completion is not None:
            mine = self.owner[top:bottom, left:right] == k
            ys, xs = np.nonzero(mine)
            region[ys, xs] = np.clip(np.rint(_sample(completion, face.frame, ys + top, xs + left)),
                                     0, 255).astype(np.uint8)
        h, w = region.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            region = np.asarray(Image.fromarray(region).resize(size, Image.LANCZOS))
        return region


@dataclasses.dataclass
class UnalignedFace:
    """A face found in a photo whose box overlaps the hole, but that could not be aligned: its
    share of the hole is filled by Telea, and the summary says why."""

    box: tuple
    reason: str
    found_by: str
    hole_share: float


@dataclasses.dataclass
class PhotoPlan:
    """A photo ready for the search: its faces, their crops and crop masks (see
    :meth:`PhotoRepairer.plan`); :meth:`PhotoRepairer.finish` turns it into a PhotoRepair."""

    photo: np.ndarray
    known: np.ndarray
    prefilled: np.ndarray     # the photo with the whole hole filled by Telea
    frames: list              # every face found and aligned, largest first
    faces: list               # FaceRepair of the faces to search (a hole in their frame)
    gray: bool                # the photo is grayscale: the fill is made gray too
    timings: dict
    unaligned: list = dataclasses.field(default_factory=list)  # UnalignedFace: Telea fills

    @property
    def crops(self):
        return [f.crop for f in self.faces]

    @property
    def masks(self):
        return [f.mask for f in self.faces]


# --------------------------------------------------------------------------------------------
# the pipeline


class PhotoRepairer:
    """Repairs the faces in photos with a :class:`~dcgan_complete.search.Completer`.

    Parameters
    ----------
    completer : Completer
        The model and search settings; crops are made at its size.
    options : PhotoOptions, optional
        ``grain`` and ``upsample`` are used here.
    aligner : FaceAligner, optional
        dlib's detector and landmark model (loaded when not given).

    Example
    -------
    >>> repairer = PhotoRepairer(load_completer())             # doctest: +SKIP
    >>> [repair] = repairer.repair([photo], [mask])            # doctest: +SKIP
    """

    landmark_indices = INNER_EYES_AND_BOTTOM_LIP  # align's default: the bundled model's crops

    def __init__(self, completer, options: PhotoOptions | None = None, aligner=None):
        self.completer = completer
        self.size = completer.size
        self.options = options or PhotoOptions()
        self._aligner = aligner

    @property
    def aligner(self):
        """dlib's detector and landmarks, loaded when a photo first needs them."""
        if self._aligner is None:
            self._aligner = FaceAligner()
        return self._aligner

    def find_faces(self, photo, known=None, prefilled=None):
        """Every face of ``photo`` (uint8 (H, W, 3)), found despite its hole (``known``: bool
        (H, W), True = known; none: an undamaged photo), largest first.

        The faces are looked for at most :data:`WORK_SIDE` pixels wide
        (:func:`~dcgan_complete.align.find_damaged_faces`: dlib's HOG detector on the photo
        with its hole filled by Telea (``prefilled``), then HOG and dlib's CNN detector around
        the parts of the hole no face explains), and each is aligned on the landmarks outside
        the hole.

        Returns
        -------
        frames : list of FaceFrame
            The faces aligned, in the photo's own pixels.
        unaligned : list of UnalignedFace
            The faces whose box overlaps the hole but that could not be aligned, with why.
        """
        import cv2

        if known is None:
            known = np.ones(photo.shape[:2], bool)
        filled = photo if prefilled is None else prefilled
        height, width = photo.shape[:2]
        factor = max(height, width) / WORK_SIDE
        if factor > 1:  # look at the photo shrunk: detection costs its pixels, not the faces'
            small = (max(1, round(width / factor)), max(1, round(height / factor)))
            filled = cv2.resize(filled, small, interpolation=cv2.INTER_AREA)
            # a shrunk pixel is known only where all it is made of is known
            known = cv2.resize((~known).astype(np.float32), small,
                               interpolation=cv2.INTER_AREA) <= 0
        scale = np.array([width / filled.shape[1], height / filled.shape[0]])
        found = find_damaged_faces(filled, known, self.size, filled=filled,
                                   upsample=self.options.upsample, aligner=self.aligner,
                                   landmark_indices=self.landmark_indices)
        frames, unaligned = [], []
        for face in found:
            box = tuple(int(round(v * scale[k % 2])) for k, v in enumerate(face.box))
            if face.aligned:
                transform = np.array(face.transform, np.float64)
                transform[:, :2] /= scale  # crop (u, v) of photo (x, y) = of (x, y) / scale
                frames.append(FaceFrame(box, transform, self.size, face.landmarks * scale,
                                        face.found_by, face.aligned_by))
            elif face.hole_share > 0:
                unaligned.append(UnalignedFace(box, face.reason, face.found_by,
                                               face.hole_share))
        return frames, unaligned

    def plan(self, photo, mask, rng=None, frames=None, **mask_params):
        """Find the faces of ``photo`` and cut their crops and crop masks.

        Parameters
        ----------
        photo : ndarray of uint8, shape (H, W, 3)
        mask : ndarray of shape (H, W) or str
            1 (>= 0.5) = known, 0 = to fill; or a mask kind of
            :data:`~dcgan_complete.masks.MASK_KINDS`, drawn in every face's aligned frame.
        rng : numpy Generator or int, optional
            For the random mask kinds.
        frames : list of FaceFrame, optional
            The faces, when they are known already (found on the undamaged photo, say); by
            default they are found here.
        **mask_params
            Parameters of the kind (``scale``, ``fraction``...).

        Returns
        -------
        PhotoPlan
        """
        photo = _check_photo(photo)
        timings = dict.fromkeys(TIMING_KEYS, 0.0)
        tic = time.perf_counter()
        unaligned = []
        if isinstance(mask, str):
            if frames is None:
                frames, _ = self.find_faces(photo)
            known = ~kind_hole(frames, mask, photo.shape[:2], rng, **mask_params)
        else:
            known = _check_mask(mask, photo.shape[:2])
        prefilled = telea_fill(photo, known)
        if frames is None and known.all():  # nothing to repair: the photo stays as it is
            frames = []
        if frames is None:  # the damage must not hide the faces: look at them filled classically
            frames, unaligned = self.find_faces(photo, known, prefilled)
        timings["detect"] = time.perf_counter() - tic
        tic = time.perf_counter()
        faces = []
        for frame in frames:
            face_mask = crop_mask(frame, known)
            if face_mask.min() < 0.5:
                faces.append(FaceRepair(frame, warp_affine(photo, frame.transform, self.size),
                                        face_mask))
        timings["warp"] = time.perf_counter() - tic
        return PhotoPlan(photo, known, prefilled, frames, faces, _is_gray(photo, known), timings,
                         unaligned)

    def finish(self, plan, generated, z=None, loss=None, frames=None, variant_generated=None,
               rng=None):
        """Carry the faces' G(z) back into the photo, blend them there (each face once, at the
        photo's resolution) and fill the rest of the hole.

        Parameters
        ----------
        plan : PhotoPlan
        generated : sequence of uint8 (S, S, 3)
            G(z) of the best z, one per ``plan.faces``, in order: its gradients fill the face's
            share of the hole.
        z, loss, frames : sequences, optional
            Kept in the FaceRepairs (the best z, its loss, the search's frames).
        variant_generated : sequence of uint8 (V, S, S, 3), optional
            With the search's ``variants`` V > 1: every fill of each face, the first being
            ``generated``'s; each rank k gives the photo ``PhotoRepair.variants[k]``.  Without
            it (and V > 1), every variant is the repair itself.
        rng : numpy Generator or int, optional
            For the grain (the variants take the same grain as the repair).

        Returns
        -------
        PhotoRepair
        """
        photo, known = plan.photo, plan.known
        hole = ~known
        timings = dict(plan.timings)
        for k, face in enumerate(plan.faces):
            face.generated = np.asarray(generated[k])
            face.z = None if z is None else np.asarray(z[k])
            face.loss = float("nan") if loss is None else float(loss[k])
            face.frames = [] if frames is None else list(frames[k])
            face.variant_generated = None if variant_generated is None else \
                np.asarray(variant_generated[k])
        tic = time.perf_counter()
        owner = _owners(plan.faces, hole)
        timings["warp"] += time.perf_counter() - tic
        tic = time.perf_counter()
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        count = self.completer.options.variants
        # the variants draw the repair's grain again: they differ by their fills alone
        grain_rng = copy.deepcopy(rng) if count > 1 else None
        repaired, warp_seconds = self._fill(plan, owner, [f.generated for f in plan.faces], rng)
        variants = spread = None
        if count > 1:
            variants = [repaired]
            have = variant_generated is not None and len(plan.faces) > 0
            for rank in range(1, count):
                if not have:
                    variants.append(repaired.copy())
                    continue
                fill, seconds = self._fill(plan, owner,
                                           [f.variant_generated[rank] for f in plan.faces],
                                           copy.deepcopy(grain_rng))
                variants.append(fill)
                warp_seconds += seconds
            spread = spread_map(np.stack(variants), hole)
        timings["warp"] += warp_seconds
        timings["blend"] = time.perf_counter() - tic - warp_seconds
        for k, face in enumerate(plan.faces):
            face.pixels = int((owner == k).sum())
            # the face as it came out in the photo, in its aligned frame
            face.completed = warp_affine(repaired, face.frame.transform, self.size)
        model_pixels = int((owner >= 0).sum())
        masked = photo.copy()
        masked[hole] = HOLE_GRAY
        return PhotoRepair(repaired, masked, known, plan.faces,
                           len(plan.frames) + len(plan.unaligned), model_pixels,
                           int(hole.sum()) - model_pixels, timings, owner, plan.unaligned,
                           variants, spread)

    def _fill(self, plan, owner, crops, rng):
        """The photo with its hole filled: each face's share from its crop in ``crops``
        (carried back and Poisson-blended, with the grain), the rest by Telea; and the seconds
        spent carrying crops back."""
        photo, known = plan.photo, plan.known
        repaired = plan.prefilled.copy()  # Telea everywhere in the hole, to begin with
        warp_seconds = 0.0
        labels, _ = ndimage.label(owner >= 0, structure=_CROSS)
        for index, window in enumerate(ndimage.find_objects(labels), start=1):
            if window is None:
                continue
            top, bottom, left, right = _grow(window, 1, known.shape)
            part = labels[top:bottom, left:right] == index
            w0 = time.perf_counter()
            guidance = _guidance(plan.faces, crops, owner[top:bottom, left:right], part, top,
                                 left, plan.gray)
            warp_seconds += time.perf_counter() - w0
            base = repaired[top:bottom, left:right].astype(np.float64)
            blended = poisson_blend(base, guidance, ~part, clip=(0.0, 255.0))
            if self.options.grain:
                blended = _add_grain(blended, photo[top:bottom, left:right], part,
                                     known[top:bottom, left:right], rng, plan.gray)
            filled = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            repaired[top:bottom, left:right][part] = filled[part]
        # bit-identical outside the hole, whatever happened above
        np.copyto(repaired, photo, where=known[..., None])
        return repaired, warp_seconds

    def repair(self, photos, masks, frames=False, progress=None, rng=None, mask_params=None):
        """Repair several photos, with one batched search over all their faces.

        Parameters
        ----------
        photos : sequence of uint8 (H, W, 3) arrays (sizes may differ)
        masks : sequence of (H, W) arrays (1 = known) or mask kinds, one per photo
        frames : bool
            Keep the search's frames (``FaceRepair.frames``).
        progress : callable, optional
            Passed to :meth:`Completer.complete`.
        rng : numpy Generator or int, optional
            Random mask kinds and grain (default: the search options' seed).
        mask_params : dict, optional
            Parameters of the mask kinds.

        Returns
        -------
        list of PhotoRepair
        """
        if len(photos) != len(masks):
            raise ValueError(f"{len(photos)} photos but {len(masks)} masks")
        seed = self.completer.options.seed if rng is None else rng
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        plans = [self.plan(photo, mask, rng, **(mask_params or {}))
                 for photo, mask in zip(photos, masks)]
        result = self.search(plans, frames=frames, progress=progress)
        repairs = [self.finish(plan, *part, rng=rng) for plan, part in zip(plans, result)]
        return self._refine(plans, repairs, frames, rng)

    def _refine(self, plans, repairs, frames=False, rng=None):
        """With ``options.refine``: the photos whose faces were aligned on the landmarks outside
        the hole are planned again with each such face aligned on its first repair
        (:func:`~dcgan_complete.align.align_face` finds the landmarks on the repair, and fits
        the frame to those outside the hole), searched again and finished again.  Returns the
        repairs, the refined ones in place of the first."""
        from dcgan_complete.align import ALIGNED_BY_VISIBLE, align_face

        if not self.options.refine:
            return repairs
        again = []
        for k, (plan, repair) in enumerate(zip(plans, repairs)):
            if not any(f.aligned_by == ALIGNED_BY_VISIBLE for f in plan.frames):
                continue
            tic = time.perf_counter()
            refined = []
            for frame in plan.frames:
                if frame.aligned_by == ALIGNED_BY_VISIBLE:
                    face = align_face(self.aligner, repair.repaired, plan.known, frame.box,
                                      self.size, self.landmark_indices, frame.found_by)
                    if face.aligned:
                        frame = FaceFrame(frame.box, face.transform, self.size, face.landmarks,
                                          frame.found_by, frame.aligned_by)
                refined.append(frame)
            plan = self.plan(plan.photo, plan.known.astype(np.float32), rng, frames=refined)
            plan.unaligned = plans[k].unaligned
            plan.timings["detect"] = plans[k].timings["detect"] + time.perf_counter() - tic
            again.append((k, plan))
        if again:
            parts = self.search([plan for _, plan in again], frames=frames)
            for (k, plan), part in zip(again, parts):
                repairs[k] = self.finish(plan, *part, rng=rng)
                repairs[k].timings["search"] += plans[k].timings["search"]
        return repairs

    def search(self, plans, frames=False, progress=None, extra=None):
        """One batched search over the faces of ``plans`` (and ``extra`` = (crops, masks) searched
        alongside, e.g. aligned crops of the same run).

        Returns
        -------
        list
            Per plan, ``(generated, z, loss, frames, variant_generated)`` for :meth:`finish`
            (``variant_generated``: (faces, V, S, S, 3) with the search's ``variants`` V > 1,
            else None); with ``extra``, a pair (that list, the CompletionResult of the whole
            batch).
        """
        crops = [c for plan in plans for c in plan.crops]
        masks = [m for plan in plans for m in plan.masks]
        n_extra = 0
        if extra is not None:
            n_extra = len(extra[0])
            crops, masks = list(extra[0]) + crops, list(extra[1]) + masks
        parts, result = [], None
        tic = time.perf_counter()
        if crops:
            # the crops of a run are blended here; the faces once, in their photo
            result = self.completer.complete(np.stack(crops), masks, frames=frames,
                                             progress=progress,
                                             blend=[k < n_extra for k in range(len(crops))])
        seconds = time.perf_counter() - tic
        start = n_extra
        for plan in plans:
            stop = start + len(plan.faces)
            # the batch's time, shared by faces
            plan.timings["search"] = seconds * len(plan.faces) / max(len(crops), 1)
            if result is None or stop == start:
                parts.append(([], None, None, None, None))
            else:
                parts.append((result.generated[start:stop], result.z[start:stop],
                              result.loss[start:stop],
                              result.frames[start:stop] if frames else None,
                              None if result.variant_generated is None else
                              result.variant_generated[start:stop]))
            start = stop
        return (parts, result) if extra is not None else parts

    def repair_files(self, photos, out_dir, crops=None, frames=False, gif=False, progress=False,
                     shard=None, rng=None, mask_params=None):
        """A run of ``complete`` over photos (and the aligned crops of the same run): plan every
        photo, one batched search over all faces and crops, carry back and blend, write every
        output.  Nothing is checked twice: paths, masks and the output folder come checked.

        Parameters
        ----------
        photos : list of (path, uint8 (H, W, 3) photo, mask)
            The mask: (H, W) float (1 = known) or a mask kind's name.
        out_dir : Path
        crops : tuple (paths, uint8 (N, S, S, 3) images, masks), optional
            Aligned crops searched alongside.
        frames, gif : bool
            Write the search's frames, the GIFs.
        progress : bool
            Show the search's progress bar (its size is known once the faces are found).
        shard : tuple (K, N), optional
            Names the run's summary and losses files (:func:`outputs.shard_run_files`).
        rng : numpy Generator, optional
            Random mask kinds and grain.
        mask_params : dict, optional

        Returns
        -------
        PhotoRun
        """
        out_dir = Path(out_dir)
        crop_paths, crop_images, crop_masks = crops if crops is not None else ([], [], [])
        crop_images = list(crop_images) if crop_images is not None else []
        rng = np.random.default_rng(self.completer.options.seed) if rng is None else rng
        timings = dict.fromkeys(RUN_TIMING_KEYS, 0.0)
        plans = [self.plan(photo, mask, rng, **(mask_params or {})) for _, photo, mask in photos]
        paths = list(crop_paths) + [Path(p) for p, _, _ in photos]
        names = outputs.output_names(paths, [None] * len(crop_paths) +
                                     [len(p.faces) for p in plans], self.options.format,
                                     self.completer.options.variants)
        crop_names, photo_names = names[:len(crop_paths)], names[len(crop_paths):]
        from dcgan_complete.search import progress_bar

        batch = len(crop_images) + sum(len(p.faces) for p in plans)
        options = self.completer.options
        with progress_bar(batch, options.iterations, options.batch_size,
                          bool(progress) and batch > 0) as report:
            parts, result = self.search(plans, frames=frames or gif, progress=report,
                                        extra=(crop_images, list(crop_masks)))
        repairs = [self.finish(plan, *part, rng=rng) for plan, part in zip(plans, parts)]
        repairs = self._refine(plans, repairs, frames or gif, rng)
        tic = time.perf_counter()
        if crop_paths:
            outputs.write_outputs(out_dir, crop_names, np.stack(crop_images),
                                  result.select(slice(0, len(crop_paths))), frames=frames,
                                  gif=gif, run_files=False)
        iterations = result.frame_iterations if result is not None else []
        for name, repair in zip(photo_names, repairs):
            outputs.write_photo_outputs(out_dir, name, repair, self.options, frames, gif,
                                        iterations)
        if result is not None:
            batch_names = crop_names + [f"{name}.face{k}" for name, repair in
                                        zip(photo_names, repairs) for k in range(len(repair.faces))]
            inputs = crop_images + [face.crop for repair in repairs for face in repair.faces]
            outputs.write_run_files(out_dir, batch_names, inputs, result, shard)
        timings["write"] = time.perf_counter() - tic
        for repair in repairs:
            timings["detect"] += repair.timings["detect"] + repair.timings["warp"]
            timings["blend"] += repair.timings["blend"]
        # the photos' shares of the searches (a refined photo's two) and the crops' share
        timings["search"] = sum(repair.timings["search"] for repair in repairs) + \
            (result.seconds * len(crop_images) / batch if result is not None else 0.0)
        return PhotoRun(repairs, crop_names, photo_names, result, timings)


@dataclasses.dataclass
class PhotoRun:
    """What :meth:`PhotoRepairer.repair_files` did: per photo its repair and output name, the
    crops' output names, the batched search's result, and seconds per stage."""

    repairs: list
    crop_names: list
    photo_names: list
    result: object          # the CompletionResult of the whole batch (None: nothing searched)
    timings: dict


def repair_photo(photo, mask, completer=None, options: PhotoOptions | None = None, rng=None,
                 aligner=None, **mask_params):
    """Repair the faces in one photo at its own size: the Python API of ``complete`` on a photo.

    Parameters
    ----------
    photo : ndarray of uint8, shape (H, W, 3)
        An upright RGB photo (:func:`~dcgan_complete.images.read_image` gives one).
    mask : ndarray of shape (H, W), or str
        1 = known, 0 = to fill; or a mask kind, drawn in every face's aligned frame.
    completer : Completer, optional
        The model and search settings (by default the bundled model, default options).
    options : PhotoOptions, optional
    rng : numpy Generator or int, optional
        Random mask kinds and grain (default: the search options' seed).
    aligner : FaceAligner, optional
    **mask_params
        Parameters of a mask kind (``scale``, ``fraction``...).

    Returns
    -------
    PhotoRepair
        ``repaired`` (same shape, identical outside the hole), ``faces`` (per face: ``box``,
        ``transform``, ``z``, ``loss``, ``completed`` crop), pixels filled by the model and by
        Telea, timings.

    Raises
    ------
    ValueError
        For a photo that is not uint8 (H, W, 3) or a mask of another size.
    """
    if completer is None:
        from dcgan_complete.search import load_completer

        completer = load_completer()
    repairer = PhotoRepairer(completer, options, aligner)
    return repairer.repair([photo], [mask], rng=rng, mask_params=mask_params)[0]


# --------------------------------------------------------------------------------------------
# helpers


def _check_photo(photo):
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) photo, got {photo.dtype} {photo.shape}")
    return photo


def _check_mask(mask, shape):
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"the mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} "
                         f"pixels, but the photo is {shape[1]}x{shape[0]}")
    if not np.all(np.isfinite(mask)):
        raise ValueError("the mask contains NaN or infinite values")
    return mask >= 0.5


def _show_box(box):
    left, top, right, bottom = box
    return f"({left}, {top})-({right}, {bottom})"


def _is_gray(photo, known):
    """Whether the photo's known pixels are all gray (R = G = B)."""
    # most photos are in colour, which every 4th pixel of every 4th row shows at 1/16 the cost
    if not _all_gray(photo[::4, ::4], known[::4, ::4]):
        return False
    return _all_gray(photo, known)


def _all_gray(photo, known):
    pixels = photo[known] if known.any() else photo.reshape(-1, 3)
    return bool(np.all(pixels[:, 0] == pixels[:, 1]) and np.all(pixels[:, 1] == pixels[:, 2]))


def _owners(faces, hole):
    """For every hole pixel, the face whose frame it lies deepest inside (-1: none)."""
    owner = np.full(hole.shape, -1, np.int16)
    ys, xs = np.nonzero(hole)
    if not faces or ys.size == 0:
        return owner
    depths = np.stack([face.frame.depth(ys, xs) for face in faces])
    best = depths.argmax(axis=0)
    inside = depths[best, np.arange(ys.size)] >= 0
    owner[ys[inside], xs[inside]] = best[inside]
    return owner


def _sample(crop, frame, ys, xs):
    """The crop (uint8 (S, S, 3)) at photo pixels ``(ys, xs)``: cubic, the edge extended."""
    v, u = frame.to_crop(ys.astype(np.float64), xs.astype(np.float64))
    crop = np.asarray(crop, np.float64)
    return np.stack([ndimage.map_coordinates(crop[..., c], [v, u], order=3, mode="nearest")
                     for c in range(3)], axis=-1)


def _guidance(faces, crops, owner, part, top, left, gray):
    """The carried-back fill over a window: at every pixel, the fill (``crops``, one per face)
    of the face that owns the part of the hole it belongs to, or whose frame it lies deepest
    inside."""
    h, w = owner.shape
    ys, xs = np.mgrid[0:h, 0:w]
    ys, xs = ys + top, xs + left
    ids = np.unique(owner[part])
    if ids.size == 1:
        which = np.full((h, w), ids[0])
    else:
        depths = np.stack([faces[i].frame.depth(ys, xs) for i in ids])
        which = ids[depths.argmax(axis=0)]
        which[part] = owner[part]
    guidance = np.zeros((h, w, 3))
    for i in ids:
        at = which == i
        guidance[at] = _sample(crops[i], faces[i].frame, ys[at], xs[at])
    if gray:
        guidance[:] = (guidance @ LUMA)[..., None]
    return guidance


def _grow(window, margin, shape):
    rows, cols = window
    return (max(rows.start - margin, 0), min(rows.stop + margin, shape[0]),
            max(cols.start - margin, 0), min(cols.stop + margin, shape[1]))


def _fine_noise(image):
    """What a Gaussian blur of GRAIN_SIGMA removes from ``image`` (H, W, C), per channel."""
    return image - ndimage.gaussian_filter(image, (GRAIN_SIGMA, GRAIN_SIGMA, 0), mode="reflect")


def _robust_std(values):
    """The standard deviation from the median absolute deviation, per column (edges in the
    ring, a few large values, do not count as noise)."""
    if len(values) == 0:
        return np.zeros(values.shape[1:])
    return 1.4826 * np.median(np.abs(values - np.median(values, axis=0)), axis=0)


def _add_grain(blended, photo, part, known, rng, gray):
    """Add to the fill (``part`` of ``blended``) the fine noise it lacks against the photo's known
    pixels around it: white noise, the same in every channel, whose fine part has the missing
    standard deviation per channel."""
    distance = ndimage.distance_transform_edt(~part)
    ring = known & (distance >= GRAIN_RING[0]) & (distance <= GRAIN_RING[1])
    inner = part & (ndimage.distance_transform_edt(part) >= GRAIN_RING[0])
    if ring.sum() < 16 or inner.sum() < 16:
        return blended
    photo_noise = _robust_std(_fine_noise(photo.astype(np.float64))[ring])
    fill_noise = _robust_std(_fine_noise(blended)[inner])
    missing = np.sqrt(np.maximum(photo_noise ** 2 - fill_noise ** 2, 0.0))
    if gray:
        missing[:] = missing.mean()
    if not missing.any():
        return blended
    white = rng.standard_normal(part.shape)
    unit = _robust_std(_fine_noise(white[..., None])[part])[0]
    grain = white[..., None] * (missing / max(unit, 1e-9))
    out = blended.copy()
    out[part] += grain[part]
    return out
