"""Fetch stage: local files, URI classification, and the batched DoFn's routing."""

from __future__ import annotations

import pytest
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import loopback, send_bytes
from transforms.core.records import StageError, new_element
from transforms.ingest.access import AccessPolicy
from transforms.ingest.fetch import FetchWindow, fetch_file, uri_kind
from transforms.ingest.http_client import HttpConfig

LOCAL_TOO = AccessPolicy(frozenset({"http", "https", "file"}))


def test_local_file_and_missing_file(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert fetch_file(str(f), 10_000) == b"abc" * 1000
    assert fetch_file(f"file://{f}", 10_000) == b"abc" * 1000
    with pytest.raises(StageError) as info:
        fetch_file(str(tmp_path / "nope.jpg"), 10_000)
    assert info.value.error_type == "not_found"


def test_size_limit_applies_to_files(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 5000)
    assert len(fetch_file(str(f), 5000)) == 5000
    with pytest.raises(StageError) as info:
        fetch_file(str(f), 4999)
    assert info.value.error_type == "too_large"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [("http://a.test/x.jpg", "web"), ("HTTPS://a.test/x", "web"), ("/tmp/x.jpg", "file"),
     ("relative/x.jpg", "file"), ("file:///tmp/x.jpg", "file"), ("gs://bucket/x.jpg", "file")],
)
def test_uri_kind(uri, kind):
    assert uri_kind(uri) == kind


@pytest.mark.parametrize(
    ("uri", "error"),
    [("", "invalid_uri"), ("ftp://a.test/x.jpg", "unsupported_scheme"),
     ("javascript://alert(1)", "unsupported_scheme"), ("/tmp/a\nb.jpg", "invalid_uri")],
)
def test_uri_kind_refuses(uri, error):
    with pytest.raises(StageError) as info:
        uri_kind(uri)
    assert info.value.error_type == error


@given(st.text(max_size=300))
def test_uri_parsing_never_raises_anything_but_stage_errors(uri):
    try:
        assert uri_kind(uri) in ("web", "file")
    except StageError as exc:
        assert exc.error_type in ("invalid_uri", "unsupported_scheme")


def _run_window(fn, elements):
    where = {"timestamp": MIN_TIMESTAMP, "window": GlobalWindow()}
    fn.setup()
    try:
        fn.start_bundle()
        out = [r for e in elements for r in fn.process(e, **where)]
        tail = [w.value if hasattr(w, "value") and not isinstance(w, list) else w for w in fn.finish_bundle()]
    finally:
        fn.teardown()
    return out, tail


def test_fetch_window_routes_failures_and_hands_on_batches(tmp_path, http_server):
    base, routes = http_server
    routes["/a"] = send_bytes(b"A")
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(b"B")
    fn = FetchWindow(HttpConfig(allow_private_networks=True, fetch_concurrency=4, fetch_batch_size=2), LOCAL_TOO)
    upstream_failure = {**new_element("x"), "error": {"stage": "read"}}
    elements = [new_element(f"{base}/a"), new_element(str(ok)), new_element(f"{base}/gone"), upstream_failure,
                new_element(str(ok))]
    out, tail = _run_window(fn, elements)
    everything = out + tail
    batches = [r for r in everything if isinstance(r, list)]
    bad = [r.value for r in everything if not isinstance(r, list)]
    assert sorted(e["data"] for b in batches for e in b) == [b"A", b"B", b"B"]
    assert all(len(b) <= 2 for b in batches), "successes travel on in lists of at most batch_size"
    assert sorted(str(b["error"].get("error_type")) for b in bad) == ["None", "http_404"]
    assert any(b is upstream_failure for b in bad)


def _counting_handler(delays: dict[str, float]):
    """A handler that sleeps per path and records requests in flight, per Host header; its state."""
    import http.server
    import threading
    import time as _time

    state = {"now": {}, "peak": {}, "total_peak": 0, "lock": threading.Lock()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            host = self.headers.get("Host", "").split(":")[0]
            with state["lock"]:
                state["now"][host] = state["now"].get(host, 0) + 1
                state["peak"][host] = max(state["peak"].get(host, 0), state["now"][host])
                state["total_peak"] = max(state["total_peak"], sum(state["now"].values()))
            _time.sleep(delays.get(self.path, 0.2))
            with state["lock"]:  # done before the client can have the body and send its next request
                state["now"][host] -= 1
            body = b"x" * 100
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler, state


def test_fetch_window_stays_full_within_the_per_host_limit():
    handler, state = _counting_handler({"/slow": 2.0})
    with loopback(handler) as server:
        port = server.server_address[1]
        uris = [f"http://{h}:{port}/{i}" for i in range(20) for h in ("127.0.0.1", "localhost")]
        fn = FetchWindow(HttpConfig(allow_private_networks=True, fetch_concurrency=4, max_per_host=2, fetch_batch_size=1),
                         access=LOCAL_TOO)
        out, tail = _run_window(fn, [new_element(f"http://127.0.0.1:{port}/slow"), *map(new_element, uris)])
    assert max(state["peak"].values()) <= 2, state["peak"]
    assert state["total_peak"] >= 3, "the window is used, not one batch at a time"
    order = [e["uri"] for b in out + tail if isinstance(b, list) for e in b]
    assert len(order) == 41
    assert order.index(f"http://127.0.0.1:{port}/slow") >= 10, "fast images move on while the slow one downloads"


def test_dns_is_cached_per_worker_including_failures(monkeypatch, http_server):
    import socket

    from transforms.ingest import net_guard
    from transforms.ingest.http_client import HttpFetcher

    base, routes = http_server
    port = base.rsplit(":", 1)[1]
    for i in range(10):
        routes[f"/{i}"] = send_bytes(b"x")
    calls: list[str] = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        calls.append(host)
        if host.endswith(".invalid"):  # answered here: no resolver is asked, none may be reachable
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    net_guard.DNS.clear()
    fetcher = HttpFetcher(HttpConfig(allow_private_networks=True))
    try:
        for i in range(10):
            assert fetcher.fetch(f"http://localhost:{port}/{i}")[0] == b"x"
    finally:
        fetcher.close()
    assert calls.count("localhost") == 1, calls
    for _ in range(3):
        with pytest.raises(OSError):
            net_guard.resolve("no-such-host.invalid", 80, 5)
    assert calls.count("no-such-host.invalid") == 1, "failures are cached too"


def test_fetched_images_not_yet_handed_on_count_against_the_window(tmp_path):
    """While the bundle's thread is busy downstream, the fetch threads stop at the window:
    memory stays bounded by (window + batch) x max_bytes."""
    import time as _time

    files = []
    for i in range(40):
        f = tmp_path / f"{i}.jpg"
        f.write_bytes(b"x")
        files.append(new_element(str(f)))
    fn = FetchWindow(HttpConfig(fetch_concurrency=4, fetch_batch_size=100), LOCAL_TOO)
    fn.setup()
    try:
        fn.start_bundle()
        where = {"timestamp": MIN_TIMESTAMP, "window": GlobalWindow()}
        for e in files[:20]:
            list(fn.process(e, **where))  # batch_size 100: nothing is handed on yet
        _time.sleep(0.5)  # the fetch threads have every chance to run ahead
        with fn._cond:  # noqa: SLF001
            assert fn._in_flight + len(fn._done) <= 4  # noqa: SLF001
        tail = list(fn.finish_bundle())
    finally:
        fn.teardown()
    handed = [e for w in tail for e in (w.value if hasattr(w, "value") else w)]
    assert len(handed) == 20 and all(e["data"] == b"x" for e in handed)


def test_the_bundles_last_fetches_are_handed_on_as_they_arrive(tmp_path):
    """finish_bundle must not gather the bundle's backlog before handing it on: fetched and not
    yet handed on stays within (window + batch) at every output."""
    import time as _time

    elements = []
    for i in range(20):
        f = tmp_path / f"{i}.jpg"
        f.write_bytes(b"x" * 10)
        elements.append(new_element(str(f)))
    fn = FetchWindow(HttpConfig(fetch_concurrency=2, fetch_batch_size=2), LOCAL_TOO)
    fetched = []
    fetch_one = fn._fetch_one  # noqa: SLF001

    def counting(element):
        _time.sleep(0.02)
        fetched.append(element["uri"])
        return fetch_one(element)

    fn._fetch_one = counting  # type: ignore[method-assign]  # noqa: SLF001
    fn.setup()
    handed = 0
    try:
        fn.start_bundle()
        where = {"timestamp": MIN_TIMESTAMP, "window": GlobalWindow()}
        for e in elements:  # the window is full: most elements still wait at finish_bundle
            handed += sum(len(b) for b in fn.process(e, **where) if isinstance(b, list))
        for out in fn.finish_bundle():
            _time.sleep(0.1)  # downstream is slow; the fetch threads may run ahead
            assert len(fetched) - handed <= 2 + 2 + len(out.value), (len(fetched), handed)
            handed += len(out.value)
    finally:
        fn.teardown()
    assert handed == 20
