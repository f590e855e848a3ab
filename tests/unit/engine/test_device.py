"""Device selection reads the environment once and refuses impossible requests."""

import platform
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_configure_cpu_is_idempotent(monkeypatch):
    monkeypatch.setattr(device_mod, "_cpu_configured", False)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SIGHTLINE_TORCH_THREADS", "1")
        assert device_mod.configure_cpu() == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SIGHTLINE_TORCH_THREADS", "2")
        assert device_mod.configure_cpu() == 1  # second call changes nothing
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    # In a process of its own: the allocator's settings are process-wide and one-way. glibc 2.36's
    # memalign (torch aligns to 64 bytes) cannot reuse a freed chunk of exactly the size asked for,
    # so the heap first grows by a few tensors until freed neighbours coalesce (2 to 7 rounds
    # measured); from then on the same pages serve every round. The test checks that steady state.
    script = textwrap.dedent("""
        import resource, torch
        from recognition.engine import device

        def faults_of_a_64_mb_tensor():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            torch.ones(16 * 2**20)  # filled, then freed
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        default = [faults_of_a_64_mb_tensor() for _ in range(4)]
        configured = device.keep_freed_memory(256 * 2**20)
        kept = [faults_of_a_64_mb_tensor() for _ in range(16)]
        print(min(default), configured, max(kept[-6:]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3]).stdout.split()
    default, configured, kept = int(out[0]), out[1] == "True", int(out[2])
    pages = 64 * 2**20 // resource.getpagesize()
    assert default >= pages // 2, "glibc's default: the freed tensor went back to the OS, its pages fault in again"
    assert configured and kept < pages // 20, f"{kept} page faults for a tensor the size of freed memory"


@pytest.mark.parametrize("raw", ["-1", "2048", "lots"])
def test_keep_freed_memory_setting_is_checked(monkeypatch, raw):
    monkeypatch.setenv("SIGHTLINE_CPU_KEEP_FREED_MB", raw)
    with pytest.raises(DeviceError, match="SIGHTLINE_CPU_KEEP_FREED_MB"):
        device_mod._keep_freed_bytes()


def test_keep_freed_memory_zero_changes_nothing():
    assert device_mod.keep_freed_memory(0) is False
