"""Which face of a photo an enrolment takes: the caller's choice, else the one clear face."""

from __future__ import annotations

import pytest

from recognition.enrollment import EnrollmentError, choose_face


def face(quality: float, x: float = 0.0) -> dict:
    return {"box": [x, 0.0, x + 10.0, 10.0], "score": 0.99, "quality": quality}


def test_one_clear_face_is_chosen_even_beside_background_detections():
    portrait, background = face(0.93), face(0.32, x=50)
    assert choose_face([portrait, background], None, min_quality=0.4) is portrait


def test_several_clear_faces_need_a_choice_and_the_error_lists_them_all():
    faces = [face(0.8), face(0.7, x=20), face(0.2, x=40)]
    with pytest.raises(EnrollmentError) as refused:
        choose_face(faces, None, min_quality=0.4)
    assert refused.value.code == "several_faces"
    assert refused.value.message.startswith("2 faces were found in this photo")
    assert [(c["index"], c["quality"]) for c in refused.value.faces] == [(0, 0.8), (1, 0.7), (2, 0.2)]


def test_only_unclear_faces_are_refused_but_can_still_be_chosen():
    faces = [face(0.3), face(0.25, x=20)]
    with pytest.raises(EnrollmentError) as refused:
        choose_face(faces, None, min_quality=0.4)
    assert refused.value.code == "low_quality"
    assert "face_index" in refused.value.message
    assert choose_face(faces, 1, min_quality=0.4) is faces[1]


def test_no_face_and_an_index_out_of_range_are_refused():
    with pytest.raises(EnrollmentError, match="No face was found") as none:
        choose_face([], None, min_quality=0.4)
    with pytest.raises(EnrollmentError) as out_of_range:
        choose_face([face(0.9)], 1, min_quality=0.4)
    assert none.value.code == "no_face"
    assert out_of_range.value.code == "face_index_out_of_range"


def test_the_floor_comes_from_settings(settings):
    faces = [face(0.9), face(0.5, x=20)]
    settings.SIGHTLINE_ENROL_MIN_QUALITY = 0.6
    assert choose_face(faces, None) is faces[0]
    settings.SIGHTLINE_ENROL_MIN_QUALITY = 0.4
    with pytest.raises(EnrollmentError):
        choose_face(faces, None)
