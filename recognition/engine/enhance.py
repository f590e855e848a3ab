"""Face quality scores and the corrections applied before embedding.

Quality (``DetectedFace.quality``, 0..1) is the weighted geometric mean of four scores, so
one bad factor pulls it down however good the others are:

* size: face box height, 0 at the detector's 20 px floor, 1 from 112 px (the chip is 150 px
  for a face with padding, so larger faces add no detail);
* sharpness: variance of the Laplacian over the central face region of the grey chip;
* exposure: mean brightness near mid-grey and enough contrast (standard deviation);
* frontalness: yaw from where the nose tip sits between the eyes, pitch from where it sits
  between eyes and mouth, measured on landmarks mapped into the chip (roll is removed by
  alignment).

Corrections are switched by ``EnhanceConfig``; the defaults keep only what measured better
on the shared photos (bench/enhancements.py, numbers in docs/BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Central face region of a 150×150 dlib-framed chip (eyes to chin, cheek to cheek).
FACE_ROWS = slice(35, 125)
FACE_COLS = slice(35, 115)
LUMA = (0.299, 0.587, 0.114)

SIZE_FLOOR_PX = 20.0
SIZE_FULL_PX = 112.0
SHARPNESS_HALF = 30.0  # Laplacian variance (grey levels²) that scores 0.5
CONTRAST_FULL = 40.0  # grey-level standard deviation that scores 1
YAW_ZERO = 0.45  # |nose offset| / eye distance where frontalness reaches 0
PITCH_CENTRE, PITCH_ZERO = 0.585, 0.40  # centre: the fitted template's nose height
WEIGHTS = {"size": 0.3, "sharpness": 0.25, "exposure": 0.2, "frontalness": 0.25}
COMPONENT_FLOOR = 0.01

LOW_LIGHT_MEAN = 70.0  # chips darker than this (mean face grey level) get brightened
LOW_LIGHT_TARGET = 110.0


@dataclass(frozen=True)
class EnhanceConfig:
    """Which corrections run; defaults are what bench/enhancements.py measured to help
    (numbers in docs/BENCHMARKS.md)."""

    # Kept: on darkened probes the distance to the enrolled person fell from 0.170 to 0.119
    # (mean of five), and chips that are not dark are untouched.
    low_light: bool = True  # gamma-lift the face region of dark chips to a normal mean
    # Off: helped obama-240p (0.117 → 0.108) but hurt obama_small (0.103 → 0.141).
    upscale_below: int = 0  # detect on an upscaled copy when the image's short side is below
    # Off: worse on every small face measured (ladder mean 0.113 → 0.126).
    small_face_bicubic: bool = False  # bicubic instead of bilinear for faces smaller than the chip

    def describe(self) -> str:
        return (f"ll{int(self.low_light)}-up{self.upscale_below}"
                f"-bc{int(self.small_face_bicubic)}")


def grey(chips: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) RGB → (N, S, S) luma, same range."""
    weights = torch.tensor(LUMA, device=chips.device, dtype=chips.dtype)
    return torch.einsum("nchw,c->nhw", chips, weights)


def face_region(chips_grey: torch.Tensor) -> torch.Tensor:
    return chips_grey[:, FACE_ROWS, FACE_COLS]


def laplacian_variance(chips_grey: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],
                          device=chips_grey.device, dtype=chips_grey.dtype)
    response = F.conv2d(face_region(chips_grey)[:, None], kernel[None, None])
    return response.flatten(1).var(dim=1)


def size_score(boxes: torch.Tensor) -> torch.Tensor:
    height = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
    span = torch.log(torch.tensor(SIZE_FULL_PX / SIZE_FLOOR_PX))
    return (torch.log(height / SIZE_FLOOR_PX) / span).clamp(0.0, 1.0)


def sharpness_score(chips_grey: torch.Tensor) -> torch.Tensor:
    variance = laplacian_variance(chips_grey)
    return variance / (variance + SHARPNESS_HALF)


def exposure_score(chips_grey: torch.Tensor) -> torch.Tensor:
    region = face_region(chips_grey).flatten(1)
    brightness = 1.0 - ((region.mean(dim=1) - 127.5).abs() / 127.5)
    contrast = (region.std(dim=1) / CONTRAST_FULL).clamp(max=1.0)
    return (brightness * contrast).clamp(0.0, 1.0)


def frontalness_score(chip_landmarks: torch.Tensor) -> torch.Tensor:
    """From (N, 5, 2) landmarks in chip pixels: 1 facing the camera, 0 in profile."""
    left_eye, right_eye, nose = chip_landmarks[:, 0], chip_landmarks[:, 1], chip_landmarks[:, 2]
    mouth = (chip_landmarks[:, 3] + chip_landmarks[:, 4]) / 2
    eyes = (left_eye + right_eye) / 2
    eye_distance = (right_eye - left_eye).norm(dim=1).clamp(min=1e-3)
    yaw = (nose[:, 0] - eyes[:, 0]).abs() / eye_distance
    pitch = (nose[:, 1] - eyes[:, 1]) / (mouth[:, 1] - eyes[:, 1]).clamp(min=1e-3)
    yaw_score = (1.0 - yaw / YAW_ZERO).clamp(0.0, 1.0)
    pitch_score = (1.0 - (pitch - PITCH_CENTRE).abs() / PITCH_ZERO).clamp(0.0, 1.0)
    return yaw_score * pitch_score


def quality_components(chips: torch.Tensor, boxes: torch.Tensor,
                       chip_landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    chips_grey = grey(chips.float())
    return {
        "size": size_score(boxes.float()),
        "sharpness": sharpness_score(chips_grey),
        "exposure": exposure_score(chips_grey),
        "frontalness": frontalness_score(chip_landmarks.float()),
    }


def quality_scores(chips: torch.Tensor, boxes: torch.Tensor,
                   chip_landmarks: torch.Tensor) -> torch.Tensor:
    """(N,) quality in [0, 1] for (N, 3, S, S) chips (0..255), their boxes and chip landmarks."""
    if len(chips) == 0:
        return torch.zeros(0, device=chips.device)
    components = quality_components(chips, boxes.to(chips.device), chip_landmarks.to(chips.device))
    log_quality = sum(WEIGHTS[name] * torch.log(score.clamp(min=COMPONENT_FLOOR))
                      for name, score in components.items())
    return torch.exp(log_quality / sum(WEIGHTS.values())).clamp(0.0, 1.0)


def normalise_low_light(chips: torch.Tensor) -> torch.Tensor:
    """Gamma-lift chips whose face region is dark so its mean reaches LOW_LIGHT_TARGET.

    A per-chip gamma keeps black black and white white and preserves the ordering of
    grey levels; chips that are not dark are returned untouched.
    """
    if len(chips) == 0:
        return chips
    mean = face_region(grey(chips)).flatten(1).mean(dim=1).clamp(1.0, 254.0)
    gamma = torch.log(torch.tensor(LOW_LIGHT_TARGET / 255.0)) / torch.log(mean / 255.0)
    lifted = 255.0 * (chips.clamp(0, 255) / 255.0) ** gamma[:, None, None, None]
    return torch.where((mean < LOW_LIGHT_MEAN)[:, None, None, None], lifted, chips)
