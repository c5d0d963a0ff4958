"""Live progress of local runs, across worker processes.

Beam's counters are only read after a local run ends. For a progress line while it works, the
stages also call :func:`record`; when the launcher set ``IMAGE_TAGGER_PROGRESS_DIR`` (local
runs only), each worker process keeps its counts in memory and rewrites one small JSON file
there at most once a second, which the launcher sums (pipeline/progress.py). Elsewhere (Dataflow,
Flink) the variable is unset and :func:`record` returns at once; Beam's counters still count.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections import Counter

ENV = "IMAGE_TAGGER_PROGRESS_DIR"
FLUSH_S = 1.0

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_state: dict = {"path": None, "flushed": 0.0}


def _flush_locked(directory: str) -> None:
    if _state["path"] is None:
        _state["path"] = os.path.join(directory, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
    tmp = _state["path"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(_counts), f)
    os.replace(tmp, _state["path"])
    _state["flushed"] = time.monotonic()


def record(name: str, n: int = 1) -> None:
    """Count ``n`` of ``name`` (inputs, tagged, failed, failed.<stage>.<type>) for the progress line."""
    directory = os.environ.get(ENV)
    if not directory:
        return
    with _lock:
        _counts[name] += n
        if time.monotonic() - _state["flushed"] >= FLUSH_S:
            with contextlib.suppress(OSError):  # progress is best effort; the run goes on
                _flush_locked(directory)


def flush() -> None:
    """Write this process's counts now (the end of a bundle, so the last counts are not stale)."""
    directory = os.environ.get(ENV)
    if directory:
        with _lock, contextlib.suppress(OSError):
            _flush_locked(directory)


def read_all(directory: str) -> Counter[str]:
    """The summed counts of every worker process that wrote to ``directory``."""
    total: Counter[str] = Counter()
    try:
        names = os.listdir(directory)
    except OSError:
        return total
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(directory, name)) as f:
                    total.update(json.load(f))
            except (OSError, ValueError):
                continue  # being replaced right now: next tick
    return total


def reset() -> None:
    """Forget this process's counts (a new local run in the same process)."""
    with _lock:
        _counts.clear()
        _state["path"] = None
        _state["flushed"] = 0.0
