"""Face crops: the box with a margin, at most 256 pixels, never outside the picture."""

import io

import numpy as np
import pytest
from PIL import Image

from media.services import crop_jpeg


def test_the_box_with_a_quarter_of_it_on_every_side():
    image = np.zeros((400, 400, 3), np.uint8)
    crop = Image.open(io.BytesIO(crop_jpeg(image, (100, 100, 200, 220))))
    assert crop.format == "JPEG" and crop.size == (150, 180)


def test_big_faces_are_scaled_down_and_edges_clipped():
    image = np.zeros((1000, 1200, 3), np.uint8)
    assert max(Image.open(io.BytesIO(crop_jpeg(image, (0, 0, 900, 900)))).size) == 256
    assert Image.open(io.BytesIO(crop_jpeg(image, (-20, -10, 30, 40)))).size == (43, 53)


def test_a_box_outside_the_picture_is_refused():
    with pytest.raises(ValueError):
        crop_jpeg(np.zeros((50, 50, 3), np.uint8), (60, 60, 80, 80))
