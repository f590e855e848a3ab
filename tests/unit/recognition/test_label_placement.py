"""Where the name under a face box goes, so that it stays on the picture (photo and video)."""

import pytest

from recognition.pages import label_classes


@pytest.mark.parametrize(("box", "expected"), [
    ([10, 10, 110, 110], ""),  # top left: under the box, from its left edge
    ([500, 10, 620, 110], "label-end"),  # right half: from its right edge, toward the middle
    ([10, 300, 110, 350], "label-above"),  # at the bottom: above the box
    ([560, 320, 630, 358], "label-end label-above"),  # bottom right corner
    ([250, 100, 390, 200], ""),  # centred a little left: as a rule
])
def test_labels_run_toward_the_middle_of_the_picture(box, expected):
    assert label_classes(box, 640, 360) == expected
