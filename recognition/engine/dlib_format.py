"""Reader for dlib's serialized DNN files (e.g. dlib_face_recognition_resnet_model_v1.dat).

dlib writes a network as nested objects, outermost first:

* the loss layer wrapper: version int, the loss details, then its subnetwork;
* every ``add_layer`` / ``add_tag_layer`` / ``add_skip_layer`` writes its version int and
  then its subnetwork *before* its own details, so the file holds the chain of wrapper
  version ints first (2 = layer, 1 = tag/skip, 3 = the layer sitting on the input), then
  the input layer, then each layer's details in forward order, input side first. Each layer
  record is followed by three bools and three (empty) tensors of training state; the first
  one (owner of the input layer) also by its sample expansion factor.

Tags and skips carry no data: the residual wiring is not in the file and must come from
the network definition (see embedder.py, which checks every record against it).

Primitive encodings (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h):

* integers: one control byte (low nibble = number of little-endian magnitude bytes that
  follow, bit 0x80 = negative), then the bytes;
* strings: an integer length, then the bytes; bools: ASCII '0' or '1';
* float/double: float_details, an int64 mantissa and an int16 exponent (value = m * 2**e);
* tensor: version int 2, ints n, k, nr, nc, then n*k*nr*nc little-endian float32;
* alias_tensor: version int 1, then ints n, k, nr, nc (a shape, no data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# float_details encodes non-finite values with these reserved exponents.
_EXPONENT_INF, _EXPONENT_NINF, _EXPONENT_NAN = 32000, 32001, 32002
_ADD_LAYER, _TAG_OR_SKIP, _ADD_LAYER_ON_INPUT = 2, 1, 3
_MAX_WRAPPERS = 100_000  # a garbled file must not make us loop for ever


class DlibFormatError(ValueError):
    """The file is not a dlib network this reader understands (truncated, garbled, other)."""


@dataclass(frozen=True)
class LossRecord:
    name: str  # "loss_metric_2"
    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class InputRecord:
    name: str  # "input_rgb_image_sized"
    means_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class LayerRecord:
    """One computational layer, in forward order.

    ``params`` holds numpy float32 arrays named for what they are ("filters" OIHW and
    "biases" for con_; "gamma"/"beta" for affine_; "weight" as stored, (in, out), for fc_);
    ``hyper`` holds the layer's integer/float settings.
    """

    name: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    hyper: dict[str, object] = field(default_factory=dict)
    offset: int = 0  # byte offset of the record's name, for error messages


@dataclass(frozen=True)
class DlibNetworkFile:
    loss: LossRecord
    input: InputRecord
    layers: tuple[LayerRecord, ...]
    wrapper_versions: tuple[int, ...]  # outermost first, as in the file


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def fail(self, message: str) -> DlibFormatError:
        return DlibFormatError(f"{self.source}: {message} (at byte offset {self.pos})")

    def take(self, count: int, what: str) -> memoryview:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(
                f"file ends early: needed {count} bytes for {what}, "
                f"{len(self.data) - self.pos} left (truncated or corrupt download?)"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self, what: str = "an integer") -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"invalid integer control byte 0x{control:02x} while reading {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def string(self, what: str = "a string", max_length: int = 256) -> str:
        length = self.int(f"the length of {what}")
        if not 0 <= length <= max_length:
            raise self.fail(f"implausible length {length} for {what}")
        raw = bytes(self.take(length, what))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-ASCII bytes in {what}: {raw[:32]!r}") from None

    def bool(self, what: str = "a bool") -> bool:
        raw = self.take(1, what)[0]
        if raw not in (ord("0"), ord("1")):
            self.pos -= 1
            raise self.fail(f"expected '0' or '1' for {what}, found byte 0x{raw:02x}")
        return raw == ord("1")

    def float(self, what: str = "a float") -> float:
        mantissa = self.int(f"the mantissa of {what}")
        exponent = self.int(f"the exponent of {what}")
        if exponent == _EXPONENT_INF:
            return math.inf
        if exponent == _EXPONENT_NINF:
            return -math.inf
        if exponent == _EXPONENT_NAN:
            return math.nan
        if not -2000 <= exponent <= 2000:
            raise self.fail(f"implausible exponent {exponent} for {what}")
        return math.ldexp(float(mantissa), exponent)

    def shape(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.int(f"a dimension of {what}") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative dimension {dims} in {what}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        version = self.int(f"the version of {what}")
        if version != 2:
            raise self.fail(f"unsupported tensor version {version} for {what} (expected 2)")
        shape = self.shape(what)
        count = math.prod(shape)
        raw = self.take(4 * count, f"the {count} float32 values of {what}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        version = self.int(f"the version of {what}")
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version} for {what}")
        return self.shape(what)


def _split(reader: _Reader, flat: np.ndarray, shapes: dict[str, tuple[int, ...]], layer: str):
    """Cut a layer's flat parameter tensor into named arrays laid out one after another."""
    values = flat.reshape(-1)
    needed = sum(math.prod(s) for s in shapes.values())
    if needed != values.size:
        raise reader.fail(
            f"{layer}: parameter tensor holds {values.size} values but its parts "
            f"{shapes} need {needed}"
        )
    parts, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        parts[name] = values[start : start + size].reshape(shape)
        start += size
    return parts


def _read_con(reader: _Reader, name: str) -> LayerRecord:
    flat = reader.tensor(f"{name} params")
    hyper = {
        "num_filters": reader.int(),
        "nr": reader.int(),
        "nc": reader.int(),
        "stride_y": reader.int(),
        "stride_x": reader.int(),
        "padding_y": reader.int(),
        "padding_x": reader.int(),
    }
    filters_shape = reader.alias_tensor(f"{name} filters")
    biases_shape = reader.alias_tensor(f"{name} biases")
    hyper["learning_rate_multiplier"] = reader.float()
    hyper["weight_decay_multiplier"] = reader.float()
    hyper["bias_learning_rate_multiplier"] = reader.float()
    hyper["bias_weight_decay_multiplier"] = reader.float()
    if filters_shape[0] != hyper["num_filters"] or filters_shape[2:] != (hyper["nr"], hyper["nc"]):
        raise reader.fail(f"{name}: filter shape {filters_shape} disagrees with {hyper}")
    parts = _split(
        reader, flat, {"filters": filters_shape, "biases": (math.prod(biases_shape),)}, name
    )
    hyper["in_channels"] = filters_shape[1]
    return LayerRecord(name, parts, hyper)


def _read_affine(reader: _Reader, name: str) -> LayerRecord:
    flat = reader.tensor(f"{name} params")
    gamma_shape = reader.alias_tensor(f"{name} gamma")
    beta_shape = reader.alias_tensor(f"{name} beta")
    mode = reader.int(f"{name} mode")  # 0 = conv mode (per channel), 1 = fc mode
    parts = _split(
        reader,
        flat,
        {"gamma": (math.prod(gamma_shape),), "beta": (math.prod(beta_shape),)},
        name,
    )
    return LayerRecord(name, parts, {"mode": mode, "gamma_shape": gamma_shape})


def _read_pool(reader: _Reader, name: str) -> LayerRecord:
    keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return LayerRecord(name, {}, {key: reader.int(f"{name} {key}") for key in keys})


def _read_fc(reader: _Reader, name: str) -> LayerRecord:
    num_outputs = reader.int(f"{name} num_outputs")
    num_inputs = reader.int(f"{name} num_inputs")
    flat = reader.tensor(f"{name} params")
    weights_shape = reader.alias_tensor(f"{name} weights")
    biases_shape = reader.alias_tensor(f"{name} biases")
    bias_mode = reader.int(f"{name} bias mode")  # 0 = has bias, 1 = no bias
    hyper = {
        "num_outputs": num_outputs,
        "num_inputs": num_inputs,
        "has_bias": bias_mode == 0,
        "learning_rate_multiplier": reader.float(),
        "weight_decay_multiplier": reader.float(),
        "bias_learning_rate_multiplier": reader.float(),
        "bias_weight_decay_multiplier": reader.float(),
    }
    if weights_shape[:2] != (num_inputs, num_outputs):
        raise reader.fail(f"{name}: weights shape {weights_shape} is not ({num_inputs}, {num_outputs})")
    shapes = {"weight": (num_inputs, num_outputs)}
    if hyper["has_bias"]:
        shapes["bias"] = (math.prod(biases_shape),)
    return LayerRecord(name, _split(reader, flat, shapes, name), hyper)


def _read_plain(reader: _Reader, name: str) -> LayerRecord:
    return LayerRecord(name, {}, {})


_LAYER_READERS = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": _read_plain,
    "add_prev_": _read_plain,
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "fc_2": _read_fc,
}


def _read_layer(reader: _Reader, index: int, on_input: bool) -> LayerRecord:
    offset = reader.pos
    name = reader.string(f"the name of layer {index}")
    read_details = _LAYER_READERS.get(name)
    if read_details is None:
        raise reader.fail(
            f"layer {index} has type {name!r}, which this reader does not know "
            f"(known: {', '.join(_LAYER_READERS)})"
        )
    record = read_details(reader, name)
    # add_layer's training state: three flags and three tensors, unused for inference.
    for flag in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        reader.bool(f"{name} {flag}")
    for state in ("x_grad", "cached_output", "params_grad"):
        reader.tensor(f"{name} {state}")
    if on_input:
        # The wrapper that owns the input layer (version 3) also records how many
        # samples each input object expands to.
        expansion = reader.int(f"{name} sample expansion factor")
        if expansion != 1:
            raise reader.fail(f"unsupported sample expansion factor {expansion} (expected 1)")
    return LayerRecord(record.name, record.params, record.hyper, offset)


def _read_loss(reader: _Reader) -> LossRecord:
    version = reader.int("the loss wrapper version")
    if version != 1:
        raise reader.fail(f"not a dlib network file: loss wrapper version {version}, expected 1")
    name = reader.string("the loss layer name")
    if name != "loss_metric_2":
        raise reader.fail(f"unsupported loss layer {name!r} (expected 'loss_metric_2')")
    margin = reader.float("the loss margin")
    distance_threshold = reader.float("the loss distance threshold")
    return LossRecord(name, margin, distance_threshold)


def _read_input(reader: _Reader) -> InputRecord:
    name = reader.string("the input layer name")
    if name != "input_rgb_image_sized":
        raise reader.fail(f"unsupported input layer {name!r} (expected 'input_rgb_image_sized')")
    means = (reader.float("mean red"), reader.float("mean green"), reader.float("mean blue"))
    rows = reader.int("input rows")
    cols = reader.int("input columns")
    return InputRecord(name, means, rows, cols)


def parse_network(data: bytes, source: str = "<bytes>") -> DlibNetworkFile:
    """Parse a serialized dlib metric-learning network from its bytes."""
    reader = _Reader(data, source)
    loss = _read_loss(reader)
    versions: list[int] = []
    while True:
        version = reader.int("a layer wrapper version")
        if version not in (_ADD_LAYER, _TAG_OR_SKIP, _ADD_LAYER_ON_INPUT):
            raise reader.fail(f"unexpected layer wrapper version {version}")
        versions.append(version)
        if version == _ADD_LAYER_ON_INPUT:
            break
        if len(versions) > _MAX_WRAPPERS:
            raise reader.fail("no input layer found after too many layer wrappers")
    input_record = _read_input(reader)
    layer_count = sum(v != _TAG_OR_SKIP for v in versions)
    layers = tuple(_read_layer(reader, index, index == 0) for index in range(layer_count))
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} unexpected bytes after the last layer")
    return DlibNetworkFile(loss, input_record, layers, tuple(versions))


def read_network(path: str | Path) -> DlibNetworkFile:
    """Parse a dlib network file from disk."""
    path = Path(path)
    return parse_network(path.read_bytes(), str(path))
