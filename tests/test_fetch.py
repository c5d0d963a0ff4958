"""Fetch stage: local files, loopback HTTP, limits and error codes."""

from __future__ import annotations

import time

import pytest

from tests.conftest import send_bytes
from transforms.fetch import FetchBatch, FetchConfig, HttpFetcher, fetch_file, read_limited
from transforms.records import StageError, new_element


def test_local_file_and_missing_file(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert fetch_file(str(f), 10_000) == b"abc" * 1000
    with pytest.raises(StageError) as info:
        fetch_file(str(tmp_path / "nope.jpg"), 10_000)
    assert info.value.error_type == "not_found"


def test_size_limit_applies_while_reading(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 5000)
    with pytest.raises(StageError) as info:
        fetch_file(str(f), 4999)
    assert info.value.error_type == "too_large"


def test_read_limited_deadline():
    def slow():
        while True:
            time.sleep(0.01)
            yield b"x"

    start = time.monotonic()
    with pytest.raises(StageError) as info:
        read_limited(slow(), 10**9, deadline=time.monotonic() + 0.2)
    assert info.value.error_type == "timeout"
    assert time.monotonic() - start < 2


def test_http_ok_404_and_declared_too_large(http_server):
    base, routes = http_server
    routes["/ok"] = send_bytes(b"\xff\xd8hello")
    routes["/huge"] = send_bytes(b"y" * 2048)
    fetcher = HttpFetcher(FetchConfig(max_bytes=1024))
    assert fetcher.fetch(f"{base}/ok") == b"\xff\xd8hello"
    for path, code in (("/missing", "http_404"), ("/huge", "too_large")):
        with pytest.raises(StageError) as info:
            fetcher.fetch(base + path)
        assert info.value.error_type == code


def test_http_connection_refused_is_a_clear_error():
    fetcher = HttpFetcher(FetchConfig(connect_timeout_s=1))
    with pytest.raises(StageError) as info:
        fetcher.fetch("http://127.0.0.1:9/none.jpg")
    assert info.value.error_type in ("connection_error", "timeout")


def test_fetch_batch_routes_failures(tmp_path, http_server):
    base, routes = http_server
    routes["/a"] = send_bytes(b"A")
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(b"B")
    fn = FetchBatch(FetchConfig(threads=4))
    fn.setup()
    try:
        batch = [new_element(f"{base}/a"), new_element(str(ok)), new_element(f"{base}/gone")]
        results = list(fn.process(batch))
    finally:
        fn.teardown()
    good = [r for r in results if isinstance(r, dict)]
    bad = [r.value for r in results if not isinstance(r, dict)]
    assert sorted(r["data"] for r in good) == [b"A", b"B"]
    assert [b["error"]["error_type"] for b in bad] == ["http_404"]
    assert bad[0]["error"]["stage"] == "fetch" and "data" not in bad[0]
