"""A long job's shards share what is slow to rebuild (transforms/core/kept.py)."""

from __future__ import annotations

from transforms.core.kept import across_shards, kept
from transforms.ingest.fetch import FetchWindow
from transforms.ingest.http_client import HttpConfig


def test_kept_makes_once_per_key_inside_a_job_and_every_time_outside():
    made: list[str] = []

    def make(name: str):
        made.append(name)
        return object()

    with across_shards():
        first, again, other = kept("a", lambda: make("a")), kept("a", lambda: make("a")), kept("b", lambda: make("b"))
    assert first is again and other is not first and made == ["a", "b"]
    assert kept("a", lambda: make("a")) is not kept("a", lambda: make("a"))
    assert made == ["a", "b", "a", "a"]


def test_the_next_shards_fetch_window_starts_from_what_the_last_one_learned():
    config = HttpConfig(fetch_concurrency=16)
    with across_shards():
        one, two = FetchWindow(config), FetchWindow(config)
        one.setup()
        for _ in range(30):
            one._windows.observe("example.org", "ok", 0.05)  # noqa: SLF001
        two.setup()
        assert two._windows is one._windows and two._windows.limit("example.org") == 16  # noqa: SLF001
        one.teardown()
        two.teardown()
    fresh = FetchWindow(config)
    fresh.setup()
    assert fresh._windows.limit("example.org") < 16, "a new job starts from slow start"  # noqa: SLF001
    fresh.teardown()
