"""Which device a worker runs a model on."""

from __future__ import annotations

import os

NVIDIA_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia")


def resolve_device(device: str) -> str:
    """'auto' picks cuda when a GPU is visible on the worker, else cpu; 'cuda' without one fails.
    A machine without NVIDIA device nodes has no CUDA GPU: then torch (seconds to import) is
    not asked."""
    if device in ("auto", "cpu") and not any(os.path.exists(p) for p in NVIDIA_DEVICE_NODES):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but this worker sees no CUDA GPU (use --device auto or cpu)")
    return device
