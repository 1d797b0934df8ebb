"""Image files and pixel ranges: the one loader, the one writer, the one [-1, 1] mapping.

Everything here is numpy; nothing imports TensorFlow.  Images travel through the package as
``uint8`` arrays of shape ``(H, W, 3)``; the networks see ``float32`` in ``[-1, 1]``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcgan_complete.files import atomic_write, display_name

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# uint8 [0, 255] <-> float [-1, 1]: float = uint8 / PIXEL_SCALE - 1 (TensorFlow code uses the same)
PIXEL_SCALE = 127.5


class ImageReadError(ValueError):
    """A file could not be read as an image."""


def find_images(root, recursive=True):
    """Return the image files (.png, .jpg, .jpeg in any case) under ``root``, sorted.

    Parameters
    ----------
    root : str or Path
        A directory (searched recursively unless ``recursive=False``) or a single image file.

    Returns
    -------
    list of Path
    """
    root = Path(root)
    if root.is_file():
        return [root] if root.suffix.lower() in IMAGE_EXTENSIONS else []
    if not root.is_dir():
        return []
    pattern = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in pattern if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def read_image(path):
    """Read an image file as ``uint8`` RGB of shape ``(H, W, 3)``.

    The EXIF orientation is applied; grayscale is repeated to three channels; an alpha channel is
    composited over white; 16-bit images are scaled to 8 bits.

    Raises
    ------
    ImageReadError
        If the file is missing, a folder, too large to decode safely (Pillow's limit), or not a
        readable image; the message says which.
    """
    import imageio.v3 as iio

    name = display_name(path)
    if Path(path).is_dir():
        raise ImageReadError(f"cannot read {name}: it is a folder, not an image")
    try:
        image = iio.imread(path, plugin="pillow", rotate=True)
    except FileNotFoundError:
        raise ImageReadError(f"cannot read {name}: no such file") from None
    except Exception as exc:  # imageio and Pillow raise many types, and wrap Pillow's
        raise ImageReadError(f"cannot read {name}: {_read_failure(exc)}") from None
    return as_rgb_uint8(image, name=name)


def _read_failure(exc):
    """Why an image could not be read, in words; imageio hides Pillow's reason in the chain."""
    from PIL import Image, UnidentifiedImageError

    chain = [exc]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    for cause in chain:
        if isinstance(cause, Image.DecompressionBombError):
            # Pillow's words: "Image size (N pixels) exceeds limit of M pixels, ..."
            sizes = [int(n) / 1e6 for n in re.findall(r"(\d+) pixels", str(cause))] + [0, 0]
            return f"too large ({sizes[0]:.0f} megapixels; the limit is {sizes[1]:.0f})"
        if isinstance(cause, UnidentifiedImageError) or "can not handle" in str(cause):
            return "not an image (no known image format)"
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return f"damaged or unsupported image ({reason})"


def as_rgb_uint8(image, name="image"):
    """Convert a 2-D or 3-D array of any common dtype to ``uint8`` RGB ``(H, W, 3)``."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise ImageReadError(f"{name}: unsupported image shape {image.shape}")
    if image.dtype == np.uint8:
        scaled = image.astype(np.float32)
    elif image.dtype == np.uint16 or (np.issubdtype(image.dtype, np.integer) and image.max() > 255):
        scaled = image.astype(np.float32) / 257.0
    elif np.issubdtype(image.dtype, np.floating):
        scaled = image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0)
    elif image.dtype == bool:
        scaled = image.astype(np.float32) * 255.0
    else:
        scaled = image.astype(np.float32)
    channels = scaled.shape[2]
    if channels in (2, 4):  # gray+alpha or RGBA: composite over white
        alpha = scaled[:, :, -1:] / 255.0
        scaled = scaled[:, :, :-1] * alpha + 255.0 * (1.0 - alpha)
    if scaled.shape[2] == 1:
        scaled = np.repeat(scaled, 3, axis=2)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _write_atomically(path, data, **kwargs):
    import imageio.v3 as iio

    with atomic_write(path) as tmp:
        iio.imwrite(tmp, data, extension=Path(path).suffix.lower(), **kwargs)
    return Path(path)


def write_image(path, image):
    """Write ``image`` (``uint8`` or float in ``[-1, 1]``, HxW or HxWxC) to ``path`` atomically.

    The data go to a temporary file in the same folder, which is then renamed, so an interrupted
    run never leaves a half-written image.  The format follows the extension (PNG, JPEG...).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    return _write_atomically(path, image)


def write_animation(path, frames, seconds_per_frame=0.1):
    """Write a looping animated GIF of ``uint8`` frames ``(N, H, W, 3)`` atomically."""
    return _write_atomically(path, np.stack(frames), duration=int(seconds_per_frame * 1000),
                             loop=0)


def to_float(image):
    """Map ``uint8`` pixels ``[0, 255]`` to ``float32`` ``[-1, 1]``."""
    return np.asarray(image, dtype=np.float32) / PIXEL_SCALE - 1.0


def to_uint8(image):
    """Map ``float`` pixels in ``[-1, 1]`` to ``uint8`` ``[0, 255]`` (clipped, rounded)."""
    image = np.asarray(image, dtype=np.float32)
    return np.clip(np.rint((image + 1.0) * PIXEL_SCALE), 0, 255).astype(np.uint8)


def center_crop_resize(image, size):
    """Crop the largest centred square from ``image`` and resize it to ``size`` x ``size``.

    Returns the ``uint8`` result; an image that already has that size is returned unchanged.
    Downscaling uses Lanczos filtering (antialiased), upscaling bicubic.
    """
    from PIL import Image

    image = np.asarray(image)
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(square)
    resample = Image.LANCZOS if side > size else Image.BICUBIC
    return np.asarray(Image.fromarray(square).resize((size, size), resample))


def image_grid(images, cols=None, pad=2, pad_value=255):
    """Tile a batch ``(N, H, W, 3)`` of ``uint8`` or ``[-1, 1]`` images into one ``uint8`` image.

    ``cols`` defaults to the square root of N, rounded up; missing cells stay ``pad_value``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, x:x + w] = image
    return grid
