"""Robust HTTP(S) fetching for untrusted web URLs.

- one pooled ``requests.Session`` per worker, shared by the fetch threads;
- connect and read timeouts, plus a total deadline per image covering retries, redirects and
  the body: the body is read with ``read1`` so a server dripping bytes cannot outlive it;
- ``max_bytes`` enforced on Content-Length and again while streaming;
- retries with exponential backoff and full jitter on transient failures only (connection
  errors, timeouts, 408, 429 honouring Retry-After, 5xx), within ``max_attempts``;
- redirects followed by hand up to ``max_redirects``, each hop re-checked by the SSRF guard;
- X-Robots-Tag ``noai`` / ``noimageai`` respected unless disabled (parsed per the robots meta
  spec: ``max-image-preview:large`` is a directive, not a bot name);
- DNS lookups bounded by the connect timeout (the guard resolves every host itself);
- the deadline also covers the status line, the headers and any interim (1xx) responses: a
  watchdog shuts the socket down when it passes, so a server sending one header line a second
  cannot hold a worker;
- a malformed response (bad status line, header lines too long or too many) is a permanent
  ``protocol_error``; a connection closed before any body arrives is a retried connection error.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from transforms.core.launch import LaunchError, at_least
from transforms.core.options import Flags, option
from transforms.core.records import StageError
from transforms.ingest import net_guard

_CHUNK = 1 << 16
REDIRECTS = (301, 302, 303, 307, 308)
OK = (200, 203)  # the only statuses whose body is the image
ROBOTS_OPT_OUT = ("noai", "noimageai")
# Robots directives that take a value after a colon (so "max-image-preview:large" is no bot name).
ROBOTS_DIRECTIVES = {
    "all", "noindex", "nofollow", "none", "nosnippet", "indexifembedded", "notranslate",
    "noimageindex", "max-snippet", "max-image-preview", "max-video-preview", "unavailable_after",
    "noarchive", "nocache", "noodp", "noydir", "noai", "noimageai",
}  # fmt: skip
_BOT_PREFIX = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*:(.*)$", re.S)

_local = threading.local()  # the current fetch's deadline, per fetch thread


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


MAX_INTERIM = 16  # interim answers skipped before one fetch gives up (a server looping on 103)


class _SkipInterim(http.client.HTTPResponse):
    """http.client skips only ``100 Continue``: ``102 Processing`` and ``103 Early Hints`` would
    be taken for the final answer. Every 1xx but 101 (a protocol switch, never asked for) is read
    past, headers and all, within the fetch's deadline."""

    def _read_status(self):
        for _ in range(MAX_INTERIM):
            version, status, reason = super()._read_status()
            if not (100 <= status < 200) or status == 101:
                return version, status, reason
            http.client._read_headers(self.fp)  # noqa: SLF001
        raise http.client.HTTPException(f"more than {MAX_INTERIM} interim (1xx) answers")


class _DeadlineMixin:
    """Bounds the status line, headers and 1xx responses by the fetch's total deadline: when it
    passes, a watchdog timer shuts the socket down and the blocked read returns."""

    response_class = _SkipInterim

    def getresponse(self):
        deadline = getattr(_local, "deadline", None)
        sock = getattr(self, "sock", None)
        timer = None
        if deadline is not None and sock is not None:
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (sock,))
            timer.daemon = True
            timer.start()
        try:
            return super().getresponse()
        finally:
            if timer is not None:
                timer.cancel()


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class _StaleRetryMixin:
    """A kept-alive connection the server closed meanwhile fails its next request with no answer
    at all. Browsers and curl send that request again once on a new connection, and so does the
    pool: it is no failure of the host's, so it spends no attempt (urllib3 cannot tell a reused
    connection from a new one in its Retry)."""

    def _make_request(self, conn, method, url, *args, **kwargs):
        reused = getattr(conn, "sock", None) is not None
        try:
            return super()._make_request(conn, method, url, *args, **kwargs)
        except _STALE:
            deadline = getattr(_local, "deadline", None)
            if not reused or method not in ("GET", "HEAD") or (deadline is not None and time.monotonic() >= deadline):
                raise
            conn.close()
        return super()._make_request(conn, method, url, *args, **kwargs)


def _pools(http_cls, https_cls) -> dict:
    conn = {"http": type("DeadlineHTTPConnection", (_DeadlineMixin, http_cls), {}),
            "https": type("DeadlineHTTPSConnection", (_DeadlineMixin, https_cls), {})}
    return {"http": type("DeadlineHTTPPool", (_StaleRetryMixin, HTTPConnectionPool), {"ConnectionCls": conn["http"]}),
            "https": type("DeadlineHTTPSPool", (_StaleRetryMixin, HTTPSConnectionPool),
                          {"ConnectionCls": conn["https"]})}


_DNS_HTTP = type("CachedDnsHTTPConnection", (net_guard.CachedDnsMixin, HTTPConnection), {})
_DNS_HTTPS = type("CachedDnsHTTPSConnection", (net_guard.CachedDnsMixin, HTTPSConnection), {})
POOLS = _pools(_DNS_HTTP, _DNS_HTTPS)
GUARDED_POOLS = _pools(type("GuardedHTTP", (net_guard.GuardMixin, _DNS_HTTP), {}),
                       type("GuardedHTTPS", (net_guard.GuardMixin, _DNS_HTTPS), {}))


@dataclass(frozen=True)
class HttpConfig(Flags):
    """How untrusted URLs are fetched: each field is its own flag (transforms/core/options.py)."""

    GROUP: ClassVar[str] = "fetching"

    fetch_concurrency: int = option(64, "Requests in flight per worker at all times (a continuous window: "
                                    "each image moves on as soon as it arrives).", aliases=("--fetch_threads",))
    max_per_host: int | None = option(None, "Most requests in flight to one host per worker. Each host's "
                                      "window adapts (starts at 4, grows while it answers well, halves on "
                                      "429/503, Retry-After, timeouts, resets or rising latency); by default it "
                                      "may grow to the whole --fetch_concurrency window.")
    fetch_batch_size: int = option(32, "Fetched images handed to the decoder at once (decoded in parallel).")
    max_host_rate: float = option(0.0, "Requests per second started to one host per worker (0: no limit).")
    max_bytes: int = option(20 * 1024 * 1024, "Largest accepted image body in bytes (too_large beyond).", template=True)
    connect_timeout: float = option(5.0, "HTTP connect timeout, seconds.")
    read_timeout: float = option(10.0, "HTTP timeout waiting for the next bytes, seconds.")
    total_timeout: float = option(30.0, "Deadline per image covering retries, redirects and the body, seconds.", template=True)
    max_attempts: int = option(3, "HTTP attempts per image; only transient failures (connection errors, "
                               "timeouts, 408, 429, 5xx) are retried, with jittered backoff.")
    retry_backoff: float = option(0.5, "Base of the exponential retry backoff, seconds.")
    max_redirects: int = option(5, "Redirect hops followed.")
    http_user_agent: str = option("image-tagger/0.1", "User-Agent header for http(s) fetches.")
    allow_private_networks: bool = option(False, "Let web URLs reach loopback/private/link-local addresses "
                                          "(the SSRF guard refuses them by default).")
    ignore_robots_opt_out: bool = option(False, "Fetch images whose X-Robots-Tag says noai/noimageai "
                                         "(skipped by default).")

    def check(self) -> None:
        if self.max_per_host is not None:
            at_least("--max_per_host", self.max_per_host, 1)
        for name, low in (("fetch_concurrency", 1), ("fetch_batch_size", 1), ("max_host_rate", 0), ("max_bytes", 1), ("max_attempts", 1),
                          ("max_redirects", 0), ("retry_backoff", 0)):
            at_least(f"--{name}", getattr(self, name), low)
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            if value is None or value <= 0:
                raise LaunchError(f"--{name} must be > 0 seconds, got {value}")


class _TransientError(Exception):
    """A failure worth retrying; carries the error_type to report if retries run out."""

    def __init__(self, error_type: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def robots_opt_out(headers: list[str], http_user_agent: str) -> str | None:
    """The X-Robots-Tag directive that forbids AI use of the image for us, if any.

    Per the robots meta spec a value is ``[bot:] directive, directive...``; a leading ``name:`` is
    a bot name only when ``name`` is not itself a directive (``max-image-preview:large``,
    ``unavailable_after: <date>``). Scoped values apply when the bot name is part of our
    User-Agent.
    """
    ua = http_user_agent.lower()
    for header in headers:
        directives = header
        match = _BOT_PREFIX.match(header)
        if match and match.group(1).lower() not in ROBOTS_DIRECTIVES:
            if match.group(1).lower() not in ua:
                continue
            directives = match.group(2)
        for directive in re.split(r"[,;]", directives):
            token = directive.split(":", 1)[0].strip().lower()
            if token in ROBOTS_OPT_OUT:
                return token
    return None


def host_of_url(url: str) -> str:
    """The lower-case host of a URL ('' when it has none or cannot be parsed)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _protocol_error(exc: BaseException) -> BaseException | None:
    """A malformed response (not a dropped connection) somewhere in the exception chain: a bad
    status line or header, conflicting Content-Lengths, a bogus chunk size, an undecodable
    gzip or deflate body."""
    from urllib3.exceptions import DecodeError, InvalidChunkLength, InvalidHeader

    chain = list(net_guard.exception_chain(exc))
    for e in chain:
        if isinstance(e, (InvalidChunkLength, DecodeError, InvalidHeader)):
            return e
        if isinstance(e, http.client.IncompleteRead) and isinstance(e.__context__, ValueError):
            return e  # http.client failed to parse a chunk size
    for e in chain:
        if isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
            return None  # a dropped connection: transient
        if isinstance(e, (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException)):
            return e
    return None


def _tls_error(exc: BaseException) -> BaseException | None:
    import ssl

    return next((e for e in net_guard.exception_chain(exc) if isinstance(e, ssl.SSLError)), None)


class _NoCookies:
    """A cookie policy that stores none: each image URL is fetched as a stranger (no state leaks
    between unrelated URLs, no Cookie header that grows until hosts answer 431)."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False

    def domain_return_ok(self, domain, request) -> bool:
        return False

    def path_return_ok(self, path, request) -> bool:
        return False


class HttpFetcher:
    """Fetch one URL's bytes under the limits of ``HttpConfig``; raises StageError on failure."""

    def __init__(self, config: HttpConfig, observer=None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        """``observer(host, outcome, latency_s, retry)`` hears every attempt: ok, throttled (429 or
        a Retry-After), unavailable (503), timeout or error, and whether it retried a URL that
        had failed (transforms/ingest/host_windows.py learns). ``clock``, ``sleep`` and ``rng``
        time the deadline, the waits (backoff, Retry-After, --max_host_rate) and the jitter; tests
        pass fakes, as Beam's RunInference takes a clock. The socket's own timeouts stay real."""
        import requests
        from requests.adapters import HTTPAdapter

        self._config = config
        self._observer = observer
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._requests = requests
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy/netrc surprises for untrusted URLs
        self._session.cookies.set_policy(_NoCookies())  # type: ignore[arg-type]
        self._session.headers["User-Agent"] = config.http_user_agent
        adapter = HTTPAdapter(pool_connections=config.fetch_concurrency, pool_maxsize=config.fetch_concurrency, max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = dict(POOLS if config.allow_private_networks else GUARDED_POOLS)
        self._hosts_lock = threading.Lock()
        self._not_before: dict[str, float] = {}  # host -> no request to it starts before this
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- public --------------------------------------------------------------------------
    def fetch(self, url: str) -> tuple[bytes, int]:
        """(body, attempts used) or StageError(error_type, ..., attempts)."""
        cfg = self._config
        deadline = self._clock() + cfg.total_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(url, deadline, retry=attempt > 1), attempt
            except StageError as exc:
                exc.attempts = attempt
                raise
            except _TransientError as exc:
                if exc.retry_after is not None:  # the host asked for a pause: all its URLs wait
                    self._hold_host(url, exc.retry_after)
                wait = self._backoff(attempt, exc.retry_after)
                if attempt >= cfg.max_attempts or self._clock() + wait >= deadline:
                    raise StageError(exc.error_type, f"{exc} (after {attempt} attempts)", attempt) from exc
                self._sleep(wait)

    def close(self) -> None:
        self._session.close()

    # -- internals -----------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self._rng.uniform(0, self._config.retry_backoff * (2 ** (attempt - 1)))

    def _hold_host(self, url: str, seconds: float) -> None:
        host = host_of_url(url)
        with self._hosts_lock:
            self._not_before[host] = max(self._not_before.get(host, 0.0), self._clock() + seconds)

    def _pace(self, url: str, deadline: float) -> None:
        """Wait for the host's turn: a Retry-After it sent, or --max_host_rate spacing."""
        host = host_of_url(url)
        with self._hosts_lock:
            now = self._clock()
            start = max(now, self._not_before.get(host, 0.0))
            if self._config.max_host_rate > 0:
                self._not_before[host] = start + 1.0 / self._config.max_host_rate
        if start - now > 0:
            if start >= deadline:
                raise StageError("timeout", f"{host} asks to wait past the deadline (Retry-After or rate limit)")
            self._sleep(start - now)

    def _attempt(self, url: str, deadline: float, retry: bool = False) -> bytes:
        cfg = self._config
        for _hop in range(cfg.max_redirects + 1):
            self._check(url, deadline)
            self._pace(url, deadline)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise StageError("timeout", "total deadline exceeded")
            _local.deadline = time.monotonic() + remaining  # the watchdog's, on the real clock
            started = self._clock()
            try:
                resp = self._session.get(
                    url,
                    stream=True,
                    allow_redirects=False,
                    timeout=(min(cfg.connect_timeout, remaining), min(cfg.read_timeout, remaining)),
                )
            except self._requests.exceptions.InvalidHeader as exc:  # a ValueError too: the response's fault
                raise StageError("protocol_error", f"malformed HTTP response: {exc}") from exc
            except ValueError as exc:  # urllib3/requests parsing a malformed URL (e.g. a redirect hop)
                raise StageError("invalid_uri", f"{exc}: {url[:200]}") from exc
            except self._requests.RequestException as exc:
                if self._clock() >= deadline:
                    self._observe(url, "timeout", started, retry)
                    raise StageError("timeout", "total deadline exceeded before the response headers ended") from exc
                failure = self._classify(exc)
                if isinstance(failure, _TransientError):
                    self._observe(url, "timeout" if failure.error_type == "timeout" else "error", started, retry)
                raise failure from exc
            finally:
                _local.deadline = None
            if resp.status_code == 429 or "Retry-After" in resp.headers:
                self._observe(url, "throttled", started, retry)
            else:
                self._observe(url, "unavailable" if resp.status_code == 503 else "ok", started, retry)
            with resp:
                if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                    url = self._redirect_target(url, resp)
                    continue
                return self._body(resp, deadline)
        raise StageError("too_many_redirects", f"more than {cfg.max_redirects} redirects")

    def _observe(self, url: str, outcome: str, started: float, retry: bool) -> None:
        if self._observer is not None:
            self._observer(host_of_url(url), outcome, self._clock() - started, retry)

    def _redirect_target(self, url: str, resp) -> str:
        """The next hop as requests computes it: Location's raw bytes read as UTF-8 (servers send
        /img/café.jpg unencoded), joined to the current URL, then percent-quoted."""
        from requests.utils import requote_uri

        try:
            location = self._session.get_redirect_target(resp) or ""
            if location.startswith("//"):
                location = f"{urlsplit(url).scheme}:{location}"
            target = requote_uri(location) if urlsplit(location).netloc else urljoin(url, requote_uri(location))
            urlsplit(target).port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise StageError("invalid_uri", f"redirect to a malformed URL: {exc}") from exc
        return target

    def _check(self, url: str, deadline: float) -> None:
        try:
            if self._config.allow_private_networks:
                if not url.lower().startswith(("http://", "https://")):
                    raise ValueError("only http and https are allowed from web input")
            else:
                timeout = max(0.01, min(self._config.connect_timeout, deadline - self._clock()))
                net_guard.check_url(url, timeout)
        except net_guard.BlockedAddressError as exc:
            raise StageError("blocked_address", str(exc)) from exc
        except ValueError as exc:
            raise StageError("invalid_uri", f"{exc}: {url[:200]}") from exc
        except TimeoutError as exc:
            raise _TransientError("timeout", str(exc)) from exc
        except OSError as exc:
            raise _TransientError("dns_error", str(exc)) from exc

    def _classify(self, exc: Exception) -> Exception:
        blocked = net_guard.blocked_in_chain(exc)
        if blocked is not None:
            return StageError("blocked_address", str(blocked))
        r = self._requests
        if isinstance(exc, (r.exceptions.InvalidURL, r.exceptions.MissingSchema, r.exceptions.InvalidSchema)):
            return StageError("invalid_uri", str(exc))
        tls = _tls_error(exc)
        if tls is not None:
            return StageError("tls_error", f"TLS failed: {tls}")
        protocol = _protocol_error(exc)
        if protocol is not None:
            return StageError("protocol_error", f"malformed HTTP response: {type(protocol).__name__}: {protocol}")
        if isinstance(exc, r.Timeout):
            return _TransientError("timeout", f"{type(exc).__name__}: {exc}")
        return _TransientError("connection_error", f"{type(exc).__name__}: {exc}")

    def _body(self, resp, deadline: float) -> bytes:
        cfg = self._config
        if self._clock() >= deadline:  # the watchdog cut the headers short
            raise StageError("timeout", "total deadline exceeded before the response headers ended")
        status = resp.status_code
        if status == 429 or status == 408 or status >= 500:
            raise _TransientError(
                f"http_{status}", f"HTTP {status}", parse_retry_after(resp.headers.get("Retry-After"))
            )
        if status not in OK:  # 204/205 hold no image, a 206/3xx/4xx body is not the image
            raise StageError(f"http_{status}", f"HTTP {status}")
        if not cfg.ignore_robots_opt_out:
            directive = robots_opt_out(resp.raw.headers.getlist("X-Robots-Tag"), cfg.http_user_agent)
            if directive:
                raise StageError("robots_opt_out", f"X-Robots-Tag: {directive}")
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cfg.max_bytes:
            raise StageError("too_large", f"Content-Length {declared} > {cfg.max_bytes}")
        parts, size = [], 0
        try:
            while True:
                chunk = resp.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > cfg.max_bytes:
                    raise StageError("too_large", f"body larger than {cfg.max_bytes} bytes")
                if self._clock() > deadline:
                    raise StageError("timeout", "total deadline exceeded while reading the body")
                parts.append(chunk)
        except StageError:
            raise
        except Exception as exc:  # noqa: BLE001 - urllib3 raises many types mid-body
            protocol = _protocol_error(exc)
            if protocol is not None:
                raise StageError("protocol_error", f"malformed HTTP body: {type(protocol).__name__}: {protocol}") from exc
            text = f"{type(exc).__name__}: {exc}"
            kind = "timeout" if "timed out" in text.lower() or "timeout" in text.lower() else "connection_error"
            raise _TransientError(kind, text) from exc
        if not parts and not declared and not resp.headers.get("Transfer-Encoding"):
            raise _TransientError("connection_error", "connection closed before any body (or before the headers ended)")
        return b"".join(parts)
