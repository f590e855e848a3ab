"""The face engine: detect, align, score, correct and embed, batched over lists of images.

    engine = FaceEngine(device=None)   # None → SIGHTLINE_DEVICE, else cuda if available, else cpu
    faces = engine.analyze(images)     # list of HxWx3 uint8 RGB arrays → list of [DetectedFace]

Models load once per FaceEngine (build one per worker process); the device is chosen once.
fp16 runs only on CUDA and only when the descriptor's fp16 output matches fp32 on a fixed
synthetic batch (``fp16_parity_check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import align, enhance
from .detector import DetectorConfig, Detections, MTCNNDetector, validate_image
from .device import configure_cpu, resolve_device, use_fp16
from .embedder import MODEL_ID, FaceEmbedder

FP16_TOLERANCE = 1e-3  # max descriptor distance fp16 may add over fp32 (match threshold 0.6)
PARITY_BATCH = 8
PARITY_SEED = 20261122

# What measured better on the shared photos (bench/enhancements.py, docs/BENCHMARKS.md).
DEFAULT_ENHANCEMENT = enhance.EnhanceConfig()


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face in one image; coordinates are pixels of that image."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32: eyes, nose, mouth corners
    score: float  # detector confidence
    quality: float  # 0..1, see enhance.py
    embedding: np.ndarray = field(repr=False)  # (128,) float32, Euclidean distance < 0.6: same


@dataclass(frozen=True, eq=False)
class PreparedFaces:
    """Chips of all faces of a batch, in detection order, ready to embed."""

    chips: torch.Tensor = field(repr=False)  # (N, 3, 150, 150) float 0..255 on the engine's device
    quality: np.ndarray  # (N,) float32 in [0, 1]


def synthetic_parity_chips(count: int = PARITY_BATCH, seed: int = PARITY_SEED) -> torch.Tensor:
    """A fixed batch of smooth random 150×150 images (0..255), same on every machine."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((count, 3, 10, 10), generator=generator) * 255.0
    detail = torch.rand((count, 3, align.CHIP_SIZE, align.CHIP_SIZE), generator=generator) * 32.0
    smooth = torch.nn.functional.interpolate(coarse, size=(align.CHIP_SIZE, align.CHIP_SIZE),
                                             mode="bicubic", align_corners=False)
    return (smooth + detail - 16.0).clamp(0.0, 255.0).round()


def fp16_matches_fp32(half: FaceEmbedder, full: FaceEmbedder) -> bool:
    """True when ``half``'s descriptors stay within FP16_TOLERANCE of ``full``'s on the
    synthetic batch (and are finite)."""
    chips = synthetic_parity_chips().to(full.device)
    distance = (half.embed_tensor(chips) - full.embed_tensor(chips)).norm(dim=1)
    return bool(torch.isfinite(distance).all() and distance.max().item() <= FP16_TOLERANCE)


def fp16_parity_check(device: torch.device) -> bool:
    """The check for ``device.use_fp16``: fp16 vs fp32 descriptors on this device."""
    return fp16_matches_fp32(FaceEmbedder(device, fp16=True), FaceEmbedder(device, fp16=False))


class FaceEngine:
    def __init__(self, device: str | torch.device | None = None,
                 detector_config: DetectorConfig | None = None,
                 enhancement: enhance.EnhanceConfig | None = None) -> None:
        self.device = resolve_device(None if device is None else str(device))
        if self.device.type == "cpu":
            configure_cpu()
        self.enhancement = enhancement or DEFAULT_ENHANCEMENT
        config = detector_config or DetectorConfig()
        if self.enhancement.upscale_below and not config.upscale_below:
            config = DetectorConfig(**{**config.__dict__,
                                       "upscale_below": self.enhancement.upscale_below})
        self.detector = MTCNNDetector(self.device, config)
        self.embedder = self._choose_embedder()
        self.fp16 = self.embedder.fp16

    def _choose_embedder(self) -> FaceEmbedder:
        full = FaceEmbedder(self.device, fp16=False)
        candidates: list[FaceEmbedder] = []

        def half_matches() -> bool:
            candidates.append(FaceEmbedder(self.device, fp16=True))
            return fp16_matches_fp32(candidates[0], full)

        return candidates[0] if use_fp16(self.device, half_matches) else full

    @property
    def model_version(self) -> str:
        """Changes whenever weights or preprocessing change; stored with each embedding."""
        return "+".join([
            f"mtcnn-{self.detector.weights_id}-{self.detector.config.describe()}",
            MODEL_ID,
            f"align-{align.TEMPLATE_VERSION}",
            f"enh-{self.enhancement.describe()}",
        ])

    # -- public API -------------------------------------------------------------------
    def analyze(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces of every image, biggest first, with quality and embedding."""
        detections = self.detect(images)
        return self.describe(detections, self.prepare(images, detections))

    # The three steps of analyze, for callers that report progress between them (the
    # pipeline's detecting → enhancing → recognizing stages).
    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Boxes, landmarks and scores per image."""
        for image in images:
            validate_image(image)
        return self.detector.detect(images)

    def prepare(self, images: list[np.ndarray], detections: list[Detections]) -> PreparedFaces:
        """Aligned, corrected chips of every detected face, with their quality."""
        with torch.inference_mode():
            chips, boxes, chip_landmarks = self._chips(images, detections)
            # Quality describes the face as captured, so it is scored before corrections.
            quality = enhance.quality_scores(chips, boxes, chip_landmarks).cpu().numpy()
            if self.enhancement.low_light:
                chips = enhance.normalise_low_light(chips)
        return PreparedFaces(chips, quality)

    def describe(self, detections: list[Detections], prepared: PreparedFaces) -> list[list[DetectedFace]]:
        """Embed the prepared chips and assemble the faces, per image."""
        with torch.inference_mode():
            embeddings = self.embedder.embed_tensor(prepared.chips).float().cpu().numpy()
        return self._assemble(detections, prepared.quality, embeddings)

    def embed_prepared(self, chips: np.ndarray) -> np.ndarray:
        """(N, 3, 150, 150) uint8 chips as ``prepare`` made them (kept between the steps, as a
        video's are) → (N, 128) float32."""
        with torch.inference_mode():
            tensor = torch.as_tensor(np.ascontiguousarray(chips), device=self.device).float()
            return self.embedder.embed_tensor(tensor).float().cpu().numpy()

    @staticmethod
    def chips_uint8(prepared: PreparedFaces) -> np.ndarray:
        """``prepared``'s chips as (N, 3, 150, 150) uint8, to keep off the device."""
        return prepared.chips.round().clamp(0, 255).to(torch.uint8).cpu().numpy()

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB dlib-style chips → (N, 128) float32."""
        return self.embedder.embed(chips)

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The (150, 150, 3) uint8 chip of the face with these (5, 2) landmarks."""
        validate_image(image)
        with torch.inference_mode():
            points = torch.as_tensor(np.asarray(landmarks, np.float32).reshape(1, 5, 2),
                                     device=self.device)
            chips = align.align_faces(align.image_tensor(image, self.device), points,
                                      small_face_mode=self._small_face_mode)
        return align.chips_to_uint8(chips)[0]

    # -- steps ----------------------------------------------------------------------------
    @property
    def _small_face_mode(self) -> str:
        return "bicubic" if self.enhancement.small_face_bicubic else "bilinear"

    def _chips(self, images, detections):
        """All chips (one grid_sample per image and pyramid level), boxes, chip landmarks."""
        chips, boxes, chip_landmarks = [], [], []
        for image, found in zip(images, detections):
            if len(found) == 0:
                continue
            points = torch.as_tensor(found.landmarks, device=self.device)
            transforms = align.chip_to_image(points)
            chips.append(align.align_faces(align.image_tensor(image, self.device), points,
                                           transforms=transforms,
                                           small_face_mode=self._small_face_mode))
            boxes.append(torch.as_tensor(found.boxes, device=self.device))
            chip_landmarks.append(align.landmarks_in_chip(points, transforms))
        if not chips:
            size = align.CHIP_SIZE
            return (torch.zeros((0, 3, size, size), device=self.device),
                    torch.zeros((0, 4), device=self.device),
                    torch.zeros((0, 5, 2), device=self.device))
        return torch.cat(chips), torch.cat(boxes), torch.cat(chip_landmarks)

    @staticmethod
    def _assemble(detections, quality: np.ndarray, embeddings: np.ndarray) -> list[list[DetectedFace]]:
        results, offset = [], 0
        for found in detections:
            faces = []
            for i in range(len(found)):
                faces.append(DetectedFace(
                    box=tuple(float(v) for v in found.boxes[i]),
                    landmarks=found.landmarks[i].copy(),
                    score=float(found.scores[i]),
                    quality=float(quality[offset + i]),
                    embedding=embeddings[offset + i].copy(),
                ))
            offset += len(found)
            results.append(faces)
        return results
