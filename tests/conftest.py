"""Shared fixtures: real sample photos, loopback HTTP servers, and output readers."""

from __future__ import annotations

import glob
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.samples import sample_photos

# Keep any Google client from probing the network for credentials or metadata.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    found = sample_photos()
    missing = {"chelsea", "coffee", "motorcycle", "grace_hopper"} - set(found)
    assert not missing, f"sample photo packages not installed: {missing}"
    return found


def read_table(output: str | Path, prefix: str) -> pa.Table:
    files = sorted(glob.glob(os.path.join(str(output), f"{prefix}-*.parquet")))
    assert files, f"no {prefix}-*.parquet under {output}"
    return pa.concat_tables([pq.read_table(f) for f in files])


class Routes(http.server.BaseHTTPRequestHandler):
    """A tiny loopback HTTP server whose paths map to handler callables set by the test."""

    routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        handler = self.routes.get(self.path.split("?")[0])
        if handler is None:
            self.send_error(404)
            return
        handler(self)

    def log_message(self, *args) -> None:
        pass


def send_bytes(body: bytes, content_type: str = "image/jpeg", status: int = 200):
    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handler


@pytest.fixture()
def http_server() -> Iterator[tuple[str, dict]]:
    """(base_url, routes) of a threaded server on 127.0.0.1; tests fill ``routes``."""
    routes: dict = {}
    handler = type("TestRoutes", (Routes,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
