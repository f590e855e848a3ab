"""dlib's ResNet face descriptor network (dlib_face_recognition_resnet_model_v1), in PyTorch.

The architecture is dlib's ``anet_type`` from examples/dnn_face_recognition_ex.cpp; the
weights are read from dlib's own .dat file (dlib_format.py) and every record is checked
against the definition below, because the file carries no wiring (tags and skips are
empty) and a silent mismatch would produce plausible but wrong descriptors.

Input: 150x150 RGB face chips as dlib's ``get_face_chip(img, shape, 150, 0.25)`` makes them.
Output: 128-d descriptors, NOT L2-normalised (norm ~1.4); compare with Euclidean distance,
same person below ``DISTANCE_THRESHOLD``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recognition.engine import device as device_mod
from recognition.engine import weights
from recognition.engine.dlib_format import DlibFormatError, DlibNetworkFile, read_network

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
DISTANCE_THRESHOLD = 0.6
MODEL_ID = f"dlib_resnet_v1-{weights.sha256_prefix('dlib_resnet')}"

_CPU_CHUNK = 32
_CUDA_CHUNK = 256


# --- the network definition, in dlib's terms ------------------------------------------------


@dataclass(frozen=True)
class ExpectedLayer:
    """What one record of the file must be: dlib layer type, settings, parameter shapes."""

    name: str
    hyper: tuple[tuple[str, object], ...] = ()
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()


_TAG = None  # a tag or skip wrapper: version int in the file, no record


def _con(out_ch: int, in_ch: int, size: int, stride: int) -> ExpectedLayer:
    # dlib's default padding: 0 when strided, else size/2 ("same").
    padding = 0 if stride != 1 else size // 2
    hyper = (("num_filters", out_ch), ("nr", size), ("nc", size), ("stride_y", stride),
             ("stride_x", stride), ("padding_y", padding), ("padding_x", padding))
    shapes = (("filters", (out_ch, in_ch, size, size)), ("biases", (out_ch,)))
    return ExpectedLayer("con_4", hyper, shapes)


def _affine(channels: int) -> ExpectedLayer:
    return ExpectedLayer("affine_", (("mode", 0),), (("gamma", (channels,)), ("beta", (channels,))))


def _pool(name: str, size: int, stride: int) -> ExpectedLayer:
    padding = 0 if stride != 1 else size // 2
    hyper = (("nr", size), ("nc", size), ("stride_y", stride), ("stride_x", stride),
             ("padding_y", padding), ("padding_x", padding))
    return ExpectedLayer(name, hyper)


_RELU = ExpectedLayer("relu_")
_ADD_PREV = ExpectedLayer("add_prev_")

# (out channels, in channels, downsampling?) for every residual unit, input side first:
# alevel4 (3 x 32), alevel3 (down 64 + 3 x 64), alevel2 (down 128 + 2 x 128),
# alevel1 (down 256 + 2 x 256), alevel0 (down 256).
RESIDUAL_UNITS: tuple[tuple[int, int, bool], ...] = (
    (32, 32, False), (32, 32, False), (32, 32, False),
    (64, 32, True), (64, 64, False), (64, 64, False), (64, 64, False),
    (128, 64, True), (128, 128, False), (128, 128, False),
    (256, 128, True), (256, 256, False), (256, 256, False),
    (256, 256, True),
)


def expected_sequence() -> list[ExpectedLayer | None]:
    """Forward-order layers of anet_type, with None where dlib has a tag/skip wrapper."""
    seq: list[ExpectedLayer | None] = [_con(32, 3, 7, 2), _affine(32), _RELU, _pool("max_pool_2", 3, 2)]
    for out_ch, in_ch, down in RESIDUAL_UNITS:
        block = [_con(out_ch, in_ch, 3, 2 if down else 1), _affine(out_ch), _RELU,
                 _con(out_ch, out_ch, 3, 1), _affine(out_ch)]
        if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<tag1<x>>>>>>
            seq += [_TAG, *block, _TAG, _TAG, _pool("avg_pool_2", 2, 2), _ADD_PREV, _RELU]
        else:  # add_prev1<block<tag1<x>>>
            seq += [_TAG, *block, _ADD_PREV, _RELU]
    seq += [
        _pool("avg_pool_2", 0, 1),  # avg_pool_everything
        ExpectedLayer("fc_2", (("num_outputs", DESCRIPTOR_SIZE), ("num_inputs", 256), ("has_bias", False)),
                      (("weight", (256, DESCRIPTOR_SIZE)),)),
    ]
    return seq


def check_against_definition(net: DlibNetworkFile) -> None:
    """Raise DlibFormatError unless the parsed file is exactly anet_type with 150x150 RGB input."""
    seq = expected_sequence()
    expected_layers = [item for item in seq if item is not None]
    # The file lists wrapper versions outermost first: 2 = layer, 1 = tag/skip, 3 = the
    # layer on the input. Matching them checks where the tags (the wiring) sit.
    expected_versions = [1 if item is None else 2 for item in seq]
    expected_versions[0] = 3
    expected_versions.reverse()
    if list(net.wrapper_versions) != expected_versions:
        raise DlibFormatError(
            "The dlib network's layer/tag structure differs from dlib_face_recognition_resnet_model_v1 "
            f"({len(net.wrapper_versions)} wrappers in the file, {len(expected_versions)} expected)."
        )
    if (net.input.rows, net.input.cols) != (CHIP_SIZE, CHIP_SIZE):
        raise DlibFormatError(f"Input size {net.input.rows}x{net.input.cols}, expected 150x150.")
    if len(net.layers) != len(expected_layers):
        raise DlibFormatError(f"{len(net.layers)} layer records, expected {len(expected_layers)}.")
    for index, (record, expected) in enumerate(zip(net.layers, expected_layers)):
        where = f"layer record {index} (byte {record.offset})"
        if record.name != expected.name:
            raise DlibFormatError(f"{where} is {record.name!r}, the definition expects {expected.name!r}.")
        for key, value in expected.hyper:
            if record.hyper.get(key) != value:
                raise DlibFormatError(
                    f"{where} ({record.name}) has {key}={record.hyper.get(key)!r}, expected {value!r}."
                )
        for key, shape in expected.param_shapes:
            actual = record.params[key].shape if key in record.params else None
            if actual != shape:
                raise DlibFormatError(f"{where} ({record.name}) {key} has shape {actual}, expected {shape}.")
        if len(record.params) != len(expected.param_shapes):
            raise DlibFormatError(f"{where} ({record.name}) has unexpected parameters {sorted(record.params)}.")


# --- the PyTorch module -----------------------------------------------------------------------


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: sum of two tensors, the smaller zero-padded at the end of each dim."""
    if a.shape == b.shape:
        return a + b
    channels, height, width = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[3], 0, height - t.shape[2], 0, channels - t.shape[1]))

    return pad(a) + pad(b)


class ResidualUnit(nn.Module):
    """relu(block(x) + shortcut(x)); block = conv3x3 -> affine -> relu -> conv3x3 -> affine.

    The affines are folded into the convolutions. A down unit's first conv has stride 2 and
    no padding, and its shortcut is a 2x2/2 average pool (no projection: channels and the
    odd spatial size are matched by zero padding in the add).
    """

    def __init__(self, out_ch: int, in_ch: int, down: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1)
        self.shortcut = nn.AvgPool2d(2, 2) if down else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(_add_zero_padded(y, self.shortcut(x)))


class DlibResNet(nn.Module):
    """anet_type: input (N, 3, 150, 150) RGB floats in 0..255 -> (N, 128) descriptors."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("means", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.pool = nn.MaxPool2d(3, 2, padding=0)
        self.units = nn.Sequential(*(ResidualUnit(o, i, d) for o, i, d in RESIDUAL_UNITS))
        self.fc = nn.Linear(256, DESCRIPTOR_SIZE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's input_rgb_image_sized: (pixel - mean) / 256, in the means' dtype (fp32)."""
        return (x - self.means) * (1.0 / 256.0)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.stem(x)))
        x = self.units(x)
        return self.fc(x.mean(dim=(2, 3)))


def _folded_conv(con, affine) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of conv followed by a frozen per-channel affine, folded (in float64)."""
    gamma = affine.params["gamma"].astype(np.float64)
    beta = affine.params["beta"].astype(np.float64)
    weight = con.params["filters"].astype(np.float64) * gamma[:, None, None, None]
    bias = con.params["biases"].astype(np.float64) * gamma + beta
    return torch.from_numpy(weight.astype(np.float32)), torch.from_numpy(bias.astype(np.float32))


def build_from_file(net: DlibNetworkFile) -> DlibResNet:
    """A DlibResNet (CPU, fp32, eval mode) holding the parsed file's weights."""
    check_against_definition(net)
    model = DlibResNet()
    cons = [r for r in net.layers if r.name == "con_4"]
    affines = [r for r in net.layers if r.name == "affine_"]
    # Every con_ is directly followed by an affine_ (checked above), so they pair in order.
    state = {"means": torch.tensor(net.input.means_rgb, dtype=torch.float32).view(1, 3, 1, 1)}
    names = ["stem"] + [f"units.{i}.conv{j}" for i in range(len(RESIDUAL_UNITS)) for j in (1, 2)]
    for name, con, affine in zip(names, cons, affines, strict=True):
        state[f"{name}.weight"], state[f"{name}.bias"] = _folded_conv(con, affine)
    fc = next(r for r in net.layers if r.name == "fc_2")
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.params["weight"].T))  # y = x.W
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def load_cpu_model() -> DlibResNet:
    """The verified, parsed, folded network; built once per process (CPU master copy)."""
    return build_from_file(read_network(weights.weight_path("dlib_resnet")))


# --- public API -------------------------------------------------------------------------------


class FaceEmbedder:
    """Batched face descriptors on one device.

    ``embed`` takes numpy chips, ``embed_tensor`` takes chips already on the device.
    """

    def __init__(self, device: torch.device, fp16: bool = False):
        self.device = torch.device(device)
        if fp16 and self.device.type != "cuda":
            raise ValueError("fp16 descriptors are only supported on CUDA devices")
        self.fp16 = fp16
        if self.device.type == "cpu":
            device_mod.configure_cpu()
        model = load_cpu_model()
        if self.device.type != "cpu" or fp16:
            model = DlibResNet().eval().requires_grad_(False)
            model.load_state_dict(load_cpu_model().state_dict())
        model = model.to(self.device, memory_format=torch.channels_last)
        if fp16:
            # The input normalisation stays fp32; only the convolutions run in half.
            model = model.half()
            model.means = model.means.float()
        self.model = model
        self.chunk_size = _CUDA_CHUNK if self.device.type == "cuda" else _CPU_CHUNK
        self.model_id = MODEL_ID

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips -> (N, 128) float32 descriptors."""
        chips = np.asarray(chips)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(
                f"expected chips as a (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) uint8 RGB array, "
                f"got {chips.dtype} {chips.shape}"
            )
        out = np.empty((len(chips), DESCRIPTOR_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(chips), self.chunk_size):
                # torch wants writable, contiguous memory: copy only when the caller's is not.
                batch = torch.from_numpy(np.require(chips[start : start + self.chunk_size], requirements=["C", "W"]))
                # NHWC bytes viewed as NCHW are already channels_last: no copy before the cast.
                x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
                out[start : start + len(batch)] = self._forward(x).cpu().numpy()
        return out

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 150, 150) float RGB in 0..255 (ideally on this device) -> (N, 128) float32."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"expected a (N, 3, {CHIP_SIZE}, {CHIP_SIZE}) tensor, got {tuple(x.shape)}")
        with torch.inference_mode():
            x = x.to(self.device).float().contiguous(memory_format=torch.channels_last)
            if len(x) == 0:
                return torch.empty(0, DESCRIPTOR_SIZE, dtype=torch.float32, device=self.device)
            return torch.cat([self._forward(part) for part in x.split(self.chunk_size)])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model.normalize(x)
        if self.fp16:
            x = x.half()
        return self.model.body(x).float()

