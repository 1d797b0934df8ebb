"""The search's frozen networks compute what the trained Keras models compute."""
import numpy as np
import pytest
import tensorflow as tf

from dcgan_complete.frozen import FrozenNetwork, subpixel_kernel
from dcgan_complete.model import ModelConfig, build_generator, load_models


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("side", [4, 7])
def test_subpixel_convolution_equals_transposed_convolution(k, side):
    rng = np.random.default_rng(k * 10 + side)
    kernel = rng.normal(0, 1, (k, k, 3, 6)).astype(np.float32)  # (k, k, out, in)
    x = rng.normal(0, 1, (2, side, side, 6)).astype(np.float32)
    expected = tf.nn.conv2d_transpose(x, kernel, [2, 2 * side, 2 * side, 3], 2, "SAME")
    got = tf.nn.depth_to_space(tf.nn.conv2d(x, subpixel_kernel(kernel), 1, "SAME"), 2)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_subpixel_kernel_refuses_other_sizes():
    with pytest.raises(ValueError, match="3x3 or 5x5"):
        subpixel_kernel(np.zeros((4, 4, 3, 6)))


def _with_gradient(network, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = network(x)
        total = tf.reduce_sum(tf.sin(3.0 * y))  # every output element with its own weight
    return y.numpy(), tape.gradient(total, x).numpy()


def test_frozen_networks_match_the_trained_models(tiny_model_dir):
    _, generator, discriminator = load_models(tiny_model_dir, "float32")
    # the trained model's batch norm has moved away from its initial statistics
    moving_mean = [w for w in generator.weights if "moving_mean" in w.path][0].numpy()
    assert np.abs(moving_mean).max() > 1e-3
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (5, generator.inputs[0].shape[-1])).astype(np.float32)
    images = rng.uniform(-1, 1, (5,) + tuple(generator.outputs[0].shape[1:])).astype(np.float32)
    for model, x in ((generator, z), (discriminator, images)):
        frozen = FrozenNetwork(model, "float32")
        y, dx = _with_gradient(frozen, x)
        y_ref, dx_ref = _with_gradient(lambda v: model(v, training=False), x)
        np.testing.assert_allclose(y, y_ref, atol=1e-5)
        assert np.linalg.norm(dx - dx_ref) <= 1e-5 * np.linalg.norm(dx_ref)
    # the image-side layers take the sub-pixel forms
    assert FrozenNetwork(generator).steps[-2][0] == "subpixel"
    assert FrozenNetwork(discriminator).steps[0][0] == "conv_subpixel_gradient"


def test_bfloat16_frozen_network_stays_near_float32(tiny_model_dir):
    _, generator, _ = load_models(tiny_model_dir, "mixed_bfloat16")
    z = np.random.default_rng(1).uniform(-1, 1, (4, generator.inputs[0].shape[-1]))
    frozen = FrozenNetwork(generator, "mixed_bfloat16")
    assert frozen.steps[0][2].dtype == tf.bfloat16
    out = frozen(tf.constant(z, tf.float32))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), FrozenNetwork(generator, "float32")(
        tf.constant(z, tf.float32)).numpy(), atol=0.05)


def test_unknown_layers_are_refused():
    import keras

    model = build_generator(ModelConfig(image_size=16, z_dim=8, gf_dim=8, df_dim=8))
    model.add(keras.layers.Dropout(0.5))
    with pytest.raises(ValueError, match="cannot freeze a Dropout layer"):
        FrozenNetwork(model)
