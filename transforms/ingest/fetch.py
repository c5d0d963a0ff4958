"""Fetch stage: URI -> bytes, for local paths and gs:// (Beam FileSystems) and http(s).

A continuous window of fetches per worker (``FetchWindow``): up to ``--fetch_concurrency``
requests in flight at all times, at most ``--max_per_host`` to one host, and each image handed
on as soon as it arrives, so network latency overlaps instead of adding up and one slow URL
holds only its own slot; in-flight memory is bounded by (window + batch) x ``max_bytes``.
Every failure becomes a dead letter with a stable ``error_type`` and the attempts made.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.core import uris
from transforms.core.kept import kept
from transforms.core.records import ERRORS, NAMESPACE, Element, StageError, mark_failed, with_fields
from transforms.ingest.access import WEB, AccessPolicy, local_path, scheme_of
from transforms.ingest.host_windows import HostWindows
from transforms.ingest.http_client import HttpConfig, HttpFetcher, host_of_url


def uri_kind(uri: str) -> str:
    """'web' for http(s), 'file' for local paths and registered Beam filesystems (gs://...).

    Raises StageError(invalid_uri / unsupported_scheme) for anything else.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise StageError("invalid_uri", "empty URI")
    if any(c in uri for c in "\x00\r\n"):
        raise StageError("invalid_uri", "URI contains control characters")
    try:
        scheme = scheme_of(uri)
        if uris.scheme(uri):
            urlsplit(uri)
    except ValueError as exc:
        raise StageError("invalid_uri", str(exc)) from exc
    if scheme in WEB:
        return "web"
    if scheme == "file":
        return "file"
    try:
        FileSystems.get_filesystem(uri)
    except ValueError as exc:
        raise StageError("unsupported_scheme", f"no filesystem for scheme {scheme!r}") from exc
    return "file"


def _looks_not_found(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, FileNotFoundError) or any(
        s in text for s in ("notfound", "not found", "no such file", "404")
    )


def _read_local(path: str, max_bytes: int) -> bytes:
    """A regular file's bytes, as stored (never decompressed), bounded by ``max_bytes``. FIFOs,
    devices, sockets and directories are refused without being opened (a FIFO would block)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise StageError("not_found", f"no such file: {path}") from exc
    except OSError as exc:
        raise StageError("io_error", f"{type(exc).__name__}: {exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "FIFO, device or socket"
        raise StageError("not_a_file", f"{path} is a {kind}, not a regular file")
    if st.st_size > max_bytes:
        raise StageError("too_large", f"file of {st.st_size} bytes > {max_bytes}")
    try:
        with open(path, "rb", buffering=0) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
                raise StageError("not_a_file", f"{path} is not a regular file")
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise StageError("io_error", f"{type(exc).__name__}: {exc}") from exc
    if len(data) > max_bytes:
        raise StageError("too_large", f"file larger than {max_bytes} bytes")
    return data


def fetch_file(uri: str, max_bytes: int) -> bytes:
    """Read a local file or a Beam-filesystem object (gs://...) as stored, refusing bodies over
    ``max_bytes``. Compressed files are *not* decompressed (Beam would by their suffix, with no
    bound on the output): ``photo.jpg.gz`` is gzip bytes, which decode as not_an_image."""
    path = local_path(uri)
    if path is not None:
        return _read_local(path, max_bytes)
    from apache_beam.io.filesystem import CompressionTypes

    try:
        f = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as exc:  # noqa: BLE001 - every filesystem raises its own types
        if _looks_not_found(exc):
            raise StageError("not_found", f"no such file or object: {uri}") from exc
        raise StageError("io_error", f"{type(exc).__name__}: {exc}") from exc
    with f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise StageError("too_large", f"file larger than {max_bytes} bytes")
    return data


def host_of(element: Element) -> str:
    """The host a fetch goes to ('' for local files and gs://, which take no per-host limit)."""
    uri = element["uri"]
    if "error" in element or not uri.lower().startswith(("http://", "https://")):
        return ""
    return host_of_url(uri)


class FetchWindow(beam.DoFn):
    """A continuous window of fetches per worker: up to ``fetch_concurrency`` requests in flight at
    all times (at most ``max_per_host`` of them to one host), each image handed on as soon as it
    arrives, so a slow URL holds only its own slot. Fetched images travel on in lists of up to ``fetch_batch_size``
    (decoding runs a list in parallel); failures go one by one to ERRORS. Elements that failed
    upstream pass straight to the dead letters. In-flight memory is bounded by
    (concurrency + batch_size) x max_bytes; elements waiting for a busy host hold no bytes, and
    at most ``4 x concurrency`` of them wait before the bundle blocks.
    """

    def __init__(self, config: HttpConfig, access: AccessPolicy | None = None):
        self._config = config
        self._access = access or AccessPolicy()
        self._concurrency = max(1, config.fetch_concurrency)
        # Adaptive per host (transforms/ingest/host_windows.py), never above --max_per_host when set.
        self._ceiling = min(self._concurrency, config.max_per_host) if config.max_per_host else self._concurrency
        self._batch_size = max(1, config.fetch_batch_size)
        self._http: HttpFetcher | None = None
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        # What the window learned of each host carries over to the next shard of a long list.
        self._windows = kept(("host_windows", self._ceiling), lambda: HostWindows(self._ceiling))
        self._http = HttpFetcher(self._config, observer=self._windows.observe)
        self._pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="fetch")

    def _fetch_one(self, element: Element) -> Element:
        uri = element["uri"]
        attempts = 1
        try:
            kind = uri_kind(uri)
            real = self._access.check(uri)  # before any stat or open: a refusal reveals nothing
            if kind == "web":
                assert self._http is not None
                data, attempts = self._http.fetch(uri)
            else:
                data = _read_local(real, self._config.max_bytes) if real else fetch_file(uri, self._config.max_bytes)
        except StageError as exc:
            return mark_failed(element, "fetch", exc.error_type, str(exc), exc.attempts)
        except Exception as exc:  # noqa: BLE001 - never let one URI kill the bundle
            return mark_failed(element, "fetch", "fetch_error", f"{type(exc).__name__}: {exc}")
        return with_fields(element, data=data, attempts=attempts)

    # -- the window: refilled by the fetch threads themselves, so it stays full while the
    # bundle's thread runs the model stages downstream; outputs leave on the bundle's thread.
    def start_bundle(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._per_host: dict[str, int] = {}
        self._waiting: dict[str, deque[Element]] = {}
        self._queued = 0
        self._done: deque[Element] = deque()
        self._ready: list[Element] = []
        self._where: tuple[Any, Any] | None = None

    def _fill_locked(self) -> None:
        """Start waiting fetches whose host has a free slot, while the window has room. Fetched
        images not yet handed on count against the window, so (concurrency + batch_size) x
        max_bytes bounds memory even while the bundle's thread is busy downstream."""
        assert self._pool is not None
        for host in list(self._waiting):
            queue = self._waiting[host]
            limit = self._windows.limit(host) if host else 0
            while queue and self._in_flight + len(self._done) < self._concurrency and (
                    not host or self._per_host.get(host, 0) < limit):
                element = queue.popleft()
                self._queued -= 1
                self._per_host[host] = self._per_host.get(host, 0) + 1
                self._in_flight += 1
                self._pool.submit(self._run, element, host)
            if not queue:
                del self._waiting[host]

    def _run(self, element: Element, host: str) -> None:
        result = self._fetch_one(element)
        with self._cond:
            self._in_flight -= 1
            self._per_host[host] -= 1
            self._done.append(result)
            self._fill_locked()
            self._cond.notify_all()

    def _harvest(self, block: bool) -> Iterable:
        """Hand on finished fetches (waiting for one first when ``block``)."""
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._done or not self._in_flight)
            done = list(self._done)
            self._done.clear()
            self._fill_locked()  # the handed-on images free their slots
        for result in done:
            if "error" in result:
                yield beam.pvalue.TaggedOutput(ERRORS, result)
            else:
                if result.get("attempts", 1) > 1:  # counted here: Beam metrics count on the bundle thread
                    Metrics.counter(NAMESPACE, "fetch_retried_ok").inc()
                self._ready.append(result)
        while len(self._ready) >= self._batch_size:
            ready, self._ready = self._ready[: self._batch_size], self._ready[self._batch_size:]
            yield ready

    def _busy(self) -> bool:
        with self._cond:
            return bool(self._in_flight or self._waiting or self._done)

    def process(self, element: Element, timestamp=beam.DoFn.TimestampParam,
                window=beam.DoFn.WindowParam) -> Iterable:
        self._where = (timestamp, window)
        if "error" in element:
            yield beam.pvalue.TaggedOutput(ERRORS, element)
            return
        with self._cond:
            self._waiting.setdefault(host_of(element), deque()).append(element)
            self._queued += 1
            self._fill_locked()
        yield from self._harvest(block=False)
        # Bound the bundle's backlog (elements waiting hold no bytes): wait when too many queue.
        while True:
            with self._cond:
                backlog = self._queued > 4 * self._concurrency and self._in_flight > 0
            if not backlog:
                break
            yield from self._harvest(block=True)

    def finish_bundle(self) -> Iterable:
        """The bundle's last fetches, each handed on as it is harvested (never gathered first:
        the bundle's backlog of waiting elements would all be held in memory at once)."""
        while self._busy():
            yield from map(self._windowed, self._harvest(block=True))
        if self._ready:
            ready, self._ready = self._ready, []
            yield self._windowed(ready)

    def _windowed(self, out: Any) -> Any:
        """finish_bundle's outputs carry the window and timestamp of the bundle's elements."""
        assert self._where is not None
        timestamp, window = self._where
        if isinstance(out, beam.pvalue.TaggedOutput):
            return beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, timestamp, (window,)))
        return WindowedValue(out, timestamp, (window,))

    def _log_windows(self) -> None:
        largest = self._windows.largest()
        if largest:
            import logging

            logging.getLogger(__name__).info(
                "per-host windows (now/peak, strains): " + ", ".join(f"{h} {w}/{p} ({s})" for h, w, p, s in largest))

    def teardown(self) -> None:
        if getattr(self, "_windows", None) is not None:
            self._log_windows()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            self._http.close()
