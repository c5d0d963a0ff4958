"""HTTP fetching against a misbehaving loopback server: retries, limits, redirects, robots, guard."""

from __future__ import annotations

import time

import pytest

from tests.conftest import (
    cookie_jar_probe,
    drip,
    endless,
    flaky,
    redirect,
    reset_then,
    send_bytes,
    tls_server,
    with_headers,
)
from transforms.core.records import StageError
from transforms.ingest import net_guard
from transforms.ingest.http_client import HttpConfig, HttpFetcher, parse_retry_after, robots_opt_out

FAST = HttpConfig(
    allow_private_networks=True, connect_timeout=2, read_timeout=1, total_timeout=4,
    retry_backoff=0.05, max_bytes=1 << 20,
)


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def faked(config: HttpConfig = FAST, clock: FakeClock | None = None, **kwargs) -> HttpFetcher:
    clock = clock or FakeClock()
    return HttpFetcher(config, clock=clock, sleep=clock.sleep, **kwargs)


def fetch(url: str, config: HttpConfig = FAST) -> tuple[bytes, int]:
    fetcher = HttpFetcher(config)
    try:
        return fetcher.fetch(url)
    finally:
        fetcher.close()


def failure(url: str, config: HttpConfig = FAST) -> StageError:
    with pytest.raises(StageError) as info:
        fetch(url, config)
    return info.value


def test_transient_5xx_then_success_is_retried(http_server):
    base, routes = http_server
    routes["/img"] = flaky([(503, {}), (500, {})], send_bytes(b"IMG"))
    assert fetch(f"{base}/img") == (b"IMG", 3)


def test_the_host_window_hears_each_attempt_and_which_are_retries(http_server):
    base, routes = http_server
    routes["/img"] = flaky([(503, {}), (503, {})], send_bytes(b"IMG"))
    heard = []
    fetcher = HttpFetcher(FAST, observer=lambda host, outcome, latency, retry: heard.append((outcome, retry)))
    try:
        assert fetcher.fetch(f"{base}/img") == (b"IMG", 3)
    finally:
        fetcher.close()
    assert heard == [("unavailable", False), ("unavailable", True), ("ok", True)]


def test_429_honours_retry_after(http_server):
    base, routes = http_server
    routes["/img"] = flaky([(429, {"Retry-After": "2"})], send_bytes(b"IMG"))
    clock = FakeClock()
    fetcher = faked(clock=clock)
    try:
        assert fetcher.fetch(f"{base}/img") == (b"IMG", 2)
    finally:
        fetcher.close()
    assert sum(clock.slept) >= 2.0, "the retry waited as long as the host asked"


def test_retry_after_beyond_the_deadline_fails_fast(http_server):
    base, routes = http_server
    routes["/img"] = flaky([(429, {"Retry-After": "3600"})], send_bytes(b"IMG"))
    clock = FakeClock()
    with pytest.raises(StageError) as info:
        faked(clock=clock).fetch(f"{base}/img")
    assert info.value.error_type == "http_429" and info.value.attempts == 1
    assert clock.slept == [], "a wait past the deadline is not waited"


def test_backoff_is_full_jitter_from_the_injected_random_source(http_server):
    import random

    base, routes = http_server
    routes["/img"] = flaky([(500, {})] * 2, send_bytes(b"IMG"))
    waits = []
    for _ in range(2):
        clock = FakeClock()
        assert faked(FAST, clock, rng=random.Random(5)).fetch(f"{base}/img")[1] == 3
        routes["/img"].state["calls"] = 0
        waits.append(clock.slept)
    assert waits[0] == waits[1] and len(waits[0]) == 2, "the same seed, the same waits"
    assert 0 <= waits[0][0] <= FAST.retry_backoff and 0 <= waits[0][1] <= 2 * FAST.retry_backoff


def test_retry_budget_is_bounded(http_server):
    base, routes = http_server
    routes["/img"] = flaky([(500, {})] * 10, send_bytes(b"IMG"))
    err = failure(f"{base}/img")
    assert (err.error_type, err.attempts) == ("http_500", 3)
    assert routes["/img"].state["calls"] == 3


@pytest.mark.parametrize("status", [404, 403, 410, 400])
def test_permanent_errors_are_not_retried(http_server, status):
    base, routes = http_server
    routes["/img"] = flaky([(status, {})] * 5, send_bytes(b"IMG"))
    err = failure(f"{base}/img")
    assert (err.error_type, err.attempts) == (f"http_{status}", 1)
    assert routes["/img"].state["calls"] == 1


def test_connection_reset_is_retried(http_server):
    base, routes = http_server
    routes["/img"] = reset_then(send_bytes(b"IMG"))
    assert fetch(f"{base}/img") == (b"IMG", 2)


def test_slow_drip_hits_the_total_deadline(http_server):
    base, routes = http_server
    routes["/img"] = drip(0.1)
    start = time.monotonic()
    err = failure(f"{base}/img", HttpConfig(allow_private_networks=True, read_timeout=1,
                                            total_timeout=1.5, max_attempts=1))
    assert err.error_type == "timeout"
    assert time.monotonic() - start < 4


def test_endless_body_hits_max_bytes(http_server):
    base, routes = http_server
    routes["/img"] = endless()
    err = failure(f"{base}/img", HttpConfig(allow_private_networks=True, max_bytes=1 << 20))
    assert err.error_type == "too_large"


def test_declared_oversize_is_refused_before_reading(http_server):
    base, routes = http_server
    routes["/img"] = send_bytes(b"x" * 5000)
    err = failure(f"{base}/img", HttpConfig(allow_private_networks=True, max_bytes=4000))
    assert err.error_type == "too_large" and "Content-Length" in str(err)


def test_redirects_are_followed_and_loops_stopped(http_server):
    base, routes = http_server
    routes["/a"] = redirect("/b")
    routes["/b"] = redirect(f"{base}/img", 301)
    routes["/img"] = send_bytes(b"IMG")
    routes["/loop"] = redirect("/loop")
    routes["/to-file"] = redirect("file:///etc/passwd")
    assert fetch(f"{base}/a") == (b"IMG", 1)
    assert failure(f"{base}/loop").error_type == "too_many_redirects"
    assert failure(f"{base}/to-file").error_type == "invalid_uri"


def test_robots_opt_out(http_server):
    base, routes = http_server
    routes["/noai"] = with_headers(b"IMG", {"X-Robots-Tag": "noai"})
    routes["/scoped"] = with_headers(b"IMG", {"X-Robots-Tag": "otherbot: noimageai"})
    assert failure(f"{base}/noai").error_type == "robots_opt_out"
    assert fetch(f"{base}/scoped") == (b"IMG", 1)
    relaxed = HttpConfig(allow_private_networks=True, ignore_robots_opt_out=True)
    assert fetch(f"{base}/noai", relaxed) == (b"IMG", 1)


def test_robots_header_parsing():
    ua = "image-tagger/0.1"
    assert robots_opt_out(["noindex, noimageai"], ua) == "noimageai"
    assert robots_opt_out(["image-tagger: noai"], ua) == "noai"
    assert robots_opt_out(["googlebot: noai", "nofollow"], ua) is None
    assert robots_opt_out([], ua) is None


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
     "::ffff:127.0.0.1", "224.0.0.1", "0.0.0.0", "100.64.0.1", "240.0.0.1", "fc00::1",
     # special-purpose (192.0.0.192 is a cloud metadata address) and wrapped forms
     "192.0.0.192", "2002:a9fe:a9fe::", "2002:7f00:1::", "fec0::1", "64:ff9b::a9fe:a9fe", "::127.0.0.1",
     "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1", "2001:db8::1", "198.18.0.1", "fd00:ec2::254", "::"],
)
def test_guard_refuses_non_public_addresses(address):
    assert not net_guard.is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     # wrapped forms are judged by the IPv4 address they carry
                                     "64:ff9b::808:808", "2002:808:808::1"])
def test_guard_allows_public_addresses(address):
    assert net_guard.is_public_address(address)


def test_guard_blocks_loopback_by_default(http_server):
    base, routes = http_server
    routes["/img"] = send_bytes(b"IMG")
    guarded = HttpConfig(max_attempts=1)
    assert failure(f"{base}/img", guarded).error_type == "blocked_address"
    assert failure(base.replace("127.0.0.1", "localhost") + "/img", guarded).error_type == "blocked_address"
    assert fetch(f"{base}/img") == (b"IMG", 1)  # allowed only with allow_private_networks


def test_guard_checks_the_connected_address_too(http_server, monkeypatch):
    # Simulate DNS rebinding: the name check passes, the connection lands on loopback.
    base, routes = http_server
    routes["/img"] = send_bytes(b"IMG")
    monkeypatch.setattr(net_guard, "check_url", lambda url, timeout=None: None)
    monkeypatch.setattr(net_guard, "check_host", lambda host, port, timeout=None: None)
    assert failure(f"{base}/img", HttpConfig(max_attempts=1)).error_type == "blocked_address"


def test_slow_dns_is_bounded(monkeypatch):
    import socket

    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.test":
            time.sleep(3)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    start = time.monotonic()
    err = failure("http://slow-dns.test/img.jpg", HttpConfig(connect_timeout=0.3, max_attempts=1))
    assert err.error_type == "timeout"
    assert time.monotonic() - start < 2


def test_robots_directives_with_colons_are_not_bot_names():
    ua = "image-tagger/0.1"
    assert robots_opt_out(["max-image-preview:large, noai"], ua) == "noai"
    assert robots_opt_out(["unavailable_after: 25 Jun 2030 15:00:00 PST, noimageai"], ua) == "noimageai"
    assert robots_opt_out(["max-snippet:50"], ua) is None
    assert robots_opt_out(["otherbot: max-image-preview:none, noai"], ua) is None
    assert robots_opt_out(["Image-Tagger: max-image-preview:large; noimageai"], ua) == "noimageai"


# --- raw-socket servers for what http.server cannot misbehave like ---------------------------
class RawServer:
    """Loopback TCP server; each connection is handed to ``behave(conn)`` (bounded loops only)."""

    def __init__(self, behave, connections: int = 8):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(30)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/x.jpg"
        self.connections = 0

        def serve():
            for _ in range(connections):
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.connections += 1
                threading.Thread(target=self._run, args=(behave, conn), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    @staticmethod
    def _run(behave, conn):
        try:
            conn.recv(65536)
            behave(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def _drip_headers(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(200):  # one header line every 0.2 s: each read is under the read timeout
        conn.sendall(f"X-Slow-{i}: y\r\n".encode())
        time.sleep(0.2)


def _continue_flood(conn):
    for _ in range(200):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.2)


@pytest.mark.parametrize("behave", [_drip_headers, _continue_flood])
def test_the_deadline_covers_status_line_headers_and_interim_responses(behave):
    server = RawServer(behave)
    config = HttpConfig(allow_private_networks=True, connect_timeout=1, read_timeout=1, total_timeout=1,
                        max_attempts=3, retry_backoff=0.05)
    start = time.monotonic()
    try:
        err = failure(server.url, config)
    finally:
        server.close()
    assert err.error_type == "timeout"
    assert time.monotonic() - start < 1 + 1.5, "bounded by --total_timeout plus a little"


@pytest.mark.parametrize(
    ("payload", "error_type"),
    [
        (b"HTTP/1.1 OK-ish\r\n\r\n", "protocol_error"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", "protocol_error"),
        (b"HTTP/1.1 200 OK\r\nContent-Ty", "connection_error"),
    ],
    ids=["bad-status-line", "1MB-header", "closed-mid-headers"],
)
def test_malformed_and_cut_responses_are_fetch_errors(payload, error_type):
    server = RawServer(lambda conn: conn.sendall(payload))
    try:
        err = failure(server.url)
    finally:
        server.close()
    assert err.error_type == error_type
    expected_attempts = 1 if error_type == "protocol_error" else FAST.max_attempts
    assert err.attempts == expected_attempts and server.connections == expected_attempts


def test_a_redirect_to_a_malformed_url_is_an_invalid_uri(http_server):
    base, routes = http_server
    routes["/r"] = redirect("http://[::1/broken")
    assert failure(f"{base}/r").error_type == "invalid_uri"


def test_retry_after_holds_the_whole_host_and_the_rate_limit_spaces_requests(http_server):
    base, routes = http_server
    routes["/a"] = send_bytes(b"a")
    routes["/b"] = send_bytes(b"b")
    clock = FakeClock()
    fetcher = faked(HttpConfig(allow_private_networks=True, total_timeout=5), clock)
    try:
        fetcher._hold_host(f"{base}/a", 0.6)  # noqa: SLF001 - what a 429/503 Retry-After does
        assert fetcher.fetch(f"{base}/b")[0] == b"b"
        assert clock.slept == [pytest.approx(0.6)], "another URL of the same host waited too"
        fetcher._hold_host(f"{base}/a", 60)  # noqa: SLF001
        with pytest.raises(StageError) as info:
            fetcher.fetch(f"{base}/b")
        assert info.value.error_type == "timeout", "a pause past the deadline fails at once"
        assert len(clock.slept) == 1
    finally:
        fetcher.close()
    clock = FakeClock()
    paced = faked(HttpConfig(allow_private_networks=True, max_host_rate=5), clock)
    try:
        for _ in range(5):
            paced.fetch(f"{base}/a")
        assert sum(clock.slept) == pytest.approx(0.8), "5 requests at 5/s: four gaps of 0.2 s"
    finally:
        paced.close()


# --- third hostile round ---------------------------------------------------------------------
def test_guard_checks_every_resolved_address_with_a_stub_resolver(monkeypatch):
    answers = {"mixed.test": ["93.184.215.14", "2002:a9fe:a9fe::1"], "fine.test": ["93.184.215.14"]}

    def fake(host, port, timeout=None):
        return [(None, None, None, "", (a, port or 80)) for a in answers[host]]

    monkeypatch.setattr(net_guard, "resolve", fake)
    with pytest.raises(net_guard.BlockedAddressError):
        net_guard.check_url("http://mixed.test/x.jpg")
    net_guard.check_url("http://fine.test/x.jpg")  # no traffic: the guard is a function of addresses


def test_exception_chain_survives_a_string_reason():
    import ssl

    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.reason = "CERTIFICATE_VERIFY_FAILED"  # ssl sets a str here
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = err
    assert err in list(net_guard.exception_chain(wrapped))


def test_a_bad_certificate_is_a_tls_error_not_retried(tmp_path):
    with tls_server(tmp_path) as server:
        err = failure(f"https://127.0.0.1:{server.server_address[1]}/x.jpg")
    assert err.error_type == "tls_error" and err.attempts == 1
    assert "certificate" in str(err).lower()


def test_cookies_are_never_stored_or_sent(http_server):
    base, routes = http_server
    seen: list = []
    routes["/c"] = cookie_jar_probe(b"img", seen)
    fetcher = HttpFetcher(FAST)
    try:
        for _ in range(5):
            assert fetcher.fetch(f"{base}/c")[0] == b"img"
    finally:
        fetcher.close()
    assert seen == [None] * 5


def test_a_utf8_location_is_followed_as_browsers_do(http_server):
    base, routes = http_server

    def utf8_location(req):  # raw UTF-8 bytes in the header, as many servers send them
        req.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /img/caf\xc3\xa9.jpg\r\nContent-Length: 0\r\n\r\n")

    routes["/r"] = utf8_location
    routes["/img/caf%C3%A9.jpg"] = send_bytes(b"cafe")
    assert fetch(f"{base}/r")[0] == b"cafe"


@pytest.mark.parametrize("status", [204, 205, 206, 300, 304])
def test_statuses_without_the_image_are_permanent(http_server, status):
    base, routes = http_server
    routes["/s"] = send_bytes(b"" if status in (204, 205, 304) else b"not the image", status=status)
    err = failure(f"{base}/s")
    assert err.error_type == f"http_{status}" and err.attempts == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\nnot gzip!!!!",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
    ],
    ids=["bad-gzip", "bogus-chunk-size", "duplicate-content-length"],
)
def test_malformed_bodies_are_protocol_errors_not_retried(payload):
    server = RawServer(lambda conn: conn.sendall(payload))
    try:
        err = failure(server.url)
    finally:
        server.close()
    assert err.error_type == "protocol_error" and err.attempts == 1 and server.connections == 1


def interim_then(codes: list[int], body: bytes):
    """Answer with each interim (1xx) status of ``codes``, then 200 with ``body``."""

    def handler(req) -> None:
        for code in codes:
            req.send_response_only(code)
            req.send_header("Link", "</style.css>; rel=preload")
            req.end_headers()
        send_bytes(body)(req)

    return handler


@pytest.mark.parametrize("codes", [[103], [102], [100, 103, 103]])
def test_interim_answers_are_skipped(http_server, codes):
    """Hostile round 4, class 8: 103 Early Hints once ended the exchange as http_103."""
    base, routes = http_server
    routes["/hints.jpg"] = interim_then(codes, b"the image")
    assert fetch(f"{base}/hints.jpg")[0] == b"the image"


def test_endless_interim_answers_are_a_permanent_error(http_server):
    base, routes = http_server
    routes["/loop.jpg"] = interim_then([103] * 40, b"never reached")
    error = failure(f"{base}/loop.jpg")
    assert error.error_type == "protocol_error" and "interim" in str(error) and error.attempts == 1


def test_a_kept_alive_connection_the_server_dropped_is_retried_without_an_attempt():
    """The first connection answers once as kept-alive, then reads the next request and closes
    without answering: the fetch goes again on a new connection and spends no attempt."""
    served = []

    def keep_alive_then_drop(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
        if not served:
            served.append(1)
            conn.recv(65536)  # the next request on the kept-alive connection: dropped unanswered

    server = RawServer(keep_alive_then_drop)
    fetcher = HttpFetcher(FAST)
    try:
        assert fetcher.fetch(server.url) == (b"abc", 1)
        assert fetcher.fetch(server.url) == (b"abc", 1)
    finally:
        fetcher.close()
        server.close()
    assert server.connections == 2
