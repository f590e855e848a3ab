"""The shared test photos and dlib's reference pipeline, for benchmarks and fitting scripts.

Photos are read from ``<repo>/../shared/data/faces`` (or SIGHTLINE_FACES_DIR), never copied
into the repository. dlib (dlib-bin, requirements-dev.txt) is only needed by the functions
that say so.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def faces_dir() -> Path:
    configured = os.environ.get("SIGHTLINE_FACES_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "faces"
    if not (path / "MANIFEST.csv").is_file():
        raise SystemExit(f"Shared face photos not found at {path} (set SIGHTLINE_FACES_DIR).")
    return path


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@dataclass(frozen=True)
class Photo:
    path: Path
    subjects: tuple[str, ...]  # people expected in it (gallery: its one person)
    kind: str  # "gallery" or "probe"

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def gallery_photos(root: Path) -> list[Photo]:
    return [Photo(p, (p.parent.name,), "gallery")
            for p in sorted((root / "gallery").glob("*/*")) if p.suffix.lower() in IMAGE_SUFFIXES]


def probe_photos(root: Path) -> list[Photo]:
    with open(root / "MANIFEST.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["path"].startswith("probes/")]
    return [Photo(root / r["path"], tuple(s for s in r["expected_subjects"].split(";") if s),
                  "probe") for r in rows]


class DlibPipeline:
    """What face_recognition.face_encodings does, called on dlib directly.

    HOG detector with one upsampling (face_locations' default), the 5-point shape
    predictor, and the ResNet descriptor with num_jitters=1.
    """

    def __init__(self) -> None:
        import dlib  # dlib-bin, requirements-dev.txt

        from recognition.engine.weights import weight_path

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(weight_path("dlib_shape_predictor_5")))
        self.encoder = dlib.face_recognition_model_v1(str(weight_path("dlib_resnet")))

    def shapes(self, image: np.ndarray) -> list:
        return [self.predictor(image, rect) for rect in self.detector(image, 1)]

    def encode(self, image: np.ndarray, shapes: list) -> np.ndarray:
        if not shapes:
            return np.zeros((0, 128), np.float32)
        return np.array([np.array(self.encoder.compute_face_descriptor(image, s, 1))
                         for s in shapes], dtype=np.float32)

    def chip(self, image: np.ndarray, shape) -> np.ndarray:
        return np.asarray(self.dlib.get_face_chip(image, shape, size=150, padding=0.25))

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        return np.array(self.encoder.compute_face_descriptor(np.ascontiguousarray(chip)),
                        dtype=np.float32)

    def image_to_chip(self, shape) -> np.ndarray:
        """(2, 3) affine from image pixels to dlib's 150×150 chip pixels for one face.

        dlib's get_mapping_to_chip: the chip rect's corners, rotated by its angle about its
        centre, go to chip corners (0, 0), (cols-1, 0), (cols-1, rows-1).
        """
        details = self.dlib.get_face_chip_details(shape, size=150, padding=0.25)
        rect = details.rect
        centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
        cos, sin = np.cos(details.angle), np.sin(details.angle)
        rotation = np.array([[cos, -sin], [sin, cos]])
        corners = np.array([[rect.left(), rect.top()], [rect.right(), rect.top()],
                            [rect.right(), rect.bottom()]])
        source = (corners - centre) @ rotation.T + centre
        target = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]],
                          dtype=np.float64)
        solution = np.linalg.solve(np.c_[source, np.ones(3)], target)  # (3, 2)
        return solution.T


def centre_of_shape(shape) -> np.ndarray:
    rect = shape.rect
    return np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])


def match_boxes(centres: np.ndarray, boxes: np.ndarray) -> list[int | None]:
    """For each point, the box containing it with the nearest centre (None if none does)."""
    matches: list[int | None] = []
    for point in centres:
        inside = ((boxes[:, 0] <= point[0]) & (point[0] <= boxes[:, 2])
                  & (boxes[:, 1] <= point[1]) & (point[1] <= boxes[:, 3]))
        if not inside.any():
            matches.append(None)
            continue
        box_centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        distance = np.linalg.norm(box_centres - point, axis=1)
        distance[~inside] = np.inf
        matches.append(int(distance.argmin()))
    return matches
