"""Face tracks in video (recognition/engine/tracker.py): synthetic scenes with exact tracks, the
assignment against brute force, scene cuts, and the shared videos through the real engine."""

from __future__ import annotations

import csv
import itertools
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from recognition.engine.tracker import (
    SampledFace,
    Track,
    TrackerConfig,
    assign,
    box_iou,
    colour_histogram,
    hungarian,
    sampled_faces,
    scene_cuts,
    track_faces,
)

DIM = 128
SAMPLE_SECONDS = 0.5  # 2 fps, the pipeline's default sampling
MATCH_THRESHOLD = 0.6  # dlib's same-person distance


# -- synthetic scenes -----------------------------------------------------------------------------
class Scene:
    """Detections built sample by sample. People are random unit vectors (about 1.41 apart);
    each face is its person's vector plus noise of an exact length (0.1: frames of one person
    are about 0.14 apart, as in a steady video)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.detections: list[SampledFace] = []

    def direction(self) -> np.ndarray:
        vector = self.rng.normal(size=DIM)
        return vector / np.linalg.norm(vector)

    def person(self, like: np.ndarray | None = None, distance: float = 0.0) -> np.ndarray:
        """A new person, or one exactly ``distance`` from ``like`` (a look-alike)."""
        return self.direction() if like is None else like + distance * self.direction()

    def add(self, sample: int, person: np.ndarray, box, noise: float = 0.1, quality: float = 0.5) -> int:
        embedding = (person + noise * self.direction()).astype(np.float32)
        self.detections.append(SampledFace(sample, sample * SAMPLE_SECONDS, tuple(float(v) for v in box),
                                         embedding, quality))
        return len(self.detections) - 1

    def track(self, cuts=None, config=None) -> list[tuple[int, ...]]:
        return [t.detections for t in track_faces(self.detections, cuts=cuts, config=config)]


def box(x: float, y: float = 100.0, size: float = 80.0) -> tuple[float, float, float, float]:
    return (x, y, x + size, y + size)


# -- motion -----------------------------------------------------------------------------------------
def test_straight_motion_is_one_track_with_its_summary():
    scene = Scene()
    alice = scene.person()
    qualities = [0.3, 0.5, 0.9, 0.4, 0.9, 0.2, 0.6, 0.1]
    for sample, quality in enumerate(qualities):
        scene.add(sample, alice, box(100 + 20 * sample), quality=quality)

    [track] = track_faces(scene.detections)

    assert isinstance(track, Track) and track.detections == tuple(range(8)) and len(track) == 8
    assert (track.start, track.end) == (0.0, 3.5)
    assert track.best == 2, "the highest quality, the earliest of equals"
    weights = np.array(qualities)[:, None]
    expected = (np.stack([d.embedding for d in scene.detections]) * weights).sum(0) / weights.sum()
    assert track.embedding.dtype == np.float32 and track.embedding.shape == (DIM,)
    np.testing.assert_allclose(track.embedding, expected, atol=1e-6)


def test_accelerating_motion_is_followed_by_the_predicted_box():
    # strong_distance=0: no link on the embedding alone, so every link needs box overlap.
    config = TrackerConfig(strong_distance=0.0)
    scene = Scene(1)
    alice = scene.person()
    x, xs = 100.0, []
    for step in (0, 10, 25, 40, 55, 70, 85, 100, 115):
        x += step
        xs.append(x)
    for sample, position in enumerate(xs):
        scene.add(sample, alice, box(position))
    # Late steps are longer than the 80-pixel face: the last box does not overlap the next one
    # at all, only the box moved on at the track's velocity does.
    assert box_iou(np.array(box(xs[-2])), np.array(box(xs[-1]))) == 0.0

    assert scene.track(config=config) == [tuple(range(len(xs)))]


@pytest.mark.parametrize("occluded", [False, True], ids=["both-seen", "one-hidden-at-the-crossing"])
def test_crossing_paths_keep_their_people(occluded):
    scene = Scene(2)
    alice, bob = scene.person(), scene.person()
    own = {"alice": [], "bob": []}
    for sample in range(11):
        own["alice"].append(scene.add(sample, alice, box(100 + 60 * sample)))
        if not (occluded and sample == 5):  # at sample 5 both stand at x=400
            own["bob"].append(scene.add(sample, bob, box(700 - 60 * sample)))

    assert scene.track() == [tuple(own["alice"]), tuple(own["bob"])]


# -- gaps, cuts, someone else -------------------------------------------------------------------------
def occluded_scene(missed: int) -> tuple[Scene, list[int], list[int]]:
    """A person seen in samples 0–3, hidden for ``missed`` samples, then seen three more times."""
    scene = Scene(3)
    alice = scene.person()
    before = [scene.add(sample, alice, box(200 + 5 * sample)) for sample in range(4)]
    after = [scene.add(sample, alice, box(200 + 5 * sample)) for sample in range(4 + missed, 7 + missed)]
    return scene, before, after


def test_an_occlusion_within_max_gap_is_bridged():
    scene, before, after = occluded_scene(missed=TrackerConfig().max_gap)
    assert scene.track() == [tuple(before + after)]


def test_an_occlusion_beyond_max_gap_starts_a_new_track():
    scene, before, after = occluded_scene(missed=TrackerConfig().max_gap + 1)
    assert scene.track() == [tuple(before), tuple(after)]
    assert scene.track(config=TrackerConfig(max_gap=4)) == [tuple(before + after)]


def test_a_scene_cut_ends_every_track():
    scene = Scene(4)
    alice = scene.person()
    ids = [scene.add(sample, alice, box(300)) for sample in (0, 1, 2, 3, 5, 6)]
    no_cut = [False] * 7

    assert scene.track(cuts=no_cut) == [tuple(ids)]
    assert scene.track(cuts=[False, False, True, False, False, False, False]) == [tuple(ids[:2]), tuple(ids[2:])]
    # A cut at a sample where the face is not seen (sample 4) still ends the track.
    assert scene.track(cuts=[False] * 4 + [True, False, False]) == [tuple(ids[:4]), tuple(ids[4:])]


@pytest.mark.parametrize("distance", [0.72, 0.8, 1.0])
def test_someone_else_stepping_into_the_spot_is_a_new_track(distance):
    scene = Scene(5)
    alice = scene.person()
    look_alike = scene.person(like=alice, distance=distance)
    first = [scene.add(sample, alice, box(300), noise=0.05) for sample in range(5)]
    second = [scene.add(sample, look_alike, box(300), noise=0.05) for sample in range(5, 10)]

    assert scene.track() == [tuple(first), tuple(second)]


def test_the_same_person_in_the_same_spot_stays_one_track():
    """The control for the look-alike swap: same boxes, same noise, same person."""
    scene = Scene(5)
    alice = scene.person()
    ids = [scene.add(sample, alice, box(300), noise=0.05) for sample in range(10)]
    assert scene.track() == [tuple(ids)]


@pytest.mark.parametrize("missed, linked", [(0, True), (1, True), (2, False)])
def test_a_strong_match_links_without_overlap_only_within_a_short_gap(missed, linked):
    scene = Scene(6)
    alice = scene.person()
    first = scene.add(0, alice, box(100))
    jumped = scene.add(1 + missed, alice, box(600))  # fast motion: 400 px away, no overlap
    assert np.linalg.norm(scene.detections[first].embedding - scene.detections[jumped].embedding) < 0.45

    assert scene.track() == ([(first, jumped)] if linked else [(first,), (jumped,)])


def test_a_weaker_match_needs_overlap():
    scene = Scene(7)
    alice = scene.person()
    # Faces 0.36 from the person: about 0.5 from each other, in the 0.45–0.65 band.
    first = scene.add(0, alice, box(100), noise=0.36)
    far = scene.add(1, alice, box(600), noise=0.36)
    near = scene.add(2, alice, box(100), noise=0.36)
    distance = np.linalg.norm(scene.detections[first].embedding - scene.detections[far].embedding)
    assert 0.45 < distance < 0.6

    assert scene.track() == [(first, near), (far,)]


def test_two_faces_in_one_sample_never_share_a_track():
    scene = Scene(8)
    alice, bob, carol = scene.person(), scene.person(), scene.person()
    start = scene.add(0, alice, box(300))
    # The detector reports Alice twice (a duplicate box on her hair), both close to her.
    duplicate = scene.add(1, alice, (310, 80, 360, 140), noise=0.25)
    good = scene.add(1, alice, box(305), noise=0.1)
    # Two people side by side, overlapping boxes.
    pair = [(scene.add(s, carol, box(1000)), scene.add(s, bob, box(1050))) for s in (3, 4, 5)]

    assert scene.track() == [(start, good), (duplicate,), tuple(a for a, _ in pair), tuple(b for _, b in pair)]


def test_empty_input_and_a_single_detection():
    assert track_faces([]) == []
    scene = Scene(9)
    scene.add(4, scene.person(), box(10), quality=0.0)

    [track] = track_faces(scene.detections)
    assert track.detections == (0,) and track.best == 0 and track.start == track.end == 2.0
    np.testing.assert_allclose(track.embedding, scene.detections[0].embedding)


def test_input_order_does_not_change_the_tracks():
    scene = Scene(10)
    alice, bob = scene.person(), scene.person()
    for sample in range(8):
        scene.add(sample, alice, box(100 + 60 * sample))
        scene.add(sample, bob, box(600 - 60 * sample))
    expected = {frozenset(t) for t in scene.track()}
    order = np.random.default_rng(0).permutation(len(scene.detections))
    shuffled = [scene.detections[i] for i in order]

    tracks = track_faces(shuffled)
    assert {frozenset(int(order[i]) for i in t.detections) for t in tracks} == expected
    for t in tracks:
        assert [shuffled[i].sample for i in t.detections] == sorted(shuffled[i].sample for i in t.detections)


def test_thousands_of_detections_in_well_under_a_second():
    scene = Scene(11)
    people = [scene.person() for _ in range(5)]
    own = [[] for _ in people]
    for sample in range(1000):
        for p, person in enumerate(people):
            if (sample + p) % 7 == 3:  # one missed detection in seven
                continue
            x = 300 * p + 100 * np.sin(sample / 20 + p)
            own[p].append(scene.add(sample, person, box(x, 200 + 50 * np.cos(sample / 30))))
    assert len(scene.detections) > 4000

    began = time.perf_counter()
    tracks = track_faces(scene.detections)
    elapsed = time.perf_counter() - began
    assert sorted(t.detections for t in tracks) == sorted(tuple(o) for o in own)
    assert elapsed < 1.0, f"{len(scene.detections)} detections took {elapsed:.2f} s"


def test_a_crowd_is_assigned_quickly_and_correctly():
    scene = Scene(12)
    people = [scene.person() for _ in range(60)]
    own = [[scene.add(sample, person, box(90 * (p % 20) + 3 * sample, 100 + 120 * (p // 20), size=70))
            for sample in range(40)] for p, person in enumerate(people)]
    began = time.perf_counter()
    tracks = track_faces(scene.detections)
    assert time.perf_counter() - began < 1.0
    assert sorted(t.detections for t in tracks) == sorted(tuple(o) for o in own)


# -- API surface --------------------------------------------------------------------------------------
def test_config_validates_and_describes_itself():
    default = TrackerConfig()
    assert default.describe() != TrackerConfig(max_gap=2).describe()
    assert default.strong_distance < MATCH_THRESHOLD < default.max_distance < 0.7
    np.testing.assert_allclose(default.tolerated_distance(np.array([0.0, 0.25, 0.5, 1.0])),
                               [0.45, 0.55, 0.65, 0.65])
    for bad in ({"max_gap": -1}, {"strong_distance": 0.7}, {"full_overlap_iou": 0.0}, {"motion_weight": -1}):
        with pytest.raises(ValueError):
            TrackerConfig(**bad)


def test_invalid_inputs_are_refused():
    scene = Scene(13)
    scene.add(3, scene.person(), box(0))
    with pytest.raises(ValueError, match="cuts cover 3 samples"):
        track_faces(scene.detections, cuts=[False] * 3)
    with pytest.raises(ValueError):
        track_faces([SampledFace(-1, 0.0, box(0), np.zeros(DIM, np.float32), 0.5)])


def test_sampled_faces_numbers_the_samples():
    face = SimpleNamespace(box=(1, 2, 3, 4), embedding=np.ones(DIM), quality=0.7)
    detections = sampled_faces([0.0, 0.5, 1.0], [[face, face], [], [face]])
    assert [(d.sample, d.timestamp) for d in detections] == [(0, 0.0), (0, 0.0), (2, 1.0)]
    assert detections[0].box == (1.0, 2.0, 3.0, 4.0) and detections[0].embedding.dtype == np.float32
    with pytest.raises(ValueError):
        sampled_faces([0.0], [[], []])


# -- assignment -----------------------------------------------------------------------------------------
def brute_force(cost: np.ndarray) -> tuple[int, float]:
    """(most allowed pairs, least total cost among those) over every matching."""
    rows, cols = cost.shape
    best = (0, 0.0)
    for choice in itertools.product(*[[None, *range(cols)] for _ in range(rows)]):
        used = [c for c in choice if c is not None]
        if len(used) != len(set(used)) or any(c is not None and not np.isfinite(cost[r, c])
                                                for r, c in enumerate(choice)):
            continue
        total = sum(cost[r, c] for r, c in enumerate(choice) if c is not None)
        if (len(used), -total) > (best[0], -best[1]):
            best = (len(used), total)
    return best


@pytest.mark.parametrize("solver", [hungarian, assign])
def test_the_assignment_is_optimal_on_random_matrices(solver):
    rng = np.random.default_rng(14)
    for _ in range(150):
        shape = tuple(rng.integers(1, 6, size=2))
        cost = rng.uniform(0, 2, size=shape)
        cost[rng.random(shape) < 0.4] = np.inf
        pairs = solver(cost)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        count, total = brute_force(cost)
        assert len(pairs) == count
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(total)


def test_the_assignment_links_more_than_greedy_would():
    # Greedy takes the cheapest pair (0, 0) first and leaves track 1 without a face.
    cost = np.array([[0.2, 0.3], [0.35, np.inf]])
    assert hungarian(cost) == assign(cost) == [(0, 1), (1, 0)]
    assert assign(np.full((2, 3), np.inf)) == [] and hungarian(np.zeros((0, 3))) == []


# -- scene cuts -----------------------------------------------------------------------------------------
def shot(kind: str, frame: int, rng) -> np.ndarray:
    """A 36×64 frame of a synthetic shot: 'hall' (cool blue-grey, a walker crossing), 'stage'
    (dark with a warm spotlight moving) or 'fade' (the hall getting gradually darker)."""
    ys, xs = np.mgrid[0:36, 0:64]
    if kind == "stage":
        image = np.zeros((36, 64, 3)) + (20, 12, 10)
        spot = (xs - 20 - 3 * frame) ** 2 + (ys - 18) ** 2 < 120
        image[spot] = (230, 160, 60)
    else:
        image = np.stack([90 + xs, 110 + xs, 150 + ys], axis=-1).astype(float)
        image[8:30, 4 * frame % 60:4 * frame % 60 + 6] = (60, 40, 30)  # a person walking
        if kind == "fade":
            image *= 1.0 - 0.04 * frame
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def test_scene_cuts_mark_where_the_shot_changes():
    rng = np.random.default_rng(15)
    frames = ([shot("hall", i, rng) for i in range(6)] + [shot("stage", i, rng) for i in range(5)]
              + [shot("hall", i, rng) for i in range(6, 10)] + [shot("fade", i, rng) for i in range(8)])
    cuts = scene_cuts(frames)
    # The cut back to the hall is one; the fade continues the hall's colours and is not.
    assert [i for i, cut in enumerate(cuts) if cut] == [6, 11]
    assert len(cuts) == len(frames) and cuts[0] is False


def test_scene_cuts_take_any_size_and_refuse_what_is_not_rgb():
    grey = np.full((36, 64, 3), 128, np.uint8)
    assert scene_cuts([]) == [] and scene_cuts([grey]) == [False]
    assert scene_cuts([grey, np.full((720, 1280, 3), 128, np.uint8)]) == [False, False]
    assert scene_cuts([grey, np.full((36, 64, 3), (200, 30, 30), np.uint8)]) == [False, True]
    assert colour_histogram(grey).sum() == pytest.approx(1.0)
    for bad in (np.zeros((36, 64), np.uint8), np.zeros((36, 64, 3), np.float32), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError):
            colour_histogram(bad)


# -- the shared videos ------------------------------------------------------------------------------------
HAMILTON = "videos/short_hamilton_clip.mp4"
FACENET = "videos/facenet_video.mp4"
# Where the Hamilton clip changes shot, in seconds (found by comparing every decoded frame with the
# one before it, and checked by eye): wide stage shot → close-up → the speaker → the audience.
HAMILTON_CUT_TIMES = (0.667, 2.736, 7.040)


def sample_video(path, every: float = SAMPLE_SECONDS) -> tuple[list[float], list[np.ndarray]]:
    """Frames at or after 0, every, 2·every … seconds (as media.services.iter_video_frames)."""
    import av

    timestamps, images = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start, next_time = None, 0.0
        for frame in container.decode(stream):
            start = frame.time if start is None else start
            timestamp = frame.time - start
            if timestamp + 1e-6 < next_time:
                continue
            timestamps.append(timestamp)
            images.append(frame.to_ndarray(format="rgb24"))
            while next_time <= timestamp + 1e-6:
                next_time += every
    return timestamps, images


def thumbnail(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((64, 64 * image.shape[0] // image.shape[1])))


@pytest.fixture(scope="module")
def videos(faces_root) -> dict:
    sampled = {}
    for name in (HAMILTON, FACENET):
        timestamps, images = sample_video(faces_root / name)
        sampled[name] = SimpleNamespace(timestamps=timestamps, images=images,
                                        cuts=scene_cuts([thumbnail(i) for i in images]))
    return sampled


@pytest.fixture(scope="module")
def tracked(videos, engine) -> dict:
    for video in videos.values():
        video.detections = sampled_faces(video.timestamps, engine.analyze(video.images))
        video.tracks = track_faces(video.detections, cuts=video.cuts)
    return videos


@pytest.fixture(scope="module")
def manifest_subjects(faces_root) -> dict[str, set[str]]:
    with open(faces_root / "MANIFEST.csv", newline="") as handle:
        return {r["path"]: {s for s in r["expected_subjects"].split(";") if s} for r in csv.DictReader(handle)}


def test_scene_cuts_of_the_shared_videos(videos):
    hamilton = videos[HAMILTON]
    expected = [next(i for i, t in enumerate(hamilton.timestamps) if t > cut) for cut in HAMILTON_CUT_TIMES]
    assert [i for i, cut in enumerate(hamilton.cuts) if cut] == expected
    assert not any(videos[FACENET].cuts), "one continuous shot"


def assert_sensible_tracks(video) -> None:
    detections, tracks, max_gap = video.detections, video.tracks, TrackerConfig().max_gap
    assert sorted(i for t in tracks for i in t.detections) == list(range(len(detections))), \
        "every face in exactly one track"
    assert len(tracks) <= len(detections) / 2, f"{len(tracks)} tracks for {len(detections)} faces"
    shot = np.cumsum(video.cuts)
    for track in tracks:
        samples = [detections[i].sample for i in track.detections]
        assert all(0 < b - a <= max_gap + 1 for a, b in itertools.pairwise(samples)), \
            f"one face per sample, gaps within max_gap: {samples}"
        assert len({shot[s] for s in samples}) == 1, f"a track crosses a scene cut: {samples}"
        assert (track.start, track.end) == (detections[track.detections[0]].timestamp,
                                            detections[track.detections[-1]].timestamp)
        assert detections[track.best].quality == max(detections[i].quality for i in track.detections)
        spread = np.linalg.norm(np.stack([detections[i].embedding for i in track.detections]) - track.embedding,
                                axis=1)
        assert spread.max() < MATCH_THRESHOLD, f"track {samples}: a face {spread.max():.2f} from its representative"


@pytest.mark.slow
def test_hamilton_clip_tracks(tracked):
    assert_sensible_tracks(tracked[HAMILTON])


@pytest.mark.slow
def test_facenet_video_tracks(tracked):
    video = tracked[FACENET]
    assert_sensible_tracks(video)
    # People walk towards the camera for the whole clip: most faces belong to tracks of several.
    in_long_tracks = sum(len(t) for t in video.tracks if len(t) >= 3)
    assert in_long_tracks >= 0.75 * len(video.detections)


@pytest.mark.slow
def test_hamilton_tracks_are_recognised_as_the_manifest_people(tracked, enrolled, manifest_subjects):
    """Identity per track: the representatives name exactly the people MANIFEST.csv expects, and
    the speaker's longest track is closer to him than its typical single face."""
    people, matrix = enrolled
    video = tracked[HAMILTON]
    named = {}
    for track in video.tracks:
        distances = np.linalg.norm(matrix - track.embedding, axis=1)
        if distances.min() <= MATCH_THRESHOLD:
            named.setdefault(people[int(distances.argmin())], []).append(track)
    assert set(named) == manifest_subjects[HAMILTON]

    longest = max(video.tracks, key=len)
    own = [i for i, p in enumerate(people) if p == "lin_manuel_miranda"]
    per_face = [np.linalg.norm(matrix[own] - video.detections[i].embedding, axis=1).min()
                for i in longest.detections]
    assert longest in named["lin_manuel_miranda"]
    assert np.linalg.norm(matrix[own] - longest.embedding, axis=1).min() < np.median(per_face)
