"""Which device a worker runs a model on."""

from __future__ import annotations


def resolve_device(device: str) -> str:
    """'auto' picks cuda when a GPU is visible on the worker, else cpu; 'cuda' without one fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but this worker sees no CUDA GPU (use --device auto or cpu)")
    return device
