"""Smoke test: the benchmark script runs end to end on a tiny corpus and prints its table.

It asserts nothing about speed (speed is measured by the script, never by a unit test). Two
variants, the job and its floor, prove the table and the ratio; each other variant is one more
subprocess loading the models, which the script itself runs (make bench)."""

from __future__ import annotations

from benchmarks import bench


def test_benchmark_runs_on_a_tiny_corpus(tmp_path, capsys):
    out = bench.main(["--images", "3", "--width", "320", "--height", "240",
                      "--variants", "floor,ours", "--workdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert "| variant | images | images/s | peak RSS MiB |" in text
    assert set(out["results"]) == {"floor", "ours"}
    for r in out["results"].values():
        assert r["images"] == 3 and r["images_per_s"] > 0 and r["peak_rss_mib"] > 50
    assert "ours/floor" in out["ratios"] and out["ratios"]["ours/floor"] > 0
