"""The classical fills: what the model is measured against, and what fills the parts of a photo's
hole that no face covers.

Each is a function ``(image, mask) -> image`` on ``uint8`` arrays that keeps the known pixels
exactly (numpy, OpenCV and, for the biharmonic fill, scikit-image; no TensorFlow):

- ``biharmonic``: scikit-image's ``restoration.inpaint_biharmonic`` (the ``eval`` extra);
- ``telea`` and ``navier-stokes``: OpenCV's ``cv2.inpaint`` (Telea 2004; Bertalmio et al. 2001);
- ``mean``: every hole pixel gets the mean colour of the known pixels (the floor).

References
----------
.. [1] A. Telea, "An image inpainting technique based on the fast marching method", Journal of
       Graphics Tools 9(1), 2004.
.. [2] M. Bertalmio, A. L. Bertozzi and G. Sapiro, "Navier-Stokes, fluid dynamics, and image and
       video inpainting", CVPR 2001.
.. [3] S. B. Damelin and N. S. Hoang, "On surface completion and image inpainting by biharmonic
       functions: numerical aspects", International Journal of Mathematics and Mathematical
       Sciences, 2018.
"""
from __future__ import annotations

import numpy as np

from dcgan_complete.errors import import_optional

TELEA_RADIUS = 3   # cv2.inpaint's neighbourhood radius in pixels
HOLE_GRAY = 128    # how a hole is shown (masked views, comparison pictures)


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
    restoration = import_optional("skimage.restoration", "the biharmonic baseline")
    filled = restoration.inpaint_biharmonic(image / 255.0, ~known, channel_axis=-1)
    return _keep_known(image, known, filled * 255.0)


def _opencv_fill(image, mask, method_flag_name):
    image, known = _check_image_mask(image, mask)
    cv2 = import_optional("cv2", "the OpenCV baselines")
    out = image.copy()
    rows, cols = np.nonzero((~known).any(axis=1))[0], np.nonzero((~known).any(axis=0))[0]
    if rows.size == 0:
        return out
    # Only pixels within the radius of the hole take part, so a window around the hole gives
    # the same fill as the whole image, at the cost of the hole's surroundings, not the photo's.
    reach = TELEA_RADIUS + 2
    top, bottom = max(rows[0] - reach, 0), min(rows[-1] + reach + 1, image.shape[0])
    left, right = max(cols[0] - reach, 0), min(cols[-1] + reach + 1, image.shape[1])
    window, part = image[top:bottom, left:right], ~known[top:bottom, left:right]
    # cv2.inpaint treats the channels alike, so RGB order needs no conversion.
    filled = cv2.inpaint(np.ascontiguousarray(window), part.astype(np.uint8) * 255,
                         TELEA_RADIUS, getattr(cv2, method_flag_name))
    np.copyto(out[top:bottom, left:right], filled, where=part[..., None])
    return out


def telea_fill(image, mask):
    """Fill the hole with OpenCV's ``cv2.inpaint`` by Telea's fast marching method.

    Parameters and returns as for :func:`biharmonic_fill`; the neighbourhood radius is
    ``TELEA_RADIUS`` (3 pixels).
    """
    return _opencv_fill(image, mask, "INPAINT_TELEA")


def navier_stokes_fill(image, mask):
    """Fill the hole with OpenCV's ``cv2.inpaint`` by the Navier-Stokes method.

    Parameters and returns as for :func:`biharmonic_fill`; the neighbourhood radius is
    ``TELEA_RADIUS`` (3 pixels).
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
BASELINE_MODULES = {"biharmonic": "skimage.restoration", "telea": "cv2",
                    "navier-stokes": "cv2", "mean": None}
