"""The progress line of local runs: every few seconds, what the workers have done so far.

    [progress] 0:01:05  read 1234/2000  done 1000 (tagged 950, failed 50: fetch.not_found 40)  15.2 img/s  ETA 0:00:50

The workers count through transforms/core/progress.py into a temporary directory; this thread sums
their files. The input count (for the ETA) is known when INPUT is a local list or a local glob.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter

from transforms.core import progress, uris
from transforms.ingest.read import count_entries_within, directory_images, input_kind


def estimate_inputs(pattern: str | None, limit_bytes: int = 512 << 20) -> int | None:
    """How many inputs INPUT holds, when that is cheap to know locally; else None."""
    if not pattern or uris.scheme(pattern):
        return None
    kind = input_kind(pattern)
    if kind == "directory":
        return sum(1 for _ in directory_images(pattern))
    files = sorted(glob.glob(pattern, recursive=True))
    if kind == "glob":
        return len(files)
    if not files or sum(os.path.getsize(f) for f in files) > limit_bytes:
        return None
    if kind == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    total = 0
    for f in files:
        lines = count_entries_within(f, limit_bytes)  # streamed; a compressed list's text is bounded too
        if lines is None:
            return None
        total += lines - (1 if kind in ("csv", "tsv") and lines else 0)
    return total


def _clock(seconds: float) -> str:
    return str(_dt.timedelta(seconds=int(seconds)))


STARTING = "starting: the workers load the models before reading the input"


def line(counts: Counter, elapsed: float, total: int | None, recent_rate: float | None = None) -> str:
    done = counts.get("tagged", 0) + counts.get("failed", 0)
    read = f"read {counts.get('inputs', 0)}" + (f"/{total}" if total is not None else "")
    failures = sorted(((k[len("failed."):], v) for k, v in counts.items() if k.startswith("failed.")),
                      key=lambda kv: -kv[1])
    detail = f"tagged {counts.get('tagged', 0)}, failed {counts.get('failed', 0)}"
    if failures:
        detail += ": " + ", ".join(f"{k} {v}" for k, v in failures[:4])
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"[progress] {_clock(elapsed)}  {read}  done {done} ({detail})  {rate:.1f} img/s"
    if not done and not counts.get("inputs", 0):
        return text + f"  {STARTING}"
    pace = recent_rate if recent_rate is not None else rate
    if total is not None and pace > 0 and done < total:
        text += f"  ETA {_clock((total - done) / pace)}"
    return text


RATE_WINDOW_S = 30.0  # the ETA follows the recent pace, not the average since start-up


class Pace:
    """Images per second over the last RATE_WINDOW_S seconds (model loading and a slow start
    do not inflate the ETA at the end of a run)."""

    def __init__(self) -> None:
        self._points: list[tuple[float, int]] = []

    def add(self, now: float, done: int) -> float | None:
        self._points.append((now, done))
        while len(self._points) > 2 and now - self._points[1][0] >= RATE_WINDOW_S:
            self._points.pop(0)
        (t0, d0) = next(((t, d) for t, d in self._points if d > 0), self._points[-1])
        if now - t0 <= 0 or done - d0 <= 0:
            return None
        return (done - d0) / (now - t0)


class Reporter:
    """Prints a progress line every ``interval`` seconds while a local run works."""

    def __init__(self, total: int | None, interval: float = 5.0, stream=None):
        self.total = total
        self.interval = interval
        self.stream = stream or sys.stderr
        self.directory = tempfile.mkdtemp(prefix="image-tagger-progress-")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._start = 0.0
        self._pace = Pace()
        self._previous = os.environ.get(progress.ENV)

    def __enter__(self) -> Reporter:
        progress.reset()
        os.environ[progress.ENV] = self.directory  # worker processes started from here inherit it
        self._start = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.print_line()

    def print_line(self) -> None:
        counts = progress.read_all(self.directory)
        elapsed = time.monotonic() - self._start
        done = counts.get("tagged", 0) + counts.get("failed", 0)
        pace = self._pace.add(elapsed, done)
        print(line(counts, elapsed, self.total, pace), file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._previous is None:
            os.environ.pop(progress.ENV, None)
        else:
            os.environ[progress.ENV] = self._previous
        shutil.rmtree(self.directory, ignore_errors=True)
