"""Face chips: 150×150 crops aligned by a similarity transform fitted to five landmarks.

The embedder was trained on dlib's chips (5-point shape predictor, ``get_face_chip(size=150,
padding=0.25)``). MTCNN's landmarks are different points (eye centres, nose tip, mouth
corners), so ``MTCNN_TEMPLATE`` is not dlib's template: it was fitted so that MTCNN's
landmarks land where dlib frames the same faces (see bench/fit_alignment_template.py and
docs/BENCHMARKS.md for how, and how close the chips come).

Sampling matches dlib's ``extract_image_chips``: a face larger than the chip is read from a
2×-pyramid level (5-tap binomial filter, then halve) where it is between 1× and 2× the chip
size, then sampled bilinearly; pixels outside the image are zero (black), as in dlib.
One ``grid_sample`` call per image and pyramid level covers all its faces.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

CHIP_SIZE = 150

# Chip pixel coordinates (x, y) of MTCNN's left eye, right eye, nose tip, mouth left and
# mouth right in a 150×150 chip framed like dlib's get_face_chip(size=150, padding=0.25).
# Obtained with bench/fit_alignment_template.py on the 36 shared gallery+probe faces found by
# both dlib (HOG + 5-point predictor) and MTCNN: the least-squares points for MTCNN's
# landmarks mapped through dlib's exact image→chip transforms (their mean). A free fit of the
# five points that minimises chip-pixel misplacement directly was no better on held-out
# faces (descriptor distance to dlib's chip 0.131 vs 0.128) and bends the face shape.
MTCNN_TEMPLATE = np.array(
    [
        [47.2050, 44.3914],
        [101.2748, 45.0144],
        [74.0125, 78.3199],
        [47.9781, 102.0820],
        [99.9634, 102.1152],
    ],
    dtype=np.float32,
)
TEMPLATE_VERSION = "t1"

_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def similarity_transforms(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Least-squares 2-D similarity (Umeyama, no reflection) mapping source → target points.

    source: (N, K, 2); target: (N, K, 2) or (K, 2). Returns (N, 2, 3) matrices [A | t] with
    target ≈ A @ source + t, A = [[a, -b], [b, a]].
    """
    target = target.expand_as(source)
    source_mean = source.mean(dim=1, keepdim=True)
    target_mean = target.mean(dim=1, keepdim=True)
    s = source - source_mean
    d = target - target_mean
    energy = (s ** 2).sum(dim=(1, 2)).clamp(min=1e-12)
    a = (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]).sum(dim=1) / energy
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(dim=1) / energy
    linear = torch.stack([torch.stack([a, -b], dim=1), torch.stack([b, a], dim=1)], dim=1)
    shift = target_mean.squeeze(1) - (linear @ source_mean.transpose(1, 2)).squeeze(2)
    return torch.cat([linear, shift[:, :, None]], dim=2)


def invert_similarities(transforms: torch.Tensor) -> torch.Tensor:
    """Inverse of (N, 2, 3) similarity matrices."""
    linear = transforms[:, :, :2]
    scale_sq = (linear[:, 0, 0] ** 2 + linear[:, 1, 0] ** 2).clamp(min=1e-24)
    inverse_linear = linear.transpose(1, 2) / scale_sq[:, None, None]
    shift = -(inverse_linear @ transforms[:, :, 2:])
    return torch.cat([inverse_linear, shift], dim=2)


def chip_to_image(landmarks: torch.Tensor, template: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 2, 3) maps from chip pixels to image pixels for (N, 5, 2) landmarks.

    The fit runs image → chip (least squares in chip pixels, as dlib does) and is inverted.
    """
    if template is None:
        template = torch.as_tensor(MTCNN_TEMPLATE, device=landmarks.device)
    template = template.to(device=landmarks.device, dtype=landmarks.dtype)
    return invert_similarities(similarity_transforms(landmarks, template))


def pyramid_down(image: torch.Tensor) -> torch.Tensor:
    """Blur with a 5-tap binomial filter and keep every other pixel; output j sits at input 2j."""
    kernel_1d = torch.tensor(_BINOMIAL_5, dtype=image.dtype, device=image.device) / 16.0
    channels = image.shape[1]
    horizontal = kernel_1d.view(1, 1, 1, 5).repeat(channels, 1, 1, 1)
    vertical = kernel_1d.view(1, 1, 5, 1).repeat(channels, 1, 1, 1)
    # Edge replication keeps borders from darkening; the image is at least 2 px each side.
    padded = F.pad(image, (2, 2, 2, 2), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)
    return blurred[:, :, ::2, ::2]


def pyramid_levels(transforms: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Halvings per face so that it is 1×–2× the chip size when sampled (dlib's rule)."""
    levels = torch.floor(torch.log2(face_scales(transforms).clamp(min=1.0)))
    # Never shrink the image below a few pixels.
    deepest = max(0, int(math.floor(math.log2(max(1, min(image_size) / 4)))))
    return levels.clamp(0, deepest).long()


def sampling_grid(transforms: torch.Tensor, chip_size: int, height: int, width: int) -> torch.Tensor:
    """grid_sample coordinates (N, S, S, 2) of each chip pixel in an H×W image."""
    steps = torch.arange(chip_size, device=transforms.device, dtype=transforms.dtype)
    v, u = torch.meshgrid(steps, steps, indexing="ij")
    chip_points = torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3)  # (S*S, 3)
    image_points = chip_points @ transforms.transpose(1, 2)  # (N, S*S, 2)
    # align_corners=False: pixel i spans [i, i+1) in normalised coordinates.
    size = torch.tensor([width, height], device=transforms.device, dtype=transforms.dtype)
    normalised = (image_points + 0.5) * (2.0 / size) - 1.0
    return normalised.reshape(-1, chip_size, chip_size, 2)


def align_faces(image: torch.Tensor, landmarks: torch.Tensor | None, chip_size: int = CHIP_SIZE,
                template: torch.Tensor | None = None, transforms: torch.Tensor | None = None,
                small_face_mode: str = "bilinear") -> torch.Tensor:
    """Chips of all faces of one image.

    image: (3, H, W) 0..255 (uint8 or float) on the device; landmarks: (N, 5, 2) image pixels on the
    device (or pass ``transforms``, (N, 2, 3) chip → image). Returns (N, 3, S, S) float
    0..255 (the template is for 150 px chips; other sizes scale it). ``small_face_mode``
    ("bilinear" or "bicubic") samples faces smaller than the chip, which are upsampled.
    """
    if transforms is None:
        scaled_template = None
        if template is not None or chip_size != CHIP_SIZE:
            base = template if template is not None else torch.as_tensor(MTCNN_TEMPLATE)
            scaled_template = base.to(landmarks.device, landmarks.dtype) * (chip_size / CHIP_SIZE)
        transforms = chip_to_image(landmarks.float(), scaled_template)
    count = transforms.shape[0]
    chips = torch.zeros((count, 3, chip_size, chip_size), device=image.device)
    if count == 0:
        return chips
    levels = pyramid_levels(transforms, tuple(image.shape[1:]))
    upsampled = face_scales(transforms) < 1.0
    cropped = crop_around_chips(image, transforms, chip_size, int(levels.max()))
    if cropped is None:  # every chip lies outside the image: all black
        return chips
    level_image, transforms = cropped
    for level in range(int(levels.max()) + 1):
        if level > 0:
            level_image = pyramid_down(level_image)
        for small in (False, True):
            members = ((levels == level) & (upsampled == small)).nonzero().squeeze(1)
            if len(members) == 0:
                continue
            mode = small_face_mode if small else "bilinear"
            chips[members] = _sample(level_image, transforms[members] / 2 ** level, chip_size, mode)
    return chips


def crop_around_chips(image: torch.Tensor, transforms: torch.Tensor, chip_size: int,
                      deepest_level: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The part of the image the chips read, as (1, 3, h, w) float, and maps shifted onto it.

    Like dlib, only this region is converted and filtered into the pyramid, which keeps a
    small face in a 24-megapixel photo cheap. The margin covers the pyramid filter's and
    bilinear sampling's reach; at the image's own borders the crop stops, so reads outside
    the image still fall outside the crop and come out black.
    """
    last = float(chip_size - 1)
    corners = torch.tensor([[0.0, 0.0, 1.0], [last, 0.0, 1.0], [0.0, last, 1.0], [last, last, 1.0]],
                           device=transforms.device, dtype=transforms.dtype)
    points = corners @ transforms.transpose(1, 2)  # (N, 4, 2) image pixels
    margin = 4 * 2 ** deepest_level + 2
    height, width = image.shape[1:]
    low = (points.amin(dim=(0, 1)).floor() - margin).tolist()
    high = (points.amax(dim=(0, 1)).ceil() + margin + 1).tolist()
    x0, x1 = int(min(max(low[0], 0), width)), int(min(max(high[0], 0), width))
    y0, y1 = int(min(max(low[1], 0), height)), int(min(max(high[1], 0), height))
    if x1 <= x0 or y1 <= y0:
        return None
    shifted = transforms.clone()
    shifted[:, 0, 2] -= x0
    shifted[:, 1, 2] -= y0
    return image[:, y0:y1, x0:x1].unsqueeze(0).float(), shifted


def face_scales(transforms: torch.Tensor) -> torch.Tensor:
    """Image pixels per chip pixel of each chip → image map."""
    return torch.sqrt(transforms[:, 0, 0] ** 2 + transforms[:, 1, 0] ** 2)


def _sample(level_image: torch.Tensor, transforms: torch.Tensor, chip_size: int,
            mode: str) -> torch.Tensor:
    """Chips for faces whose (N, 2, 3) maps point into this pyramid level (image x at x/2^k)."""
    height, width = level_image.shape[2:]
    grid = sampling_grid(transforms, chip_size, height, width)
    # All faces as one tall grid: one call, no copy of the image per face.
    tall = grid.reshape(1, len(transforms) * chip_size, chip_size, 2)
    sampled = F.grid_sample(level_image, tall, mode=mode, padding_mode="zeros",
                            align_corners=False)
    if mode == "bicubic":
        sampled = sampled.clamp(0.0, 255.0)  # cubic overshoots at edges
    return sampled.reshape(3, len(transforms), chip_size, chip_size).transpose(0, 1)


def landmarks_in_chip(landmarks: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(N, 5, 2) image landmarks mapped into chip pixels through inverted chip → image maps."""
    to_chip = invert_similarities(transforms)
    return landmarks @ to_chip[:, :, :2].transpose(1, 2) + to_chip[:, None, :, 2]


def image_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(3, H, W) uint8 view on the device of an HxWx3 uint8 array (align_faces crops, then
    converts only what the chips read)."""
    return torch.as_tensor(np.array(image, copy=True), device=device).permute(2, 0, 1)


def chips_to_uint8(chips: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) float 0..255 → (N, S, S, 3) uint8, rounded like dlib's pixel assignment."""
    return np.ascontiguousarray(chips.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
