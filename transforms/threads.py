"""One threads policy per worker process, for torch, onnxruntime and the decode pool.

A worker process uses ``--torch_threads`` threads for model math, or, when that is 0, its share
of the cores: cores / workers on the local runner (``--direct_num_workers``), all of its cores
elsewhere (one SDK process per VM on Dataflow with ``no_use_multiple_sdk_containers``). More
threads than that only contend (2 threads per worker on 2 cores ran 3x slower than 1). Torch's
setting is process-wide, so it is set once per process, here, by the first model that loads;
every onnxruntime session takes the same number, and so does the decode pool
(``--decode_threads`` overrides it for decoding alone).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_torch_threads: dict[str, int] = {}


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_threads(requested: int = 0, num_workers: int = 1) -> int:
    """Threads per worker process: ``requested``, or the process's share of the cores."""
    return requested if requested > 0 else max(1, available_cores() // max(1, num_workers))


def configure_torch(threads: int) -> int:
    """Set torch's intra-op threads once per process; later calls keep the first setting."""
    with _lock:
        if "torch" not in _torch_threads:
            import torch

            torch.set_num_threads(threads)
            _torch_threads["torch"] = threads
        return _torch_threads["torch"]
