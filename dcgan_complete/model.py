"""The DCGAN generator and discriminator (Radford et al. 2016), as Keras 3 layers.

The number of layers follows from the image size: the generator starts from a 4x4 map and doubles
it with 5x5 stride-2 transposed convolutions until it reaches ``image_size``; the discriminator
mirrors it.  Channel widths double away from the image and are capped at 8x the base width, so the
64 px model is exactly the reference one (G: 4x4x8gf -> 8x8x4gf -> 16x16x2gf -> 32x32xgf ->
64x64x3; D: df, 2df, 4df, 8df).  This module knows nothing about training.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
from keras import layers

from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import atomic_write, display_name
from dcgan_complete.options import ModelConfig, TrainOptions

__all__ = ["ModelConfig", "build_generator", "build_discriminator", "load_models",
           "export_weights", "resolve_precision", "auto_precision", "forward_flops",
           "step_flops"]

BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
KERNEL = 5


def _widths(base, n):
    """Widths of the n hidden feature maps, from the image side inwards: base, 2base, ... <= 8base."""
    return [base * min(2 ** i, 8) for i in range(n)]


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _bn(dtype, synchronized=False):
    # Synchronized batch norm all-reduces the batch statistics across the replicas of a
    # tf.distribute strategy, so that N replicas normalise by the global batch as one device
    # would.  Its weights are the same, so checkpoints do not depend on it.
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype,
                                     synchronized=synchronized)


def build_generator(config: ModelConfig, dtype="float32", synchronized=False):
    """z (batch, z_dim) in [-1, 1] -> images (batch, size, size, 3) in [-1, 1].

    ``dtype`` is a Keras dtype policy name ("float32" or "mixed_bfloat16"); the output layer
    always computes in float32.  ``synchronized``: batch norm computes its statistics over all
    replicas of the current tf.distribute strategy (for training on several devices); the
    weights are the same either way.
    """
    widths = _widths(config.gf_dim, config.n_up)[::-1]  # 4x4 map first
    model = keras.Sequential(name="generator")
    model.add(keras.Input((config.z_dim,)))
    model.add(layers.Dense(4 * 4 * widths[0], use_bias=False, kernel_initializer=_init(),
                           dtype=dtype))
    model.add(layers.Reshape((4, 4, widths[0])))
    model.add(_bn(dtype, synchronized))
    model.add(layers.ReLU(dtype=dtype))
    for width in widths[1:]:
        model.add(layers.Conv2DTranspose(width, KERNEL, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=_init(), dtype=dtype))
        model.add(_bn(dtype, synchronized))
        model.add(layers.ReLU(dtype=dtype))
    model.add(layers.Conv2DTranspose(3, KERNEL, strides=2, padding="same",
                                     kernel_initializer=_init(), dtype=dtype))
    model.add(layers.Activation("tanh", dtype="float32"))
    return model


def _strided_convolutions(name, config, channels, base, dtype, synchronized=False):
    """The discriminator's stack, shared with the encoder: (size, size, channels) through 5x5
    stride-2 convolutions of widths base, 2 base, ... (at most 8x), batch norm on all but the
    first, LeakyReLU 0.2, then flattened."""
    model = keras.Sequential(name=name)
    model.add(keras.Input((config.image_size, config.image_size, channels)))
    for i, width in enumerate(_widths(base, config.n_up)):
        model.add(layers.Conv2D(width, KERNEL, strides=2, padding="same", use_bias=i == 0,
                                kernel_initializer=_init(), dtype=dtype))
        if i > 0:
            model.add(_bn(dtype, synchronized))
        model.add(layers.LeakyReLU(negative_slope=0.2, dtype=dtype))
    model.add(layers.Flatten(dtype=dtype))
    return model


def build_discriminator(config: ModelConfig, dtype="float32", synchronized=False):
    """images (batch, size, size, 3) in [-1, 1] -> logits (batch, 1), float32.

    ``synchronized`` as for :func:`build_generator`.
    """
    model = _strided_convolutions("discriminator", config, 3, config.df_dim, dtype, synchronized)
    model.add(layers.Dense(1, kernel_initializer=_init(), dtype="float32"))
    return model


def build_encoder(config: ModelConfig, ef_dim=32, dtype="float32"):
    """(masked image in [-1, 1] with holes 0, mask 1 = known) as (batch, size, size, 4) -> z.

    The discriminator's convolution stack (widths ``ef_dim``, 2 ``ef_dim``, ..., at most 8x),
    then a dense layer and tanh, so z lies in [-1, 1] as the generator expects.
    """
    model = _strided_convolutions("encoder", config, 4, ef_dim, dtype)
    model.add(layers.Dense(config.z_dim, kernel_initializer=_init(), dtype="float32"))
    model.add(layers.Activation("tanh", dtype="float32"))
    return model


def step_flops(config: ModelConfig, batch_size, g_steps=TrainOptions.g_steps):
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
ENCODER_FILE = "encoder.weights.h5"


def export_weights(directory, generator, discriminator):
    """Write both networks' weights as Keras ``.weights.h5`` files, each atomically."""
    directory = Path(directory)
    for model, name in ((generator, GENERATOR_FILE), (discriminator, DISCRIMINATOR_FILE)):
        with atomic_write(directory / name) as tmp:
            model.save_weights(str(tmp))


def read_config(directory):
    """The :class:`ModelConfig` recorded in ``directory/config.json``.

    Raises
    ------
    DcganError
        If the file is missing, is not JSON, or does not describe a model.
    """
    path = Path(directory) / CONFIG_FILE
    try:
        return ModelConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))["model"])
    except FileNotFoundError:
        raise DcganError(f"{display_name(Path(directory))} holds no trained model (expected "
                         f"{CONFIG_FILE} and {GENERATOR_FILE})") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DcganError(f"{display_name(path)} is not a model description ({reason})") from None


def _load_weights(model, path):
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py and Keras raise many types for damaged or mismatched files
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DcganError(f"cannot load {display_name(path)}: damaged, or not the weights of the "
                         f"model that {CONFIG_FILE} describes ({reason[:200]})") from None


def load_models(directory, dtype="float32", need_discriminator=True):
    """Build the generator and discriminator described by ``directory/config.json`` and load their
    exported weights.  Returns ``(config, generator, discriminator)``.

    Parameters
    ----------
    need_discriminator : bool
        Whether ``discriminator.weights.h5`` must be there.  Without it the discriminator keeps
        its random initial weights, which is only harmless when it is not used (``lam`` = 0).

    Raises
    ------
    DcganError
        If the folder has no config or weights, or one of them is damaged or does not match.
    """
    directory = Path(directory)
    config = read_config(directory)
    generator_path = directory / GENERATOR_FILE
    discriminator_path = directory / DISCRIMINATOR_FILE
    if not generator_path.is_file():
        raise DcganError(f"{display_name(directory)} holds no trained model (expected "
                         f"{CONFIG_FILE} and {GENERATOR_FILE})")
    if need_discriminator and not discriminator_path.is_file():
        # only the search's perceptual loss needs it, weighted by its option lam
        raise OptionError("lam", f"{display_name(directory)} has no {DISCRIMINATOR_FILE}: the "
                                 "perceptual loss needs the discriminator (with {lam} 0 the "
                                 "search does without it)")
    generator = build_generator(config, dtype)
    discriminator = build_discriminator(config, dtype)
    _load_weights(generator, generator_path)
    if discriminator_path.is_file():
        _load_weights(discriminator, discriminator_path)
    return config, generator, discriminator


def load_encoder(directory, config: ModelConfig, dtype="float32"):
    """The encoder of the model in ``directory`` (``encoder.weights.h5``, its width recorded in
    ``config.json``), or None when the model has none."""
    directory = Path(directory)
    if not (directory / ENCODER_FILE).is_file():
        return None
    try:
        recorded = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))["encoder"]
        ef_dim = int(recorded["ef_dim"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DcganError(f"{display_name(directory / CONFIG_FILE)} does not describe the encoder "
                         f"in {ENCODER_FILE} ({exc.__class__.__name__}: {exc})") from None
    encoder = build_encoder(config, ef_dim, dtype)
    _load_weights(encoder, directory / ENCODER_FILE)
    return encoder


# GPUs of compute capability 8.0 (Ampere) and later compute in bfloat16 on their tensor cores.
BF16_COMPUTE_CAPABILITY = (8, 0)


def resolve_precision(precision="auto"):
    """The compute precision ``precision`` stands for on this machine (see :func:`auto_precision`
    for ``auto``); the other values stand for themselves."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                    for gpu in tf.config.list_physical_devices("GPU")]
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        flags = ""
    return auto_precision(capabilities, flags)


def auto_precision(gpu_capabilities, cpu_flags=""):
    """What ``--precision auto`` picks on a machine with GPUs of these compute capabilities
    (``(major, minor)`` tuples, None where unknown) and these CPU flags (``/proc/cpuinfo``).

    With GPUs: mixed bfloat16 when every one has compute capability 8.0 or later, float32
    otherwise (a run on several devices uses one precision).  Without: mixed bfloat16 on a CPU
    with native bfloat16 arithmetic (AVX512-BF16 or AMX), where it trained as well as float32
    and 1.4-1.6x faster; float32 otherwise.

    Example
    -------
    >>> auto_precision([(8, 0), (9, 0)]), auto_precision([(7, 5), (8, 6)])
    ('mixed_bfloat16', 'float32')
    >>> auto_precision([], "fpu avx512f avx512_bf16"), auto_precision([], "fpu avx2")
    ('mixed_bfloat16', 'float32')
    """
    if gpu_capabilities:
        capable = all(c is not None and tuple(c) >= BF16_COMPUTE_CAPABILITY
                      for c in gpu_capabilities)
        return "mixed_bfloat16" if capable else "float32"
    flags = set(cpu_flags.split())
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"
