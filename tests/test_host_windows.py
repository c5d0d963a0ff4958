"""Adaptive per-host concurrency (transforms/ingest/host_windows.py), alone and in the fetch window."""

from __future__ import annotations

import threading
import time

from transforms.ingest.host_windows import SHARE_AFTER, START, HostWindows


def test_a_host_that_answers_well_grows_to_the_ceiling_and_no_further():
    w = HostWindows(ceiling=64)
    assert w.limit("a") == START
    for _ in range(200):
        w.observe("a", "ok", 0.15)
    assert w.limit("a") == 64
    assert w.limit("b") == START, "each host learns on its own"


def test_throttling_halves_the_window_once_per_round_trip_then_growth_is_additive():
    w = HostWindows(ceiling=64)
    for _ in range(28):
        w.observe("a", "ok", 0.15)
    assert w.limit("a") == 32  # slow start: 4 + 28
    w.observe("a", "throttled", 0.01)
    w.observe("a", "throttled", 0.01)  # the same burst: no second cut
    assert w.limit("a") == 16
    for _ in range(20):
        w.observe("a", "ok", 0.15)
    assert w.limit("a") == 17, "after the first strain: +1 per window of answers"


def test_a_few_broken_urls_are_no_strain():
    w = HostWindows(ceiling=64)
    for i in range(60):
        w.observe("a", "unavailable" if i % 30 == 29 else "ok", 0.15)  # a 503 now and then
    assert w.limit("a") == 62, "4 + 58 answers in slow start, no cut"


def test_a_broken_url_first_in_a_hosts_list_is_no_strain_but_a_failing_host_is():
    w = HostWindows(ceiling=64)
    w.observe("a", "unavailable", 0.05)  # the host's very first answer: one broken URL
    for _ in range(100):
        w.observe("a", "ok", 0.15)
    assert w.limit("a") == 64, "still in slow start: one 503 is not a quarter of anything"
    down = HostWindows(ceiling=64)
    for _ in range(SHARE_AFTER):
        down.observe("b", "unavailable", 0.05)
    assert down.limit("b") < START, "a host answering nothing but 503 is cut once it has answered enough"


def test_a_broken_urls_retries_count_once_and_a_host_failing_first_attempts_is_cut():
    w = HostWindows(ceiling=64)
    for _ in range(30):
        w.observe("a", "ok", 0.15)
    for _ in range(3):  # three broken URLs in a row, each tried three times
        w.observe("a", "unavailable", 0.05)
        w.observe("a", "unavailable", 0.05, retry=True)
        w.observe("a", "unavailable", 0.05, retry=True)
    assert w.limit("a") == 34, "3 of 33 first attempts refused: no strain, slow start goes on"
    for _ in range(8):  # a struggling host refuses new URLs too
        w.observe("a", "unavailable", 0.05)
    assert w.limit("a") < 34


def test_a_user_ceiling_is_never_exceeded_and_latency_rise_counts_as_strain():
    w = HostWindows(ceiling=6)
    for _ in range(50):
        w.observe("a", "ok", 0.1)
    assert w.limit("a") == 6
    slow = HostWindows(ceiling=64)
    for i in range(40):
        slow.observe("a", "ok", 1.5 if i % 20 == 0 else 0.1)  # a few slow URLs: no strain
    before = slow.limit("a")
    assert before == 44, "slow start: 4 + 40, the slow URLs are no strain"
    for _ in range(30):
        slow.observe("a", "ok", 1.5)  # the host slows down 15x under our load
    assert slow.limit("a") < before


def test_the_fetch_window_learns_a_host_that_refuses_more_than_six(http_server):
    """Nothing is lost, and once the window has settled under 5% of requests get a 429."""
    from tests.conftest import send_bytes
    from tests.test_fetch import _run_window
    from transforms.core.records import new_element
    from transforms.ingest.fetch import FetchWindow
    from transforms.ingest.http_client import HttpConfig

    base, routes = http_server
    state = {"now": 0, "times": []}
    lock = threading.Lock()
    ok = send_bytes(b"img")

    def limited(req):
        with lock:
            state["now"] += 1
            refused = state["now"] > 6
            state["times"].append((time.monotonic(), refused))
        try:
            if refused:
                req.send_response(429)
                req.send_header("Content-Length", "0")
                req.end_headers()
            else:
                time.sleep(0.05)
                ok(req)
        finally:
            with lock:
                state["now"] -= 1

    n = 400
    for i in range(n):
        routes[f"/{i}.jpg"] = limited
    fn = FetchWindow(HttpConfig(allow_private_networks=True, retry_backoff=0.02, max_attempts=8, total_timeout=30,
                                fetch_concurrency=64, fetch_batch_size=8))
    out, tail = _run_window(fn, [new_element(f"{base}/{i}.jpg") for i in range(n)])
    fetched = [e for r in out + tail if isinstance(r, list) for e in r]
    failed = [r for r in out + tail if not isinstance(r, list)]
    assert len(fetched) + len(failed) == n and len(fetched) >= n - 2, "nothing is lost"
    settled = state["times"][len(state["times"]) // 4:]  # the last three quarters of the requests
    share = sum(refused for _, refused in settled) / len(settled)
    assert share < 0.05, f"{share:.1%} of settled requests got a 429"
