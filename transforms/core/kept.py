"""What one long local job keeps across the pipelines of its shards: loaded models, and what the
fetch window learned of each host.

Each shard of a long list (pipeline/shards.py) builds and runs a pipeline of its own, and Beam's
shared handles live only as long as one pipeline: without this, every shard would load every
model again and relearn every host's window from slow start (docs/BENCHMARKS.md). Inside
``across_shards()``, ``kept(key, make)`` returns what ``make`` built for ``key`` the first time;
outside it, ``make`` runs every time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_kept: dict[Hashable, Any] | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def across_shards() -> Iterator[None]:
    global _kept
    with _lock:
        _kept = {}
    try:
        yield
    finally:
        with _lock:
            _kept = None


def kept(key: Hashable, make: Callable[[], T]) -> T:
    """The object kept for ``key`` in this job, made now if there is none (made outside the lock:
    two threads may both make one, the first stored wins)."""
    with _lock:
        if _kept is not None and key in _kept:
            return _kept[key]
    made = make()
    with _lock:
        if _kept is None:
            return made
        return _kept.setdefault(key, made)
