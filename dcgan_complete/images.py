"""Image files and pixel ranges: the one loader, the one writer, the one [-1, 1] mapping.

Everything here is numpy and Pillow; nothing imports TensorFlow.  Images travel through the package
as ``uint8`` arrays of shape ``(H, W, 3)``; the networks see ``float32`` in ``[-1, 1]``.

Every command reads its images through :func:`read_image`, which

- refuses an image of more than :func:`megapixel_limit` megapixels (:data:`MAX_MEGAPIXELS`, or the
  environment variable :data:`MAX_MEGAPIXELS_VARIABLE`) from its header, before a pixel is decoded:
  a PNG of a few kilobytes can hold 12000x12000 pixels of one colour, gigabytes once decoded.
  Pillow's own ``DecompressionBombWarning`` is never shown: this limit is the one that applies;
- converts every Pillow mode to RGB by its colour model: CMYK (print files), YCbCr, LAB and HSV
  as colours, not as RGB plus an alpha channel; an embedded ICC profile (RGB or CMYK) to sRGB;
  palettes and transparency composited over white; 16-bit and 32-bit gray scaled to 8 bits.
"""
from __future__ import annotations

import io
import math
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np

from dcgan_complete.errors import DcganError
from dcgan_complete.files import atomic_write, display_name

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# how messages name them: "no {IMAGE_KINDS} images in ..."
IMAGE_KINDS = ", ".join(IMAGE_EXTENSIONS[:-1]) + " or " + IMAGE_EXTENSIONS[-1]
# PNGs larger than this are written at zlib's fastest level (see write_image)
FAST_PNG_PIXELS = 1_000_000
# uint8 [0, 255] <-> float [-1, 1]: float = uint8 / PIXEL_SCALE - 1 (TensorFlow code uses the same)
PIXEL_SCALE = 127.5
# The largest image read, in megapixels: above every common camera's photos (a 61-megapixel
# full-frame sensor, 100 for medium format), and a bound on the memory a photo costs (a
# completion holds several float copies of it).  The environment variable raises (or lowers) it.
MAX_MEGAPIXELS = 100.0
MAX_MEGAPIXELS_VARIABLE = "DCGAN_COMPLETE_MAX_MEGAPIXELS"

_pillow_filter = None  # the warning filter _quiet_pillow added


def _quiet_pillow():
    """Pillow warns of images above its own limit (89 megapixels) as it opens them, to read the
    header too; the limit above is the one that applies, so that raw warning is only noise.

    Called at import and before every read: whoever restores the warning filters (a test runner,
    ``warnings.catch_warnings``) may have dropped the filter.  It is added only when it is not
    there, since every change to the filters makes Python show "once" warnings again.
    """
    global _pillow_filter
    if _pillow_filter is None or not any(f is _pillow_filter for f in warnings.filters):
        warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit",
                                category=RuntimeWarning, module=r"PIL(\.|$)")
        _pillow_filter = warnings.filters[0]


_quiet_pillow()


class ImageReadError(ValueError):
    """A file could not be read as an image."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the limit (:func:`megapixel_limit`); nothing was decoded."""


def megapixel_limit():
    """The largest image :func:`read_image` reads, in megapixels.

    :data:`MAX_MEGAPIXELS`, unless the environment variable ``DCGAN_COMPLETE_MAX_MEGAPIXELS``
    holds another positive number.

    Raises
    ------
    DcganError
        If that variable is set to anything but a positive number.
    """
    text = os.environ.get(MAX_MEGAPIXELS_VARIABLE, "").strip()
    if not text:
        return MAX_MEGAPIXELS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DcganError(f"{MAX_MEGAPIXELS_VARIABLE} must be a positive number of megapixels, "
                         f"got {display_name(text)!r}")
    return value


def find_images(root, recursive=True):
    """Return the image files (:data:`IMAGE_EXTENSIONS`, in any case) under ``root``, sorted.

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


def read_image(path, max_megapixels=None):
    """Read an image file as ``uint8`` RGB of shape ``(H, W, 3)``.

    The size is checked from the header first; then the EXIF orientation is applied and the
    pixels are converted to RGB by their mode (see the module's notes): gray is repeated to three
    channels, transparency composited over white, 16-bit images scaled to 8 bits.

    Parameters
    ----------
    path : str or Path
    max_megapixels : float, optional
        The largest image to decode; default :func:`megapixel_limit` (the package's limit).

    Raises
    ------
    ImageTooLargeError
        If the image has more pixels than the limit; its message names the limit and how to
        raise it.  Nothing is decoded.
    ImageReadError
        If the file is missing, a folder, not a regular file, or not a readable image; the
        message says which.
    """
    from PIL import Image

    name = display_name(path)
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageReadError(f"cannot read {name}: no such file") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read {name}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(kind):
        raise ImageReadError(f"cannot read {name}: it is a folder, not an image")
    if not stat.S_ISREG(kind):  # a FIFO or a device would block the reader or never end
        raise ImageReadError(f"cannot read {name}: not a regular file")
    limit = megapixel_limit() if max_megapixels is None else max_megapixels
    _let_pillow_open(limit)
    _quiet_pillow()
    try:
        with Image.open(path) as image:  # the header only, so far
            _check_size(image.size, limit, name, max_megapixels is None)
            return _rgb_pixels(_upright(image))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: refused on opening
        pixels = int((re.findall(r"(\d+) pixels", str(exc)) or [0])[0])
        raise ImageTooLargeError(_too_large(name, f"{pixels / 1e6:.0f} megapixels", limit,
                                            max_megapixels is None)) from None
    except FileNotFoundError:
        raise ImageReadError(f"cannot read {name}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"cannot read {name}: permission denied") from None
    except Exception as exc:  # Pillow raises many types for what it cannot read
        raise ImageReadError(f"cannot read {name}: {_read_failure(exc)}") from None


def image_size(path):
    """``(width, height)`` of an image file from its header alone (nothing is decoded), or None
    for a path :func:`read_image` would refuse before that: missing, a folder, a FIFO or device
    (which opening would wait on), not an image, or more than twice Pillow's limit.

    For choosing what to do with a file before reading it; :func:`read_image` then says why a
    file it cannot read is refused.
    """
    header = _header(path)
    return header and header[0]


def image_format(path):
    """Pillow's name of an image file's format ("PNG", "JPEG", "TIFF", ...) from its header
    alone, or None where :func:`image_size` gives None."""
    header = _header(path)
    return header and header[1]


def _header(path):
    """``((width, height), format)`` of an image file from its header, or None (see
    :func:`image_size`)."""
    from PIL import Image

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        _quiet_pillow()
        with Image.open(path) as image:
            return image.size, image.format
    except Exception:  # Pillow raises many types for what it cannot open
        return None


def _let_pillow_open(limit):
    """Raise Pillow's own limit (it refuses twice its 89 megapixels outright) to ours where ours
    is higher, so that the one limit that applies is the one the user can set."""
    from PIL import Image

    pixels = int(limit * 1e6)
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < pixels:
        Image.MAX_IMAGE_PIXELS = pixels


def _check_size(size, limit, name, default_limit):
    width, height = size
    if width * height > limit * 1e6:
        raise ImageTooLargeError(_too_large(
            name, f"{width}x{height} is {width * height / 1e6:.0f} megapixels", limit,
            default_limit))


def _too_large(name, size, limit, default_limit):
    how = f": set {MAX_MEGAPIXELS_VARIABLE} to raise it" if default_limit else ""
    return f"cannot read {name}: too large ({size}; the limit is {limit:g}{how})"


# EXIF orientation -> the transposition that makes the image upright (as Pillow's exif_transpose)
_ORIENTATIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                 6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def _upright(image):
    """``image`` turned by its EXIF orientation; an unreadable EXIF block is ignored."""
    from PIL import Image

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: the pixels may still be fine
        return image
    method = _ORIENTATIONS.get(orientation)
    return image.transpose(getattr(Image.Transpose, method)) if method else image


def _rgb_pixels(image):
    """The ``uint8`` RGB pixels of a Pillow image of any mode."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):  # 16/32-bit gray: scaled by its range
        return as_rgb_uint8(np.array(image))
    image = _to_srgb(image)
    if image.has_transparency_data and image.mode not in ("RGBA", "LA"):
        image = image.convert("RGBA")  # a palette's or a colour key's transparency, PA
    elif image.mode not in ("L", "RGB", "RGBA", "LA"):
        image = image.convert("RGB")   # CMYK, YCbCr, LAB, HSV, RGBX, P, 1
    return as_rgb_uint8(np.array(image))  # a copy of its own: writable


def _to_srgb(image):
    """``image`` converted to sRGB by its embedded ICC profile, when it has one of its colour
    space (RGB or CMYK); as it is otherwise, or when the profile cannot be used."""
    from PIL import ImageCms

    icc = image.info.get("icc_profile")
    spaces = {"RGB": "RGB ", "RGBA": "RGB ", "CMYK": "CMYK"}
    if not icc or image.mode not in spaces:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space != spaces[image.mode]:
            return image
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), image.mode,
                                            out_mode, ImageCms.Intent.PERCEPTUAL)
        return ImageCms.applyTransform(image, transform)
    except Exception:  # a damaged or unusual profile: the plain conversion is close enough
        return image


def _read_failure(exc):
    """Why an image could not be read, in words."""
    from PIL import UnidentifiedImageError

    chain = [exc]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    for cause in chain:
        if isinstance(cause, UnidentifiedImageError) or "can not handle" in str(cause):
            return "not an image (no known image format)"
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return f"damaged or unsupported image ({reason})"


def as_rgb_uint8(image, name="image"):
    """Convert a 2-D or 3-D array of any common dtype to ``uint8`` RGB ``(H, W, 3)``.

    An array has no colour model: 2 channels are gray and alpha, 4 are RGBA (composited over
    white).  Files go through :func:`read_image`, which converts CMYK and the other modes first.
    An array that is ``uint8`` RGB already is returned as it is (not copied).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise ImageReadError(f"{name}: unsupported image shape {image.shape}")
    if image.dtype == np.uint8 and image.shape[2] in (1, 3):  # no arithmetic, no float copy
        return np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)
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
    A PNG of more than :data:`FAST_PNG_PIXELS` pixels is compressed at zlib's fastest level: a
    12-megapixel photo takes about 1.4 s instead of 9 s, for a file about 17% larger.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    fast = Path(path).suffix.lower() == ".png" and image.shape[0] * image.shape[1] > FAST_PNG_PIXELS
    return _write_atomically(path, image, **({"compress_level": 1} if fast else {}))


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


def shrink(image, side):
    """``image`` at most ``side`` px on its longer side (area-averaged); a smaller one is
    returned as it is."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


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


# --------------------------------------------------------------------------------------------
# a run's inputs, JPEG output, the bundled samples


def load_crops(paths, size, strict=False):
    """Read aligned face crops at the model's ``size``: an image of another size is centre-cropped
    and resized (with ``strict``, refused).

    Returns
    -------
    tuple
        ``(paths read, uint8 array (N, size, size, 3) or None, number resized,
        skipped [(display name, reason)])``.

    Raises
    ------
    OptionError
        With ``strict``, for the first image that is not ``size`` x ``size``.
    """
    from dcgan_complete.errors import OptionError

    good, arrays, skipped, resized = [], [], [], 0
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            skipped.append((display_name(path), str(exc)))
            continue
        if image.shape[:2] != (size, size):
            if strict:
                raise OptionError("strict", f"{display_name(path)} is {image.shape[1]}x"
                                            f"{image.shape[0]}, the model makes {size}x{size} "
                                            "images (without {strict} it would be resized)")
            image = center_crop_resize(image, size)
            resized += 1
        good.append(Path(path))
        arrays.append(image)
    return good, (np.stack(arrays) if arrays else None), resized, skipped


def write_jpeg(path, image, quality=95):
    """Write ``image`` (uint8 (H, W, 3)) as a JPEG of ``quality`` (1-100), atomically."""
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="JPEG", quality=quality)
    return Path(path)


def samples_dir():
    """The bundled sample faces: ``data/samples`` of a source checkout, or the installed copy
    (None when neither is there)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "samples", here.parent / "data" / "samples"):
        if candidate.is_dir() and any(candidate.glob("*.png")):
            return candidate
    return None
