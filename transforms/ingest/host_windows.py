"""Adaptive per-host concurrency: how many requests one host gets at once, learned from how it
answers, as TCP congestion control learns a path.

Each host starts at START requests in flight. While it answers well, its window grows: by one
per answer until the first sign of strain (slow start: doubling per round trip), then by one
per window's worth of answers (additive increase), and much slower again near the window
at which the host last answered 429, so a host that refuses above N is probed rarely. A 429 or 503, a Retry-After, a timeout, a
connection reset or a latency well above the host's best halves it (multiplicative decrease; latency is judged by the median of the last 32 answers, so
the few slow URLs every host serves are not mistaken for strain, and 503s, timeouts and resets
count only when they are more than a quarter of the recent answers, and only once the host has
answered SHARE_AFTER times, so a few broken URLs are not either, even first in a host's list; a
429 or Retry-After always counts),
at most once per round trip. The window never exceeds the ceiling: --max_per_host when the user
sets one, else the whole fetch window. Written by hand: no library does per-host AIMD for a
thread pool.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

START = 4
SLOW = 3.0  # a recent median latency above this many times the host's best median is strain
RECENT = 32  # answers in the recent median: robust to the few slow URLs every host has
STRAIN_SHARE = 0.25  # 503s, timeouts and resets count as strain only above this share of recent answers
SHARE_AFTER = 8  # ... once a host has answered this often: one broken URL among its first answers is no share
PLATEAU = 8  # near the window that last strained the host, grow this many times slower
OUTCOMES = ("ok", "throttled", "unavailable", "timeout", "error")


@dataclass
class _Host:
    limit: float
    slow_start: bool = True
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    refusals: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    median: float = 0.0
    best_median: float = float("inf")
    last_cut: float = 0.0
    strained_at: float = 0.0  # the window at the last strain: probed slowly (a plateau, as CUBIC)
    answers: int = 0
    strains: int = 0
    peak: float = 0.0


@dataclass
class HostWindows:
    ceiling: int
    start: int = START
    clock: Callable[[], float] = time.monotonic  # one cut per round trip is timed by it; tests fake it
    _hosts: dict[str, _Host] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def limit(self, host: str) -> int:
        """Requests this host may have in flight now."""
        with self._lock:
            state = self._hosts.get(host)
            return min(self.ceiling, int(state.limit)) if state else min(self.ceiling, self.start)

    def observe(self, host: str, outcome: str, latency: float, retry: bool = False) -> None:
        """One attempt's outcome: ok (with the time to the response headers), throttled (429 or
        a Retry-After), unavailable (503), timeout or error (a reset connection). A ``retry``
        of a URL that failed adds nothing to the refusal share: a broken URL answering 503 to
        each of its attempts is one broken URL, not three."""
        now = self.clock()
        with self._lock:
            state = self._hosts.setdefault(host, _Host(limit=float(min(self.ceiling, self.start))))
            state.answers += 1
            refused = outcome in ("unavailable", "timeout", "error")
            counted = refused and not retry  # a retried URL failing again is the same broken URL
            if counted or not refused:
                state.refusals.append(refused)
            # A 429 or Retry-After asks for less, always. A lone 503 or timeout is one broken URL;
            # many among the recent answers are a host struggling.
            strained = outcome == "throttled" or (
                counted and len(state.refusals) >= SHARE_AFTER
                and sum(state.refusals) / len(state.refusals) >= STRAIN_SHARE)
            if outcome == "ok":
                state.recent.append(latency)
                state.median = statistics.median(state.recent)
                if len(state.recent) == RECENT:
                    state.best_median = min(state.best_median, state.median)
                    strained = state.median > SLOW * state.best_median
            if strained:
                # One cut per round trip: the answers of one window all report the same strain.
                if now - state.last_cut >= max(2 * state.median, 0.1):
                    if outcome == "throttled":  # the host said where its limit is: probe it rarely
                        state.strained_at = state.limit
                    state.limit = max(1.0, state.limit / 2)
                    state.slow_start = False
                    state.last_cut = now
                    state.strains += 1
            elif outcome == "ok":
                if state.slow_start:
                    step = 1.0
                elif state.limit + 1 >= state.strained_at:
                    step = 1.0 / (PLATEAU * state.limit)  # near where it hurt: probe rarely
                else:
                    step = 1.0 / state.limit
                state.limit = min(float(self.ceiling), state.limit + step)
            state.peak = max(state.peak, state.limit)

    def largest(self, n: int = 5) -> list[tuple[str, int, int, int]]:
        """(host, window now, peak window, strains) of the n hosts with the largest peaks."""
        with self._lock:
            ranked = sorted(self._hosts.items(), key=lambda kv: -kv[1].peak)[:n]
            return [(h, int(s.limit), int(s.peak), s.strains) for h, s in ranked]
