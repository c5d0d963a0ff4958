"""Fetch stage: local files, URI classification, and the batched DoFn's routing."""

from __future__ import annotations

import pytest
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import send_bytes
from transforms.fetch import FetchBatch, fetch_file, uri_kind
from transforms.http_client import HttpConfig
from transforms.records import StageError, new_element


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


def test_fetch_batch_routes_failures(tmp_path, http_server):
    base, routes = http_server
    routes["/a"] = send_bytes(b"A")
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(b"B")
    fn = FetchBatch(HttpConfig(allow_private_networks=True), threads=4)
    fn.setup()
    try:
        fn.start_bundle()
        upstream_failure = {**new_element("x"), "error": {"stage": "read"}}
        batch = [new_element(f"{base}/a"), new_element(str(ok)), new_element(f"{base}/gone"), upstream_failure]
        where = {"timestamp": MIN_TIMESTAMP, "window": GlobalWindow()}
        assert list(fn.process(batch, **where)) == [], "a batch is handed on when the next one starts"
        results = list(fn.process([new_element(str(ok))], **where))
        tail = list(fn.finish_bundle())
    finally:
        fn.teardown()
    assert len(tail) == 1 and tail[0].value[0]["uri"] == str(ok), "the last batch leaves at bundle end"
    batches = [r for r in results if isinstance(r, list)]
    assert len(batches) == 1, "successes travel on as one batch, for parallel decoding"
    good = batches[0]
    bad = [r.value for r in results if not isinstance(r, list)]
    assert sorted(r["data"] for r in good) == [b"A", b"B"]
    assert [b["error"].get("error_type") for b in bad] == ["http_404", None]
    assert bad[0]["error"]["stage"] == "fetch" and "data" not in bad[0]
    assert bad[1] is upstream_failure
