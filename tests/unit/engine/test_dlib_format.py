"""The dlib .dat reader parses the face model and rejects damaged files loudly."""

import dataclasses

import numpy as np
import pytest

from recognition.engine import weights
from recognition.engine.dlib_format import DlibFormatError, parse_network, read_network
from recognition.engine.embedder import check_against_definition


@pytest.fixture(scope="module")
def model_bytes():
    return weights.weight_path("dlib_resnet").read_bytes()


@pytest.fixture(scope="module")
def network(model_bytes):
    return parse_network(model_bytes, "dlib_resnet")


def test_reads_the_face_model(network):
    assert network.loss.name == "loss_metric_2"
    assert network.loss.distance_threshold == pytest.approx(0.6)
    assert network.loss.margin == pytest.approx(0.04)
    assert network.input.name == "input_rgb_image_sized"
    assert network.input.means_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (network.input.rows, network.input.cols) == (150, 150)
    assert len(network.layers) == 108
    assert len(network.wrapper_versions) == 108 + 22  # 22 tag/skip wrappers carry no record


def test_layer_records_are_in_forward_order(network):
    first, last = network.layers[0], network.layers[-1]
    assert first.name == "con_4"
    assert first.params["filters"].shape == (32, 3, 7, 7)
    assert (first.hyper["stride_y"], first.hyper["padding_y"]) == (2, 0)
    assert [r.name for r in network.layers[1:4]] == ["affine_", "relu_", "max_pool_2"]
    assert last.name == "fc_2"
    assert last.params["weight"].shape == (256, 128)  # stored (in, out): y = x . W
    assert last.hyper["has_bias"] is False
    assert network.layers[-2].name == "avg_pool_2" and network.layers[-2].hyper["nr"] == 0


def test_parameters_are_finite_float32(network):
    total = 0
    for record in network.layers:
        for array in record.params.values():
            assert array.dtype == np.float32
            assert np.isfinite(array).all()
            total += array.size
    assert total > 5_000_000  # ~5.6M parameters: the whole 22 MB file was consumed


def test_matches_the_network_definition(network):
    check_against_definition(network)


def test_read_network_from_path():
    assert len(read_network(weights.weight_path("dlib_resnet")).layers) == 108


def test_truncated_file_is_a_clear_error(model_bytes):
    with pytest.raises(DlibFormatError, match="file ends early"):
        parse_network(model_bytes[: len(model_bytes) // 2], "half.dat")
    with pytest.raises(DlibFormatError, match="file ends early"):
        parse_network(model_bytes[:-1], "short.dat")


def test_trailing_garbage_is_rejected(model_bytes):
    with pytest.raises(DlibFormatError, match="unexpected bytes after the last layer"):
        parse_network(model_bytes + b"\x00", "long.dat")


def test_garbled_layer_name_is_a_clear_error(model_bytes):
    garbled = model_bytes.replace(b"relu_", b"relx_", 1)
    with pytest.raises(DlibFormatError, match="'relx_', which this reader does not know"):
        parse_network(garbled, "garbled.dat")


def test_garbled_integer_is_a_clear_error(model_bytes):
    # Bytes 0-28 hold the loss record; from 29 on, two-byte wrapper version ints.
    assert model_bytes[29:33] == b"\x01\x02\x01\x02"
    garbled = bytearray(model_bytes)
    garbled[31] = 0x3F  # a control byte claiming 15 magnitude bytes
    with pytest.raises(DlibFormatError, match="invalid integer control byte"):
        parse_network(bytes(garbled), "garbled.dat")


def test_other_files_are_not_networks():
    with pytest.raises(DlibFormatError):
        parse_network(b"PK\x03\x04 this is a zip file", "model.zip")
    shape_predictor = weights.weight_path("dlib_shape_predictor_5").read_bytes()
    with pytest.raises(DlibFormatError):
        parse_network(shape_predictor, "shape_predictor_5_face_landmarks.dat")


def test_definition_mismatch_fails_loudly(network):
    record = network.layers[4]  # first 3x3 conv of the first residual unit
    wrong_stride = dataclasses.replace(record, hyper={**record.hyper, "stride_y": 2})
    layers = network.layers[:4] + (wrong_stride,) + network.layers[5:]
    with pytest.raises(DlibFormatError, match=r"layer record 4 .*stride_y=2, expected 1"):
        check_against_definition(dataclasses.replace(network, layers=layers))

    moved_tag = list(network.wrapper_versions)
    moved_tag[5], moved_tag[4] = moved_tag[4], moved_tag[5]
    with pytest.raises(DlibFormatError, match="layer/tag structure"):
        check_against_definition(dataclasses.replace(network, wrapper_versions=tuple(moved_tag)))
