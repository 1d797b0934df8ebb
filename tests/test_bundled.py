import numpy as np

from dcgan_complete.search import bundled_model_dir
from dcgan_complete.model import load_models


def test_bundled_weights_load_and_generate_faces_in_range():
    directory = bundled_model_dir()
    assert directory is not None and (directory / "MODEL_CARD.md").is_file()
    size = sum(p.stat().st_size for p in directory.glob("*.weights.h5"))
    assert size <= 50e6  # G, D and the encoder: the package stays well under 60 MB
    config, generator, discriminator = load_models(directory)
    assert config.image_size == 64
    z = np.random.default_rng(0).uniform(-1, 1, (4, config.z_dim)).astype("float32")
    images = generator(z, training=False).numpy()
    assert images.shape == (4, 64, 64, 3)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0.1  # trained weights give varied pixels, not a constant
    assert discriminator(images, training=False).shape == (4, 1)


def test_model_card_names_data_terms_and_training():
    card = (bundled_model_dir() / "MODEL_CARD.md").read_text()
    for needed in ("non-commercial", "LFW", "UTKFace", "dcgan-complete train", "steps",
                   "dcgan-complete train-encoder"):
        assert needed in card


def test_bundled_encoder_guesses_z_in_the_box():
    from dcgan_complete.masks import center_mask
    from dcgan_complete.options import CompleteOptions
    from dcgan_complete.search import Completer

    completer = Completer.from_checkpoint(bundled_model_dir(), CompleteOptions(seed=0))
    assert completer.init == "encoder" and completer.options.iterations == 50
    z = np.random.default_rng(1).uniform(-1, 1, (4, completer.z_dim)).astype("float32")
    faces = ((completer.generator(z, training=False).numpy() + 1) * 127.5).astype("uint8")
    guess = completer.encode(faces, [center_mask(64)] * 4)
    assert guess.shape == (4, completer.z_dim) and np.abs(guess).max() <= 1
    # the guess is nearer the true z than a random point is (mean squared error 2/3)
    assert np.mean((guess - z) ** 2) < 0.45
