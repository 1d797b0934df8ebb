"""The trained networks frozen for the search: the same functions, computed with less work.

The latent search (:mod:`dcgan_complete.search`) runs the generator and the discriminator
forwards and backwards, to the input, hundreds of times with fixed weights and batch norm in
inference mode.  A :class:`FrozenNetwork` computes exactly what the Keras model computes
(to float32 round-off; in bfloat16, to that precision's round-off) in a cheaper form:

* batch norm in inference mode is a per-channel affine map, so it is folded into the weights and
  bias of the dense or convolution layer before it;
* the weights are cast to the compute precision once, instead of on every call;
* a stride-2 transposed convolution to a few channels (the generator's last layer, which makes
  the RGB image, and the gradient of the discriminator's first convolution) runs as a sub-pixel
  convolution: one stride-1 3x3 convolution to 4x the channels, then ``depth_to_space``.  The
  kernels are rearranged so that the result is the same; oneDNN computes a 3-channel transposed
  convolution at about 1/6 of its usual rate, and this form at about twice that op's speed.

Measured on a 2-core AVX512-BF16 CPU, batch 64, 64 px, bfloat16: the search ran at about 9
iterations/s instead of 7.3-7.8 with the Keras models (``bench/complete_speed.py``;
``bench/complete_vs_original.py`` compares the whole call with the original design).

The weights are non-trainable variables, created in the current ``tf.distribute`` scope, so a
search split between replicas finds them on every device.

Example
-------
>>> g = FrozenNetwork(generator, "mixed_bfloat16")           # doctest: +SKIP
>>> images = g(z)                                              # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["FrozenNetwork", "subpixel_kernel", "SUBPIXEL_MAX_CHANNELS"]

# a stride-2 transposed convolution to at most this many channels runs as a sub-pixel one
SUBPIXEL_MAX_CHANNELS = 8


def subpixel_kernel(kernel):
    """The 3x3 stride-1 convolution kernel that, followed by ``depth_to_space(2)``, computes the
    stride-2 ``SAME`` transposed convolution with ``kernel`` (k, k, out, in), k = 3 or 5.

    The transposed convolution adds input pixel i times tap t to output pixel 2i + t - p, with
    p = (k - 2) // 2 its padding.  Output pixel 2j + d (d = 0, 1) therefore takes input pixels
    j - 1, j, j + 1, each through one tap (or none): tap d + p + 2 (1 - a) for window position a.

    Returns an array (3, 3, in, 4 * out) whose output channel (2 dy + dx) * out + c makes
    channel c of the output pixels of parity (dy, dx), the order ``depth_to_space`` reads.
    """
    kernel = np.asarray(kernel)
    k, _, out, cin = kernel.shape
    if k not in (3, 5) or kernel.shape[1] != k:
        raise ValueError(f"expected a 3x3 or 5x5 kernel, got {kernel.shape}")
    pad = (k - 2) // 2
    result = np.zeros((3, 3, cin, 4 * out), kernel.dtype)
    for dy in range(2):
        for dx in range(2):
            block = slice((2 * dy + dx) * out, (2 * dy + dx + 1) * out)
            for a in range(3):
                ty = dy + pad + 2 * (1 - a)
                for b in range(3):
                    tx = dx + pad + 2 * (1 - b)
                    if 0 <= ty < k and 0 <= tx < k:
                        result[a, b, :, block] = kernel[ty, tx].T
    return result


class FrozenNetwork:
    """A frozen copy of a trained Keras ``Sequential`` generator or discriminator.

    Calling it maps a batch to the model's output in float32, as ``model(x, training=False)``
    does.  ``compute`` is a Keras dtype policy name ("float32" or "mixed_bfloat16"); layers
    the model computes in float32 (its output layers) stay float32.

    Understood layers: Dense, Reshape, BatchNormalization (after a dense or convolution layer),
    ReLU, LeakyReLU, Conv2D and Conv2DTranspose (5x5 or 3x3, stride 2, ``same``), Flatten and a
    tanh Activation, which is what :mod:`dcgan_complete.model` builds.
    """

    def __init__(self, model, compute="float32"):
        dtype = tf.bfloat16 if compute == "mixed_bfloat16" else tf.float32
        pending = []  # [kind, kernel, bias, layer]: batch norm is folded in numpy first
        for layer in model.layers:
            kind = layer.__class__.__name__
            weights = [w.numpy() for w in layer.weights]
            if kind in ("Dense", "Conv2D", "Conv2DTranspose"):
                _check_conv(layer, kind)
                pending.append([kind, weights[0], weights[1] if len(weights) > 1 else None,
                                layer])
            elif kind == "BatchNormalization":
                _fold_batch_norm(_last_affine(pending), layer, *weights)
            else:
                pending.append([kind, None, None, layer])
        # (operation, its dtype, weights, bias, argument) per layer
        self.steps = [_step(kind, kernel, bias, layer, dtype, first=i == 0)
                      for i, (kind, kernel, bias, layer) in enumerate(pending)]

    def __call__(self, x):
        for op, dtype, w, bias, arg in self.steps:
            if dtype is not None:
                x = tf.cast(x, dtype)
            if op == "matmul":
                x = tf.matmul(x, w)
            elif op == "conv":
                x = tf.nn.conv2d(x, w, 2, "SAME")
            elif op == "conv_subpixel_gradient":
                x = _conv_subpixel_gradient(x, w, arg)
            elif op == "transposed":
                side = tf.shape(x)[1] * 2
                x = tf.nn.conv2d_transpose(x, w, tf.stack([tf.shape(x)[0], side, side, arg]),
                                           2, "SAME")
            elif op == "subpixel":
                x = tf.nn.depth_to_space(tf.nn.conv2d(x, w, 1, "SAME"), 2)
            elif op == "reshape":
                x = tf.reshape(x, arg)
            elif op == "flatten":
                x = tf.reshape(x, (tf.shape(x)[0], -1))
            elif op == "relu":
                x = tf.nn.relu(x)
            elif op == "leaky_relu":
                x = tf.nn.leaky_relu(x, arg)
            elif op == "tanh":
                x = tf.tanh(x)
            if bias is not None:
                x = tf.nn.bias_add(x, bias)
        return tf.cast(x, tf.float32)


def _step(kind, kernel, bias, layer, dtype, first):
    """One layer as (operation, dtype to cast its input to or None, weights, bias, argument)."""
    own = tf.float32 if layer.dtype_policy.compute_dtype == "float32" else dtype
    if kind in ("Dense", "Conv2D", "Conv2DTranspose"):
        bias = None if bias is None else _constant(bias, own)
        if kind == "Dense":
            return "matmul", own, _constant(kernel, own), bias, None
        few = kernel.shape[2] <= SUBPIXEL_MAX_CHANNELS  # (k, k, in, out) or (k, k, out, in)
        if kind == "Conv2D" and first and few:
            # the image's convolution: its gradient is a transposed convolution to 3 channels.
            # As a transposed convolution's kernel (k, k, out, in) this kernel is in place.
            return ("conv_subpixel_gradient", own, _constant(kernel, own), bias,
                    _constant(subpixel_kernel(kernel), own))
        if kind == "Conv2D":
            return "conv", own, _constant(kernel, own), bias, None
        if few:
            return "subpixel", own, _constant(subpixel_kernel(kernel), own), bias, None
        return "transposed", own, _constant(kernel, own), bias, kernel.shape[2]
    if kind == "Reshape":
        return "reshape", None, None, None, (-1,) + tuple(layer.target_shape)
    if kind == "Flatten":
        return "flatten", None, None, None, None
    if kind == "ReLU":
        return "relu", None, None, None, None
    if kind == "LeakyReLU":
        return "leaky_relu", None, None, None, float(layer.negative_slope)
    if kind == "Activation" and layer.activation.__name__ == "tanh":
        return "tanh", own, None, None, None
    raise ValueError(f"cannot freeze a {kind} layer ({layer.name})")


def _check_conv(layer, kind):
    if kind == "Dense":
        return
    if layer.strides != (2, 2) or layer.padding != "same" or layer.kernel_size not in \
            ((3, 3), (5, 5)) or layer.data_format != "channels_last":
        raise ValueError(f"cannot freeze {layer.name}: expected a 3x3 or 5x5, stride-2, "
                         f"'same', channels-last convolution")


def _last_affine(pending):
    for entry in reversed(pending):
        if entry[0] in ("Dense", "Conv2D", "Conv2DTranspose"):
            return entry
        if entry[0] != "Reshape":
            break
    raise ValueError("batch norm must follow a dense or convolution layer")


def _fold_batch_norm(entry, layer, gamma, beta, mean, variance):
    """Fold y = gamma (x - mean) / sqrt(variance + eps) + beta into the layer before it.

    Weights that overflow float32 once folded give infinities, as the unfolded network's
    outputs would: the search then stops with its one-line "diverged" error, not a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        _fold_into(entry, gamma / np.sqrt(variance + layer.epsilon), beta, mean)


def _fold_into(entry, scale, beta, mean):
    shift = beta - mean * scale
    kind, kernel, bias = entry[:3]
    if kind == "Dense":  # the dense output is reshaped to (4, 4, C): channels vary fastest
        repeats = kernel.shape[1] // len(scale)
        scale, shift = np.tile(scale, repeats), np.tile(shift, repeats)
        kernel = kernel * scale
    elif kind == "Conv2DTranspose":  # kernel (k, k, out, in)
        kernel = kernel * scale[None, None, :, None]
    else:  # Conv2D, kernel (k, k, in, out)
        kernel = kernel * scale
    entry[1] = kernel.astype(np.float32)
    entry[2] = (shift if bias is None else bias * scale + shift).astype(np.float32)


def _constant(value, dtype):
    return tf.Variable(tf.cast(tf.constant(value, tf.float32), dtype), trainable=False)


@tf.custom_gradient
def _conv_subpixel_gradient(x, kernel, subpixel):
    """A stride-2 convolution whose gradient to its input, a transposed convolution to few
    channels, runs as the equivalent sub-pixel convolution (``subpixel``)."""
    def gradient(dy, variables=None):  # the weights are constants: no gradients for them
        dx = tf.nn.depth_to_space(tf.nn.conv2d(dy, subpixel, 1, "SAME"), 2)
        return (dx, None, None), [None] * len(variables or ())
    return tf.nn.conv2d(x, kernel, 2, "SAME"), gradient
