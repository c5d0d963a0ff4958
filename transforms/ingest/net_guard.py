"""SSRF guard: untrusted URLs must not reach loopback, private, link-local or reserved networks.

Checked twice: every address a host name resolves to is vetted before connecting (so a
host with one public and one private address is refused), and the address actually
connected to is vetted again inside the connection (so DNS rebinding between the two
cannot slip through). Redirect hops go through the same checks.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")


class BlockedAddressError(OSError):
    """The URL resolves to an address the guard refuses."""


# IANA special-purpose address registries (IPv4 and IPv6, entries not globally reachable), plus
# the cloud metadata addresses, written out here rather than trusting ``ipaddress``'s flags
# (which count 192.0.0.192, a cloud metadata address, as global).
BLOCKED_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24",
    "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "100.100.100.200/32",  # Alibaba Cloud metadata (inside 100.64/10, listed for the record)
))  # fmt: skip
GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")  # global unicast: everything else is refused
BLOCKED_V6 = tuple(ipaddress.IPv6Network(n) for n in (
    "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "2620:4f:8000::/48",
    "fd00:ec2::254/128",  # AWS metadata over IPv6 (ULA, outside 2000::/3 anyway)
))  # fmt: skip
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
TEREDO = ipaddress.IPv6Network("2001::/32")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, NAT64, 6to4, Teredo."""
    value = int(ip)
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in SIX_TO_FOUR:
        found.append(ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF))
    if ip in TEREDO:  # server in bits 32-63, client obfuscated in the last 32 bits
        found.append(ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF))
        found.append(ipaddress.IPv4Address(~value & 0xFFFFFFFF))
    return found


def is_public_address(address: str) -> bool:
    """True only for a globally reachable unicast address. An IPv6 form that wraps IPv4
    addresses (NAT64 as DNS64 networks answer, 6to4, Teredo, mapped, compatible) is judged by
    every address it wraps."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in BLOCKED_V4)
    wrapped = embedded_ipv4(ip)
    if wrapped:
        return all(is_public_address(str(v4)) for v4 in wrapped)
    return ip in GLOBAL_V6 and not any(ip in net for net in BLOCKED_V6)


_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns")
DNS_TTL_S = 300.0  # getaddrinfo reports no TTL: answers are reused this long per worker
DNS_NEGATIVE_TTL_S = 30.0  # a host that does not resolve is not asked again for this long


class DnsCache:
    """Per-worker DNS cache: at most one lookup per host per TTL (concurrent fetches of one host
    wait for the same lookup), failures cached too, so a crawl cannot storm the resolver.
    Rebinding stays defeated: connections go to a cached address the guard checked, and the
    guarded connection checks the connected peer again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], tuple[float, list | BaseException]] = {}
        self._host_locks: dict[tuple[str, int], threading.Lock] = {}

    def lookup(self, host: str, port: int, timeout: float | None) -> list:
        key = (host.lower(), port)
        with self._lock:
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        with host_lock:  # single flight per host
            cached = self._entries.get(key)
            if cached is not None and cached[0] > time.monotonic():
                if isinstance(cached[1], BaseException):
                    raise cached[1]
                return cached[1]
            future = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
            try:
                infos = future.result(timeout=timeout)
            except FutureTimeout as exc:  # transient: not cached
                raise TimeoutError(f"resolving {host} took longer than {timeout} s") from exc
            except socket.gaierror as exc:
                error = OSError(f"cannot resolve {host}: {exc}")
                self._entries[key] = (time.monotonic() + DNS_NEGATIVE_TTL_S, error)
                raise error from exc
            self._entries[key] = (time.monotonic() + DNS_TTL_S, infos)
            return infos

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


DNS = DnsCache()


def resolve(host: str, port: int | None, timeout: float | None = None) -> list:
    """getaddrinfo through the worker's DNS cache, with a deadline: a slow resolver costs at most
    ``timeout`` seconds per lookup (the system call finishes on a spare thread)."""
    return DNS.lookup(host, port or 80, timeout)


class CachedDnsMixin:
    """Connect to an address from the DNS cache instead of resolving again in urllib3 (the Host
    header and TLS server name still use the host name)."""

    def _new_conn(self):
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            infos = resolve(self._dns_host, self.port, timeout)
        except OSError:
            return super()._new_conn()  # let urllib3 report it its own way
        saved = self._dns_host
        self._dns_host = infos[0][4][0]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = saved


def check_host(host: str, port: int | None, timeout: float | None = None) -> None:
    """Raise BlockedAddressError unless every address ``host`` resolves to is public."""
    infos = resolve(host, port, timeout)
    for info in infos:
        address = info[4][0]
        if not is_public_address(address):
            raise BlockedAddressError(f"{host} resolves to non-public address {address}")


def check_url(url: str, timeout: float | None = None) -> None:
    """Scheme must be http(s) and the host public (raises ValueError / BlockedAddressError /
    TimeoutError when resolving takes longer than ``timeout``)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in WEB_SCHEMES:
        raise ValueError(f"scheme {parts.scheme!r} is not allowed from web input")
    if not parts.hostname:
        raise ValueError("URL has no host")
    check_host(parts.hostname, parts.port, timeout)


class GuardMixin:
    def _new_conn(self):
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None  # the connect timeout
        check_host(self.host, self.port, timeout)
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not is_public_address(peer):
            sock.close()
            raise BlockedAddressError(f"{self.host} connected to non-public address {peer}")
        return sock


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception inside the wrappers urllib3 and requests put around a failure (causes,
    contexts, ``reason`` and exception arguments), each once."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        linked = [e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())]
        stack.extend(x for x in linked if isinstance(x, BaseException))  # ssl's reason is a str


def blocked_in_chain(exc: BaseException) -> BlockedAddressError | None:
    """Find a BlockedAddressError inside the wrappers urllib3 and requests put around it."""
    return next((e for e in exception_chain(exc) if isinstance(e, BlockedAddressError)), None)
