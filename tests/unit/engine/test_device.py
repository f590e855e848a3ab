"""Device selection reads the environment once and refuses impossible requests."""

import pytest
import torch

from recognition.engine import device as device_mod
from recognition.engine.device import DeviceError, resolve_device, use_fp16


def test_cpu_is_always_available(monkeypatch):
    monkeypatch.delenv("SIGHTLINE_DEVICE", raising=False)
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_picks_cuda_only_when_available(monkeypatch):
    monkeypatch.delenv("SIGHTLINE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected


def test_environment_variable_is_read_when_no_request(monkeypatch):
    monkeypatch.setenv("SIGHTLINE_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("SIGHTLINE_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device()
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_unknown_device_is_rejected():
    with pytest.raises(DeviceError, match="Unknown device 'tpu'"):
        resolve_device("tpu")


def test_fp16_never_on_cpu():
    assert use_fp16(torch.device("cpu"), lambda: True) is False


def test_fp16_on_cuda_follows_check_and_env(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.delenv("SIGHTLINE_FP16", raising=False)
    assert use_fp16(cuda, lambda: True) is True
    assert use_fp16(cuda, lambda: False) is False
    monkeypatch.setenv("SIGHTLINE_FP16", "0")
    called = []
    assert use_fp16(cuda, lambda: called.append(1) or True) is False
    assert called == []  # the (expensive) check is not even run when disabled


def test_configure_cpu_threads_is_idempotent(monkeypatch):
    monkeypatch.setattr(device_mod, "_threads_configured", False)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SIGHTLINE_TORCH_THREADS", "1")
        assert device_mod.configure_cpu_threads() == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SIGHTLINE_TORCH_THREADS", "2")
        assert device_mod.configure_cpu_threads() == 1  # second call changes nothing
    finally:
        torch.set_num_threads(before)
