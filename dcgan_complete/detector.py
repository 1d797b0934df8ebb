"""The damage detector: a small U-Net that marks scratches, cracks, dust, stains, ink, date stamps,
tears and paint, trained on synthetic damage (:mod:`dcgan_complete.damage`) over real photos.

The network sees the photo at full resolution, so a 1-2 px scratch on a 2000 px scan survives:
:func:`detect_damage` cuts the photo into overlapping tiles (:data:`TILE` px plus a
:data:`MARGIN` px border of context on every side), runs each, and keeps the centre of each
tile, so memory is bounded by the tile whatever the photo's size.  A second pass over the photo
shrunk to :data:`WORKING_SIZE` px finds what is too large for the network's reach at full
resolution (a large stain, big letters), and a third, over the photo shrunk to
:data:`EDGE_SIZE` px, the inside of a torn or missing corner (only flat parts at the border
count); a pixel's probability is the largest of the three.  Each pass also looks at the photo
mirrored (:data:`FLIP`), and weighs the two views' probabilities (:data:`FLIP_MEAN_FROM`).
The output is a per-pixel probability of damage; :func:`damage_mask` turns it into a mask in
the project's convention (1 = intact, 0 = damage).

Training (:func:`train_detector`) draws its examples on the fly: a tile cut from a photo at a
random scale (large photos shrunk to as little as 0.3x, faces enlarged up to 3x), aged, damaged
and scanned by :func:`damage.damage_photo`; a share of them left clean
(:attr:`DetectorOptions.clean_fraction`) and a share drawn without the old-photo look
(:data:`NO_LOOK_FRACTION`), so that neither an old look nor a modern photo reads as damage.
With hard negatives (:attr:`DetectorOptions.hard_negatives`), a share of the tiles is cut
around what other detectors flag on the clean training photos (:func:`mine_hard_negatives`):
patterns of real photos that look like damage and are not.  The loss is binary cross-entropy
plus soft Dice.  The run is resumable (``OUT/ckpt-STEP.npz``,
as ``train``'s), logs to TensorBoard (``OUT/logs``) and writes the detector
(``OUT/detector.weights.h5`` and ``OUT/detector.json``) at every checkpoint.

Which photos are held out from training is decided by :func:`is_held_out`, a fixed hash of the
file's name, so every run and every evaluation agree: about one photo in three of
``raw_photos``, one person in twenty of ``lfw`` (all their photos) and one file in twenty of
``utkface``.  A run lists them in ``OUT/split.json``; :func:`evaluate_detector` scores on them
with damage seeds from :data:`EVAL_SEED` on.

Example
-------
>>> from dcgan_complete.detector import detect_damage, damage_mask, load_detector
>>> detector = load_detector("runs/detector")                     # doctest: +SKIP
>>> probabilities = detect_damage(photo, detector)                # doctest: +SKIP
>>> mask = damage_mask(probabilities, threshold=0.6, grow=1)      # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import queue
import threading
import time
from pathlib import Path

import numpy as np

from dcgan_complete import damage as damage_lib
from dcgan_complete import images
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.options import DetectOptions, DetectorOptions  # noqa: F401 (their home)
from dcgan_complete.files import (FolderLock, atomic_write, display_name, ensure_writable_dir,
                                  write_text)

DETECTOR_FILE = "detector.weights.h5"
DETECTOR_CONFIG = "detector.json"
BUNDLED_DIR = Path(__file__).parent / "weights"
TILE = 512        # the centre of each inference tile, px
MARGIN = 32       # context on each side of a tile, px (cut off again)
WORKING_SIZE = 512  # the longer side of the second, coarse pass
EDGE_SIZE = 256     # the longer side of the third pass, for missing corners and edges ...
EDGE_FLATNESS = 2.0  # ... of which only flat parts touching the border count (see detect_damage)
REFLECT_UP_TO = 2   # strides: a photo no wider is padded by reflection (see detect_damage)
FLIP = True         # look at the photo mirrored too (see detect_damage) ...
FLIP_MEAN_FROM = 256  # ... on a photo this wide or more, the two views' mean counts; on a
FLIP_LARGER = 0.6     # smaller one, this much of their larger probability, the rest of the
                      # smaller: what one view alone flags needs 0.83 there
LOG_EVERY = 10
HELD_OUT_EVERY = {"raw_photos": 3, "lfw": 20, "utkface": 20}
NO_LOOK_FRACTION = 0.25  # training tiles drawn without the old-photo look
MAX_REGION = 6           # damage is drawn on regions up to this many tiles wide ...
POOL_SIZE = 24           # ... and tiles are drawn from a pool at least this large
EVAL_SEED = 1_000_000   # damage seeds of the evaluation: far from any training stream
# Hard negatives (mine_hard_negatives): every large training photo and this many small ones
# (faces) are searched by a detector; tiles are cut around its largest false alarms.
MINE_SMALL_PHOTOS = 1500
MINE_PER_PHOTO = 8        # false alarms (connected parts) per photo, largest first
MINE_MIN_AREA = 6         # px: smaller parts are noise, not a pattern worth learning
AUGMENT_HUE = 20          # degrees: how far varied() moves a photo's hue at most ...
AUGMENT_SATURATION = 1.5  # ... and its saturation's factor and ...
AUGMENT_GAMMA = 1.3       # ... its brightness's gamma, either way
MINE_JITTER = 40          # px: the tile's centre is moved off the false alarm by up to this


# ------------------------------------------------------------------------------ the network
def _widths(base, levels):
    """Channel widths from full resolution inwards: base, 2base, 3base, ..."""
    return [base * (i + 1) for i in range(levels + 1)]


def build_detector(base_filters=12, levels=6, dtype="float32"):
    """photo (batch, H, W, 3) in [-1, 1] -> damage logits (batch, H, W, 1), float32.

    H and W must be multiples of ``2 ** levels``.  A U-Net without normalisation: two 3x3
    convolutions a level (the first strided on the way down), nearest-neighbour upsampling and
    one 3x3 convolution after each skip connection on the way up.
    """
    import keras
    from keras import layers

    widths = _widths(base_filters, levels)

    def conv(x, width, stride=1, name=None):
        return layers.Conv2D(width, 3, strides=stride, padding="same", activation="relu",
                             dtype=dtype, name=name)(x)

    photo = keras.Input((None, None, 3), name="photo")
    x = conv(photo, widths[0], name="enc0")
    skips = [x]
    for level in range(1, levels + 1):
        x = conv(x, widths[level], stride=2, name=f"down{level}")
        x = conv(x, widths[level], name=f"enc{level}")
        skips.append(x)
    for level in range(levels - 1, -1, -1):
        x = layers.UpSampling2D(2, dtype=dtype, name=f"up{level}")(x)
        x = layers.Concatenate(dtype=dtype, name=f"skip{level}")([x, skips[level]])
        x = conv(x, widths[level], name=f"dec{level}")
    logits = layers.Conv2D(1, 1, dtype="float32", name="logits")(x)
    return keras.Model(photo, logits, name="detector")


def macs_per_pixel(base_filters=12, levels=6):
    """Multiply-adds a photo pixel costs (convolutions only)."""
    w = _widths(base_filters, levels)
    total = 3 * w[0] * 9
    for level in range(1, levels + 1):
        total += (w[level - 1] * w[level] + w[level] * w[level]) * 9 / 4 ** level
    for level in range(levels - 1, -1, -1):
        total += (w[level + 1] + w[level]) * w[level] * 9 / 4 ** level
    return total + w[0]


class Detector:
    """A built detector with its weights, and the compiled function that runs one tile."""

    def __init__(self, model, config):
        import tensorflow as tf

        self.model, self.config = model, config
        self.multiple = 2 ** config["levels"]
        self._run = tf.function(lambda x: tf.sigmoid(self.model(x, training=False)),
                                reduce_retracing=True)

    def probabilities(self, tile):
        """Damage probabilities (h, w) of one float32 tile (h, w, 3) in [-1, 1] whose sides
        are multiples of ``self.multiple``."""
        return self._run(tile[None]).numpy()[0, ..., 0]


def new_detector(base_filters=12, levels=6, precision="float32"):
    """A detector with fresh (untrained) weights."""
    config = {"base_filters": base_filters, "levels": levels}
    return Detector(build_detector(base_filters, levels, precision), config)


def grow_from(network, source):
    """Start ``network`` (a detector's U-Net) from ``source``'s weights.

    ``network`` is as wide as ``source`` and as deep or deeper.  Every layer the two share is
    copied.  Each decoder level ``source`` lacks starts as a pass-through of its skip
    connection (its convolution keeps the skip's channels and ignores the level below), so
    ``network`` computes exactly what ``source`` does until training teaches it to use the
    deeper levels' wider context.  The new encoder levels keep their fresh weights.

    Raises
    ------
    OptionError
        Naming ``init``, if the two differ in width or ``source`` is deeper.
    """
    def shape(model):  # (levels, filters at full resolution)
        levels = sum(layer.name.startswith("down") for layer in model.layers)
        return levels, model.get_layer("enc0").get_weights()[0].shape[-1]

    (levels, width), (old_levels, old_width) = shape(network), shape(source)
    if old_levels > levels or old_width != width:
        raise OptionError("init", f"{{init}} has {old_levels} levels of {old_width} filters at "
                                  "full resolution: the detector trained must have as many "
                                  "filters and at least as many levels")
    old = {layer.name: layer for layer in source.layers}
    for layer in network.layers:
        if not layer.weights:
            continue
        if layer.name in old:
            layer.set_weights(old[layer.name].get_weights())
        elif layer.name.startswith("dec"):
            kernel, bias = (np.zeros_like(w) for w in layer.get_weights())
            width = kernel.shape[-1]
            kernel[1, 1, kernel.shape[2] - width:, :] = np.eye(width)  # the skip comes second
            layer.set_weights([kernel, bias])


def save_detector(detector, directory):
    """Write ``detector.weights.h5`` and ``detector.json`` into ``directory`` atomically."""
    directory = Path(directory)
    with atomic_write(directory / DETECTOR_FILE) as tmp:
        detector.model.save_weights(str(tmp))
    write_text(directory / DETECTOR_CONFIG, json.dumps(detector.config, indent=2) + "\n")
    return directory / DETECTOR_FILE


def load_detector(path, precision="auto"):
    """The detector in ``path``: a folder holding ``detector.weights.h5`` and ``detector.json``,
    or the weights file itself (with ``detector.json`` beside it).

    ``precision`` is what it computes in: "auto" (mixed bfloat16 where the CPU or GPU has
    native bfloat16, about 1.5x faster; see :func:`model.resolve_precision`), "float32" or
    "mixed_bfloat16".

    Raises
    ------
    DcganError
        Naming the file, if there is no detector there or it is damaged or does not match.
    """
    path = Path(path)
    weights = path / DETECTOR_FILE if path.is_dir() else path
    config_path = weights.parent / DETECTOR_CONFIG
    if not weights.is_file():
        raise DcganError(f"no damage detector in {display_name(path)} (no {DETECTOR_FILE})")
    try:
        config = json.loads(config_path.read_text())
        base, levels = int(config["base_filters"]), int(config["levels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else "not a detector description"
        raise DcganError(f"{display_name(config_path)}: {reason}") from None
    from dcgan_complete.model import resolve_precision

    detector = new_detector(base, levels, resolve_precision(precision))
    try:
        detector.model.load_weights(weights)
    except Exception as exc:  # h5py and Keras raise many types for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DcganError(f"{display_name(weights)}: damaged or not a detector ({reason})") \
            from None
    return detector


@functools.lru_cache(maxsize=1)
def bundled_detector():
    """The detector shipped in ``dcgan_complete/weights``, loaded once per process."""
    return load_detector(BUNDLED_DIR)


# ----------------------------------------------------------------------------- inference
def detect_damage(photo, detector=None, tile=TILE, margin=MARGIN, working_size=WORKING_SIZE,
                  flip=FLIP, edge_size=EDGE_SIZE):
    """The probability that each pixel of ``photo`` is damage.

    Up to three passes, each pixel taking the largest probability they give it:

    1. at full resolution, where thin damage (a 1-2 px scratch) is found;
    2. on a photo larger than ``working_size``, on the photo shrunk to it, where damage too
       large for the network's reach at full resolution is found (a large stain, big letters);
    3. on a photo larger than ``edge_size``, on the photo shrunk to it; of what this pass finds
       only the parts that touch the photo's border and are flat there count (the median local
       standard deviation of their grey levels, in 5x5 windows, at most
       :data:`EDGE_FLATNESS`): a torn or missing corner or edge, which shows the flat backing
       or scanner lid, and whose inside lies too far from anything else for the other passes
       to see it as damage.  So shrunk, the network also flags textured parts of a photo;
       those do not count.

    With ``flip``, each pass also runs on the photo mirrored left to right (twice the time: the
    network is far from symmetric, and what one view misses the other often finds).  On a photo
    at least :data:`FLIP_MEAN_FROM` px (a training tile) on its shorter side, each pixel gets
    the mean of the two views' probabilities: there both views find real damage, and what one
    alone flags is mostly not damage.  On a smaller photo (a face crop), one view often finds
    what the other misses; there each pixel gets :data:`FLIP_LARGER` (0.6) of the larger
    probability and the rest of the smaller, so that what one view alone flags counts where
    that view is sure of it (0.83 and up at threshold 0.5; at the default 0.6, only where the
    other view finds something too, or this one is certain).  Measured on training
    photos against taking the larger probability alone: on the larger photos the mean flags
    less than half as much of clean photos (0.29% against 0.64%) at a higher F1 (0.864 against
    0.818); on face crops the mean lost a tenth of LFW's F1, the 0.6 weighting less than 0.01.

    At full resolution the photo is cut into tiles of ``tile`` px on a fixed grid; each runs
    with ``margin`` px of context on every side that lies inside the photo, which is then cut
    off again.  Nothing is added outside the photo's top and left sides, and on the bottom and
    right only what rounds it up to the network's stride: there the network meets its own zero
    padding, as at the borders of its training tiles (a torn corner padded by reflection looks
    like a flat region inside a photo, and was missed).  In the first pass, a photo at most
    :data:`REFLECT_UP_TO` times the stride wide (128 px: a 64 px aligned crop, a 128 px UTKFace
    crop) is padded by reflection all round instead; measured on training photos, reflection
    flags far less of such small clean photos (UTKFace: 0.24% against 0.80%).  Tiles start at
    multiples of the network's stride, so the result does not depend on the tiling (where the
    margin covers the network's reach).

    Parameters
    ----------
    photo : ndarray of uint8, shape (H, W, 3)
    detector : Detector or str or Path, optional
        A loaded detector, or a path for :func:`load_detector`; None uses the bundled one
        (:func:`bundled_detector`).
    tile, margin : int
        The tiles' centre and the context around it, in px, rounded up to multiples of the
        network's stride.  Memory grows with the tile, not with the photo.
    working_size, edge_size : int or None
        The longer side of the second and third passes; a photo at most 1.25 times that size
        gets none, and None skips the pass.
    flip : bool
        Also look at the photo mirrored.

    Returns
    -------
    probabilities : ndarray of float32, shape (H, W), in [0, 1]
    """
    photo = images.as_rgb_uint8(np.asarray(photo))
    if detector is None:
        detector = bundled_detector()
    elif not isinstance(detector, Detector):
        detector = load_detector(detector)

    larger = FLIP_LARGER if min(photo.shape[:2]) < FLIP_MEAN_FROM else 0.5

    def views(image, reflect=False):
        found = _detect_tiled(image, detector, tile, margin, reflect)
        if flip:
            mirrored = _detect_tiled(np.ascontiguousarray(image[:, ::-1]), detector, tile, margin,
                                     reflect)
            mirrored = mirrored[:, ::-1]
            found = larger * np.maximum(found, mirrored) + \
                (1 - larger) * np.minimum(found, mirrored)
        return found

    out = views(photo, reflect=min(photo.shape[:2]) <= REFLECT_UP_TO * detector.multiple)
    if working_size and max(out.shape) > 1.25 * working_size:
        np.maximum(out, _enlarged(views(images.shrink(photo, working_size)), out.shape), out=out)
    if edge_size and max(out.shape) > 1.25 * edge_size:
        small = images.shrink(photo, edge_size)
        np.maximum(out, _enlarged(_flat_at_border(views(small), small), out.shape), out=out)
    return out


def _enlarged(probabilities, shape):
    import cv2

    return cv2.resize(probabilities, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _flat_at_border(probabilities, photo, threshold=0.5):
    """``probabilities`` (of the third pass, on ``photo`` shrunk) in the parts found there (at
    ``threshold``) that touch the photo's border and are flat (see :func:`detect_damage`), and
    0 elsewhere."""
    import cv2

    found = (probabilities >= threshold).astype(np.uint8)
    count, parts = cv2.connectedComponents(found)
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean, mean_sq = cv2.blur(grey, (5, 5)), cv2.blur(grey * grey, (5, 5))
    spread = np.sqrt(np.maximum(mean_sq - mean * mean, 0))
    inner = np.where(cv2.erode(found, np.ones((3, 3), np.uint8)) > 0, parts, 0)  # no edges
    keep = np.zeros(count, bool)
    for part in set(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]])) - {0}:
        inside = inner == part
        if not inside.any():
            inside = parts == part
        keep[part] = np.median(spread[inside]) <= EDGE_FLATNESS
    return np.where(keep[parts], probabilities, 0).astype(np.float32)


def _detect_tiled(photo, detector, tile, margin, reflect=False):
    """One view of one pass of :func:`detect_damage`; with ``reflect``, ``margin`` px of the
    photo's reflection around it."""
    m = detector.multiple
    h, w = photo.shape[:2]
    tile = -(-max(tile, 1) // m) * m
    margin = -(-max(margin, 0) // m) * m
    o = margin if reflect else 0
    H, W = -(-h // m) * m + 2 * o, -(-w // m) * m + 2 * o
    padded = np.pad(photo, ((o, H - h - o), (o, W - w - o), (0, 0)),
                    mode="reflect" if o and min(h, w) > 1 else "edge")
    out = np.empty((h, w), np.float32)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            top, left = max(0, y + o - margin), max(0, x + o - margin)
            window = padded[top:min(H, y + o + tile + margin), left:min(W, x + o + tile + margin)]
            probs = detector.probabilities(images.to_float(window).astype(np.float32))
            core = probs[y + o - top:y + o - top + tile, x + o - left:x + o - left + tile]
            out[y:y + tile, x:x + tile] = core[:h - y, :w - x]
    return out


def damage_mask(probabilities, threshold=DetectOptions.threshold, grow=0):
    """A mask in the project's convention from damage probabilities: 1 = intact, 0 = damage.

    Parameters
    ----------
    probabilities : ndarray, shape (H, W), in [0, 1]
    threshold : float
        In (0, 1): a pixel at or above it is damage (by default ``DetectOptions.threshold``,
        what ``detect`` uses).
    grow : int
        Widen what is found by this many px (a disk), so that halos are filled too.

    Returns
    -------
    mask : ndarray of float32, shape (H, W)

    Example
    -------
    >>> p = np.zeros((5, 5), np.float32); p[2, 2] = 0.9
    >>> int(damage_mask(p).sum()), int(damage_mask(p, grow=1).sum())
    (24, 20)
    """
    if not 0 < threshold < 1:
        raise OptionError("threshold", f"{{threshold}} must be in (0, 1), not {threshold!r}")
    if isinstance(grow, bool) or not isinstance(grow, (int, np.integer)) or grow < 0:
        raise OptionError("grow", f"{{grow}} must be an integer >= 0, not {grow!r}")
    found = np.asarray(probabilities) >= threshold
    if grow:
        found = _dilate(found, grow)
    return (~found).astype(np.float32)


def _dilate(found, radius):
    import cv2

    size = 2 * radius + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(found.astype(np.uint8), disk).astype(bool)


def detection_scores(probabilities, truth, threshold=DetectOptions.threshold, tolerance=2):
    """Pixel precision, recall and F1 where a pixel counts as found within ``tolerance`` px,
    and the IoU (exact), of the damage found in ``probabilities`` against ``truth`` (bool).

    Returns a dict with the counts too, so that scores over many photos can be pooled.
    """
    found = np.asarray(probabilities) >= threshold
    truth = np.asarray(truth, bool)
    near_truth = _dilate(truth, tolerance) if tolerance else truth
    near_found = _dilate(found, tolerance) if tolerance else found
    counts = {"found": int(found.sum()), "true": int(truth.sum()),
              "found_near_true": int((found & near_truth).sum()),
              "true_near_found": int((truth & near_found).sum()),
              "intersection": int((found & truth).sum()),
              "union": int((found | truth).sum()), "pixels": int(truth.size)}
    return {**counts, **pooled_scores([counts])}


def pooled_scores(counts):
    """Precision, recall, F1, IoU and the share flagged, over the pooled counts of
    :func:`detection_scores`."""
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    precision = total["found_near_true"] / total["found"] if total["found"] else 1.0
    recall = total["true_near_found"] / total["true"] if total["true"] else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    iou = total["intersection"] / total["union"] if total["union"] else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou,
            "flagged": total["found"] / total["pixels"]}


def damage_overlay(photo, probabilities, threshold=DetectOptions.threshold,
                   colour=(255, 0, 255)):
    """``photo`` with the damage found painted in ``colour`` (at 60%): uint8 (H, W, 3)."""
    found = np.asarray(probabilities) >= threshold
    out = np.asarray(photo, np.float32).copy()
    out[found] = 0.4 * out[found] + 0.6 * np.asarray(colour, np.float32)
    return np.round(out).astype(np.uint8)


def evaluate_detector(detector, paths, seed=EVAL_SEED, threshold=DetectOptions.threshold,
                      tolerance=2, progress=False):
    """Scores of ``detector`` on synthetic damage over ``paths`` (photos kept out of training).

    Photo ``i`` gets damage drawn with the seed ``seed + i`` (one to three random kinds, the
    old-photo look on both sides).  Returns a dict: the pooled scores of
    :func:`detection_scores` on the damaged photos; ``flagged_clean``, the share of pixels
    flagged on the same photos aged and scanned without damage; ``flagged_original``, on the
    photos as they are; ``recall_by_kind`` over the photos where each kind was drawn alone or
    with others; and ``photos``, how many were scored.
    """
    from tqdm import tqdm

    damaged, clean, original, by_kind = [], [], [], {}
    for i, path in enumerate(tqdm(paths, disable=not progress, desc="evaluate detector")):
        try:
            photo = images.read_image(path)
        except images.ImageReadError:
            continue
        if min(photo.shape[:2]) < 16:
            continue
        example = damage_lib.damage_photo(photo, np.random.default_rng(seed + i))
        found = detect_damage(example.damaged, detector)
        counts = detection_scores(found, example.damage, threshold, tolerance)
        damaged.append(counts)
        for kind in example.kinds:
            by_kind.setdefault(kind, []).append(counts)
        clean.append(detection_scores(detect_damage(example.clean, detector),
                                      np.zeros(photo.shape[:2], bool), threshold, tolerance))
        original.append(detection_scores(detect_damage(photo, detector),
                                         np.zeros(photo.shape[:2], bool), threshold, tolerance))
    if not damaged:
        raise DcganError("no photo could be read to evaluate the detector on")
    scores = pooled_scores(damaged)
    scores["flagged_clean"] = pooled_scores(clean)["flagged"]
    scores["flagged_original"] = pooled_scores(original)["flagged"]
    scores["recall_by_kind"] = {k: pooled_scores(v)["recall"] for k, v in sorted(by_kind.items())}
    scores["photos"] = len(damaged)
    return scores


# ------------------------------------------------------------------------------ the data
def is_held_out(path):
    """Whether the photo ``path`` is kept out of training (see the module's docstring): a fixed
    hash of its name (of the person's folder for lfw), so the split never changes."""
    path = Path(path)
    parts = path.parts
    for root, every in HELD_OUT_EVERY.items():
        if root in parts:
            key = path.parent.name if root == "lfw" else path.name
            digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
            return digest[0] % every == 0
    return False


def split_photos(data_dirs):
    """``(train, held_out)`` lists of the photos under ``data_dirs``."""
    paths = []
    for d in data_dirs:
        found = images.find_images(d)
        if not found:
            raise OptionError("data_dirs", f"no photos ({images.IMAGE_KINDS}) in "
                                           f"{display_name(d)}")
        paths.extend(found)
    train = [p for p in paths if not is_held_out(p)]
    held = [p for p in paths if is_held_out(p)]
    return train, held


def _is_small(path):
    """LFW and UTKFace: small face crops (enlarged for training), not photos."""
    return "lfw" in Path(path).parts or "utkface" in Path(path).parts


def mine_hard_negatives(paths, detectors, tile, seed=None, progress=False):
    """Tiles of the clean training photos ``paths`` around what ``detectors`` flag on them.

    Each detector searches every large photo and :data:`MINE_SMALL_PHOTOS` small ones (drawn
    with ``seed``; small ones enlarged to ``tile`` as the sampler does); around each of its
    :data:`MINE_PER_PHOTO` largest false alarms a tile of ``tile`` px is cut, its centre moved
    by up to :data:`MINE_JITTER` px (a quarter of ``tile`` at most, so that the tile still holds
    the false alarm).  These are patterns of real photos that look like damage
    to a detector (glasses, printed shirts, flags, fabric, frames); training on them as clean
    (:class:`TileSampler`) teaches the next detector that they are not.

    Returns
    -------
    list of uint8 arrays (tile, tile, 3)
    """
    import cv2
    from tqdm import tqdm

    crops, jitter = [], min(MINE_JITTER, tile // 4)
    large = [p for p in paths if not _is_small(p)]
    every_small = [p for p in paths if _is_small(p)]
    for k, detector in enumerate(detectors):
        rng = np.random.default_rng(None if seed is None else [seed, k])
        small = every_small
        if len(small) > MINE_SMALL_PHOTOS:
            small = [small[i] for i in rng.choice(len(small), MINE_SMALL_PHOTOS, replace=False)]
        for path in tqdm(large + small, desc=f"hard negatives ({k + 1}/{len(detectors)})",
                         unit="photo", disable=not progress, dynamic_ncols=True, mininterval=5):
            try:
                photo = images.read_image(path)
            except images.ImageReadError:
                continue
            h, w = photo.shape[:2]
            if min(h, w) < tile:
                scale = _holding_scale(photo, tile)
                photo = cv2.resize(photo, (round(w * scale), round(h * scale)),
                                   interpolation=cv2.INTER_CUBIC)
                h, w = photo.shape[:2]
            flagged = detect_damage(photo, detector) >= 0.5
            _, _, stats, centres = cv2.connectedComponentsWithStats(flagged.astype(np.uint8))
            for part in np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:MINE_PER_PHOTO] + 1:
                if stats[part, cv2.CC_STAT_AREA] < MINE_MIN_AREA:
                    continue
                cx, cy = centres[part]
                y = int(np.clip(cy - tile / 2 + rng.integers(-jitter, jitter + 1),
                                0, h - tile))
                x = int(np.clip(cx - tile / 2 + rng.integers(-jitter, jitter + 1),
                                0, w - tile))
                crops.append(np.ascontiguousarray(photo[y:y + tile, x:x + tile]))
    return crops


def _holding_scale(photo, tile):
    """The scale below which ``photo`` no longer holds a tile of ``tile`` px (with 5% to
    spare): small photos are enlarged to it, for mining and for training alike."""
    return tile * 1.05 / min(photo.shape[:2])


class TileSampler:
    """Draws training tiles: a photo at a random scale, a crop, damage drawn on it; and, with
    ``negatives`` (:func:`mine_hard_negatives`), a ``negative_share`` of tiles cut from those,
    half of them left clean and half with damage drawn over them.

    With ``whole_share``, that share of batches are whole photos instead (:meth:`whole_batch`),
    with their own borders, at sizes :func:`detect_damage` meets on small photos and in its
    shrunk passes: ``multiple`` is the network's stride.

    With ``augment``, that share of the photos (and hard negatives) are varied before damage
    is drawn on them (:func:`varied`): turned by a multiple of 90 degrees, their hue, saturation
    and brightness changed, so that few large photos go further."""

    def __init__(self, paths, tile, clean_fraction=0.15, rng=None, negatives=(),
                 negative_share=0.0, whole_share=0.0, multiple=1, augment=0.0):
        self.tile, self.clean_fraction = tile, clean_fraction
        self.negatives, self.negative_share = list(negatives), negative_share
        self.whole_share, self.multiple = whole_share, multiple
        self.augment = augment
        self.rng = np.random.default_rng(rng)
        self.small, self.large = [], []
        for p in paths:
            (self.small if _is_small(p) else self.large).append(p)
        self._cache = {}
        self._pending = []

    def _photo(self, path):
        if path in self._cache:
            return self._cache[path]
        try:
            image = images.read_image(path)
        except images.ImageReadError:
            image = None
        if path in self.large:
            self._cache[path] = image
        return image

    def sample(self):
        """One example: (damaged tile uint8 (t, t, 3), damage label bool (t, t))."""
        if self.negatives and self.rng.random() < self.negative_share:
            return self._negative()
        while len(self._pending) < POOL_SIZE:
            self._refill()
        i = int(self.rng.integers(len(self._pending)))
        self._pending[i], self._pending[-1] = self._pending[-1], self._pending[i]
        return self._pending.pop()

    def _negative(self):
        """A hard negative: what it flagged is not damage, whatever is drawn over it."""
        rng = self.rng
        crop = self.negatives[int(rng.integers(len(self.negatives)))]
        if rng.random() < 0.5:
            crop = np.ascontiguousarray(crop[:, ::-1])
        if self.augment and rng.random() < self.augment:
            crop = varied(crop, rng)
        example = damage_lib.damage_photo(crop, rng, kinds=() if rng.random() < 0.5 else None,
                                          look=rng.random() >= NO_LOOK_FRACTION)
        return example.damaged, example.damage

    def _random_photo(self):
        """(whether it is a large one, a readable photo at least 32 px wide): half of them
        large photos and half small ones, where there are both."""
        rng = self.rng
        while True:
            large = bool(self.large) and (not self.small or rng.random() < 0.5)
            pool = self.large if large else self.small
            photo = self._photo(pool[rng.integers(len(pool))])
            if photo is not None and min(photo.shape[:2]) >= 32:
                return large, photo

    def _refill(self):
        """Damage one region of a photo and cut tiles from it into the pool."""
        import cv2

        rng, t = self.rng, self.tile
        large, photo = self._random_photo()
        h, w = photo.shape[:2]
        # several scales: large photos shrunk down to 0.3x, small faces enlarged up to 3x
        low = max(_holding_scale(photo, t), 0.3 if large else 1.0)
        scale = float(np.exp(rng.uniform(np.log(low), np.log(max(low, 1.0 if large else 3.0)))))
        if abs(scale - 1) > 0.02:
            photo = cv2.resize(photo, (max(t, round(w * scale)), max(t, round(h * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        h, w = photo.shape[:2]
        # damage a region up to several tiles wide, so that tiles see damage at the sizes it has
        # on a large photo, cut by their borders; the tiles cut from it pay for its cost
        top = min(h, w, MAX_REGION * t)
        region = int(np.exp(rng.uniform(np.log(t), np.log(max(t, top)))))
        y, x = rng.integers(0, h - region + 1), rng.integers(0, w - region + 1)
        crop = photo[y:y + region, x:x + region]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if self.augment and rng.random() < self.augment:
            crop = varied(crop, rng)
        kinds = () if rng.random() < self.clean_fraction else None
        # a share of photos as they are, no old look: modern photos must not look damaged
        look = rng.random() >= NO_LOOK_FRACTION
        example = damage_lib.damage_photo(np.ascontiguousarray(crop), rng, kinds=kinds,
                                          look=look)
        for _ in range(int(np.clip(round(region ** 2 / t ** 2 / 3), 1, 6))):
            y, x = rng.integers(0, region - t + 1), rng.integers(0, region - t + 1)
            self._pending.append((example.damaged[y:y + t, x:x + t],
                                  example.damage[y:y + t, x:x + t]))

    def whole_batch(self, n):
        """``n`` whole photos, damaged, all of one side drawn from :meth:`whole_sizes`: each
        photo is resized to between half a stride less than that side and the side (as
        :func:`detect_damage` pads a small photo to the stride), damage is drawn on it, and both
        sides are padded on the bottom and right by repeating their last row and column.
        The tiles of :meth:`sample` meet a photo's border only where a crop reaches it; a
        torn corner of a small whole photo was missed."""
        import cv2

        rng, m = self.rng, self.multiple
        side = int(rng.choice(self.whole_sizes()))
        pairs = []
        for _ in range(n):
            _, photo = self._random_photo()
            if self.augment and rng.random() < self.augment:
                photo = varied(photo, rng)
            h, w = (int(rng.integers(max(8, side - m // 2 + 1), side + 1)) for _ in range(2))
            shrink = h * w < photo.shape[0] * photo.shape[1]
            photo = cv2.resize(photo, (w, h),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            if rng.random() < 0.5:
                photo = photo[:, ::-1]
            kinds = () if rng.random() < self.clean_fraction else None
            example = damage_lib.damage_photo(np.ascontiguousarray(photo), rng, kinds=kinds,
                                              look=rng.random() >= NO_LOOK_FRACTION)
            pad = ((0, side - h), (0, side - w))
            pairs.append((np.pad(example.damaged, pad + ((0, 0),), mode="edge"),
                          np.pad(example.damage, pad, mode="edge")))
        return pairs

    def whole_sizes(self):
        """The sides of whole-photo batches: half, three quarters and all of the tile, in
        multiples of the stride (128, 192 and 256 px for the bundled detector's shape)."""
        m = self.multiple
        return sorted({max(m, -(-self.tile * k // (4 * m)) * m) for k in (2, 3, 4)})

    def batch(self, n):
        if self.whole_share and self.rng.random() < self.whole_share:
            pairs = self.whole_batch(n)
        else:
            pairs = [self.sample() for _ in range(n)]
        x = np.stack([images.to_float(p[0]) for p in pairs]).astype(np.float32)
        y = np.stack([p[1] for p in pairs]).astype(np.float32)[..., None]
        return x, y


def varied(photo, rng):
    """``photo`` (uint8 (H, W, 3)) turned by a random multiple of 90 degrees, its hue moved by up
    to :data:`AUGMENT_HUE` degrees, its saturation scaled by up to :data:`AUGMENT_SATURATION`
    either way and its brightness by a gamma up to :data:`AUGMENT_GAMMA` either way: training
    photos the detector has not seen as they are (a training tile, before damage is drawn)."""
    import cv2

    photo = np.rot90(photo, int(rng.integers(4)))
    hsv = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-AUGMENT_HUE, AUGMENT_HUE) / 2) % 180
    hsv[..., 1] *= np.exp(rng.uniform(-1, 1) * np.log(AUGMENT_SATURATION))
    gamma = np.exp(rng.uniform(-1, 1) * np.log(AUGMENT_GAMMA))
    hsv[..., 2] = 255 * (hsv[..., 2] / 255) ** gamma
    hsv = np.clip(np.rint(hsv), 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _prefetch(make, depth=4):
    """Run ``make()`` in a background thread, ``depth`` results ahead; yields them."""
    q = queue.Queue(depth)
    stop = threading.Event()

    def work():
        while not stop.is_set():
            item = make()
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            yield q.get()
    finally:
        stop.set()


# -------------------------------------------------------------------------------- training
class DetectorModel:
    """The network, its optimiser and the compiled step."""

    def __init__(self, options: DetectorOptions, precision):
        import keras
        import tensorflow as tf

        self.options = options
        self.network = build_detector(options.base_filters, options.levels, precision)
        warmup, total = 200, max(options.steps, 201)

        def lr(step):
            step = tf.cast(step, tf.float32)
            cosine = 0.55 + 0.45 * tf.cos(np.pi * tf.minimum(step / total, 1.0))
            return options.lr * tf.minimum(1.0, (step + 1) / warmup) * cosine

        self.optimizer = keras.optimizers.Adam(learning_rate=lambda: lr(self.optimizer.iterations))
        self.optimizer.build(self.network.trainable_variables)
        self._step = tf.function(self._train_step)

    def variables(self):
        """What a checkpoint holds, keyed by stable names (see :func:`train.save_checkpoint`)."""
        groups = (("d", self.network.weights), ("d_opt", self.optimizer.variables))
        return {f"{prefix}/{i:03d}": v for prefix, vs in groups for i, v in enumerate(vs)}

    def train_step(self, x, y):
        return self._step(x, y)

    def _train_step(self, x, y):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            logits = tf.cast(self.network(x, training=True), tf.float32)
            bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
            p = tf.sigmoid(logits)
            dice = 1 - (2 * tf.reduce_sum(p * y) + 1) / (tf.reduce_sum(p) + tf.reduce_sum(y) + 1)
            loss = bce + dice
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "bce": bce, "dice": dice}


@dataclasses.dataclass
class DetectorResult:
    step: int
    stopped: str          # "done", "interrupted"
    seconds: float
    history: list
    exit_code: int = 0
    notes: list = dataclasses.field(default_factory=list)  # warnings for the user
    hard_negatives: int = 0  # tiles mined from --hard-negatives


def train_detector(data_dirs, options: DetectorOptions | None = None):
    """Train (or resume training) the damage detector on synthetic damage over the photos in
    ``data_dirs``, holding out those :func:`is_held_out` picks.

    Ctrl-C or SIGTERM writes a checkpoint and returns.  Returns a :class:`DetectorResult`.

    Raises
    ------
    OptionError
        Naming ``out_dir``, if another run holds it (:class:`~dcgan_complete.files.FolderLock`).
    """
    o = options or DetectorOptions()
    out = ensure_writable_dir(o.out_dir, "out_dir")
    # a second run on the folder would write its checkpoints over this one's: it is refused
    with FolderLock(out, "train-detector", "out_dir"):
        return _train_detector_in(out, data_dirs, o)


def _train_detector_in(out, data_dirs, o):
    """:func:`train_detector`, once ``out`` is this run's."""
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from dcgan_complete.errors import (exit_code_of, signals_deferred, signals_ignored,
                                       signals_interrupt)
    from dcgan_complete.model import resolve_precision
    from dcgan_complete.train import list_checkpoints, restore_checkpoint, save_checkpoint

    train_paths, held = split_photos(data_dirs)
    if not train_paths:
        raise OptionError("data_dirs", "every photo in {data_dirs} is held out for evaluation")
    config = {"base_filters": o.base_filters, "levels": o.levels}
    config_path = out / DETECTOR_CONFIG
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        if {k: saved.get(k) for k in config} != config:
            raise OptionError(("base_filters", "levels", "out_dir"),
                              f"the detector in {display_name(out)} has {saved}: pass the same "
                              "{base_filters} and {levels} to resume, or another {out_dir}")
    write_text(config_path, json.dumps(config, indent=2) + "\n")
    write_text(out / "split.json", json.dumps(
        {"train": len(train_paths), "held_out": [str(p) for p in held]}, indent=1) + "\n")
    if o.seed is not None:
        keras.utils.set_random_seed(o.seed)
    precision = resolve_precision(o.precision)
    model = DetectorModel(o, precision)
    step, notes = 0, []
    for _, path in reversed(list_checkpoints(out)):
        try:
            step, _ = restore_checkpoint(model, path)
            break
        except DcganError as exc:
            notes.append(f"warning: skipped {exc}")
    if step == 0 and o.init is not None:
        grow_from(model.network, load_detector(o.init, "float32").model)
    negatives = []
    if o.hard_negatives:  # mined again on every resume: the same tiles from the same seed
        negatives = mine_hard_negatives(train_paths, [load_detector(p, precision)
                                                      for p in o.hard_negatives],
                                        o.tile, o.seed, o.progress)
        if not negatives:
            notes.append("note: the --hard-negatives detectors flag nothing on these photos")
    # a fresh stream of tiles on every resume, reproducible from the seed and the step
    sampler = TileSampler(train_paths, o.tile, o.clean_fraction,
                          rng=None if o.seed is None else [o.seed, step],
                          negatives=negatives, negative_share=o.hard_share,
                          whole_share=o.whole_share, multiple=2 ** o.levels,
                          augment=o.augment)
    batches = _prefetch(lambda: sampler.batch(o.batch_size))
    result = DetectorResult(step, "done", 0.0, [], notes=notes, hard_negatives=len(negatives))
    start = time.perf_counter()
    writer = tf.summary.create_file_writer(str(out / "logs"))
    bar = tqdm(total=o.steps, initial=step, unit="step", desc="train-detector",
               disable=not o.progress, dynamic_ncols=True, mininterval=5)

    def checkpoint():
        save_checkpoint(model, out, step, 0)
        save_detector(Detector(model.network, config), out)

    with signals_interrupt():
        try:
            while step < o.steps:
                x, y = next(batches)
                with signals_deferred():  # the weights and the count move together
                    metrics = {k: float(v) for k, v in model.train_step(x, y).items()}
                    if not np.isfinite(metrics["loss"]):
                        raise DcganError(f"the detector's loss diverged at step {step + 1}")
                    step += 1
                result.history.append(metrics)
                if step % LOG_EVERY == 0:
                    with writer.as_default(step=step):
                        for k, v in metrics.items():
                            tf.summary.scalar(k, v)
                    bar.set_postfix_str(f"loss {metrics['loss']:.3f}")
                bar.update()
                if step % o.checkpoint_every == 0:
                    checkpoint()
            checkpoint()
        except KeyboardInterrupt as exc:
            with signals_ignored():
                result.stopped, result.exit_code = "interrupted", exit_code_of(exc)
                checkpoint()
        finally:
            bar.close()
            writer.close()
            batches.close()
    result.step, result.seconds = step, time.perf_counter() - start
    return result


def locate_detector(detector=None, model_dir=None):
    """The damage detector a run uses: ``detector`` (a folder or ``detector.weights.h5``), else
    the one in the model folder ``model_dir``, else (with the bundled face model, ``model_dir``
    None) the bundled one.

    Raises
    ------
    OptionError
        Naming ``detector``, or saying how to get one when a model folder has none.
    """
    if detector is not None:
        return load_detector(detector)
    if model_dir is not None:
        if (Path(model_dir) / DETECTOR_FILE).is_file():
            return load_detector(model_dir)
        raise OptionError("detector", f"finding damage needs a damage detector, and "
                                      f"{display_name(model_dir)} has none ({DETECTOR_FILE}): "
                                      "train one with `dcgan-complete train-detector --out "
                                      f"{display_name(model_dir)}`, or pass the bundled one "
                                      f"with {{detector}} {display_name(BUNDLED_DIR)}")
    if not (BUNDLED_DIR / DETECTOR_FILE).is_file():
        raise OptionError("detector", "this installation has no bundled damage detector: "
                                      "train one with `dcgan-complete train-detector` and pass "
                                      "it with {detector}")
    return bundled_detector()


def _main(argv=None):
    """A development entry point until the command line has ``train-detector``:
    ``python -m dcgan_complete.detector OUT_DIR DATA_DIR... [--steps N] [--seed S] ...``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dcgan_complete.detector")
    parser.add_argument("out_dir")
    parser.add_argument("data_dirs", nargs="+")
    defaults = DetectorOptions()
    for field in dataclasses.fields(DetectorOptions):
        if field.name in ("out_dir", "progress"):
            continue
        kind = type(getattr(defaults, field.name)) if getattr(defaults, field.name) is not None \
            else int
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind,
                            default=getattr(defaults, field.name))
    args = vars(parser.parse_args(argv))
    data_dirs = args.pop("data_dirs")
    result = train_detector(data_dirs, DetectorOptions(**args))
    print(f"{result.stopped} at step {result.step} after {result.seconds:.0f} s")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(_main())
