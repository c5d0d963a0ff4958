"""The suite's loopback guard (tests/conftest.py): a test that would send traffic beyond
loopback, a DNS lookup included, fails before any packet leaves."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("2001:db8::1", 443, 0, 0)])
def test_a_connection_beyond_loopback_is_refused_before_it_is_made(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family) as s, pytest.raises(ConnectionRefusedError, match="only to loopback"):
        s.connect(address)


def test_a_name_lookup_beyond_loopback_is_refused():
    with pytest.raises(socket.gaierror, match="only loopback names"):
        socket.getaddrinfo("registry.npmjs.org", 443)
    assert socket.getaddrinfo("localhost", 80) and socket.getaddrinfo("127.0.0.1", 80)


def test_loopback_connections_go_through(http_server):
    url, _ = http_server
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):
        pass
