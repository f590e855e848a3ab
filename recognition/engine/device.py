"""Choose the inference device and CPU threading once, from the environment.

SIGHTLINE_DEVICE: auto (default: cuda when available, else cpu) | cpu | cuda | cuda:N
SIGHTLINE_TORCH_THREADS: intra-op CPU threads (default: CPUs this process may run on)
SIGHTLINE_FP16: set to 0 to keep fp32 on CUDA even where the parity check passes
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import torch

_threads_lock = threading.Lock()
_threads_configured = False


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


def configure_cpu_threads() -> int:
    """Set torch's thread pools once per process; returns the intra-op thread count.

    Inter-op parallelism stays at 1: our graphs are chains of large ops, and a second pool
    would only compete with the intra-op one (and with other workers on the machine).
    """
    global _threads_configured
    with _threads_lock:
        if _threads_configured:
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
        _threads_configured = True
        return threads


def use_fp16(device: torch.device, check: Callable[[], bool]) -> bool:
    """True only on CUDA, when SIGHTLINE_FP16 is not "0" and the caller's parity check passes."""
    if device.type != "cuda":
        return False
    if os.environ.get("SIGHTLINE_FP16", "1").strip() == "0":
        return False
    return bool(check())
