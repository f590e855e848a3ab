"""No person is given to two faces of one photo: the closer face keeps them."""

from recognition.search import Candidate, assign_unique

OBAMA = 1
BIDEN = 2


def c(subject_id, distance, votes=1):
    return Candidate(subject_id, {OBAMA: "obama", BIDEN: "biden"}[subject_id], distance, votes)


def test_two_faces_wanting_the_same_person_the_closer_one_keeps_them():
    candidates = [
        [c(OBAMA, 0.45)],  # a look-alike, further away
        [c(OBAMA, 0.30)],  # the real one
    ]
    assert assign_unique(candidates, groups=[0, 0], threshold=0.6) == [None, c(OBAMA, 0.30)]


def test_the_loser_falls_back_to_its_next_candidate():
    candidates = [
        [c(OBAMA, 0.40), c(BIDEN, 0.50)],
        [c(OBAMA, 0.20)],
    ]
    assert assign_unique(candidates, groups=[0, 0], threshold=0.6) == [c(BIDEN, 0.50), c(OBAMA, 0.20)]


def test_candidates_beyond_the_threshold_are_unknown():
    candidates = [[c(OBAMA, 0.61)], [c(BIDEN, 0.59)]]
    assert assign_unique(candidates, groups=[0, 0], threshold=0.6) == [None, c(BIDEN, 0.59)]


def test_the_same_person_may_appear_in_different_frames():
    candidates = [[c(OBAMA, 0.3)], [c(OBAMA, 0.35)], [c(OBAMA, 0.4)]]
    assert assign_unique(candidates, groups=[0, 1, 1], threshold=0.6) == [c(OBAMA, 0.3), c(OBAMA, 0.35), None]


def test_no_faces_no_assignments():
    assert assign_unique([], groups=[], threshold=0.6) == []
