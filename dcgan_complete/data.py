"""Training data: find the images, decode them once in parallel, feed them through tf.data.

Decoding goes through ``images.read_image`` (the package's one loader) in a thread pool; Pillow
releases the GIL while it decodes and resizes, so both cores work.  A set that fits in memory
(``memory_limit`` bytes of uint8 pixels) is decoded once and kept; a larger one is validated once
and decoded again on every pass from the list of good files.  A file that cannot be read, or is
larger than the pixel limit (:func:`images.megapixel_limit`, checked before decoding), is skipped
and reported in the summary; the others train.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name, is_inside
from dcgan_complete.images import (IMAGE_KINDS, MAX_MEGAPIXELS_VARIABLE, PIXEL_SCALE,
                                   ImageReadError, ImageTooLargeError, center_crop_resize,
                                   find_images, megapixel_limit, read_image)

DEFAULT_MEMORY_LIMIT = 4 * 2 ** 30


@dataclasses.dataclass
class DatasetSummary:
    """What happened to the files of a training set."""

    root: str
    found: int = 0
    used: int = 0
    resized: int = 0
    unreadable: list = dataclasses.field(default_factory=list)
    too_large: list = dataclasses.field(default_factory=list)  # over the pixel limit, not decoded
    in_memory: bool = True

    def describe(self):
        text = f"{self.used} images from {display_name(self.root)}"
        if self.resized:
            text += f" ({self.resized} centre-cropped/resized)"
        if self.unreadable:
            text += f"; skipped {len(self.unreadable)} unreadable ({_some(self.unreadable)})"
        if self.too_large:
            text += (f"; skipped {len(self.too_large)} over the {megapixel_limit():g}-megapixel "
                     f"limit ({_some(self.too_large)}; {MAX_MEGAPIXELS_VARIABLE} raises it)")
        text += "; kept in memory" if self.in_memory else "; streamed from disk"
        return text


def _some(paths, shown=3):
    """The first few file names of ``paths``, printable, with "..." for the rest."""
    names = ", ".join(display_name(Path(p).name) for p in paths[:shown])
    return names + ("..." if len(paths) > shown else "")


def find_training_images(root, exclude=()):
    """The image files under ``root``; a missing folder or one without images is a DcganError.

    Files in the folders ``exclude`` are left out: a run's own output folders (sample grids,
    checkpoints, logs) may lie inside its dataset, and must not become training data of the
    next run.
    """
    root = Path(root)
    if not root.is_dir():
        raise DcganError(f"dataset folder {display_name(root)} does not exist")
    paths = find_images(root)
    inside = [folder for folder in exclude if is_inside(folder, root)]
    if inside:  # resolving every path costs time, so only when an output folder is in the set
        paths = [p for p in paths if not any(is_inside(p, folder) for folder in inside)]
    if not paths:
        also = " (outside the run's own output folders)" if inside else ""
        raise DcganError(f"no {IMAGE_KINDS} images found under {display_name(root)}{also}")
    return paths


def _load_square(path, size):
    """(uint8 image of size x size, whether it had to be cropped/resized, None), or
    (None, False, the ImageReadError) for a file that cannot be used."""
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return None, False, exc
    changed = image.shape[:2] != (size, size)
    return center_crop_resize(image, size), changed, None


def _workers():
    return max(1, min(8, os.cpu_count() or 1))


def load_images(paths, size, memory_limit=DEFAULT_MEMORY_LIMIT, progress=True, root=""):
    """Decode ``paths`` to ``size`` x ``size`` RGB in parallel.

    Returns
    -------
    images : uint8 array (N, size, size, 3), or None when the set is larger than ``memory_limit``
    good_paths : list of the paths that decoded
    summary : DatasetSummary
    """
    from tqdm import tqdm

    keep = len(paths) * size * size * 3 <= memory_limit
    summary = DatasetSummary(root=str(root), found=len(paths), in_memory=keep)
    megapixel_limit()  # a bad DCGAN_COMPLETE_MAX_MEGAPIXELS fails here, once, in one line
    images, good, first_error = [], [], None
    with ThreadPoolExecutor(_workers()) as pool:
        results = pool.map(lambda p: _load_square(p, size), paths)
        bar = tqdm(results, total=len(paths), desc="decoding", unit="img", disable=not progress,
                   leave=False)
        for path, (image, changed, error) in zip(paths, bar):
            if error is not None:
                first_error = first_error or error
                (summary.too_large if isinstance(error, ImageTooLargeError)
                 else summary.unreadable).append(str(path))
                continue
            good.append(path)
            summary.resized += changed
            if keep:
                images.append(image)
    summary.used = len(good)
    if not good:
        raise DcganError(f"none of the {len(paths)} image files under {display_name(root)} "
                         f"could be read: {first_error}")
    return (np.stack(images) if keep else None), good, summary


def make_dataset(images, good_paths, size, batch_size, seed=None, z_dim=None,
                 input_context=None):
    """An endless tf.data pipeline of float32 batches in [-1, 1], reshuffled every epoch.

    ``images`` is the in-memory uint8 array from ``load_images`` or None to stream ``good_paths``.
    Batches are always full (the images left over at the end of an epoch start the next batch).

    Parameters
    ----------
    z_dim : int, optional
        With it, every image comes with its own latent vector, uniform in [-1, 1]^z_dim and drawn
        from ``seed`` and the image's position in the shuffled stream, and the elements are
        ``(images, z)``: a batch gets the same z however it is split between replicas.
    input_context : tf.distribute.InputContext, optional
        For one input pipeline of a distributed run (from
        ``strategy.distribute_datasets_from_function``): the pipeline takes every
        ``num_input_pipelines``-th image of the shuffled stream, before decoding, so no worker
        decodes another's images and every replica sees other images each step; its batches
        are one replica's share of ``batch_size``.  Every pipeline needs the same ``seed`` (not
        None), so that they shuffle alike.
    """
    import tensorflow as tf

    n = len(good_paths)
    if batch_size > n:
        raise OptionError("batch_size",
                          f"{{batch_size}} {batch_size} is larger than the dataset ({n} images)")
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    # (image index, position in the stream): the position makes the image's z
    stream = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    stream = tf.data.Dataset.zip((stream.repeat(), tf.data.Dataset.counter()))
    if z_dim:
        z_seed = 0 if seed is None else seed

        def draw_z(index, position):
            return index, tf.random.stateless_uniform([z_dim], seed=tf.stack([z_seed, position]),
                                                      minval=-1.0, maxval=1.0)

        stream = stream.map(draw_z, num_parallel_calls=tf.data.AUTOTUNE)
    if input_context is not None and input_context.num_input_pipelines > 1:
        stream = stream.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if images is not None:
        table = tf.constant(images)
        ds = stream.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda idx, extra: (tf.gather(table, idx), extra),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        path_list = [str(p) for p in good_paths]

        def load(i):
            image, _, _ = _load_square(path_list[int(i)], size)
            if image is None:  # the file changed since it was validated
                image = np.zeros((size, size, 3), np.uint8)
            return image

        ds = stream.map(lambda i, extra: (tf.ensure_shape(tf.numpy_function(load, [i], tf.uint8),
                                                          (size, size, 3)), extra),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        ds = ds.batch(batch_size, drop_remainder=True)

    def to_float(x):
        return tf.cast(x, tf.float32) / PIXEL_SCALE - 1.0

    if z_dim:
        ds = ds.map(lambda x, z: (to_float(x), z), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, _: to_float(x), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
