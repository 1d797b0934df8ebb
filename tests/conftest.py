"""Shared fixtures: a tiny generated image folder and one tiny model trained once per session.

Tiny runs are pinned to one thread: with the other core busy, two threads made tiny ops far slower.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from dcgan_complete.images import write_image  # noqa: E402

TINY = dict(image_size=16, z_dim=8, gf_dim=8, df_dim=8, batch_size=8)


def make_faces(n, size, seed=0):
    """Simple face-like uint8 images: a skin-coloured ellipse with two dark eyes on a background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        bg = rng.uniform(0, 255, 3)
        skin = rng.uniform([150, 100, 80], [255, 200, 170])
        cx, cy = rng.uniform(0.45, 0.55, 2)
        face = ((x - cx) / 0.32) ** 2 + ((y - cy) / 0.42) ** 2 < 1
        img = np.where(face[..., None], skin, bg)
        for ex in (cx - 0.13, cx + 0.13):
            eye = ((x - ex) / 0.07) ** 2 + ((y - cy + 0.1) / 0.05) ** 2 < 1
            img[eye] = 30
        out.append(np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """48 face-like 16x16 PNGs."""
    root = tmp_path_factory.mktemp("tiny_faces")
    for i, image in enumerate(make_faces(48, 16)):
        write_image(root / f"face_{i:03d}.png", image)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_dataset, tmp_path_factory):
    """A tiny model trained once for the session (60 steps); tests must not change it."""
    from dcgan_complete.train import TrainOptions, Trainer

    ckpt = tmp_path_factory.mktemp("tiny_model")
    options = TrainOptions(max_steps=60, checkpoint_dir=str(ckpt), sample_every=1000,
                           checkpoint_every=1000, seed=0, progress=False, **TINY)
    Trainer(str(tiny_dataset), options).fit()
    return ckpt
