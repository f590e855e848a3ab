"""Choose the inference device and CPU threading once, from the environment.

SIGHTLINE_DEVICE: auto (default: cuda when available, else cpu) | cpu | cuda | cuda:N
SIGHTLINE_TORCH_THREADS: intra-op CPU threads (default: CPUs this process may run on)
SIGHTLINE_FP16: set to 0 to keep fp32 on CUDA even where the parity check passes
SIGHTLINE_CPU_KEEP_FREED_MB: memory a model process keeps for reuse once freed (default 1024;
    0 leaves glibc's allocator as it is)
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable

import torch

_cpu_lock = threading.Lock()
_cpu_configured = False


class DeviceError(RuntimeError):
    """The requested device cannot be used on this machine."""


def resolve_device(requested: str | None = None) -> torch.device:
    """The device to run on; ``None`` reads SIGHTLINE_DEVICE (default ``auto``)."""
    choice = (requested if requested is not None else os.environ.get("SIGHTLINE_DEVICE", "auto"))
    choice = choice.strip().lower() or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device {choice!r} was requested (SIGHTLINE_DEVICE) but CUDA is not available "
                f"to this PyTorch build ({torch.__version__}); use 'cpu' or 'auto'."
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device {choice!r} was requested but only {torch.cuda.device_count()} "
                f"CUDA device(s) are visible."
            )
        return device
    raise DeviceError(f"Unknown device {choice!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'.")


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_cpu() -> int:
    """Set torch's thread pools and keep freed memory for reuse (``keep_freed_memory``), once
    per process; returns the intra-op thread count.

    Inter-op parallelism stays at 1: our graphs are chains of large ops, and a second pool
    would only compete with the intra-op one (and with other workers on the machine).
    """
    global _cpu_configured
    with _cpu_lock:
        if _cpu_configured:
            return torch.get_num_threads()
        raw = os.environ.get("SIGHTLINE_TORCH_THREADS", "").strip()
        threads = int(raw) if raw else available_cpus()
        if threads < 1:
            raise DeviceError(f"SIGHTLINE_TORCH_THREADS must be a positive integer, got {raw!r}")
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            # Only settable before the first parallel op; someone already ran one.
            pass
        keep_freed_memory(_keep_freed_bytes())
        _cpu_configured = True
        return threads


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _keep_freed_bytes() -> int:
    raw = os.environ.get("SIGHTLINE_CPU_KEEP_FREED_MB", "").strip() or "1024"
    if not raw.isdigit() or int(raw) > 2047:
        raise DeviceError(f"SIGHTLINE_CPU_KEEP_FREED_MB must be an integer from 0 to 2047, got {raw!r}")
    return int(raw) * 2**20


def keep_freed_memory(limit_bytes: int) -> bool:
    """Have glibc keep up to ``limit_bytes`` of freed memory for the next allocations, instead
    of handing every large tensor's memory back to the OS when it is freed.

    By default glibc serves each large allocation (over 32 MB at most: a P-Net level of a big
    photo, its activations) with a fresh mmap and unmaps it when freed, so the next photo's
    tensors fault every page in again and the kernel zeroes each one: about half of P-Net's
    time on a 1600×1200 photo, one thread (docs/BENCHMARKS.md). Served from the heap instead and kept there,
    the same pages are reused. The price: the process stays at its peak size, up to
    ``limit_bytes`` above what it uses, and a few tensors more while the heap settles (glibc
    2.36's memalign cannot reuse a freed chunk of exactly the aligned size torch asks for until
    freed neighbours coalesce). Returns False where the C library has no ``mallopt``
    (not glibc) or refuses, and changes nothing there; 0 changes nothing either.
    """
    if limit_bytes <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, limit_bytes))


def use_fp16(device: torch.device, check: Callable[[], bool]) -> bool:
    """True only on CUDA, when SIGHTLINE_FP16 is not "0" and the caller's parity check passes."""
    if device.type != "cuda":
        return False
    if os.environ.get("SIGHTLINE_FP16", "1").strip() == "0":
        return False
    return bool(check())
