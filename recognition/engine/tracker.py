"""Face tracks in video: the faces of consecutive sampled frames linked into one track per person.

    cuts = scene_cuts(thumbnails)                              # small HxWx3 uint8 frames → [bool]
    faces = sampled_faces(timestamps, engine.analyze(frames))  # → [SampledFace] in time order
    tracks = track_faces(faces, cuts=cuts)                     # → [Track]

Pure numpy, no Django, no torch. A detection (``SampledFace``) is one face of one sampled frame
(``sample`` is the sampled frame's number, 0, 1, 2, …); a track is the detections of one person in
one shot, at most one per sample, in time order, with its time range, its best (highest-quality)
detection and a representative embedding.

How a face joins a track (``TrackerConfig`` holds the numbers):

* Candidates: the tracks of the same shot (no scene cut since their last face) that were last seen
  at most ``max_gap`` samples ago (occlusion, a turned head, a missed detection).
* Where the face should be: the track's box moved on by its velocity (from its last two faces,
  constant velocity per sample, size included) and, for people who stop or turn back, the track's
  last box as it was. The overlap is the better IoU of the two.
* Who it is: the embedding distance to the track, the smaller of the distance to its last face
  (pose changes slowly) and to its quality-weighted mean so far (one bad frame does not break it).
* The two together: the more the boxes agree, the more embedding difference is tolerated. With no
  overlap only a strong match (``strong_distance``, 0.45) links, and only within
  ``max_gap_without_overlap`` missed samples (fast motion, a jump after a missed frame); at
  ``full_overlap_iou`` or more up to ``max_distance`` (0.65) is accepted, linearly in between.
  Nothing further than that links, however well it overlaps: at 0.7, the range of different
  people, someone else stepped into the spot.
* Per sample the faces and candidate tracks are matched by an optimal assignment (Hungarian) on
  ``distance + motion_weight·(1 − IoU) + gap_cost·missed samples``, so two faces of one sample never
  join one track and a face goes to the track it fits best, not to the first one that would take it.
  Faces left over start tracks of their own.

The representative embedding is the quality-weighted mean of all the track's embeddings (weights
floored at ``QUALITY_FLOOR``): averaging descriptors of one person cancels much of the per-frame
noise (pose, blur, expression), and weighting by quality keeps blurred or profile frames from
dragging it, while no frame is thrown away as a "best few" cut-off would. The mean stays
comparable to single descriptors with the usual 0.6 threshold, and is closer to the person: on the
shared Hamilton clip the speaker's nine faces are 0.34–0.58 (median 0.49) from his gallery photos,
his track's representative 0.36.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

QUALITY_FLOOR = 0.01  # weight of a face whose quality is 0 in the representative embedding
FORBIDDEN = np.inf  # cost of a pair that must not be linked

# scene_cuts: joint HSV histogram, 8 hue × 4 saturation × 4 value bins.
HIST_BINS = (8, 4, 4)
SCENE_CUT_THRESHOLD = 0.35
THUMB_MAX_SIDE = 160  # larger frames are subsampled (every n-th pixel) to about this side


@dataclass(frozen=True)
class TrackerConfig:
    """How faces of consecutive samples are linked; distances are dlib descriptor distances
    (same person in video: typically 0.2–0.45, different people: 0.7 and more)."""

    # Samples a track may miss and still continue (at 2 fps, 3 is 1.5 s of occlusion or a
    # turned head); a track last seen at sample s can take a face up to sample s + max_gap + 1.
    max_gap: int = 3
    # A match this close links on its own, without any box overlap (fast motion) ...
    strong_distance: float = 0.45
    # ... but only across at most this many missed samples: further away in time a face may be
    # anywhere, and in a crowd different people come as close as 0.4–0.45.
    max_gap_without_overlap: int = 1
    # With full overlap, the most embedding difference tolerated. Same-person frames go up to
    # ~0.65 on a gesturing speaker (measured on the shared Hamilton clip); 0.7+ is someone else.
    max_distance: float = 0.65
    # The IoU (with the predicted or last box) at which max_distance applies; below it the
    # tolerated distance falls linearly to strong_distance at IoU 0.
    full_overlap_iou: float = 0.5
    # Assignment cost = distance + motion_weight·(1 − IoU) + gap_cost·missed samples: overlap
    # breaks ties between similar faces, and of two fitting tracks the more recent one wins.
    motion_weight: float = 0.3
    gap_cost: float = 0.05

    def __post_init__(self) -> None:
        if self.max_gap < 0 or self.max_gap_without_overlap < 0:
            raise ValueError("max_gap and max_gap_without_overlap must be 0 or more")
        if not 0.0 <= self.strong_distance <= self.max_distance:
            raise ValueError("need 0 <= strong_distance <= max_distance")
        if not 0.0 < self.full_overlap_iou <= 1.0:
            raise ValueError("full_overlap_iou must be in (0, 1]")
        if self.motion_weight < 0 or self.gap_cost < 0:
            raise ValueError("motion_weight and gap_cost must be 0 or more")

    def describe(self) -> str:
        return (f"g{self.max_gap}-s{self.strong_distance:g}/{self.max_gap_without_overlap}"
                f"-d{self.max_distance:g}@{self.full_overlap_iou:g}"
                f"-w{self.motion_weight:g}-c{self.gap_cost:g}")

    def tolerated_distance(self, iou: np.ndarray) -> np.ndarray:
        """The largest embedding distance that links at this overlap."""
        ramp = np.clip(np.asarray(iou, np.float64) / self.full_overlap_iou, 0.0, 1.0)
        return self.strong_distance + (self.max_distance - self.strong_distance) * ramp


@dataclass(frozen=True, eq=False)
class SampledFace:
    """One face of one sampled frame."""

    sample: int  # the sampled frame's number: 0, 1, 2, … in time order
    timestamp: float  # seconds
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    embedding: np.ndarray = field(repr=False)  # (128,) float32 descriptor
    quality: float  # 0..1


@dataclass(frozen=True, eq=False)
class Track:
    """One person's faces in one shot, at most one per sample."""

    detections: tuple[int, ...]  # indices into the input list, in time order
    start: float  # timestamp of the first face, seconds
    end: float  # timestamp of the last face
    best: int  # input index of the highest-quality face (the earliest among equals)
    embedding: np.ndarray = field(repr=False)  # (D,) float32 quality-weighted mean

    def __len__(self) -> int:
        return len(self.detections)


def sampled_faces(timestamps: Sequence[float], faces: Sequence[Iterable]) -> list[SampledFace]:
    """Detections from the engine's output: ``faces[i]`` are the faces (anything with ``box``,
    ``embedding`` and ``quality``, e.g. ``DetectedFace``) of the sampled frame at ``timestamps[i]``."""
    if len(timestamps) != len(faces):
        raise ValueError(f"{len(timestamps)} timestamps for {len(faces)} frames")
    return [SampledFace(sample, float(time), tuple(float(v) for v in face.box),
                        np.asarray(face.embedding, np.float32), float(face.quality))
            for sample, (time, frame_faces) in enumerate(zip(timestamps, faces))
            for face in frame_faces]


# -- scene cuts ---------------------------------------------------------------------------------
def rgb_to_hsv(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 uint8 RGB → hue, saturation, value, each HxW float32 in [0, 1]."""
    rgb = image.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = rgb.max(axis=-1)
    delta = high - rgb.min(axis=-1)
    spread = np.where(delta > 0, delta, 1.0)
    hue = np.where(high == r, ((g - b) / spread) % 6.0,
                   np.where(high == g, (b - r) / spread + 2.0, (r - g) / spread + 4.0)) / 6.0
    saturation = np.where(high > 0, delta / np.where(high > 0, high, 1.0), 0.0)
    return np.where(delta > 0, hue, 0.0), saturation, high


def colour_histogram(image: np.ndarray) -> np.ndarray:
    """Normalised joint HSV histogram (HIST_BINS) of an HxWx3 uint8 RGB image."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
    step = max(1, max(image.shape[:2]) // THUMB_MAX_SIDE)
    hue, saturation, value = rgb_to_hsv(image[::step, ::step])
    index = np.zeros(hue.shape, np.int64)
    for channel, bins in zip((hue, saturation, value), HIST_BINS):
        index = index * bins + np.minimum((channel * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index.ravel(), minlength=int(np.prod(HIST_BINS))).astype(np.float64)
    return counts / counts.sum()


def scene_cuts(thumbnails: Sequence[np.ndarray], threshold: float = SCENE_CUT_THRESHOLD) -> list[bool]:
    """``cuts[i]`` is True when sample i starts a new shot (``cuts[0]`` is False).

    The distance between consecutive samples is half the L1 distance of their joint HSV
    histograms (8 hue × 4 saturation × 4 value bins): 0 for the same colours, 1 for none in
    common. It ignores where things are, so people and camera moving within a shot change it
    little, while a cut to another shot changes the colours as a whole. On the shared clips
    sampled at 2 fps, samples within a shot differ by at most 0.21 (a head filling the frame
    turning away), the three cuts of the Hamilton clip by 0.42–0.57. The default threshold, 0.35,
    leans towards missing a cut between similar-looking shots rather than cutting a shot in
    two: a missed cut is still guarded by the embedding check, a false cut splits a track.

    Thumbnails are small RGB frames (e.g. 64×36; sizes may differ between samples; larger
    frames are subsampled to about THUMB_MAX_SIDE pixels a side).
    """
    histograms = [colour_histogram(t) for t in thumbnails]
    cuts = [False] * len(histograms)
    for i in range(1, len(histograms)):
        cuts[i] = bool(0.5 * np.abs(histograms[i] - histograms[i - 1]).sum() > threshold)
    return cuts


# -- assignment ---------------------------------------------------------------------------------
def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost matching of rows to columns; ``inf`` marks pairs that must not match.

    Returns (row, column) pairs: as many as the allowed pairs permit, and of those the cheapest.
    Forbidden pairs get a cost larger than any sum of allowed ones, so the classic square
    algorithm (shortest augmenting paths with potentials, O(n²·m), inner loop vectorised) first
    maximises the number of allowed pairs, then they are dropped from the answer.
    """
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    matrix = cost.T if transposed else cost
    allowed = np.isfinite(matrix)
    if not allowed.any():
        return []
    big = (2.0 * np.abs(matrix[allowed]).max() + 1.0) * (min(matrix.shape) + 1)
    a = np.where(allowed, matrix, big)
    n, m = a.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: row (1-based) matched to column j, 0: none
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j] and allowed[owner[j] - 1, j - 1]]
    pairs = [(c, r) for r, c in pairs] if transposed else pairs
    return sorted(pairs)


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """``hungarian`` on each connected group of allowed pairs separately: gating leaves the
    matrix sparse (faces far apart never compete), so a crowd becomes many small problems."""
    cost = np.asarray(cost, np.float64)
    allowed = np.isfinite(cost)
    rows, cols = cost.shape
    if not allowed.any():
        return []
    if min(rows, cols) == 1:  # one track or one face: the cheapest allowed pair
        r, c = np.unravel_index(int(np.argmin(np.where(allowed, cost, np.inf))), cost.shape)
        return [(int(r), int(c))]
    parent = list(range(rows + cols))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, c in zip(*np.nonzero(allowed)):
        parent[root(int(r))] = root(rows + int(c))
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for r in range(rows):
        if allowed[r].any():
            groups.setdefault(root(r), ([], []))[0].append(r)
    for c in range(cols):
        if allowed[:, c].any():
            groups.setdefault(root(rows + c), ([], []))[1].append(c)
    pairs = []
    for group_rows, group_cols in groups.values():
        if len(group_rows) == 1 and len(group_cols) == 1:
            pairs.append((group_rows[0], group_cols[0]))
            continue
        sub = cost[np.ix_(group_rows, group_cols)]
        pairs.extend((group_rows[r], group_cols[c]) for r, c in hungarian(sub))
    return sorted(pairs)


# -- tracking -----------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (x1, y1, x2, y2 in the last axis), broadcast: (n, 1, 4) with (1, m, 4)
    gives the (n, m) matrix."""
    width = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0)
    height = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = width * height
    area_a = np.maximum(a[..., 2] - a[..., 0], 0.0) * np.maximum(a[..., 3] - a[..., 1], 0.0)
    area_b = np.maximum(b[..., 2] - b[..., 0], 0.0) * np.maximum(b[..., 3] - b[..., 1], 0.0)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def predict_boxes(boxes: np.ndarray, velocities: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(n, 4) boxes moved on by (n, 4) velocities per sample for (n,) samples. A shrinking
    prediction keeps at least half the box's size, around the predicted centre."""
    moved = boxes + velocities * steps[:, None]
    centre = (moved[:, :2] + moved[:, 2:]) / 2
    half = np.maximum((moved[:, 2:] - moved[:, :2]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 4)
    return np.concatenate([centre - half, centre + half], axis=1)


def pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a (n, D) and b (m, D): (n, m)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


class _Track:
    __slots__ = ("box", "last_embedding", "last_sample", "members", "shot", "velocity", "weight", "weighted_sum")

    def __init__(self, index: int, shot: int, sample: int, box: np.ndarray, embedding: np.ndarray,
                 weight: float) -> None:
        self.members = [index]
        self.shot = shot
        self.last_sample = sample
        self.box = box
        self.velocity = np.zeros(4)
        self.last_embedding = embedding
        self.weighted_sum = embedding.astype(np.float64) * weight
        self.weight = weight

    def add(self, index: int, sample: int, box: np.ndarray, embedding: np.ndarray, weight: float) -> None:
        self.velocity = (box - self.box) / (sample - self.last_sample)
        self.members.append(index)
        self.last_sample = sample
        self.box = box
        self.last_embedding = embedding
        self.weighted_sum += embedding * weight
        self.weight += weight

    @property
    def mean_embedding(self) -> np.ndarray:
        return self.weighted_sum / self.weight


def track_faces(detections: Sequence[SampledFace], cuts: Sequence[bool] | None = None,
                config: TrackerConfig | None = None) -> list[Track]:
    """Link ``detections`` (any order; sorted by sample here) into tracks.

    ``cuts[s]`` True means sample s starts a new shot (see ``scene_cuts``); it must cover every
    sample that has a detection. Returns the tracks ordered by their first face; every detection
    is in exactly one track.
    """
    config = config or TrackerConfig()
    if not detections:
        return []
    samples = np.array([d.sample for d in detections], np.int64)
    if samples.min() < 0:
        raise ValueError("sample numbers must be 0 or more")
    boxes = np.array([d.box for d in detections], np.float64)
    if boxes.shape != (len(detections), 4):
        raise ValueError("every box must be x1, y1, x2, y2")
    embeddings = np.stack([np.asarray(d.embedding, np.float32).ravel() for d in detections])
    weights = np.maximum(np.array([d.quality for d in detections], np.float64), QUALITY_FLOOR)
    if cuts is not None and len(cuts) <= samples.max():
        raise ValueError(f"cuts cover {len(cuts)} samples, detections reach sample {samples.max()}")
    shot_of = np.cumsum(np.asarray(cuts, bool)) if cuts is not None else None

    order = np.argsort(samples, kind="stable")
    finished: list[_Track] = []
    active: list[_Track] = []
    starts = np.flatnonzero(np.r_[True, np.diff(samples[order]) != 0])
    for begin, stop in zip(starts, np.r_[starts[1:], len(order)]):
        members = order[begin:stop]
        sample = int(samples[members[0]])
        shot = int(shot_of[sample]) if shot_of is not None else 0
        still = []
        for track in active:
            alive = track.shot == shot and sample - track.last_sample - 1 <= config.max_gap
            (still if alive else finished).append(track)
        active = still
        pairs = assign(_costs(active, sample, boxes[members], embeddings[members], config)) if active else []
        taken = set()
        for t, d in pairs:
            index = int(members[d])
            active[t].add(index, sample, boxes[index], embeddings[index], weights[index])
            taken.add(d)
        for d, index in enumerate(members):
            if d not in taken:
                index = int(index)
                active.append(_Track(index, shot, sample, boxes[index], embeddings[index], weights[index]))
    finished.extend(active)

    tracks = []
    for track in sorted(finished, key=lambda t: (samples[t.members[0]], t.members[0])):
        members = tuple(track.members)
        quality = [detections[i].quality for i in members]
        tracks.append(Track(
            detections=members,
            start=float(detections[members[0]].timestamp),
            end=float(detections[members[-1]].timestamp),
            best=members[int(np.argmax(quality))],
            embedding=track.mean_embedding.astype(np.float32),
        ))
    return tracks


def _costs(tracks: list[_Track], sample: int, boxes: np.ndarray, embeddings: np.ndarray,
           config: TrackerConfig) -> np.ndarray:
    """(tracks, faces) assignment costs; ``inf`` where a face may not join a track."""
    last_samples = np.array([t.last_sample for t in tracks], np.float64)
    last = np.stack([t.box for t in tracks])
    predicted = predict_boxes(last, np.stack([t.velocity for t in tracks]), sample - last_samples)
    # The better of two hypotheses: moving on at its velocity, or where it was last.
    iou = box_iou(np.concatenate([predicted, last])[:, None], boxes[None])
    iou = np.maximum(iou[:len(tracks)], iou[len(tracks):])
    missed = (sample - last_samples - 1)[:, None]
    faces = embeddings.astype(np.float64)
    to_last = pairwise_distance(np.stack([t.last_embedding for t in tracks]).astype(np.float64), faces)
    to_mean = pairwise_distance(np.stack([t.mean_embedding for t in tracks]), faces)
    distance = np.minimum(to_last, to_mean)
    linkable = distance <= config.tolerated_distance(iou)
    # Without overlap, the face rests on the embedding alone: only across a short gap.
    linkable &= (iou > 0) | (missed <= config.max_gap_without_overlap)
    cost = distance + config.motion_weight * (1.0 - iou) + config.gap_cost * missed
    return np.where(linkable, cost, FORBIDDEN)
