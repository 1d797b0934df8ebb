"""Masks for completion: which pixels of an image are known and which are to be filled.

A mask is a ``float32`` array of shape ``(size, size)`` with 1 for a known pixel and 0 for a pixel
to fill.  Everything here is numpy, ``scipy.ndimage`` and ``PIL.ImageDraw``; nothing imports
TensorFlow.  The random kinds take ``rng``: a ``numpy.random.Generator``, an ``int`` seed or None.

The kinds follow Yeh et al. (2017) (``center``, ``random``, the four halves, ``grid``,
``pattern``, ``full``, ``lowres``) plus three kinds of damage (``scratches``, ``text``,
``irregular``).

References
----------
.. [1] R. A. Yeh, C. Chen, T. Y. Lim, A. G. Schwing, M. Hasegawa-Johnson and M. N. Do,
       "Semantic Image Inpainting with Deep Generative Models", CVPR 2017.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
from scipy import ndimage

from dcgan_complete import images
from dcgan_complete.files import display_name
from dcgan_complete.options import CONTEXT_WEIGHT_KINDS, CompleteOptions, MaskOptions

MASK_KINDS = ("center", "random", "left", "right", "top", "bottom", "grid", "pattern", "full",
              "lowres", "scratches", "text", "irregular")

HALF_SIDES = ("left", "right", "top", "bottom")
LOWRES_BLOCK = 8

# Kinds whose mask depends on the random generator: a fresh one is drawn for every image.
RANDOM_KINDS = ("random", "pattern", "scratches", "text", "irregular")

# Damage masks are designed at this side length and scaled with the image.
_REFERENCE_SIZE = 64

# Missing fraction bounds for ``irregular_mask``.
_IRREGULAR_MAX = 0.40  # at most this share of an irregular mask is missing

_WORDS = ("face", "photo", "sample", "copy", "draft", "private", "hello", "summer", "date",
          "name", "image", "test", "proof", "void", "scan", "note", "love", "paris", "room", "file")


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_size(size):
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"mask size must be a positive integer, got {size!r}")
    return int(size)


def _as_rng(rng):
    """Return a ``numpy.random.Generator`` from a Generator, an int seed or None."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")
    return np.random.default_rng(int(rng))


def _check_fraction(name, value, low=0.0, high=1.0, high_open=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (low <= value <= high) or (high_open and value == high):
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _from_known(known):
    """Turn a boolean "known" array into a float32 mask."""
    return np.asarray(known, dtype=np.float32)


def _from_missing(missing):
    """Turn a boolean "missing" array into a float32 mask."""
    return np.logical_not(missing).astype(np.float32)


def _canvas(size):
    """An all-black 8-bit PIL image to draw the missing pixels on, and its drawing context."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (size, size), 0)
    return canvas, ImageDraw.Draw(canvas)


def _drawn(canvas):
    """The pixels drawn on ``canvas`` (value >= 128), as a boolean array."""
    return np.asarray(canvas) >= 128


# --------------------------------------------------------------------------------------------
# the mask kinds


def center_mask(size, scale=MaskOptions.center_scale):
    """A square hole in the middle of the image.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    scale : float, optional
        Fraction of the side kept known at each edge, in ``[0, 0.5)``.  The default 0.25 cuts a
        quarter of the side from every edge, so the hole is the middle half of each side: a
        quarter of the area.  The margin is ``round(scale * size)`` pixels.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)
        1 for a known pixel, 0 for a pixel to fill.

    Example
    -------
    >>> m = center_mask(64)
    >>> float(1 - m.mean())
    0.25
    """
    size = _check_size(size)
    scale = _check_fraction("scale", scale, 0.0, 0.5, high_open=True)
    margin = int(round(scale * size))
    mask = np.ones((size, size), np.float32)
    mask[margin:size - margin, margin:size - margin] = 0.0
    return mask


def random_mask(size, fraction=MaskOptions.fraction, rng=None):
    """Pixels missing at random, as in the paper's "random" mask.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    fraction : float, optional
        Fraction of the pixels that are missing, in ``[0, 1]``; exactly
        ``round(fraction * size * size)`` pixels are missing.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> m = random_mask(10, fraction=0.8, rng=0)
    >>> int((m == 0).sum())
    80
    """
    size = _check_size(size)
    fraction = _check_fraction("fraction", fraction)
    rng = _as_rng(rng)
    n_missing = int(round(fraction * size * size))
    mask = np.ones(size * size, np.float32)
    mask[rng.choice(size * size, n_missing, replace=False)] = 0.0
    return mask.reshape(size, size)


def half_mask(size, side):
    """One half of the image missing.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    side : {"left", "right", "top", "bottom"}
        The half that is missing.  For an odd ``size`` the missing half is the smaller one
        (``size // 2`` rows or columns).

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> half_mask(4, "left")[0]
    array([0., 0., 1., 1.], dtype=float32)
    """
    size = _check_size(size)
    if side not in HALF_SIDES:
        raise ValueError(f"side must be one of {', '.join(HALF_SIDES)}, got {side!r}")
    half = size // 2
    mask = np.ones((size, size), np.float32)
    if side == "left":
        mask[:, :half] = 0.0
    elif side == "right":
        mask[:, size - half:] = 0.0
    elif side == "top":
        mask[:half, :] = 0.0
    else:
        mask[size - half:, :] = 0.0
    return mask


def grid_mask(size, step=4):
    """A sparse lattice of known pixels, as in the paper's "grid" mask.

    A pixel is known when its row *and* its column are multiples of ``step`` (rows 0, step,
    2 step, ...); every other pixel is missing.  With ``step=4`` and a side divisible by 4,
    1/16 of the pixels are known.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    step : int, optional
        Spacing of the lattice, in pixels.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> float(grid_mask(64).mean())
    0.0625
    """
    size = _check_size(size)
    step = _check_positive_int("step", step)
    on_lattice = (np.arange(size) % step) == 0
    return _from_known(on_lattice[:, None] & on_lattice[None, :])


def pattern_mask(size, rng=None, coverage=0.25):
    """Random blotches missing, as in the paper's "pattern" mask.

    Smoothed white noise is thresholded at its ``1 - coverage`` quantile, so the blotches cover
    ``round(coverage * size * size)`` pixels: the missing fraction equals ``coverage`` up to
    rounding.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed.
    coverage : float, optional
        Fraction of the pixels that are missing, in ``[0, 1]``.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> m = pattern_mask(64, rng=0)
    >>> float(1 - m.mean())
    0.25
    """
    size = _check_size(size)
    coverage = _check_fraction("coverage", coverage)
    rng = _as_rng(rng)
    noise = rng.standard_normal((size, size))
    # Blotches about a tenth of the image across.
    field = ndimage.gaussian_filter(noise, sigma=max(size / 16.0, 0.5), mode="reflect")
    n_missing = int(round(coverage * size * size))
    # Take exactly the n_missing highest values (ties are broken by position).
    order = np.argsort(field, axis=None, kind="stable")
    missing = np.zeros(size * size, bool)
    if n_missing:
        missing[order[-n_missing:]] = True
    return _from_missing(missing.reshape(size, size))


def full_mask(size):
    """Nothing missing: completion becomes a pure projection onto the generator's range.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)
        All ones.

    Example
    -------
    >>> float(full_mask(8).min())
    1.0
    """
    return np.ones((_check_size(size),) * 2, np.float32)


def lowres_mask(size, block=LOWRES_BLOCK):
    """The "low resolution" mask: only the average of every ``block`` x ``block`` block is known.

    A mask coarser than the image says exactly that: it has one value per block, 1 where the
    block's average is known.  No single pixel is known, so nothing is copied from the input;
    the completion is corrected to the input's block averages instead (see
    :mod:`dcgan_complete.search`).

    Parameters
    ----------
    size : int
        Side of the image in pixels; must be a multiple of ``block``.
    block : int, optional
        Side of the averaged blocks, in pixels.

    Returns
    -------
    mask : ndarray of float32, shape (size // block, size // block)
        All ones.

    Example
    -------
    >>> lowres_mask(64).shape
    (8, 8)
    """
    size = _check_size(size)
    block = _check_positive_int("block", block)
    if size % block:
        raise ValueError(f"lowres mask: the size {size} is not a multiple of the block {block}")
    return np.ones((size // block, size // block), np.float32)


def known_parts(mask, size):
    """Split a mask into (pixel mask (size, size), block side b, block mask or None).

    A ``size`` x ``size`` mask is a pixel mask (b = 1, no block mask).  A coarser square mask of
    side ``size / b`` knows the b x b block averages where it is 1: its pixel mask is all zeros.

    Example
    -------
    >>> pixels, block, coarse = known_parts(lowres_mask(16, 8), 16)
    >>> float(pixels.max()), block, coarse.shape
    (0.0, 8, (2, 2))
    """
    mask = np.asarray(mask, np.float32)
    side = mask.shape[0] if mask.ndim == 2 and mask.shape[0] == mask.shape[1] else 0
    if side == size:
        return mask, 1, None
    if side < 1 or size % side:
        raise ValueError(f"a mask must be {size}x{size} pixels (or coarser, one value per block, "
                         f"with a side dividing {size}), got shape {mask.shape}")
    return np.zeros((size, size), np.float32), size // side, mask


def _quadratic_bezier(p0, p1, p2, n):
    """``n`` points on the quadratic Bezier curve with end points p0, p2 and control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def scratches_mask(size, rng=None):
    """A few random thin curved strokes missing, like scratches on an old photo.

    Each scratch is a quadratic Bezier curve 30-90% of the side long, centred in the middle 70%
    of the image, in a random direction, bent by up to 30% of its length; it is drawn 1-3 pixels
    wide (at 64 pixels; widths scale with the image).  Two to five scratches are drawn.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> m = scratches_mask(64, rng=0)
    >>> 0.0 < float(1 - m.mean()) < 0.6
    True
    """
    size = _check_size(size)
    rng = _as_rng(rng)
    scale = max(1.0, size / _REFERENCE_SIZE)
    canvas, draw = _canvas(size)
    for _ in range(int(rng.integers(2, 6))):
        centre = rng.uniform(0.15, 0.85, 2) * size
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.3, 0.9) * size
        direction = np.array([np.cos(angle), np.sin(angle)])
        start, end = centre - length / 2 * direction, centre + length / 2 * direction
        normal = np.array([-direction[1], direction[0]])
        control = (start + end) / 2 + rng.uniform(-0.3, 0.3) * length * normal
        points = _quadratic_bezier(start, control, end, n=max(8, int(length)))
        width = max(1, int(round(rng.integers(1, 4) * scale)))
        draw.line([tuple(p) for p in points], fill=255, width=width, joint="curve")
    return _from_missing(_drawn(canvas))


def _default_font(pixel_size):
    """Pillow's default font at ``pixel_size`` if this Pillow can scale it, else the bitmap one."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=pixel_size)
    except (TypeError, ImportError, OSError, AttributeError):  # old Pillow or no FreeType
        return ImageFont.load_default()


def _random_text(rng):
    """A random word, number, date-like string or word followed by a number."""
    choice = rng.integers(4)
    word = _WORDS[rng.integers(len(_WORDS))]
    if choice == 0:
        return word
    if choice == 1:
        return str(rng.integers(0, 100000))
    if choice == 2:
        return f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(1950, 2030)}"
    return f"{word.upper()} {rng.integers(0, 1000)}"


def text_mask(size, rng=None):
    """Random words and numbers drawn over the image; the pixels of the glyphs are missing.

    Two to four short texts are drawn with Pillow's default font, at a height of about a sixth
    to a quarter of the side when this Pillow can scale that font (Pillow >= 10.1 with FreeType),
    otherwise with the fixed 11-pixel bitmap font.  A text too wide for the image is drawn
    smaller; texts do not overlap (one that finds no free place is left out).  A glyph pixel is
    missing when the rendered (antialiased) text covers at least half of it.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> m = text_mask(64, rng=0)
    >>> 0.0 < float(1 - m.mean()) < 0.6
    True
    """
    size = _check_size(size)
    rng = _as_rng(rng)
    canvas, draw = _canvas(size)
    placed = []  # boxes (x0, y0, x1, y1) of the texts drawn so far
    for _ in range(int(rng.integers(2, 5))):
        text = _random_text(rng)
        pixel_size = max(6, int(round(size * rng.uniform(1 / 6, 1 / 4))))
        while True:
            font = _default_font(pixel_size)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            if right - left <= 0.95 * size or pixel_size <= 6:
                break
            pixel_size -= 1
        width, height = right - left, bottom - top
        for _attempt in range(10):
            x0 = rng.uniform(0, max(size - width, 0))
            y0 = rng.uniform(0, max(size - height, 0))
            box = (x0, y0, x0 + width, y0 + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                placed.append(box)
                draw.text((float(x0 - left), float(y0 - top)), text, fill=255, font=font)
                break
    return _from_missing(_drawn(canvas))


def _draw_brush_stroke(draw, rng, size):
    """A thick polyline with round joints and caps, from a random walk of 2-6 segments."""
    width = rng.uniform(0.04, 0.10) * size
    point = rng.uniform(0, size, 2)
    points = [point]
    for _ in range(int(rng.integers(2, 7))):
        angle = rng.uniform(0, 2 * np.pi)
        step = rng.uniform(0.1, 0.3) * size
        point = np.clip(point + step * np.array([np.cos(angle), np.sin(angle)]), 0, size - 1)
        points.append(point)
    xy = [tuple(map(float, p)) for p in points]
    draw.line(xy, fill=255, width=max(1, int(round(width))), joint="curve")
    radius = width / 2
    for x, y in xy:  # round caps at the ends (and fuller joints)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)


def _draw_blob(draw, rng, size):
    """A filled ellipse with random centre and radii of 5-15% of the side."""
    cx, cy = rng.uniform(0, size, 2)
    rx, ry = rng.uniform(0.05, 0.15, 2) * size
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)


def irregular_mask(size, rng=None):
    """Random brush strokes and blobs missing, roughly 10-40% of the image.

    Shapes (thick polylines with round joints, three times in four, or filled ellipses) are
    added until the missing fraction reaches a target drawn uniformly from [0.15, 0.35]; a
    shape that would take it above 0.40 is skipped.  The result is at most 40% missing and, at
    sizes of 16 pixels and more, in practice at least 10%.

    Parameters
    ----------
    size : int
        Side of the square mask in pixels.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)

    Example
    -------
    >>> m = irregular_mask(64, rng=0)
    >>> 0.1 <= float(1 - m.mean()) <= 0.4
    True
    """
    from PIL import ImageDraw

    size = _check_size(size)
    rng = _as_rng(rng)
    target = rng.uniform(0.15, 0.35)
    canvas, _ = _canvas(size)
    missing = _drawn(canvas)
    skipped = 0
    while missing.mean() < target and skipped < 50:
        candidate = canvas.copy()
        draw = ImageDraw.Draw(candidate)
        if rng.uniform() < 0.75:
            _draw_brush_stroke(draw, rng, size)
        else:
            _draw_blob(draw, rng, size)
        drawn = _drawn(candidate)
        if drawn.mean() > _IRREGULAR_MAX:
            skipped += 1
            continue
        canvas, missing = candidate, drawn
    return _from_missing(missing)


# --------------------------------------------------------------------------------------------
# choosing, reading and pairing masks


def make_mask(kind, size, rng=None, **params):
    """Make a mask of the given kind.

    Parameters
    ----------
    kind : str
        One of `MASK_KINDS`.
    size : int
        Side of the square mask in pixels.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed, used by the random kinds (``random``, ``pattern``,
        ``scratches``, ``text``, ``irregular``).
    **params
        Parameters of the kinds: ``scale`` (center), ``fraction`` (random), ``step`` (grid),
        ``coverage`` (pattern), ``block`` (lowres).  Parameters that the kind does not use are
        ignored, so one set of options can be passed for every kind.

    Returns
    -------
    mask : ndarray of float32, shape (size, size)
        1 for a known pixel, 0 for a pixel to fill.

    Raises
    ------
    ValueError
        For an unknown kind or an invalid parameter.

    Example
    -------
    >>> make_mask("center", 64, scale=0.25, fraction=0.5).shape
    (64, 64)
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")

    def pick(*names):
        return {name: params[name] for name in names if params.get(name) is not None}

    if kind == "center":
        return center_mask(size, **pick("scale"))
    if kind == "random":
        return random_mask(size, rng=rng, **pick("fraction"))
    if kind in HALF_SIDES:
        return half_mask(size, kind)
    if kind == "grid":
        return grid_mask(size, **pick("step"))
    if kind == "pattern":
        return pattern_mask(size, rng=rng, **pick("coverage"))
    if kind == "full":
        return full_mask(size)
    if kind == "lowres":
        return lowres_mask(size, **pick("block"))
    if kind == "scratches":
        return scratches_mask(size, rng=rng)
    if kind == "text":
        return text_mask(size, rng=rng)
    return irregular_mask(size, rng=rng)


def is_mask_kind(spec):
    """Whether ``spec`` names a mask kind of :data:`MASK_KINDS` (a kind name wins over a file of
    the same name).  The one place that decides it."""
    return isinstance(spec, str) and spec in MASK_KINDS


def _shape(shape):
    """(H, W) from a side (int) or a shape."""
    if isinstance(shape, (int, np.integer)):
        size = _check_size(shape)
        return size, size
    return tuple(int(x) for x in shape)


def load_mask(path, shape, image_name=None):
    """Read a mask image: white is known, black is to fill.

    The image is read with `dcgan_complete.images.read_image` (upright: EXIF orientation
    applied); a pixel is known when the mean of its channels is at least 128.

    Parameters
    ----------
    path : str or Path
        A mask image (PNG recommended; JPEG works but is lossy).
    shape : int or tuple of int
        The size the mask must have: a side in pixels (an aligned crop, the model's size) or a
        photo's ``(height, width)``.
    image_name : str, optional
        The image the mask is for, named in errors (default: "the images").

    Returns
    -------
    mask : ndarray of float32, shape (H, W)
        1 for a known pixel, 0 for a pixel to fill.

    Raises
    ------
    ValueError
        If the file cannot be read as an image (`images.ImageReadError`), has another size, or
        has no known (white) pixel.

    Example
    -------
    >>> mask = load_mask("masks/face.png", 64)  # doctest: +SKIP
    """
    height, width = _shape(shape)
    pixels = images.read_image(path)
    name = display_name(path)
    h, w = pixels.shape[:2]
    if (h, w) != (height, width):
        what = image_name or "the images"
        hint = " (images are read upright, turned by their EXIF orientation: draw the mask on " \
               "the upright image)" if (w, h) == (height, width) else ""
        raise ValueError(f"mask {name} is {w}x{h} pixels, but {what} is {width}x{height}: a "
                         f"mask must have its image's size{hint}")
    known = pixels.astype(np.float32).mean(axis=2) >= 128
    if not known.any():
        raise ValueError(f"mask {name} has no known pixel: it is all black "
                         "(white = known, black = fill)")
    return _from_known(known)


def masks_by_stem(directory):
    """Map file stem to mask file in ``directory``; a .png wins over other image formats."""
    found = {}
    for path in images.find_images(directory, recursive=False):
        if path.stem not in found or path.suffix.lower() == ".png":
            found[path.stem] = path
    return found


def masks_for_images(image_paths, mask_spec, shapes, rng=None, **params):
    """One mask for every image: aligned crops and photos alike.

    Parameters
    ----------
    image_paths : sequence of str or Path
        The images to complete.
    mask_spec : str or Path
        Either a kind name from `MASK_KINDS` (see :func:`is_mask_kind`; the random kinds draw a
        fresh mask for every image from ``rng``), a mask image (the same mask for every image),
        or a directory holding one mask per image, paired by file stem: ``DIR/NAME.png`` for the
        image ``.../NAME.jpg`` (other image extensions are accepted, .png preferred).
    shapes : int or sequence
        The side of every image (aligned crops of the model's size), or one ``(height, width)``
        per image (photos).  A mask file must have its image's size.  For photos a kind is not
        drawn here: it is returned by name, to be drawn in every face's aligned frame
        (:func:`dcgan_complete.photo.kind_hole`).
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed for the random kinds.
    **params
        Passed to `make_mask` (``scale``, ``fraction``, ...).

    Returns
    -------
    masks : list
        One float32 array (1 = known) per image, in the order of ``image_paths``; for photos
        and a kind, the kind's name.

    Raises
    ------
    ValueError
        If ``mask_spec`` is neither a kind nor an existing file or directory, if a mask file is
        invalid (see `load_mask`), or if the directory has no mask for an image.

    Example
    -------
    >>> masks = masks_for_images(["a.jpg", "b.jpg"], "random", 64, rng=0)
    >>> len(masks), bool((masks[0] != masks[1]).any())
    (2, True)
    """
    image_paths = [Path(p) for p in image_paths]
    per_image = not isinstance(shapes, (int, np.integer))
    shape_list = [_shape(s) for s in shapes] if per_image else [_shape(shapes)] * len(image_paths)
    if is_mask_kind(mask_spec):
        if per_image:
            return [mask_spec] * len(image_paths)
        size = shape_list[0][0]
        if mask_spec not in RANDOM_KINDS:
            mask = make_mask(mask_spec, size, **params)
            return [mask.copy() for _ in image_paths]
        rng = _as_rng(rng)
        return [make_mask(mask_spec, size, rng=rng, **params) for _ in image_paths]
    spec = Path(mask_spec)
    if spec.is_dir():
        available = masks_by_stem(spec)
        missing = [p for p in image_paths if p.stem not in available]
        if missing:
            raise ValueError(f"no mask for image {display_name(missing[0])} in "
                             f"{display_name(spec)} (expected "
                             f"{display_name(spec / (missing[0].stem + '.png'))}); "
                             f"{len(missing)} image(s) have no mask")
        files = [available[p.stem] for p in image_paths]
    elif spec.is_file():
        files = [spec] * len(image_paths)
    else:
        raise ValueError(f"mask {display_name(mask_spec)!r} is neither a mask kind "
                         f"({', '.join(MASK_KINDS)}) nor an existing mask image or directory")
    loaded = {}
    for path, file, shape in zip(image_paths, files, shape_list):
        key = (file, shape)
        if key not in loaded:
            loaded[key] = load_mask(file, shape, display_name(path) if per_image else None)
    return [loaded[(f, s)].copy() for f, s in zip(files, shape_list)]


# --------------------------------------------------------------------------------------------
# contextual-loss weights


def context_weights(mask, kind="plain", window=CompleteOptions.window):
    """The weights W of the contextual loss ``sum |W * (G(z) - y)|``.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        1 for a known pixel, 0 for a pixel to fill (values in [0, 1]).
    kind : {"plain", "window"}, optional
        ``"plain"``: W = M, every known pixel counts the same.  ``"window"``: the importance
        weighting of Yeh et al. (2017): every known pixel is weighted by the fraction of unknown
        pixels in the ``window`` x ``window`` square centred on it, so the known pixels next to
        the hole count most and those far from it not at all.  Near the image border only the
        part of the square inside the image counts (the fraction is taken over the in-image
        pixels of the window).  When the mask has no unknown pixel (the ``full`` kind) these
        weights would all be zero and the loss would vanish, so W = M is returned instead.
    window : int, optional
        Side of the square, an odd positive integer (used by ``"window"`` only).

    Returns
    -------
    weights : ndarray of float32, shape (H, W)

    References
    ----------
    .. [1] R. A. Yeh et al., "Semantic Image Inpainting with Deep Generative Models",
           CVPR 2017, Eq. (2).

    Example
    -------
    >>> m = np.ones((3, 3), np.float32); m[1, 1] = 0
    >>> [round(float(w), 4) for w in context_weights(m, "window", window=3)[0]]
    [0.25, 0.1667, 0.25]
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if kind not in CONTEXT_WEIGHT_KINDS:
        raise ValueError(f"context weight kind must be one of {', '.join(CONTEXT_WEIGHT_KINDS)}, "
                         f"got {kind!r}")
    mask = mask.astype(np.float64)
    if not np.all(np.isfinite(mask)) or mask.min(initial=0) < 0 or mask.max(initial=0) > 1:
        raise ValueError("mask values must lie in [0, 1]")
    if kind == "plain":
        return mask.astype(np.float32)
    window = _check_positive_int("window", window)
    if window % 2 == 0:
        raise ValueError(f"window must be odd so that it is centred on a pixel, got {window}")
    box = np.ones((window, window))
    # Zero padding outside the image: the sums count in-image pixels only.  The counts are
    # small integers, exact in float64.
    unknown_count = ndimage.correlate(1.0 - mask, box, mode="constant", cval=0.0)
    inside_count = ndimage.correlate(np.ones_like(mask), box, mode="constant", cval=0.0)
    weights = mask * unknown_count / inside_count
    if not weights.any():
        return mask.astype(np.float32)
    return weights.astype(np.float32)
