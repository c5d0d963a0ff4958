"""Fetch stage: URI -> bytes, for local paths and gs:// (Beam FileSystems) and http(s).

Fetches run in batches on a small thread pool per worker, so network latency overlaps
instead of adding up, and one batch ahead, so downloads overlap with the model stages;
in-flight memory is bounded by 2 x batch size x ``max_bytes``.
Every failure becomes a dead letter with a stable ``error_type`` and the attempts made.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from transforms.http_client import HttpConfig, HttpFetcher
from transforms.records import ERRORS, NAMESPACE, Element, StageError, mark_failed


def uri_kind(uri: str) -> str:
    """'web' for http(s), 'file' for local paths and registered Beam filesystems (gs://...).

    Raises StageError(invalid_uri / unsupported_scheme) for anything else.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise StageError("invalid_uri", "empty URI")
    if any(c in uri for c in "\x00\r\n"):
        raise StageError("invalid_uri", "URI contains control characters")
    try:
        scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    except ValueError as exc:
        raise StageError("invalid_uri", str(exc)) from exc
    if scheme in ("http", "https"):
        return "web"
    if scheme in ("", "file"):
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


def local_path(uri: str) -> str | None:
    """The filesystem path of a local URI: a plain path, or file:/// (any case, percent-encoded,
    host empty or localhost). None for other filesystems (gs://...)."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc.lower() not in ("", "localhost"):
        raise StageError("invalid_uri", f"file URI names another host: {parts.netloc!r}")
    return unquote(parts.path)


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


class FetchBatch(beam.DoFn):
    """DoFn over batches of elements: emits the batch of fetched elements (with ``data``) as one
    list, so decoding can run it in parallel too, and each failure as a fetch dead letter.

    Elements that already failed upstream (read stage) pass straight to the dead letters.
    """

    def __init__(self, config: HttpConfig, threads: int = 16):
        self._config = config
        self._threads = threads
        self._http: HttpFetcher | None = None
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        self._http = HttpFetcher(self._config)
        self._pool = ThreadPoolExecutor(max_workers=self._threads)

    def _fetch_one(self, element: Element) -> Element:
        if "error" in element:
            return element
        uri = element["uri"]
        attempts = 1
        try:
            if uri_kind(uri) == "web":
                assert self._http is not None
                data, attempts = self._http.fetch(uri)
            else:
                data = fetch_file(uri, self._config.max_bytes)
        except StageError as exc:
            return mark_failed(element, "fetch", exc.error_type, str(exc), exc.attempts)
        except Exception as exc:  # noqa: BLE001 - never let one URI kill the bundle
            return mark_failed(element, "fetch", "fetch_error", f"{type(exc).__name__}: {exc}")
        return {**element, "data": data, "attempts": attempts}

    def start_bundle(self) -> None:
        self._pending: tuple[list[Future], Any, Any] | None = None

    def process(self, batch: list[Element], timestamp=beam.DoFn.TimestampParam,
                window=beam.DoFn.WindowParam) -> Iterable:
        # Start this batch, then hand on the previous one: while the model stages downstream
        # work on batch k, batch k+1 is already downloading (at most two batches in flight).
        assert self._pool is not None
        started = [self._pool.submit(self._fetch_one, e) for e in batch]
        previous, self._pending = self._pending, (started, timestamp, window)
        if previous is not None:
            yield from self._collect(previous[0])

    def finish_bundle(self) -> Iterable:
        if self._pending is None:
            return
        futures, timestamp, window = self._pending
        self._pending = None
        for out in self._collect(futures):
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, timestamp, (window,)))
            else:
                yield WindowedValue(out, timestamp, (window,))

    def _collect(self, futures: list[Future]) -> Iterable:
        """Failures one by one to ERRORS; successes as one list, so decoding runs them in parallel.
        (Counters are bumped here: Beam metrics only count on the bundle's own thread.)"""
        fetched = []
        for future in futures:
            result = future.result()
            if "error" in result:
                yield beam.pvalue.TaggedOutput(ERRORS, result)
            else:
                if result["attempts"] > 1:
                    Metrics.counter(NAMESPACE, "fetch_retried_ok").inc()
                fetched.append(result)
        if fetched:
            yield fetched

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            self._http.close()
