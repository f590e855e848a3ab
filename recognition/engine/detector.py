"""MTCNN face detection (P-Net → R-Net → O-Net) on facenet-pytorch's pretrained weights.

The three networks are re-declared here with the parameter names of facenet-pytorch's
state dicts, so the bundled ``.pt`` files load with ``torch.load(weights_only=True)``
without importing facenet_pytorch (which pulls requests/tqdm and returns object arrays
under numpy 2). The cascade follows facenet-pytorch's ``detect_face`` (same pyramid,
thresholds, NMS and regression), with three deliberate differences:

* Images of different sizes are detected in one call. P-Net runs once per pyramid level on
  each group of same-sized images (``batching="group"``, the default) or on all images
  zero-padded to a common canvas (``batching="pad"``); bench/engine.py measures both.
* R-Net/O-Net crops are cut with ``torchvision.ops.roi_align`` (one call per batch of
  same-size images; sampling averages each output cell, like the area resize
  facenet-pytorch uses per box, with at most CROP_SAMPLES² points per cell), then each
  net runs once over all boxes of all images. Parts of a box outside the image read as
  black, as in the original MTCNN, instead of facenet-pytorch's crop-and-stretch.
* Very large inputs are detected on a copy whose longest side is ``max_side`` pixels and
  the results are mapped back to the input's pixel coordinates, so a 6000×4000 photo
  costs what a 2048×1365 one does. The smallest face found in the original grows by the
  same factor (20 px × 6000/2048 ≈ 59 px there), which is fine for photos that large.

Coordinates are facenet-pytorch's: boxes (x1, y1, x2, y2) and landmarks (left eye, right
eye, nose, mouth left, mouth right) as (x, y) pixels of the input image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, roi_align

from .weights import sha256_prefix, weight_path

NORMALISE_MEAN = 127.5
NORMALISE_SCALE = 0.0078125
PNET_STRIDE = 2
PNET_CELL = 12
# Pixels of detection copies per P-Net batch: at the first pyramid level conv1 holds about
# 4 bytes × 10 channels × 0.36 × this many floats (~0.9 GB at 64 megapixels).
PNET_BATCH_PIXELS = 64_000_000
# Most sample points per side of an R-Net/O-Net crop cell (see _crops): on the shared photos,
# their video frames and small copies of them, the same faces as sampling every pixel, with
# landmarks within 0.7 % of the face's side at p95 (docs/BENCHMARKS.md).
CROP_SAMPLES = 3
NMS_PER_SCALE = 0.5
NMS_ACROSS_SCALES = 0.7
NMS_REFINE = 0.7
NMS_OUTPUT_MIN = 0.7


class PNet(nn.Module):
    """Fully convolutional proposal net: face probability and box offsets per 12×12 window."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24×24 crops: face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were converted from Caffe, whose flatten order is (W, H, C).
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48×48 crops: face probability, box offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class DetectorConfig:
    """Knobs of the cascade; the defaults are facenet-pytorch's MTCNN defaults."""

    min_face_size: float = 20.0
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    # Longest side of the copy that huge inputs are detected on.
    max_side: int = 2048
    # Inputs whose shorter side is below this are detected on a copy upscaled to it
    # (0 disables); see enhance.py and docs/BENCHMARKS.md for whether it pays.
    upscale_below: int = 0
    batching: str = "group"  # "group" (same-size images together) or "pad" (one canvas)

    def __post_init__(self) -> None:
        if self.min_face_size < PNET_CELL:
            raise ValueError(f"min_face_size must be at least {PNET_CELL} pixels")
        if not 0.0 < self.scale_factor < 1.0:
            raise ValueError("scale_factor must be between 0 and 1")
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError("thresholds must be three probabilities (P-Net, R-Net, O-Net)")
        if self.max_side < PNET_CELL:
            raise ValueError(f"max_side must be at least {PNET_CELL} pixels")
        if self.batching not in ("group", "pad"):
            raise ValueError("batching must be 'group' or 'pad'")

    def describe(self) -> str:
        t1, t2, t3 = self.thresholds
        return (f"min{self.min_face_size:g}-f{self.scale_factor:g}-t{t1:g},{t2:g},{t3:g}"
                f"-max{self.max_side}-up{self.upscale_below}-{self.batching}")


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, biggest box first."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2
    landmarks: np.ndarray  # (n, 5, 2) float32 x, y
    scores: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class _Candidates:
    """Boxes in flight through the cascade, in detection-copy pixels."""

    boxes: torch.Tensor  # (n, 4)
    scores: torch.Tensor  # (n,)
    image_index: torch.Tensor  # (n,) long, position in the input list


def validate_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got shape {shape} dtype {dtype}")


def detection_scale(height: int, width: int, config: DetectorConfig) -> float:
    """Factor from input pixels to detection-copy pixels (huge inputs down, small ones up)."""
    longest, shortest = max(height, width), min(height, width)
    if longest > config.max_side:
        return config.max_side / longest
    if 0 < shortest < config.upscale_below:
        return min(config.upscale_below / shortest, config.max_side / longest)
    return 1.0


def pyramid_scales(height: int, width: int, config: DetectorConfig) -> list[float]:
    """facenet-pytorch's pyramid: the smallest face maps to 12 px, shrink until under 12."""
    first = PNET_CELL / config.min_face_size
    shorter = min(height, width) * first
    scales, scale = [], first
    while shorter >= PNET_CELL:
        scales.append(scale)
        scale *= config.scale_factor
        shorter *= config.scale_factor
    return scales


def load_net(net: nn.Module, key: str, device: torch.device) -> nn.Module:
    state = torch.load(weight_path(key), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)


class MTCNNDetector:
    """Batched MTCNN over lists of HxWx3 uint8 RGB images of any sizes."""

    WEIGHT_KEYS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")

    def __init__(self, device: torch.device, config: DetectorConfig | None = None) -> None:
        self.device = torch.device(device)
        self.config = config or DetectorConfig()
        # Channels-last convolutions measured ~1.5× faster for P-Net on whole images and
        # 2.7× for R-Net on crops, on CPU (docs/BENCHMARKS.md).
        self.pnet, self.rnet, self.onet = (
            load_net(net, key, self.device).to(memory_format=torch.channels_last)
            for net, key in zip((PNet(), RNet(), ONet()), self.WEIGHT_KEYS))

    @property
    def weights_id(self) -> str:
        return "".join(sha256_prefix(key, 4) for key in self.WEIGHT_KEYS)

    @torch.inference_mode()
    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        for image in images:
            validate_image(image)
        if not images:
            return []
        copies, factors = self._detection_copies(images)
        candidates = self._propose(copies)
        candidates = self._refine(copies, candidates)
        boxes, scores, points, index = self._output(copies, candidates)
        return self._split(boxes, scores, points, index, factors, len(images))

    # -- input ------------------------------------------------------------------------
    def _detection_copies(self, images: list[np.ndarray]) -> tuple[list[torch.Tensor], list[float]]:
        """(1, 3, h, w) uint8 tensors on the device, resized where the config says.

        Bytes, not floats: a batch of video frames stays a quarter of the size; each P-Net
        or crop batch converts only its own images.
        """
        copies, factors = [], []
        for image in images:
            height, width = image.shape[:2]
            factor = detection_scale(height, width, self.config)
            tensor = torch.as_tensor(np.array(image, copy=True), device=self.device)
            tensor = tensor.permute(2, 0, 1).unsqueeze(0)
            if factor != 1.0:
                size = (max(1, round(height * factor)), max(1, round(width * factor)))
                mode = "area" if factor < 1.0 else "bicubic"
                tensor = F.interpolate(tensor.float(), size=size, mode=mode)
                tensor = tensor.round_().clamp_(0, 255).to(torch.uint8)
            copies.append(tensor)
            factors.append(factor)
        return copies, factors

    # -- stage 1: P-Net over the pyramid ----------------------------------------------
    def _propose(self, copies: list[torch.Tensor]) -> _Candidates:
        if self.config.batching == "pad":
            found = self._propose_padded(copies)
        else:
            found = [self._propose_batch(torch.cat([copies[i] for i in members]).float(),
                                         torch.tensor(members, device=self.device),
                                         [copies[i].shape[2:] for i in members])
                     for members in self._batches(copies)]
        boxes = torch.cat([f[0] for f in found])
        index = torch.cat([f[1] for f in found])
        keep = batched_nms(boxes[:, :4], boxes[:, 4], index, NMS_ACROSS_SCALES)
        boxes, index = boxes[keep], index[keep]
        width = boxes[:, 2] - boxes[:, 0]
        height = boxes[:, 3] - boxes[:, 1]
        regressed = boxes[:, :4] + boxes[:, 5:9] * torch.stack([width, height, width, height], 1)
        return _Candidates(square(regressed), boxes[:, 4], index)

    @staticmethod
    def _same_size_groups(copies: list[torch.Tensor]) -> list[list[int]]:
        groups: dict[tuple[int, int], list[int]] = {}
        for i, copy in enumerate(copies):
            groups.setdefault(tuple(copy.shape[2:]), []).append(i)
        return list(groups.values())

    @classmethod
    def _batches(cls, copies: list[torch.Tensor]) -> list[list[int]]:
        """Same-size groups, split so one batch holds at most PNET_BATCH_PIXELS pixels (a
        long video's frames would otherwise all go through P-Net's first level at once)."""
        batches = []
        for group in cls._same_size_groups(copies):
            height, width = copies[group[0]].shape[2:]
            per_batch = max(1, PNET_BATCH_PIXELS // (height * width))
            batches += [group[i:i + per_batch] for i in range(0, len(group), per_batch)]
        return batches

    def _propose_padded(self, copies: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        height = max(c.shape[2] for c in copies)
        width = max(c.shape[3] for c in copies)
        # Pad with mid-grey so the canvas is 0 after normalisation, like no signal at all.
        canvas = torch.full((len(copies), 3, height, width), NORMALISE_MEAN, device=self.device)
        for i, copy in enumerate(copies):
            canvas[i, :, :copy.shape[2], :copy.shape[3]] = copy[0].float()
        members = torch.arange(len(copies), device=self.device)
        return [self._propose_batch(canvas, members, [c.shape[2:] for c in copies])]

    def _propose_batch(self, batch: torch.Tensor, members: torch.Tensor,
                       sizes: list[torch.Size]) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net windows of one batch, NMS'd per image and level; boxes (n, 9), image index."""
        height, width = batch.shape[2:]
        # Each image's own pyramid; a padded canvas runs the levels of its largest member
        # and drops windows of images whose pyramid already ended or outside their pixels.
        own_levels = torch.tensor([len(pyramid_scales(h, w, self.config)) for h, w in sizes],
                                  device=self.device)
        sizes_t = torch.tensor([[h, w] for h, w in sizes], device=self.device, dtype=torch.float32)
        found_boxes, found_index = [], []
        for level, scale in enumerate(pyramid_scales(height, width, self.config)):
            size = (int(height * scale + 1), int(width * scale + 1))
            scaled = F.interpolate(batch, size=size, mode="area")
            normalised = ((scaled - NORMALISE_MEAN) * NORMALISE_SCALE).contiguous(
                memory_format=torch.channels_last)
            offsets, probs = self.pnet(normalised)
            boxes, local = windows_to_boxes(offsets, probs[:, 1], scale, self.config.thresholds[0])
            inside = (level < own_levels[local]) & (boxes[:, 0] < sizes_t[local, 1]) \
                & (boxes[:, 1] < sizes_t[local, 0])
            boxes, local = boxes[inside], local[inside]
            keep = batched_nms(boxes[:, :4], boxes[:, 4], local, NMS_PER_SCALE)
            found_boxes.append(boxes[keep])
            found_index.append(members[local[keep]])
        if not found_boxes:
            return torch.zeros((0, 9), device=self.device), torch.zeros(0, dtype=torch.long,
                                                                      device=self.device)
        return torch.cat(found_boxes), torch.cat(found_index)

    # -- stage 2: R-Net ----------------------------------------------------------------
    def _refine(self, copies: list[torch.Tensor], candidates: _Candidates) -> _Candidates:
        if len(candidates.scores) == 0:
            return candidates
        offsets, probs = self.rnet(self._crops(copies, candidates, 24))
        passed = probs[:, 1] > self.config.thresholds[1]
        boxes, scores = candidates.boxes[passed], probs[passed, 1]
        index, offsets = candidates.image_index[passed], offsets[passed]
        keep = batched_nms(boxes, scores, index, NMS_REFINE)
        boxes = square(regress(boxes[keep], offsets[keep]))
        return _Candidates(boxes, scores[keep], index[keep])

    # -- stage 3: O-Net ----------------------------------------------------------------
    def _output(self, copies: list[torch.Tensor], candidates: _Candidates):
        if len(candidates.scores) == 0:
            return (candidates.boxes, candidates.scores,
                    torch.zeros((0, 5, 2), device=self.device), candidates.image_index)
        offsets, points, probs = self.onet(self._crops(copies, candidates, 48))
        passed = probs[:, 1] > self.config.thresholds[2]
        boxes, scores = candidates.boxes[passed], probs[passed, 1]
        index, offsets, points = candidates.image_index[passed], offsets[passed], points[passed]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        landmarks = torch.stack([points[:, :5], points[:, 5:]], dim=2) * size[:, None, :] \
            + boxes[:, None, 0:2] - 1
        boxes = regress(boxes, offsets)
        keep = nms_min_overlap(boxes, scores, index, NMS_OUTPUT_MIN)
        return boxes[keep], scores[keep], landmarks[keep], index[keep]

    def _crops(self, copies: list[torch.Tensor], candidates: _Candidates, size: int) -> torch.Tensor:
        """All candidate boxes resized to size×size, normalised; one roi_align per batch."""
        # facenet-pytorch reads pixels x1-1 .. x2-1 (MATLAB-style indices); roi_align with
        # aligned=True takes continuous coordinates where pixel i spans [i, i+1).
        regions = torch.cat([candidates.boxes[:, 0:2] - 1, candidates.boxes[:, 2:4]], dim=1)
        crops = torch.empty((len(regions), 3, size, size), device=self.device)
        for members in self._batches(copies):
            members_t = torch.tensor(members, device=self.device)
            selected = torch.isin(candidates.image_index, members_t).nonzero().squeeze(1)
            if len(selected) == 0:
                continue
            local = torch.searchsorted(members_t, candidates.image_index[selected])
            rois = torch.cat([local[:, None].float(), regions[selected]], dim=1)
            batch = torch.cat([copies[i] for i in members]).float()
            # Adaptive sampling reads ceil(side / size)² points per output cell: 441 for a
            # 500 px box at 24×24, a third of detection on big photos. Boxes that large get
            # CROP_SAMPLES² points instead; smaller ones are read exactly as before.
            large = (rois[:, 3] - rois[:, 1]).maximum(rois[:, 4] - rois[:, 2]) > CROP_SAMPLES * size
            for part, sampling in ((~large, -1), (large, CROP_SAMPLES)):
                if part.any():
                    crops[selected[part]] = roi_align(batch, rois[part], (size, size), spatial_scale=1.0,
                                                      sampling_ratio=sampling, aligned=True)
        return ((crops - NORMALISE_MEAN) * NORMALISE_SCALE).contiguous(memory_format=torch.channels_last)

    # -- output ------------------------------------------------------------------------
    @staticmethod
    def _split(boxes, scores, points, index, factors, count) -> list[Detections]:
        boxes, scores = boxes.float().cpu().numpy(), scores.float().cpu().numpy()
        points, index = points.float().cpu().numpy(), index.cpu().numpy()
        results = []
        for i in range(count):
            mine = index == i
            factor = factors[i]
            # Pixel centres map as (c + 0.5) / factor - 0.5 between the copy and the input.
            b = ((boxes[mine] + 0.5) / factor - 0.5).astype(np.float32)
            p = ((points[mine] + 0.5) / factor - 0.5).astype(np.float32)
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            order = np.argsort(-area, kind="stable")
            results.append(Detections(b[order], p[order], scores[mine][order]))
        return results


def windows_to_boxes(offsets: torch.Tensor, probs: torch.Tensor, scale: float,
                     threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """P-Net output maps → (n, 9) boxes [x1, y1, x2, y2, score, 4 offsets] and image index."""
    mask = probs >= threshold
    where = mask.nonzero()
    image_index = where[:, 0]
    score = probs[mask]
    offsets = offsets.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    cell = where[:, 1:].to(offsets.dtype).flip(1)  # (x, y) of the window on the P-Net map
    top_left = ((PNET_STRIDE * cell + 1) / scale).floor()
    bottom_right = ((PNET_STRIDE * cell + PNET_CELL) / scale).floor()
    return torch.cat([top_left, bottom_right, score[:, None], offsets], dim=1), image_index


def regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    return boxes + offsets * torch.cat([size, size], dim=1)


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around the same centre (the nets expect square crops)."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(dim=1, keepdim=True).values
    top_left = boxes[:, 0:2] + size * 0.5 - side * 0.5
    return torch.cat([top_left, top_left + side], dim=1)


def nms_min_overlap(boxes: torch.Tensor, scores: torch.Tensor, image_index: torch.Tensor,
                    threshold: float) -> torch.Tensor:
    """Greedy NMS where overlap = intersection / smaller area, per image (MTCNN's last step).

    It removes a small box sitting inside a bigger, better one, which IoU would keep. The
    pairwise overlaps are one tensor op; the greedy pass is a loop over the few boxes O-Net
    kept.
    """
    if len(scores) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    b = boxes[order].double().cpu()
    same_image = (image_index[order][:, None] == image_index[order][None, :]).cpu()
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    lo = torch.maximum(b[:, None, :2], b[None, :, :2])
    hi = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo + 1).clamp(min=0).prod(dim=2)
    overlap = inter / torch.minimum(area[:, None], area[None, :])
    suppress = ((overlap > threshold) & same_image).numpy()
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            suppress_later = suppress[i].copy()
            suppress_later[: i + 1] = False
            keep &= ~suppress_later
    return order[torch.from_numpy(keep).to(order.device)]


def minimum_detectable_face(height: int, width: int, config: DetectorConfig) -> float:
    """Smallest face side, in input pixels, the cascade can find in an image of this size."""
    return config.min_face_size / detection_scale(height, width, config)


__all__ = ["DetectorConfig", "Detections", "MTCNNDetector", "PNet", "RNet", "ONet",
           "minimum_detectable_face"]
