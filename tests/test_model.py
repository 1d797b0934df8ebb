import pytest

from dcgan_complete.model import (ModelConfig, build_discriminator, build_generator,
                                  forward_flops, load_models)
from dcgan_complete.options import image_sizes


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_every_size_builds_with_the_right_shapes(size):
    config = ModelConfig(image_size=size, z_dim=7, gf_dim=4, df_dim=4)
    g, d = build_generator(config), build_discriminator(config)
    assert g.output_shape == (None, size, size, 3)
    assert d.output_shape == (None, 1)
    # 4x4 -> size by doublings, one transposed conv per doubling; D mirrors it
    n = size.bit_length() - 1 - 2
    assert sum(type(l).__name__ == "Conv2DTranspose" for l in g.layers) == n
    assert sum(type(l).__name__ == "Conv2D" for l in d.layers) == n


def test_64px_model_matches_the_reference_widths():
    config = ModelConfig()  # 64 px, z 100, gf = df = 64
    g, d = build_generator(config), build_discriminator(config)
    g_channels = [l.output.shape[-1] for l in g.layers if type(l).__name__ == "ReLU"]
    assert g_channels == [512, 256, 128, 64]
    d_channels = [l.filters for l in d.layers if type(l).__name__ == "Conv2D"]
    assert d_channels == [64, 128, 256, 512]
    bn = [l for l in g.layers if type(l).__name__ == "BatchNormalization"][0]
    assert bn.momentum == 0.9 and bn.epsilon == 1e-5
    # FLOP count from shapes: three 5x5 (de)convolutions of 105 MFLOP each dominate both nets
    g_flops, d_flops = forward_flops(config)
    assert 0.32e9 < g_flops < 0.33e9 and 0.32e9 < d_flops < 0.33e9


def test_bad_sizes_are_rejected():
    assert image_sizes() == [16, 32, 64, 128]
    for bad in (8, 48, 256):
        with pytest.raises(ValueError, match="power of two"):
            ModelConfig(image_size=bad)


def test_bfloat16_generator_outputs_float32_in_range():
    import numpy as np

    g = build_generator(ModelConfig(image_size=16, z_dim=4, gf_dim=4), "mixed_bfloat16")
    out = g(np.random.uniform(-1, 1, (2, 4)).astype("float32"), training=False)
    assert out.dtype == "float32" and float(abs(out).numpy().max()) <= 1.0


def test_exported_weights_reload(tiny_model_dir):
    import numpy as np

    config, g, d = load_models(tiny_model_dir)
    assert config.image_size == 16
    z = np.zeros((1, config.z_dim), "float32")
    _, g2, _ = load_models(tiny_model_dir)
    assert np.array_equal(g(z, training=False).numpy(), g2(z, training=False).numpy())


def test_missing_model_is_a_clear_error(tmp_path):
    from dcgan_complete.errors import DcganError

    with pytest.raises(DcganError, match="no trained model"):
        load_models(tmp_path)


def test_auto_precision_follows_the_cpu():
    from dcgan_complete.model import resolve_precision

    assert resolve_precision("float32") == "float32"
    flags = open("/proc/cpuinfo").read()
    expected = "mixed_bfloat16" if "avx512_bf16" in flags or "amx_bf16" in flags else "float32"
    assert resolve_precision("auto") == expected
