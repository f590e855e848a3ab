"""Whole-image tags (ImageNet-1k classes) and image embeddings from MobileNetV2.

One forward pass serves both: the 1280-d pooled features are the image embedding (L2
normalised, for cosine similarity search) and the classifier on top of them gives the tags.
Weights are torchvision's IMAGENET1K_V1 state dict, shipped in a pip package (weights.py);
nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from recognition.engine import device as device_mod
from recognition.engine import weights

EMBEDDING_SIZE = 1280
RESIZE_TO = 256  # shorter side, then a centre crop: torchvision's ImageNet evaluation recipe
CROP_TO = 224
MODEL_ID = f"mobilenet_v2_imagenet1k_v1-{weights.sha256_prefix('mobilenet_v2')}"
# The class names are a static list inside torchvision; reading them fetches nothing.
CATEGORIES: tuple[str, ...] = tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CPU_CHUNK = 16
_CUDA_CHUNK = 128


@functools.lru_cache(maxsize=1)
def _load_state_dict() -> dict[str, torch.Tensor]:
    path = weights.weight_path("mobilenet_v2")
    return torch.load(path, map_location="cpu", weights_only=True)


def _resized_crop_size(height: int, width: int) -> tuple[int, int]:
    """Shorter side to RESIZE_TO, keeping aspect ratio as torchvision's Resize(256) does."""
    if height <= width:
        return RESIZE_TO, int(RESIZE_TO * width / height)
    return int(RESIZE_TO * height / width), RESIZE_TO


def _fold_batch_norms(module: nn.Module) -> None:
    """Every Conv2d followed by a BatchNorm2d in a Sequential becomes one Conv2d with the
    norm's frozen scale and shift in its weights (eval only), as the embedder does with dlib's
    affines: MobileNetV2's 52 norms were a fifth of its forward on the CPU (docs/BENCHMARKS.md)."""
    for child in module.children():
        _fold_batch_norms(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for conv_name, norm_name in zip(names, names[1:]):
            conv, norm = module._modules[conv_name], module._modules[norm_name]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[conv_name] = fuse_conv_bn_eval(conv, norm)
                module._modules[norm_name] = nn.Identity()


class _OneDnnPointwiseConv(nn.Module):
    """A 1×1 convolution that oneDNN runs whatever the batch. PyTorch keeps a 1×1 convolution
    of fewer than 16 images on one thread for its own kernel ("faster single-threaded", ATen's
    ConvUtils), which is 1.7× slower here on MobileNetV2's pointwise layers, most of its work,
    and one thread is what a worker has on a small machine (docs/BENCHMARKS.md)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return self.conv(x)
        return torch.mkldnn_convolution(x, self.conv.weight, self.conv.bias, (0, 0), (1, 1), (1, 1), 1)


def _pointwise_convs_on_onednn(module: nn.Module) -> None:
    for name, child in module.named_children():
        if (isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1) and child.stride == (1, 1)
                and child.padding == (0, 0) and child.dilation == (1, 1) and child.groups == 1):
            setattr(module, name, _OneDnnPointwiseConv(child))
        else:
            _pointwise_convs_on_onednn(child)


class ImageTagger:
    """Batched ImageNet tags and image embeddings on one device."""

    def __init__(self, device: torch.device | str | None = None):
        self.device = device_mod.resolve_device(None if device is None else str(device))
        if self.device.type == "cpu":
            device_mod.configure_cpu()
        model = mobilenet_v2(weights=None)
        model.load_state_dict(_load_state_dict())
        _fold_batch_norms(model.eval())
        if self.device.type == "cpu" and torch.backends.mkldnn.is_available():
            _pointwise_convs_on_onednn(model)
        self.model = model.requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        self.mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1) * 255
        self.chunk_size = _CUDA_CHUNK if self.device.type == "cuda" else _CPU_CHUNK
        self.categories = CATEGORIES
        self.model_id = MODEL_ID

    def tag(self, images: Sequence[np.ndarray], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k (label, probability) per image, most probable first."""
        return self.tag_and_embed(images, top_k)[0]

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 1280) float32 L2-normalised image embeddings."""
        return self.tag_and_embed(images, top_k=1)[1]

    def tag_and_embed(
        self, images: Sequence[np.ndarray], top_k: int = 5
    ) -> tuple[list[list[tuple[str, float]]], np.ndarray]:
        """Tags and embeddings from one forward pass per batch.

        images: HxWx3 uint8 RGB arrays of any sizes.
        """
        if not 1 <= top_k <= len(CATEGORIES):
            raise ValueError(f"top_k must be between 1 and {len(CATEGORIES)}, got {top_k}")
        for index, image in enumerate(images):
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                    and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
                described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
                raise ValueError(f"image {index}: expected an HxWx3 uint8 RGB array, got {described}")
        tags: list[list[tuple[str, float]]] = []
        embeddings = np.empty((len(images), EMBEDDING_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.chunk_size):
                chunk = images[start : start + self.chunk_size]
                probabilities, features = self._forward(self._preprocess(chunk))
                top_p, top_i = probabilities.topk(top_k, dim=1)  # sorted, largest first
                for p_row, i_row in zip(top_p.tolist(), top_i.tolist()):
                    tags.append([(CATEGORIES[i], p) for i, p in zip(i_row, p_row)])
                embeddings[start : start + len(chunk)] = features.cpu().numpy()
        return tags, embeddings

    def _preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Resize (antialiased bilinear), centre-crop and normalise on the device, as torchvision's
        v2 transforms do: on the CPU the resize runs on the uint8 pixels (5 ms for a 2000×1428
        photo, against 58 ms converting it to float first; v1's float resize differs by at most
        one level); CUDA has no uint8 kernel for it, and resizes in float, rounded back."""
        crops = []
        for image in images:
            # torch wants writable memory; decoded images (np.asarray(PIL)) are often read-only.
            x = torch.from_numpy(np.require(image, requirements=["C", "W"])).to(self.device, non_blocking=True)
            x = x.permute(2, 0, 1).unsqueeze(0)  # HWC memory seen as NCHW: channels-last, uint8
            if x.device.type != "cpu":
                x = x.float()
            height, width = _resized_crop_size(image.shape[0], image.shape[1])
            x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            top = int(round((height - CROP_TO) / 2.0))
            left = int(round((width - CROP_TO) / 2.0))
            crops.append(x[:, :, top : top + CROP_TO, left : left + CROP_TO])
        batch = torch.cat(crops)
        batch = batch.float() if batch.dtype == torch.uint8 else batch.round_().clamp_(0, 255)
        return ((batch - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.features(x).mean(dim=(2, 3))
        probabilities = self.model.classifier(pooled).float().softmax(dim=1)
        return probabilities, F.normalize(pooled.float(), dim=1)
