"""Shared fixtures: real sample photos, loopback HTTP servers, and output readers."""

from __future__ import annotations

import contextlib
import glob
import http.server
import os
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.knowledge.samples import sample_photos

# Keep any Google client from probing the network for credentials or metadata.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")

_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _loopback(host: object) -> bool:
    import ipaddress

    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _checked(address: object) -> None:
    if isinstance(address, tuple) and address and not _loopback(address[0]):
        raise ConnectionRefusedError(f"tests send traffic only to loopback, not to {address[0]}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _checked(address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _checked(address)
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not _loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve only loopback names, not {host}")
    return _getaddrinfo(host, *args, **kwargs)


# Tests, benchmarks' tests and manual trials send traffic only to loopback: a test that would
# reach any other address (a fetch of a missing model, a DNS lookup) fails here instead.
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def no_prism(monkeypatch) -> Iterator[None]:
    """No test may start Beam's Prism runner: it downloads a binary from the web (traffic off
    loopback) and leaves a beam-temp folder in /tmp when that fails. A plain DirectRunner
    pipeline tries it first; tests build theirs with pipeline.runner.make_pipeline, as the jobs do."""
    from apache_beam.runners.portability import prism_runner

    started: list[str] = []

    def refuse(self, *args, **kwargs):
        started.append("prism")
        raise RuntimeError("no Prism in tests")  # DirectRunner then falls back, so the teardown tells

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    yield
    assert not started, "a test started the Prism runner: build the pipeline with pipeline.runner.make_pipeline"


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    found = sample_photos()
    missing = {"chelsea", "coffee", "motorcycle", "grace_hopper"} - set(found)
    assert not missing, f"sample photo packages not installed: {missing}"
    return found


@pytest.fixture(scope="session")
def pose_model_files() -> tuple[bytes, bytes]:
    """The embedded pose model's (model.json, weights), from this machine's artifact cache:
    make setup fetched them (python -m pipeline.weights); a test never fetches them itself."""
    from transforms.models import pose_files
    from transforms.stages.pose import MOVENET

    if not pose_files.embedded_cached(MOVENET):
        pytest.fail("the embedded pose model is not in the artifact cache: run make setup (python -m pipeline.weights)")
    return pose_files.embedded(MOVENET)


@pytest.fixture()
def photo_set_packages() -> None:
    """Skip, naming what to fetch, where the photo set's Debian packages are missing (.ci/run
    fetches every one of them)."""
    from pipeline.quality import photo_set

    missing = photo_set.missing_packages()
    if missing:
        pytest.skip(f"needs Debian's {' '.join(missing)}: make photo-packages")


def noise_images(folder: Path, n: int, suffix: str = ".jpg", shape: tuple[int, int] = (48, 64), seed: int = 0) -> list[str]:
    """``n`` distinct random-noise images (distinct ids and bytes) in ``folder``: their paths."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}{suffix}"
        Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def read_table(output: str | Path, table: str) -> pa.Table:
    """A table as its folder reads (OUTPUT/<table>/), checked against the run manifests."""
    from transforms.output import runs

    files = sorted(runs.committed_files(str(output), table))
    assert files, f"no committed {table} files under {output}"
    on_disk = sorted(glob.glob(os.path.join(str(output), table, "**", "*.parquet"), recursive=True))
    assert on_disk == files, f"{table}/ holds {on_disk}, the manifests list {files}"
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


class LoopbackServer(http.server.ThreadingHTTPServer):
    """The tests' threaded server: a client that hangs up mid-answer is what several tests make
    the job do (a refused redirect, interim answers), so only other errors print a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def loopback(handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[LoopbackServer]:
    """A LoopbackServer on 127.0.0.1 (a free port) answering with ``handler`` while the block runs
    (over TLS with ``tls``, a server context)."""
    server = LoopbackServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def base_url(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def routed(routes: dict) -> type[Routes]:
    """A Routes handler class answering from ``routes`` (path -> handler)."""
    return type("TestRoutes", (Routes,), {"routes": routes})


@pytest.fixture()
def http_server() -> Iterator[tuple[str, dict]]:
    """(base_url, routes) of a threaded server on 127.0.0.1; tests fill ``routes``."""
    routes: dict = {}
    with loopback(routed(routes)) as server:
        yield base_url(server), routes


def flaky(failures: list[tuple[int, dict]], then):
    """Answer the first requests with (status, headers) from ``failures``, then call ``then``."""
    state = {"calls": 0}

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        state["calls"] += 1
        if state["calls"] <= len(failures):
            status, headers = failures[state["calls"] - 1]
            req.send_response(status)
            for k, v in headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", "0")
            req.end_headers()
        else:
            then(req)

    handler.state = state
    return handler


def drip(interval: float, forever: bool = True, content_length: int | None = None):
    """Send headers, then one byte every ``interval`` seconds until the client gives up."""

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        if content_length is not None:
            req.send_header("Content-Length", str(content_length))
        req.end_headers()
        try:
            for _ in range(100_000 if forever else 1):
                req.wfile.write(b"\xff")
                req.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass

    return handler


def endless(chunk: bytes = b"\x00" * 65536):
    """Stream an unbounded body (no Content-Length) as fast as the client reads."""

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        req.end_headers()
        try:
            for _ in range(100_000):
                req.wfile.write(chunk)
        except OSError:
            pass

    return handler


def reset_then(then):
    """Abort the first connection without a response (a reset), then behave like ``then``."""
    state = {"calls": 0}

    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            req.connection.close()
            req.close_connection = True
            return
        then(req)

    return handler


def redirect(location: str, status: int = 302):
    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.end_headers()

    return handler


def with_headers(body: bytes, headers: dict, content_type: str = "image/jpeg"):
    def handler(req: http.server.BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", content_type)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handler


def publish(output: str | Path, tables: dict[str, pa.Table], run_id: str = "20260101T000000Z-test00") -> None:
    """Write tables as one committed run of ``output``, as the job would have."""
    from transforms.output import runs

    manifest = runs.Manifest(run_id=run_id, mode="new", status="committed", tables=tuple(tables))
    for table, rows in tables.items():
        name = f"{table}/part-{run_id}-00000-of-00001.parquet"
        os.makedirs(os.path.join(str(output), table), exist_ok=True)
        pq.write_table(rows, os.path.join(str(output), name))
        manifest.files[table] = [name]
    runs.write_manifest(str(output), manifest)


@contextlib.contextmanager
def tls_server(tmp_path) -> Iterator[LoopbackServer]:
    """A loopback HTTPS server with a self-signed certificate (untrusted by the client)."""
    import subprocess

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with loopback(http.server.BaseHTTPRequestHandler, context) as server:
        yield server


def cookie_jar_probe(body: bytes, seen: list | None = None):
    """Sets 20 cookies per answer; answers 431 when a request carries any (a shared jar would
    send them back). ``seen`` collects each request's Cookie header."""

    def handler(req) -> None:
        cookie = req.headers.get("Cookie")
        if seen is not None:
            seen.append(cookie)
        if cookie:
            req.send_response(431)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        req.send_response(200)
        for i in range(20):
            req.send_header("Set-Cookie", f"c{i}={'x' * 200}; Path=/")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handler
