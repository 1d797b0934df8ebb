"""Synthetic damage on real photos: what the damage detector learns from and is measured on.

:func:`damage_photo` takes a clean photo and returns it aged, then damaged, then "scanned", with
the clean version that went through the same aging and scanning and a label of the pixels the
damage changed.  The steps follow how an old print comes to look the way it does:

1. **aging** (:func:`age_photo`): sepia or gray toning, faded colours and contrast.  Applied to
   both sides, so toning is never what tells damage apart.
2. **scene lines** (hard negatives, not labelled): thin strands, wires and soft highlights,
   drawn before aging and blurred like the photo's own detail, so the detector learns that a
   thin line is not damage by itself.
3. **damage** (:data:`DAMAGE_KINDS`), drawn on the aged print: branching cracks (paper-white
   and dark, 1-6 px), long thin scratches, dust, specks and fibres, creases and folds,
   semi-transparent stains with tide lines, pen and ink marks, date stamps and captions, torn or
   missing corners and edges, broad strokes and patches of paint, marker or lost emulsion.
4. **scanning** (:func:`scan_photo`): blur, grain, scanner vignetting and JPEG, with the same
   random draw on both sides.

The label is where the damage changed the aged print by at least :data:`LABEL_MIN_CHANGE`
levels in some channel, and still does so after scanning: a faint stain is labelled where it
shows, not over its whole extent, and a speck the scan blurred away is not labelled.

Widths are in pixels of the photo as given (a 1 px scratch is 1 px on a 200 px face and on a
2000 px scan); lengths and areas scale with the photo.  Everything here is numpy, OpenCV and
Pillow; nothing imports TensorFlow.  The random functions take ``rng``: a
``numpy.random.Generator``, an ``int`` seed or None, and give the same result for the same seed.

Example
-------
>>> import numpy as np
>>> photo = np.full((96, 128, 3), 128, np.uint8)
>>> result = damage_photo(photo, rng=0, kinds=("crack",))
>>> result.damaged.shape, result.damage.dtype, bool(result.damage.any())
((96, 128, 3), dtype('bool'), True)
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from pathlib import Path

import cv2
import numpy as np

DAMAGE_KINDS = ("crack", "scratch", "dust", "crease", "stain", "ink", "text", "tear", "paint")
# How often each kind is drawn when ``kinds`` is not given (relative weights).
KIND_WEIGHTS = {"crack": 3.0, "scratch": 3.0, "dust": 2.0, "crease": 1.5, "stain": 0.8,
                "ink": 1.5, "text": 1.5, "tear": 1.0, "paint": 1.0}
# Dust specks: radii in px and how often each is drawn (mostly tiny, a few large).
_SPECK_RADII = (0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 4.5)
_SPECK_ODDS = (0.25, 0.25, 0.2, 0.12, 0.1, 0.05, 0.03)
# A pixel is labelled damage when the damage moved some channel by at least this many levels.
LABEL_MIN_CHANGE = 12
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONT_NAMES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf",
               "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
               "DejaVuSansCondensed-Oblique.ttf", "DejaVuSerifCondensed-Bold.ttf")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CAPTION_WORDS = ("Mary", "John", "Grandma", "Aunt Rose", "Paris", "Summer", "Beach", "Xmas",
                  "Wedding", "Home", "Uncle Joe", "Kodak", "Anna & Tom", "Picnic", "Rome",
                  "Birthday", "Lake", "School", "Dad", "Mum", "Holiday", "Church", "No. 12")


@dataclasses.dataclass
class DamagedPhoto:
    """One synthetic example.

    Attributes
    ----------
    clean : ndarray of uint8, shape (H, W, 3)
        The photo aged and scanned, without damage: what a perfect repair gives back.
    damaged : ndarray of uint8, shape (H, W, 3)
        The same with the damage drawn before scanning.
    damage : ndarray of bool, shape (H, W)
        True where the damage changed the print noticeably (the detector's target).  The
        project's masks are the opposite (1 = intact): ``~damage``.
    kinds : tuple of str
        The kinds drawn, in order.
    """

    clean: np.ndarray
    damaged: np.ndarray
    damage: np.ndarray
    kinds: tuple


# --------------------------------------------------------------------------------- helpers
def _as_rng(rng):
    """A ``numpy.random.Generator`` from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


def _check_photo(photo):
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be uint8 of shape (H, W, 3), got {photo.dtype} "
                         f"{photo.shape}")
    if min(photo.shape[:2]) < 8:
        raise ValueError(f"photo must be at least 8x8 pixels, got {photo.shape[1]}x"
                         f"{photo.shape[0]}")
    return photo


def _composite(image, alpha, colour):
    """Paint ``colour`` (3 values, or an (H, W, 3) array) over ``image`` (float32, in place)
    with coverage ``alpha`` (H, W) in [0, 1]."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * np.asarray(colour, np.float32)
    return image


def _random_walk(rng, start, angle, length, step, wiggle):
    """Points of a path from ``start`` heading ``angle`` whose direction drifts by ``wiggle``
    radians a step."""
    n = max(2, int(length / step))
    turns = rng.normal(0, wiggle, n)
    angles = angle + np.cumsum(turns)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1) * step
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def _bezier(points, n):
    """``n`` points on the Bezier curve with control points ``points`` (k, 2)."""
    t = np.linspace(0, 1, n)[:, None, None]
    pts = np.broadcast_to(np.asarray(points, np.float64), (n, len(points), 2))
    while pts.shape[1] > 1:       # de Casteljau
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


def _polyline(alpha, points, width, value=1.0):
    """Draw an antialiased polyline of ``width`` px on the float canvas ``alpha`` (max-blend)."""
    canvas = np.zeros(alpha.shape, np.uint8)
    pts = np.round(np.asarray(points) * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, 255, thickness=max(1, int(round(width))),
                  lineType=cv2.LINE_AA, shift=4)
    np.maximum(alpha, canvas.astype(np.float32) * (value / 255.0), out=alpha)
    return alpha


def _smooth_noise(rng, shape, scale):
    """Smooth random field in [0, 1] with features about ``scale`` px across."""
    h, w = shape
    small = (max(2, int(h / scale) + 2), max(2, int(w / scale) + 2))
    field = rng.random(small).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = field.min(), field.max()
    return (field - lo) / max(hi - lo, 1e-6)


def _paper_white(rng):
    base = rng.uniform(225, 255)
    return np.array([base, base - rng.uniform(0, 8), base - rng.uniform(0, 25)], np.float32)


def _dark(rng):
    base = rng.uniform(10, 80)
    return np.array([base + rng.uniform(0, 15), base, base - rng.uniform(0, 10)], np.float32)


def _light_or_dark(rng, p_light=0.65):
    return _paper_white(rng) if rng.random() < p_light else _dark(rng)


# ------------------------------------------------------------------------------- the kinds
def draw_crack(image, rng):
    """Branching cracks in the emulsion, paper-white or dark, 1-6 px wide."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    colour = _light_or_dark(rng)
    alpha = np.zeros((h, w), np.float32)
    base_width = rng.choice([1, 1, 2, 2, 3, 4, 5, 6])
    stack = [(rng.uniform((0, 0), (w, h)), rng.uniform(0, 2 * np.pi),
              rng.uniform(0.2, 0.8) * diag, float(base_width), 0)]
    while stack:
        start, angle, length, width, depth = stack.pop()
        step = max(2.0, min(8.0, diag / 60))
        path = _random_walk(rng, start, angle, length, step, wiggle=rng.uniform(0.15, 0.45))
        # the width varies along the crack: draw it in pieces
        pieces = max(1, len(path) // 12)
        for chunk in np.array_split(np.arange(len(path)), pieces):
            if len(chunk) < 2:
                continue
            seg = path[max(chunk[0] - 1, 0):chunk[-1] + 1]
            wd = max(1.0, width * rng.uniform(0.6, 1.2))
            _polyline(alpha, seg, wd)
        if depth < 3:
            for _ in range(rng.poisson(1.2 + len(path) / 40)):
                i = rng.integers(1, len(path))
                side = rng.choice([-1, 1])
                stack.append((path[i], angle + side * rng.uniform(0.4, 1.3),
                              length * rng.uniform(0.15, 0.5), max(1.0, width * 0.7),
                              depth + 1))
    alpha *= rng.uniform(0.75, 1.0)
    return _composite(image, alpha, colour)


def draw_scratch(image, rng):
    """Long thin scratches: 1-3 px, nearly straight, sometimes broken, often several."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    alpha = np.zeros((h, w), np.float32)
    colour = _light_or_dark(rng, p_light=0.7)
    parallel = rng.random() < 0.35
    angle0 = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(1, 6))):
        angle = angle0 + rng.normal(0, 0.05) if parallel else rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 1.1) * diag
        centre = rng.uniform((0, 0), (w, h))
        d = np.array([np.cos(angle), np.sin(angle)])
        bend = np.array([-d[1], d[0]]) * rng.normal(0, 0.04) * length
        points = _bezier([centre - d * length / 2, centre + bend, centre + d * length / 2],
                         max(8, int(length / 4)))
        width = rng.choice([1, 1, 1, 2, 2, 3])
        stroke = np.zeros((h, w), np.float32)
        if rng.random() < 0.4:      # broken: keep random runs of the path
            keep = _smooth_noise(rng, (1, len(points)), rng.uniform(3, 15))[0] > 0.35
            runs = np.split(np.arange(len(points)), np.flatnonzero(np.diff(keep)) + 1)
            for run in runs:
                if keep[run[0]] and len(run) > 1:
                    _polyline(stroke, points[run], width)
        else:
            _polyline(stroke, points, width)
        np.maximum(alpha, stroke * rng.uniform(0.5, 1.0), out=alpha)
    return _composite(image, alpha, colour)


def draw_dust(image, rng):
    """Dust and specks (0.5-5 px, mostly tiny) and short hair-like fibres, white or black."""
    h, w = image.shape[:2]
    area_scale = h * w / (256 * 256)
    alpha_light = np.zeros((h, w), np.float32)
    alpha_dark = np.zeros((h, w), np.float32)
    p_light = rng.uniform(0.2, 0.9)
    n_specks = int(rng.uniform(10, 80) * max(area_scale, 0.3) ** 0.8)
    for _ in range(n_specks):
        canvas = alpha_light if rng.random() < p_light else alpha_dark
        r = rng.choice(_SPECK_RADII, p=_SPECK_ODDS)
        x, y = rng.uniform((0, 0), (w, h))
        axes = (max(1, int(round(r * 16))), max(1, int(round(r * 16 * rng.uniform(0.5, 1.0)))))
        spot = np.zeros((h, w), np.uint8)
        cv2.ellipse(spot, (int(x * 16), int(y * 16)), axes, rng.uniform(0, 180), 0, 360, 255,
                    -1, cv2.LINE_AA, 4)
        np.maximum(canvas, spot * (rng.uniform(0.6, 1.0) / 255.0), out=canvas)
    for _ in range(int(rng.poisson(2 * max(area_scale, 0.3) ** 0.8))):
        canvas = alpha_light if rng.random() < p_light else alpha_dark
        length = rng.uniform(6, 40)
        path = _random_walk(rng, rng.uniform((0, 0), (w, h)), rng.uniform(0, 2 * np.pi),
                            length, 2.0, wiggle=0.35)
        _polyline(canvas, path, 1, rng.uniform(0.6, 1.0))
    _composite(image, alpha_light, _paper_white(rng))
    return _composite(image, alpha_dark, _dark(rng))


def draw_crease(image, rng):
    """A fold across the print: a light ridge beside a shadow, with cracked emulsion along it."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    angle = rng.uniform(0, np.pi)
    d = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-d[1], d[0]])
    centre = rng.uniform((0.2 * w, 0.2 * h), (0.8 * w, 0.8 * h))
    points = _bezier([centre - d * diag, centre + normal * rng.normal(0, 0.02) * diag,
                      centre + d * diag], int(diag))
    # signed distance to the fold line, from a rasterised line
    line = np.zeros((h, w), np.uint8)
    cv2.polylines(line, [np.round(points).astype(np.int32).reshape(-1, 1, 2)], False, 255, 1)
    dist = cv2.distanceTransform(255 - line, cv2.DIST_L2, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = np.sign((xx - centre[0]) * normal[0] + (yy - centre[1]) * normal[1])
    half = rng.uniform(2, 7)
    ridge = np.exp(-(dist / half) ** 2)
    shade = ridge * side * rng.uniform(25, 60)
    image += shade[..., None]
    np.clip(image, 0, 255, out=image)
    # cracked emulsion along the fold: broken light line
    alpha = np.zeros((h, w), np.float32)
    keep = _smooth_noise(rng, (1, len(points)), rng.uniform(5, 30))[0] > rng.uniform(0.3, 0.7)
    for run in np.split(np.arange(len(points)), np.flatnonzero(np.diff(keep)) + 1):
        if keep[run[0]] and len(run) > 1:
            _polyline(alpha, points[run], rng.choice([1, 1, 2, 3]))
    return _composite(image, alpha * rng.uniform(0.6, 1.0), _paper_white(rng))


def draw_stain(image, rng):
    """Semi-transparent blotches (water, coffee, mould, foxing) with a darker tide line."""
    h, w = image.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        size = rng.uniform(0.08, 0.45) * min(h, w)
        cx, cy = rng.uniform((0, 0), (w, h))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / size
        v = (-(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)) / (size * rng.uniform(0.4, 1))
        field = np.sqrt(u ** 2 + v ** 2) + 0.6 * (_smooth_noise(rng, (h, w), size / 2) - 0.5)
        inside = (field < 0.6).astype(np.float32)
        if not inside.any():
            continue
        body = cv2.GaussianBlur(inside, (0, 0), rng.uniform(1, 4))
        rim = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        rim = cv2.GaussianBlur(rim, (0, 0), rng.uniform(0.7, 2.0))
        strength = rng.uniform(0.2, 0.6)
        alpha = np.clip(body * strength * (0.7 + 0.6 * _smooth_noise(rng, (h, w), size / 4))
                        + rim * rng.uniform(0.2, 0.6), 0, 1)
        colour = [rng.uniform(120, 200), rng.uniform(80, 150), rng.uniform(20, 80)] \
            if rng.random() < 0.7 else [rng.uniform(60, 120)] * 3
        _composite(image, alpha, colour)
    return image


def draw_ink(image, rng):
    """Pen and ink marks: strokes, circles, ticks and scribbles in blue, black, red or green."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    colours = ([20, 40, 140], [15, 15, 20], [170, 20, 25], [20, 90, 40], [60, 30, 120])
    colour = np.array(colours[rng.integers(len(colours))], np.float32) + rng.normal(0, 8, 3)
    alpha = np.zeros((h, w), np.float32)
    width = rng.choice([1, 2, 2, 3, 4, 5])
    for _ in range(int(rng.integers(1, 4))):
        shape = rng.integers(3)
        c = rng.uniform((0, 0), (w, h))
        size = rng.uniform(0.05, 0.35) * diag
        if shape == 0:       # a stroke
            pts = c + rng.normal(0, size / 2, (4, 2))
            path = _bezier(pts, max(10, int(size / 2)))
        elif shape == 1:     # a loop around something
            t = np.linspace(0, 2 * np.pi * rng.uniform(0.9, 1.15), 60)
            r = size / 2 * (1 + 0.1 * np.sin(3 * t + rng.uniform(0, 6)))
            path = c + np.stack([r * np.cos(t), r * rng.uniform(0.5, 1) * np.sin(t)], 1)
        else:                # a scribble, as handwriting
            n = int(rng.integers(20, 80))
            t = np.linspace(0, 1, n)
            x = c[0] + t * size * 1.5
            y = c[1] + np.sin(t * rng.uniform(15, 40)) * size * 0.06 + \
                np.cumsum(rng.normal(0, size * 0.01, n))
            path = np.stack([x, y], 1)
        _polyline(alpha, path, width)
    return _composite(image, alpha * rng.uniform(0.7, 1.0), colour)


@functools.lru_cache(maxsize=64)
def _font(index, size):
    from PIL import ImageFont

    path = FONT_DIR / _FONT_NAMES[index % len(_FONT_NAMES)]
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:        # no DejaVu on this machine: Pillow's own scalable font
        return ImageFont.load_default(size=size)


def _caption(rng):
    year = int(rng.integers(1920, 2005))
    pick = rng.integers(6)
    if pick == 0:
        return f"'{year % 100:02d} {rng.integers(1, 13)} {rng.integers(1, 32)}"
    if pick == 1:
        return f"{rng.integers(1, 32):02d}.{rng.integers(1, 13):02d}.{year}"
    if pick == 2:
        return f"{_MONTHS[rng.integers(12)]} {year}"
    if pick == 3:
        return f"{_CAPTION_WORDS[rng.integers(len(_CAPTION_WORDS))]} {year}"
    if pick == 4:
        return _CAPTION_WORDS[rng.integers(len(_CAPTION_WORDS))]
    return f"{_CAPTION_WORDS[rng.integers(len(_CAPTION_WORDS))]}, " \
           f"{_MONTHS[rng.integers(12)].title()} {year}"


def draw_text(image, rng):
    """Date stamps and captions in several fonts, sizes and colours, sometimes tilted."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    stamp = rng.random() < 0.4
    text = _caption(rng) if not stamp else \
        f"'{rng.integers(70, 100)} {rng.integers(1, 13)} {rng.integers(1, 32)}"
    size = int(np.clip(rng.uniform(0.04, 0.14) * min(h, w) * rng.uniform(0.7, 1.4), 9, 200))
    font = _font(int(rng.integers(len(_FONT_NAMES))), size)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = rng.uniform(-left, max(w - right, -left + 1))
    y = rng.uniform(-top, max(h - bottom, -top + 1))
    draw.text((x, y), text, fill=255, font=font)
    if rng.random() < 0.4:
        canvas = canvas.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR,
                               center=(x + (right - left) / 2, y + (bottom - top) / 2))
    alpha = np.asarray(canvas, np.float32) / 255.0
    if stamp:   # the orange LED digits of a camera's date back, with a soft glow
        colour = [255, rng.uniform(90, 170), rng.uniform(0, 40)]
        glow = cv2.GaussianBlur(alpha, (0, 0), max(0.8, size / 25))
        alpha = np.clip(np.maximum(alpha, glow * 0.6), 0, 1)
    else:
        colours = ([15, 15, 20], [25, 40, 150], [245, 245, 240], [170, 25, 30], [90, 60, 30])
        colour = colours[rng.integers(len(colours))]
    return _composite(image, alpha * rng.uniform(0.75, 1.0), colour)


def draw_tear(image, rng):
    """A torn or missing corner or edge: the backing shows, with a white paper rim."""
    h, w = image.shape[:2]
    if rng.random() < 0.6:      # a corner
        corner = rng.integers(4)
        a = rng.uniform(0.1, 0.45) * w
        b = rng.uniform(0.1, 0.45) * h
        start, end, tip = np.array([a, 0.0]), np.array([0.0, b]), np.array([0.0, 0.0])
        line = _bezier([start, (start + end) / 2 + rng.normal(0, 0.1, 2) * (a + b), end], 60)
        poly_pts = np.vstack([line, tip[None]])
        if corner in (1, 2):
            poly_pts[:, 0] = w - 1 - poly_pts[:, 0]
            line[:, 0] = w - 1 - line[:, 0]
        if corner in (2, 3):
            poly_pts[:, 1] = h - 1 - poly_pts[:, 1]
            line[:, 1] = h - 1 - line[:, 1]
    else:                       # an edge
        side = rng.integers(4)
        length = w if side < 2 else h
        depth = rng.uniform(0.02, 0.12) * (h if side < 2 else w)
        t = np.linspace(0, length - 1, 80)
        off = depth * (0.5 + _smooth_noise(rng, (1, 80), rng.uniform(4, 20))[0])
        line = np.stack([t, off], 1)
        poly_pts = np.vstack([line, [[length - 1, -1], [0, -1]]])
        if side == 1:
            line[:, 1] = h - 1 - line[:, 1]
            poly_pts[:, 1] = h - 1 - poly_pts[:, 1]
        elif side >= 2:
            line, poly_pts = line[:, ::-1].copy(), poly_pts[:, ::-1].copy()
            if side == 3:
                line[:, 0] = w - 1 - line[:, 0]
                poly_pts[:, 0] = w - 1 - poly_pts[:, 0]
    # a ragged border: fine jitter along the tear line
    jitter = rng.normal(0, rng.uniform(0.5, 2.5), line.shape)
    line = line + jitter
    poly = np.vstack([line, poly_pts[len(line):]])
    missing = np.zeros((h, w), np.uint8)
    cv2.fillPoly(missing, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    alpha = missing.astype(np.float32) / 255.0
    rim = np.zeros((h, w), np.float32)
    _polyline(rim, line, rng.uniform(1, 4))
    _composite(image, rim * rng.uniform(0.6, 1.0), _paper_white(rng))
    backings = ([245, 245, 242], [20, 20, 20], [128, 128, 128], [120, 80, 50], [230, 225, 210])
    backing = np.array(backings[rng.integers(len(backings))], np.float32) + rng.normal(0, 6, 3)
    return _composite(image, alpha, backing)


def _blob(rng, shape, centre, radius):
    """An irregular filled shape about ``radius`` px across its middle: a float mask in [0, 1]
    with an antialiased edge, drawn only in its bounding box."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    r = int(np.ceil(radius * 1.8)) + 2
    x0, x1 = int(max(0, centre[0] - r)), int(min(w, centre[0] + r + 1))
    y0, y1 = int(max(0, centre[1] - r)), int(min(h, centre[1] + r + 1))
    if x1 <= x0 or y1 <= y0:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    u = ((xx - centre[0]) * np.cos(ang) + (yy - centre[1]) * np.sin(ang)) / radius
    v = (-(xx - centre[0]) * np.sin(ang) + (yy - centre[1]) * np.cos(ang)) / (
        radius * rng.uniform(0.35, 1.0))
    rough = _smooth_noise(rng, (y1 - y0, x1 - x0), max(2.0, radius * rng.uniform(0.3, 0.9)))
    field = np.sqrt(u ** 2 + v ** 2) + rng.uniform(0.2, 0.8) * (rough - 0.5)
    out[y0:y1, x0:x1] = np.clip((1.0 - field) * radius * 0.5 + 0.5, 0, 1)  # ~1 px ramp
    return out


def draw_paint(image, rng):
    """Broad strokes and filled patches in one flat colour: paint, marker, correction fluid,
    emulsion lifted off down to the paper.  Unlike ink and cracks their width grows with the
    photo (up to a few percent of its diagonal), so a patch is mostly inside, not edge."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    pick = rng.random()
    if pick < 0.4:
        colour = _paper_white(rng)
    elif pick < 0.65:
        colour = _dark(rng) * rng.uniform(0.1, 1.0)
    else:
        colour = rng.uniform(0, 255, 3).astype(np.float32)
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform((0, 0), (w, h))
        if rng.random() < 0.5:   # a broad stroke
            width = max(2.0, diag * float(np.exp(rng.uniform(np.log(0.004), np.log(0.04)))))
            length = rng.uniform(0.05, 0.4) * diag
            path = _random_walk(rng, c, rng.uniform(0, 2 * np.pi), length,
                                max(2.0, width / 2), wiggle=rng.uniform(0.02, 0.25))
            _polyline(alpha, path, width)
        else:                    # a filled patch
            radius = max(2.0, diag * float(np.exp(rng.uniform(np.log(0.005), np.log(0.06)))))
            np.maximum(alpha, _blob(rng, (h, w), c, radius), out=alpha)
    if rng.random() < 0.3:
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.4, 1.2))
    layer = np.broadcast_to(colour, image.shape) + rng.normal(0, rng.uniform(0, 4), (h, w, 1))
    return _composite(image, alpha * rng.uniform(0.85, 1.0), layer.astype(np.float32))


_DRAW = {"crack": draw_crack, "scratch": draw_scratch, "dust": draw_dust,
         "crease": draw_crease, "stain": draw_stain, "ink": draw_ink, "text": draw_text,
         "tear": draw_tear, "paint": draw_paint}


# ------------------------------------------------------------------- hard negatives and looks
def draw_scene_lines(image, rng):
    """Thin lines and highlights that belong to the scene (not damage): dark hair-like strands,
    wires and edges, small soft highlights.  Blurred like the photo's own detail."""
    h, w = image.shape[:2]
    diag = float(np.hypot(h, w))
    layer = image.copy()
    alpha = np.zeros((h, w), np.float32)
    kind = rng.integers(3)
    if kind == 0:      # a lock of strands, dark or fair, from the image's own colours
        colour = np.percentile(image.reshape(-1, 3), rng.choice([3, 10, 20]), axis=0)
        start = rng.uniform((0, 0), (w, h))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(2, 8))):
            path = _random_walk(rng, start + rng.normal(0, 4, 2), angle + rng.normal(0, 0.1),
                                rng.uniform(0.1, 0.4) * diag, 3.0, wiggle=0.05)
            _polyline(alpha, path, 1, rng.uniform(0.3, 0.8))
    elif kind == 1:    # wires and straight edges in the background
        colour = np.percentile(image.reshape(-1, 3), rng.choice([10, 50, 90]), axis=0)
        for _ in range(int(rng.integers(1, 3))):
            p = rng.uniform((0, 0), (w, h))
            d = rng.normal(0, 1, 2)
            d /= np.linalg.norm(d) + 1e-6
            _polyline(alpha, [p - d * diag, p + d * diag], rng.choice([1, 2]),
                      rng.uniform(0.3, 0.8))
    else:              # small soft highlights (catchlights, glints)
        colour = np.array([250, 250, 250], np.float32)
        for _ in range(int(rng.integers(1, 6))):
            x, y = rng.uniform((0, 0), (w, h))
            cv2.circle(alpha, (int(x), int(y)), int(rng.integers(1, 4)), 1.0, -1, cv2.LINE_AA)
        alpha *= rng.uniform(0.5, 0.9)
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.0))
    _composite(layer, alpha, colour)
    return layer


def age_photo(image, rng):
    """Toning and fading of an old print: sepia, gray or faded colour, lower contrast.

    ``image`` is float32 RGB in [0, 255]; returns a new array.
    """
    gray = image @ np.array([0.299, 0.587, 0.114], np.float32)
    pick = rng.random()
    if pick < 0.3:
        out = np.repeat(gray[..., None], 3, axis=2)
    elif pick < 0.6:   # sepia: a brown-to-cream ramp
        tint = np.array([1.0, rng.uniform(0.78, 0.9), rng.uniform(0.55, 0.72)], np.float32)
        out = gray[..., None] * tint + np.array([20, 10, 0], np.float32) * rng.uniform(0, 1)
    elif pick < 0.85:  # faded colour with a cast
        sat = rng.uniform(0.3, 0.9)
        out = gray[..., None] + (image - gray[..., None]) * sat
        out = out * (1 + rng.normal(0, 0.06, 3).astype(np.float32))
    else:
        out = image.copy()
    if rng.random() < 0.7:     # fading: contrast down, blacks lifted
        contrast = rng.uniform(0.55, 1.0)
        out = out * contrast + rng.uniform(0, 255 * (1 - contrast) * 0.9)
    return np.clip(out, 0, 255).astype(np.float32)


def scan_photo(image, rng):
    """What the scanner and the file do: blur, grain, vignetting, JPEG.

    ``image`` is float32 RGB in [0, 255]; returns uint8.  Give the clean and the damaged side
    generators in the same state to scan them alike.
    """
    h, w = image.shape[:2]
    out = image
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 0.9))
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        out = out * (1 - rng.uniform(0.05, 0.3) * r2 / 2)[..., None]
    if rng.random() < 0.7:
        grain = rng.normal(0, rng.uniform(1, 7), (h, w, 1)).astype(np.float32)
        if rng.random() < 0.5:
            grain = cv2.GaussianBlur(grain, (0, 0), 0.7)[..., None] * 1.5
        out = out + grain
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        quality = int(rng.integers(40, 96))
        ok, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out


# ------------------------------------------------------------------------------ the example
def pick_kinds(rng, n=None):
    """Draw ``n`` damage kinds (1-3 when None) by :data:`KIND_WEIGHTS`, without repeats."""
    weights = np.array([KIND_WEIGHTS[k] for k in DAMAGE_KINDS])
    if n is None:
        n = int(rng.choice([1, 1, 2, 2, 3]))
    idx = rng.choice(len(DAMAGE_KINDS), size=min(n, len(DAMAGE_KINDS)), replace=False,
                     p=weights / weights.sum())
    return tuple(DAMAGE_KINDS[i] for i in idx)


def damage_photo(photo, rng=None, kinds=None, look=True, scene_lines=0.3):
    """Age, damage and scan ``photo``; return both sides and the label.

    Parameters
    ----------
    photo : ndarray of uint8, shape (H, W, 3)
        A clean photo, at least 8x8.
    rng : numpy.random.Generator or int or None
        Random generator or seed; the same seed gives the same result.
    kinds : sequence of str, optional
        The damage kinds to draw (see :data:`DAMAGE_KINDS`); ``()`` draws none (a clean
        example); None draws one to three at random.
    look : bool
        Apply the old-photo look (aging before, scanning after).  Without it the damage is
        drawn on the photo as it is and nothing is scanned.
    scene_lines : float
        The chance of drawing thin scene lines (unlabelled hard negatives) first.

    Returns
    -------
    DamagedPhoto

    Raises
    ------
    ValueError
        If ``photo`` is not uint8 RGB of at least 8x8 or a kind is unknown.
    """
    photo = _check_photo(photo)
    rng = _as_rng(rng)
    kinds = pick_kinds(rng) if kinds is None else tuple(kinds)
    unknown = [k for k in kinds if k not in _DRAW]
    if unknown:
        raise ValueError(f"unknown damage kind {unknown[0]!r}; the kinds are "
                         f"{', '.join(DAMAGE_KINDS)}")
    base = photo.astype(np.float32)
    if rng.random() < scene_lines:
        base = draw_scene_lines(base, rng)
    if look:
        base = age_photo(base, rng)
    damaged = base.copy()
    for kind in kinds:
        damaged = _DRAW[kind](damaged, rng)
    np.clip(damaged, 0, 255, out=damaged)
    change = np.abs(damaged - base).max(axis=2)
    label = change >= LABEL_MIN_CHANGE
    if look:
        scan_seed = int(rng.integers(2 ** 31))
        clean = scan_photo(base, np.random.default_rng(scan_seed))
        damaged = scan_photo(damaged, np.random.default_rng(scan_seed))
        # what the scan blurred or drowned in grain out of sight is no longer damage to find
        seen = np.abs(damaged.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
        label &= seen >= LABEL_MIN_CHANGE
    else:
        clean = np.clip(np.round(base), 0, 255).astype(np.uint8)
        damaged = np.clip(np.round(damaged), 0, 255).astype(np.uint8)
    return DamagedPhoto(clean, damaged, label, kinds)
