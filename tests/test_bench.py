"""Smoke test (slow: make test-slow): the benchmark script runs end to end on a tiny corpus and prints its table.

It asserts nothing about speed (speed is measured by the script, never by a unit test). Two
variants, the job and its floor, prove the table and the ratio; each other variant is one more
subprocess loading the models, which the script itself runs (make bench)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from benchmarks import bench


@pytest.mark.slow  # a whole benchmark run, like a quality measurement (40 s)
def test_benchmark_runs_on_a_tiny_corpus(tmp_path, capsys):
    out = bench.main(["--images", "3", "--width", "320", "--height", "240",
                      "--variants", "floor,ours", "--workdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert "| variant | images | images/s | peak RSS MiB |" in text
    assert set(out["results"]) == {"floor", "ours"}
    for r in out["results"].values():
        assert r["images"] == 3 and r["images_per_s"] > 0 and r["peak_rss_mib"] > 50
    assert "ours/floor" in out["ratios"] and out["ratios"]["ours/floor"] > 0


SCRIPTS = sorted(p.stem for p in Path(bench.__file__).parent.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_refuses_a_mistyped_option_in_one_line(name, monkeypatch, tmp_path):
    """A typo is refused before any corpus is made, not ignored or dumped as a usage page."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, "--imagse", "3"])
    with pytest.raises(SystemExit) as refused:
        importlib.import_module(f"benchmarks.{name}").main()
    message = str(refused.value)
    assert message.startswith(f"benchmarks/{name}.py: unknown option --imagse") and "\n" not in message
    assert list(tmp_path.iterdir()) == []
