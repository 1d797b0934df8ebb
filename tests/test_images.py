import os

import imageio.v3 as iio
import numpy as np

from dcgan_complete.images import read_image, to_float, to_uint8, write_animation, write_image


def test_written_files_get_normal_modes_and_no_temporaries(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # mkstemp would have left 0600
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_animation_keeps_every_distinct_frame(tmp_path):
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 100, 200)]
    write_animation(tmp_path / "a.gif", frames)
    assert len(iio.imread(tmp_path / "a.gif", index=None)) == 3


def test_pixel_mapping_round_trips_exactly(tmp_path):
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(to_uint8(to_float(pixels)), pixels)
    write_image(tmp_path / "p.png", pixels)
    assert np.array_equal(read_image(tmp_path / "p.png"), pixels)


def test_shrink_brings_the_longer_side_down_and_leaves_a_smaller_image_as_it_is():
    from dcgan_complete.images import shrink

    image = np.zeros((300, 1000, 3), np.uint8)
    image[:, 500:] = 200
    small = shrink(image, 250)
    assert small.shape == (75, 250, 3)
    assert small[:, :120].max() == 0 and small[:, 130:].min() == 200
    assert shrink(image, 1000) is image
