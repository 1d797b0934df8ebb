"""The DCGAN generator and discriminator (Radford et al. 2016), as Keras 3 layers.

The number of layers follows from the image size: the generator starts from a 4x4 map and doubles
it with 5x5 stride-2 transposed convolutions until it reaches ``image_size``; the discriminator
mirrors it.  Channel widths double away from the image and are capped at 8x the base width, so the
64 px model is exactly the reference one (G: 4x4x8gf -> 8x8x4gf -> 16x16x2gf -> 32x32xgf ->
64x64x3; D: df, 2df, 4df, 8df).  This module knows nothing about training.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import keras
from keras import layers

MIN_SIZE, MAX_SIZE = 16, 128
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
KERNEL = 5


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the shapes of the networks' weights."""

    image_size: int = 64
    z_dim: int = 100
    gf_dim: int = 64
    df_dim: int = 64

    def __post_init__(self):
        if self.image_size not in powers_of_two():
            raise ValueError(
                f"image size must be a power of two from {MIN_SIZE} to {MAX_SIZE}, "
                f"not {self.image_size}")
        for name in ("z_dim", "gf_dim", "df_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")

    @property
    def n_up(self):
        """Number of stride-2 layers between 4x4 and the image size."""
        return int(math.log2(self.image_size)) - 2

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def powers_of_two():
    return [2 ** k for k in range(int(math.log2(MIN_SIZE)), int(math.log2(MAX_SIZE)) + 1)]


def _widths(base, n):
    """Widths of the n hidden feature maps, from the image side inwards: base, 2base, ... <= 8base."""
    return [base * min(2 ** i, 8) for i in range(n)]


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _bn(dtype):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype)


def build_generator(config: ModelConfig, dtype="float32"):
    """z (batch, z_dim) in [-1, 1] -> images (batch, size, size, 3) in [-1, 1].

    ``dtype`` is a Keras dtype policy name ("float32" or "mixed_bfloat16"); the output layer
    always computes in float32.
    """
    widths = _widths(config.gf_dim, config.n_up)[::-1]  # 4x4 map first
    model = keras.Sequential(name="generator")
    model.add(keras.Input((config.z_dim,)))
    model.add(layers.Dense(4 * 4 * widths[0], use_bias=False, kernel_initializer=_init(),
                           dtype=dtype))
    model.add(layers.Reshape((4, 4, widths[0])))
    model.add(_bn(dtype))
    model.add(layers.ReLU(dtype=dtype))
    for width in widths[1:]:
        model.add(layers.Conv2DTranspose(width, KERNEL, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=_init(), dtype=dtype))
        model.add(_bn(dtype))
        model.add(layers.ReLU(dtype=dtype))
    model.add(layers.Conv2DTranspose(3, KERNEL, strides=2, padding="same",
                                     kernel_initializer=_init(), dtype=dtype))
    model.add(layers.Activation("tanh", dtype="float32"))
    return model


def build_discriminator(config: ModelConfig, dtype="float32"):
    """images (batch, size, size, 3) in [-1, 1] -> logits (batch, 1), float32."""
    widths = _widths(config.df_dim, config.n_up)
    model = keras.Sequential(name="discriminator")
    model.add(keras.Input((config.image_size, config.image_size, 3)))
    for i, width in enumerate(widths):
        model.add(layers.Conv2D(width, KERNEL, strides=2, padding="same", use_bias=i == 0,
                                kernel_initializer=_init(), dtype=dtype))
        if i > 0:
            model.add(_bn(dtype))
        model.add(layers.LeakyReLU(negative_slope=0.2, dtype=dtype))
    model.add(layers.Flatten(dtype=dtype))
    model.add(layers.Dense(1, kernel_initializer=_init(), dtype="float32"))
    return model


def step_flops(config: ModelConfig, batch_size, g_steps=2):
    """Floating-point operations of one training step (1 D + g_steps G updates), from layer shapes.

    Counts the multiply-adds (x2) of the dense and convolution layers only.  A forward pass costs F,
    a backward pass 2F.  The D update runs G forward once and D forward+backward on the real and the
    fake batch; each G update runs G forward+backward and D forward+backward.
    """
    g, d = forward_flops(config)
    d_update = g + 2 * 3 * d
    g_update = 3 * g + 3 * d
    return batch_size * (d_update + g_steps * g_update)


def forward_flops(config: ModelConfig):
    """Per-image forward FLOPs of (generator, discriminator)."""
    widths_g = _widths(config.gf_dim, config.n_up)[::-1] + [3]
    g = 2 * config.z_dim * 16 * widths_g[0]
    side = 4
    for c_in, c_out in zip(widths_g[:-1], widths_g[1:]):
        side *= 2
        # a stride-2 transposed conv does k*k*c_in*c_out MACs per input pixel
        g += 2 * (side // 2) ** 2 * KERNEL * KERNEL * c_in * c_out
    widths_d = [3] + _widths(config.df_dim, config.n_up)
    d, side = 0, config.image_size
    for c_in, c_out in zip(widths_d[:-1], widths_d[1:]):
        side //= 2
        d += 2 * side ** 2 * KERNEL * KERNEL * c_in * c_out
    d += 2 * 16 * widths_d[-1]
    return g, d


# ------------------------------------------------------------------ portable weights on disk
CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.weights.h5"
DISCRIMINATOR_FILE = "discriminator.weights.h5"


def export_weights(directory, generator, discriminator):
    """Write both networks' weights as Keras ``.weights.h5`` files, each atomically."""
    directory = Path(directory)
    for model, name in ((generator, GENERATOR_FILE), (discriminator, DISCRIMINATOR_FILE)):
        tmp = directory / f".tmp-{os.getpid()}-{name}"
        model.save_weights(str(tmp))
        os.replace(tmp, directory / name)


def load_models(directory, dtype="float32"):
    """Build the generator and discriminator described by ``directory/config.json`` and load their
    exported weights.  Returns ``(config, generator, discriminator)``.

    Raises
    ------
    FileNotFoundError
        If the directory has no config or no exported weights.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file() or not (directory / GENERATOR_FILE).is_file():
        raise FileNotFoundError(f"{directory} holds no trained model "
                                f"(expected {CONFIG_FILE} and {GENERATOR_FILE})")
    config = ModelConfig.from_dict(json.loads(config_path.read_text())["model"])
    generator = build_generator(config, dtype)
    discriminator = build_discriminator(config, dtype)
    generator.load_weights(str(directory / GENERATOR_FILE))
    if (directory / DISCRIMINATOR_FILE).is_file():
        discriminator.load_weights(str(directory / DISCRIMINATOR_FILE))
    return config, generator, discriminator


PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def resolve_precision(precision="auto"):
    """``auto``: mixed bfloat16 on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX) and
    no GPU, where it trained as well as float32 and 1.4-1.6x faster; float32 otherwise."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "float32"
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
