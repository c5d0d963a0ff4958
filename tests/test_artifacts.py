"""Artifacts: local paths, http(s) downloads into the cache, sha256 checks."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import base_url, loopback, send_bytes
from transforms.core.artifacts import ArtifactError, resolve, sha256_of


def test_local_path_with_and_without_checksum(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert resolve(str(f)) == f
    assert resolve(str(f), digest) == f
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        resolve(str(f), "0" * 64)
    with pytest.raises(ArtifactError, match="not found"):
        resolve(str(tmp_path / "missing.bin"))


def test_http_download_is_cached_and_verified(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    base, routes = http_server
    body = b"model-bytes" * 100
    routes["/m.onnx"] = send_bytes(body, "application/octet-stream")
    digest = hashlib.sha256(body).hexdigest()
    path = resolve(f"{base}/m.onnx", digest)
    assert sha256_of(path) == digest and path.suffix == ".onnx"
    del routes["/m.onnx"]  # second resolve must come from the cache
    assert resolve(f"{base}/m.onnx", digest) == path
    routes["/bad.onnx"] = send_bytes(b"tampered", "application/octet-stream")
    expected = hashlib.sha256(b"the real model").hexdigest()
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        resolve(f"{base}/bad.onnx", expected)
    assert not (tmp_path / "cache" / f"{expected}.onnx").exists(), "a bad download is not kept"
    with pytest.raises(ArtifactError, match="cannot fetch"):
        resolve(f"{base}/absent.onnx")


def test_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    from transforms.core.artifacts import cache_dir

    monkeypatch.delenv("IMAGE_TAGGER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "image-tagger"
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"


def test_an_artifact_without_checksum_is_revalidated_by_etag(tmp_path, monkeypatch):
    import http.server

    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    state = {"body": b"vectors v1", "etag": '"v1"', "gets": 0, "up": True}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _head(self):
            if not state["up"]:
                self.send_error(503)
                return False
            self.send_response(200)
            self.send_header("ETag", state["etag"])
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            return True

        def do_HEAD(self):  # noqa: N802
            self._head()

        def do_GET(self):  # noqa: N802
            state["gets"] += 1
            if self._head():
                self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    with loopback(Handler) as server:
        uri = f"{base_url(server)}/glove.txt"
        first = resolve(uri)
        assert first.read_bytes() == b"vectors v1" and state["gets"] == 1
        assert resolve(uri).read_bytes() == b"vectors v1" and state["gets"] == 1, "same ETag: no download"
        state.update(body=b"vectors v2!", etag='"v2"')
        assert resolve(uri).read_bytes() == b"vectors v2!" and state["gets"] == 2, "new ETag: downloaded"
        state["up"] = False
        assert resolve(uri).read_bytes() == b"vectors v2!", "unreachable: the cached copy is used"
