"""Smoke test: the benchmark script runs end to end on a tiny corpus and prints its table.

It asserts nothing about speed (speed is measured by the script, never by a unit test)."""

from __future__ import annotations

from benchmarks import bench


def test_benchmark_runs_on_a_tiny_corpus(tmp_path, capsys):
    out = bench.main(["--images", "3", "--width", "320", "--height", "240", "--memory_scale", "2",
                      "--variants", "floor,floor_before,ours,peer,naive,naive_full,ours_scaled",
                      "--workdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert "| variant | images | images/s | peak RSS MiB |" in text
    assert set(out["results"]) == {"floor", "floor_before", "ours", "peer", "naive", "naive_full", "ours_scaled"}
    assert out["results"]["ours_scaled"]["images"] == 6
    for r in out["results"].values():
        assert r["images_per_s"] > 0 and r["peak_rss_mib"] > 50
    assert {"ours/floor", "ours/peer", "ours/naive", "peak RSS ours_scaled/ours", "floor/floor_before"} <= set(out["ratios"])
