"""Artifacts: local paths, http(s) downloads into the cache, sha256 checks."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import send_bytes
from transforms.artifacts import ArtifactError, resolve, sha256_of


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
