"""One threads policy per worker process, for torch, onnxruntime and the decode pool.

A worker process uses ``--torch_threads`` threads for model math, or, when that is 0, its share
of the cores: cores / workers on the local runner (``--direct_num_workers``), all of its cores
elsewhere (one SDK process per VM on Dataflow with ``no_use_multiple_sdk_containers``). More
threads than that only contend (docs/BENCHMARKS.md). Torch's
setting is process-wide, so it is set once per process, here, by the first model that loads
(which also keeps numpy's BLAS to one thread, see ``configure_process``);
onnxruntime models use the same number of threads, and so does the decode pool
(``--decode_threads`` overrides it for decoding alone).

onnxruntime models on CPU spend their threads across images, not inside one: each session has
one intra-op thread and a batch is split into that many parts run side by side
(``parallel_map``). These models are too small to keep several cores busy inside one image
(both ways measured in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_state: dict[str, int] = {}  # threads (the first model's), and what has been set
_pools: dict[int, ThreadPoolExecutor] = {}


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_threads(requested: int = 0, num_workers: int = 1) -> int:
    """Threads per worker process: ``requested``, or the process's share of the cores."""
    return requested if requested > 0 else max(1, available_cores() // max(1, num_workers))


def configure_process(threads: int, torch_model: bool = False) -> int:
    """Once per process, by the first model that loads: numpy's BLAS limited to one thread, and
    torch's intra-op threads (the first model's number is kept and returned). The BLAS products
    here are small (tag groups, zero-shot, expansion), and OpenBLAS's threads spin-wait after
    each one, taking the cores from the onnxruntime runs that follow (docs/BENCHMARKS.md).
    Torch is set when a torch model loads (``torch_model``) or once torch is imported anyway:
    an onnxruntime-only worker never imports it (seconds of start-up)."""
    import sys

    with _lock:
        first = _state.setdefault("threads", threads)
        if "blas" not in _state:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
            _state["blas"] = 1
        if (torch_model or sys.modules.get("torch") is not None) and "torch" not in _state:
            import torch

            torch.set_num_threads(first)
            _state["torch"] = 1
        return first


def parallel_map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[fn(i) for i in items]``, run on up to ``threads`` threads of one process-wide pool
    (for work that releases the GIL, such as an onnxruntime run)."""
    if threads <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with _lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="model")
    return list(pool.map(fn, items))


def onnx_session_options(threads: int = 1, spinning: bool = False):
    """onnxruntime options under this policy: ``threads`` intra-op threads (1 on CPU: see
    ``parallel_map``), one inter-op thread, and no spin-waiting: a spinning pool keeps a core
    busy after each run, taking it from the other model and the decode threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


def device_session(model, device: str, torch_threads: int = 0, num_workers: int = 1):
    """(onnxruntime session, threads to run its images on side by side) for a model with a batch
    of one: on CUDA where ``device`` resolves to it and onnxruntime has it (one thread there),
    else on the CPU with this process's share of threads (``parallel_map``)."""
    import onnxruntime as ort

    from transforms.core.devices import resolve_device

    providers = ["CPUExecutionProvider"]
    if resolve_device(device) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    threads = configure_process(worker_threads(torch_threads, num_workers))
    session = ort.InferenceSession(model, onnx_session_options(), providers=providers)
    return session, (1 if providers[0] != "CPUExecutionProvider" else threads)
