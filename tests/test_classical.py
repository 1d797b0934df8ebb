"""The classical fills: Telea and Navier-Stokes look only at a window around the hole, which
must give exactly the fill of OpenCV on the whole image."""
import cv2
import numpy as np
import pytest
from skimage import data

from dcgan_complete.classical import TELEA_RADIUS, navier_stokes_fill, telea_fill


@pytest.mark.parametrize("fill, flag", [(telea_fill, cv2.INPAINT_TELEA),
                                        (navier_stokes_fill, cv2.INPAINT_NS)])
def test_the_window_gives_the_whole_image_fill(fill, flag):
    image = np.ascontiguousarray(data.astronaut())
    known = np.ones(image.shape[:2], bool)
    known[100:140, 200:260] = False
    known[300:304, 150:400] = False      # a scratch, apart from the first hole
    known[0:3, 500:512] = False          # at the image's edge
    whole = cv2.inpaint(image, (~known).astype(np.uint8) * 255, TELEA_RADIUS, flag)
    expected = np.where(known[..., None], image, whole)
    assert np.array_equal(fill(image, known), expected)


def test_no_hole_leaves_the_image_as_it_is():
    image = np.ascontiguousarray(data.astronaut()[:64, :64])
    mask = np.ones((64, 64))
    assert np.array_equal(telea_fill(image, mask), image)
