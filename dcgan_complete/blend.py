"""Poisson blending of a generated image into the hole of a masked image (Perez et al. 2003).

Inside the hole the result keeps the gradients of the generated image while matching the known
pixels around the hole, so a generated patch that is slightly too bright or too dark is pulled to
the colours of its surroundings without a visible seam.  Everything here is numpy and
``scipy.sparse``; nothing imports TensorFlow.

References
----------
.. [1] P. Perez, M. Gangnet and A. Blake, "Poisson Image Editing", ACM SIGGRAPH 2003.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import splu

# 4-neighbourhood: the neighbours of the discrete Laplacian, and the connectivity of hole regions.
_CROSS = ndimage.generate_binary_structure(2, 1)


class _HoleSystem:
    """The factorised Poisson system of one mask, shared by all channels and images.

    Attributes
    ----------
    solved : ndarray of intp
        Flat indices of the hole pixels that are solved for (those in a hole region that touches
        a known pixel); the system's unknowns, in this order.
    unbounded : ndarray of intp
        Flat indices of the hole pixels in regions with no known pixel next to them.
    lu : scipy.sparse.linalg.SuperLU or None
        LU factors of the system matrix (None when nothing is solved).
    guidance : scipy.sparse.csr_matrix, shape (n_solved, H * W)
        Maps the flattened generated image to the right-hand side's guidance term, the
        Laplacian of the generated image at each solved pixel.
    boundary : scipy.sparse.csr_matrix, shape (n_solved, H * W)
        Maps the flattened input image to the sum of known neighbours of each solved pixel.
    """

    def __init__(self, known):
        height, width = known.shape
        hole = ~known
        labels, _ = ndimage.label(hole, structure=_CROSS)
        next_to_known = hole & ndimage.binary_dilation(known, structure=_CROSS)
        bounded_labels = np.unique(labels[next_to_known])
        solve = np.isin(labels, bounded_labels) & hole

        self.solved = np.flatnonzero(solve)
        self.unbounded = np.flatnonzero(hole & ~solve)
        n_pixels, n_solved = height * width, self.solved.size
        self.lu = None
        if n_solved == 0:
            empty = sparse.csr_matrix((0, n_pixels))
            self.guidance = self.boundary = empty
            return

        # Every ordered pair (p, q) of 4-neighbours inside the image: the image border is left
        # out of the stencil (Neumann condition).
        flat = np.arange(n_pixels).reshape(height, width)
        p = np.concatenate([flat[:, :-1].ravel(), flat[:, 1:].ravel(),
                            flat[:-1, :].ravel(), flat[1:, :].ravel()])
        q = np.concatenate([flat[:, 1:].ravel(), flat[:, :-1].ravel(),
                            flat[1:, :].ravel(), flat[:-1, :].ravel()])
        index = np.full(n_pixels, -1, np.intp)
        index[self.solved] = np.arange(n_solved)
        rows = index[p]
        keep = rows >= 0
        p, q, rows = p[keep], q[keep], rows[keep]
        solve_flat, known_flat = solve.ravel(), known.ravel()

        # |N_p| f_p - sum over solved neighbours f_q
        #     = sum over neighbours (g_p - g_q) + sum over known neighbours image_q
        degree = np.bincount(rows, minlength=n_solved).astype(np.float64)
        inner = solve_flat[q]
        matrix = sparse.csc_matrix(
            (np.concatenate([degree, -np.ones(inner.sum())]),
             (np.concatenate([np.arange(n_solved), rows[inner]]),
              np.concatenate([np.arange(n_solved), index[q[inner]]]))),
            shape=(n_solved, n_solved))
        self.lu = splu(matrix)
        ones = np.ones(p.size)
        self.guidance = sparse.csr_matrix(
            (np.concatenate([ones, -ones]), (np.concatenate([rows, rows]), np.concatenate([p, q]))),
            shape=(n_solved, n_pixels))
        boundary = known_flat[q]
        self.boundary = sparse.csr_matrix(
            (np.ones(boundary.sum()), (rows[boundary], q[boundary])), shape=(n_solved, n_pixels))

    def solve(self, image, generated):
        """Solve for the ``solved`` pixels; ``image``, ``generated`` are ``(H * W, C)`` float64."""
        rhs = self.guidance @ generated + self.boundary @ image
        return self.lu.solve(rhs)


def _validate(image, generated, mask, clip):
    image = np.asarray(image)
    generated = np.asarray(generated)
    mask = np.asarray(mask)
    for name, array in (("image", image), ("generated", generated), ("mask", mask)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if image.ndim not in (2, 3) or min(image.shape[:2], default=0) < 1:
        raise ValueError(f"image must have shape (H, W, C) or (H, W), got {image.shape}")
    if generated.shape != image.shape:
        raise ValueError(f"generated has shape {generated.shape} but image has {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must have shape {image.shape[:2]} (H, W of the image), "
                         f"got {mask.shape}")
    if not np.all(np.isfinite(mask)):
        raise ValueError("mask contains NaN or infinite values")
    if not np.all(np.isfinite(generated)):
        raise ValueError("generated contains NaN or infinite values")
    if clip is not None:
        if len(clip) != 2 or not clip[0] < clip[1]:
            raise ValueError(f"clip must be None or a pair (low, high) with low < high, got {clip}")
    return image, generated, mask


def _mask_key(known):
    return known.shape, np.packbits(known).tobytes()


def poisson_blend(image, generated, mask, clip=(-1.0, 1.0), cache=None):
    """Fill the hole of ``image`` with ``generated``, Poisson-blended.

    For the pixels of the hole, each channel solves the discrete Poisson equation: the
    4-neighbour Laplacian of the result equals the Laplacian of ``generated``, with the known
    pixels next to the hole as fixed (Dirichlet) boundary values.  At the image border only the
    neighbours inside the image enter the Laplacian (a Neumann condition), so a hole may touch
    the border.  A connected hole region (4-connectivity) with no known pixel next to it, for
    example when the mask is all zeros, has no boundary values to blend with and is filled with
    ``generated`` as it is.

    Parameters
    ----------
    image : array_like, shape (H, W, C) or (H, W)
        The input image; its known pixels are copied into the result exactly.
    generated : array_like, same shape as ``image``
        The generated image whose gradients fill the hole.
    mask : array_like, shape (H, W)
        1 for a known pixel, 0 for a pixel to fill; values of at least 0.5 count as known.
    clip : (float, float) or None, optional
        Range the filled pixels are clipped to; None for no clipping.  Known pixels are never
        clipped (they stay bit-identical to ``image``).
    cache : dict or None, optional
        Factorisations keyed by mask; pass the same dict to reuse one factorisation across
        images that share a mask (see `PoissonBlender`).

    Returns
    -------
    blended : ndarray, same shape as ``image``
        Floating point, of the common type of ``image`` and ``generated`` (at least float32).

    Raises
    ------
    ValueError
        If the shapes do not match, the dtypes are not numeric, or ``clip`` is invalid.

    References
    ----------
    .. [1] P. Perez, M. Gangnet and A. Blake, "Poisson Image Editing", SIGGRAPH 2003.

    Example
    -------
    >>> image = np.zeros((8, 8, 3)); mask = np.ones((8, 8)); mask[2:6, 2:6] = 0
    >>> out = poisson_blend(image, image + 0.3, mask)
    >>> bool(np.allclose(out, image))
    True
    """
    image, generated, mask = _validate(image, generated, mask, clip)
    dtype = np.result_type(image.dtype, generated.dtype, np.float32)
    known = mask >= 0.5
    result = image.astype(dtype, copy=True)
    if known.all():
        return result

    key = _mask_key(known)
    system = cache.get(key) if cache is not None else None
    if system is None:
        system = _HoleSystem(known)
        if cache is not None:
            cache[key] = system

    channels = 1 if image.ndim == 2 else image.shape[2]
    flat_result = result.reshape(-1, channels)
    flat_generated = generated.reshape(-1, channels).astype(np.float64)
    filled = np.empty((system.solved.size + system.unbounded.size, channels))
    if system.solved.size:
        filled[:system.solved.size] = system.solve(
            image.reshape(-1, channels).astype(np.float64), flat_generated)
    filled[system.solved.size:] = flat_generated[system.unbounded]
    if clip is not None:
        filled = np.clip(filled, clip[0], clip[1])
    flat_result[np.concatenate([system.solved, system.unbounded])] = filled
    return result


class PoissonBlender:
    """Poisson blending that factorises each distinct mask once.

    Images that share a mask (a ``center`` mask, or one mask file for a whole run) reuse one LU
    factorisation for all their channels and all images; see `poisson_blend` for the method.

    Parameters
    ----------
    clip : (float, float) or None, optional
        Range the filled pixels are clipped to; None for no clipping.
    max_cached : int, optional
        Most factorisations kept; the least recently used one is dropped beyond that, so a run
        with a fresh random mask per image does not grow without bound.

    Attributes
    ----------
    cache : collections.OrderedDict
        The factorisations, keyed by mask; ``len(blender.cache)`` is the number of distinct
        masks factorised and still kept.

    Example
    -------
    >>> blender = PoissonBlender()
    >>> mask = np.ones((8, 8)); mask[2:6, 2:6] = 0
    >>> a = blender(np.zeros((8, 8, 3)), np.ones((8, 8, 3)), mask)
    >>> b = blender(np.ones((8, 8, 3)) / 2, np.zeros((8, 8, 3)), mask)
    >>> len(blender.cache)
    1
    """

    def __init__(self, clip=(-1.0, 1.0), max_cached=32):
        if isinstance(max_cached, bool) or not isinstance(max_cached, int) or max_cached < 1:
            raise ValueError(f"max_cached must be a positive integer, got {max_cached!r}")
        self.clip = clip
        self.max_cached = max_cached
        self.cache = OrderedDict()

    def __call__(self, image, generated, mask):
        """Blend ``generated`` into the hole of ``image``; see `poisson_blend`."""
        known = np.asarray(mask) >= 0.5
        if known.ndim == 2:
            key = _mask_key(known)
            if key in self.cache:
                self.cache.move_to_end(key)
        result = poisson_blend(image, generated, mask, clip=self.clip, cache=self.cache)
        while len(self.cache) > self.max_cached:
            self.cache.popitem(last=False)
        return result
