"""How much several fills of one hole disagree: the spread map and its picture.

A fill of a large hole is a guess.  ``complete --variants N`` searches N fills per image from
starts kept apart (:class:`~dcgan_complete.search.Completer`); where they agree the known
pixels pin the fill down, where they differ it is one guess among several.
:func:`spread_map` measures that per pixel, :func:`spread_picture` draws it on a fixed scale so
that two maps can be compared by eye.  Both are numpy only.

Example
-------
>>> import numpy as np
>>> fills = np.zeros((2, 4, 4, 3), np.uint8)
>>> fills[1, 1:3, 1:3] = 255                   # the two fills differ in the middle only
>>> spread = spread_map(fills)
>>> float(spread[0, 0]), float(spread[1, 1])
(0.0, 0.5)
>>> spread_picture(spread).shape
(4, 4, 3)
"""
from __future__ import annotations

import numpy as np

__all__ = ["SPREAD_SCALE", "spread_map", "spread_picture"]

# The spread drawn at full strength: a standard deviation across the fills of a tenth of the
# range (25.5 levels of 255).  Larger spreads are drawn the same; the scale is fixed, so two
# pictures compare.  The bundled model's four fills of a center hole spread 0.02 on average
# there, 0.045 at the 90th and 0.084 at the 99th percentile (docs/completion.rst).
SPREAD_SCALE = 0.1
# The colours from no spread to SPREAD_SCALE (dark violet, red, yellow), evenly spaced.
SPREAD_COLOURS = np.array([[48, 18, 92], [214, 54, 40], [255, 236, 96]], np.float64)
# A photo under the picture is shown gray at this share of its brightness, so the colours read.
DIM = 0.45
_LUMA = np.array([0.299, 0.587, 0.114])


def spread_map(images, hole=None):
    """The per-pixel spread of V fills of one image.

    The standard deviation across the fills, per channel, averaged over the channels and
    divided by 255: 0 where every fill has the same pixel, at most 0.5 (half the fills black,
    half white).

    Parameters
    ----------
    images : array_like of uint8, shape (V, H, W, 3)
        The fills (V >= 1; one fill spreads nowhere).
    hole : array_like of bool, shape (H, W), optional
        True where the image was missing: the spread is set to 0 everywhere else.

    Returns
    -------
    ndarray of float32, shape (H, W)

    Raises
    ------
    ValueError
        For images that are not uint8 (V, H, W, 3) or a hole of another size.

    Example
    -------
    >>> fills = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (100, 140)])
    >>> spread = spread_map(fills, hole=np.array([[True, False], [False, False]]))
    >>> [round(float(v), 3) for v in spread.ravel()]        # 20 levels of 255 in the hole
    [0.078, 0.0, 0.0, 0.0]
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or \
            len(images) == 0:
        raise ValueError(f"expected uint8 fills (V, H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    spread = np.zeros(images.shape[1:3], np.float32)
    rows, cols = slice(None), slice(None)
    if hole is not None:
        hole = np.asarray(hole).astype(bool)
        if hole.shape != spread.shape:
            raise ValueError(f"the hole is {hole.shape}, the fills {spread.shape}")
        if not hole.any():
            return spread
        # only the hole's bounding box is measured: a photo's fills cost the hole, not the photo
        ys, xs = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
        rows, cols = slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)
    box = images[:, rows, cols].astype(np.float32)
    spread[rows, cols] = box.std(axis=0).mean(axis=-1) / 255.0
    if hole is not None:
        spread[~hole] = 0.0
    return spread


def spread_picture(spread, photo=None):
    """A colour picture of a spread map, on the fixed scale :data:`SPREAD_SCALE`.

    Spread 0 is drawn transparent and :data:`SPREAD_SCALE` (0.1: a standard deviation of 25.5
    levels across the fills, a tenth of the range) or more at full strength, from dark violet
    through red to yellow (:data:`SPREAD_COLOURS`): the opacity and the colour both rise
    linearly with the spread.  Under it lies ``photo`` shown gray and dimmed, or black.

    Parameters
    ----------
    spread : array_like of float, shape (H, W)
        From :func:`spread_map` (0 .. 0.5).
    photo : array_like of uint8, shape (H, W, 3), optional
        The image to draw it over (e.g. the first fill).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Raises
    ------
    ValueError
        For a spread that is not 2-D and finite, or a photo of another size.

    Example
    -------
    >>> picture = spread_picture(np.array([[0.0, 0.1]]), np.full((1, 2, 3), 200, np.uint8))
    >>> picture.tolist()
    [[[90, 90, 90], [255, 236, 96]]]
    """
    spread = np.asarray(spread, np.float32)
    if spread.ndim != 2 or not np.all(np.isfinite(spread)):
        raise ValueError(f"expected a finite (H, W) spread map, got shape {spread.shape}")
    if photo is None:
        under = np.zeros(spread.shape + (1,), np.float32)
    else:
        photo = np.asarray(photo)
        if photo.shape != spread.shape + (3,):
            raise ValueError(f"the photo is {photo.shape}, the spread map {spread.shape}")
        under = ((photo.astype(np.float32) @ _LUMA.astype(np.float32)) * DIM)[..., None]
    strength = np.clip(spread / SPREAD_SCALE, 0.0, 1.0)
    stops = np.linspace(0.0, 1.0, len(SPREAD_COLOURS))
    colour = np.stack([np.interp(strength, stops, SPREAD_COLOURS[:, c]).astype(np.float32)
                       for c in range(3)], axis=-1)
    alpha = strength[..., None]
    return np.clip(np.rint(under * (1 - alpha) + colour * alpha), 0, 255).astype(np.uint8)
