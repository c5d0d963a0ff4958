"""Fetch stage: URI -> bytes, for local paths, gs:// (Beam FileSystems) and http(s).

Fetches run in batches on a small thread pool per worker, so network latency overlaps
instead of adding up; in-flight memory is bounded by batch size x ``max_bytes``.
Every failure becomes a dead letter with a stable ``error_type``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.records import Element, StageError, mark_failed

ERRORS = "errors"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchConfig:
    """How to fetch: limits and HTTP client settings (all set from pipeline options)."""

    max_bytes: int = 20 * 1024 * 1024
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    user_agent: str = "image-tagger/0.1 (+https://github.com/)"
    threads: int = 16


def is_web_uri(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def _looks_not_found(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, FileNotFoundError) or any(
        s in text for s in ("notfound", "not found", "no such file", "404")
    )


def read_limited(chunks: Iterable[bytes], max_bytes: int, deadline: float | None = None) -> bytes:
    """Join chunks, failing as soon as the body passes ``max_bytes`` or the deadline passes."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise StageError("too_large", f"body larger than {max_bytes} bytes")
        if deadline is not None and time.monotonic() > deadline:
            raise StageError("timeout", "total download deadline exceeded")
        parts.append(chunk)
    return b"".join(parts)


def fetch_file(uri: str, max_bytes: int) -> bytes:
    """Read a local or gs:// object through Beam FileSystems."""
    try:
        f = FileSystems.open(uri)
    except Exception as exc:  # noqa: BLE001 - every filesystem raises its own types
        if _looks_not_found(exc):
            raise StageError("not_found", f"no such file or object: {uri}") from exc
        raise StageError("io_error", f"{type(exc).__name__}: {exc}") from exc
    with f:
        return read_limited(iter(lambda: f.read(_CHUNK), b""), max_bytes)


class HttpFetcher:
    """A pooled HTTP client: one requests.Session per worker, shared by the fetch threads."""

    def __init__(self, config: FetchConfig):
        import requests
        from requests.adapters import HTTPAdapter

        self._config = config
        self._requests = requests
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=config.threads, pool_maxsize=config.threads)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = config.user_agent

    def fetch(self, uri: str) -> bytes:
        cfg = self._config
        deadline = time.monotonic() + cfg.total_timeout_s
        try:
            with self._session.get(
                uri, stream=True, timeout=(cfg.connect_timeout_s, cfg.read_timeout_s)
            ) as resp:
                if resp.status_code >= 400:
                    raise StageError(f"http_{resp.status_code}", f"HTTP {resp.status_code} for {uri}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
                    raise StageError("too_large", f"Content-Length {declared} > {cfg.max_bytes}")
                return read_limited(resp.iter_content(_CHUNK), cfg.max_bytes, deadline)
        except StageError:
            raise
        except self._requests.Timeout as exc:
            raise StageError("timeout", f"{type(exc).__name__}: {exc}") from exc
        except self._requests.exceptions.InvalidURL as exc:
            raise StageError("invalid_uri", f"{exc}") from exc
        except self._requests.RequestException as exc:
            raise StageError("connection_error", f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._session.close()


class FetchBatch(beam.DoFn):
    """DoFn over batches of elements: adds ``data`` (bytes) or emits a fetch dead letter."""

    def __init__(self, config: FetchConfig):
        self._config = config
        self._http: HttpFetcher | None = None
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        self._http = HttpFetcher(self._config)
        self._pool = ThreadPoolExecutor(max_workers=self._config.threads)

    def _fetch_one(self, element: Element) -> Element:
        uri = element["uri"]
        try:
            if is_web_uri(uri):
                assert self._http is not None
                data = self._http.fetch(uri)
            else:
                data = fetch_file(uri, self._config.max_bytes)
        except StageError as exc:
            return mark_failed(element, "fetch", exc.error_type, str(exc), exc.attempts)
        except Exception as exc:  # noqa: BLE001 - never let one URI kill the bundle
            return mark_failed(element, "fetch", "fetch_error", f"{type(exc).__name__}: {exc}")
        return {**element, "data": data}

    def process(self, batch: list[Element]) -> Iterable:
        assert self._pool is not None
        for result in self._pool.map(self._fetch_one, batch):
            if "error" in result:
                yield beam.pvalue.TaggedOutput(ERRORS, result)
            else:
                yield result

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http is not None:
            self._http.close()
