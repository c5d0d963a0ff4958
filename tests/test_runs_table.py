"""`image-tagger runs` (pipeline/runs_table.py): every run of an output with its lineage, read
from the manifests the runs wrote (transforms/output/lineage.py)."""

from __future__ import annotations

import os

import pytest

from pipeline import runs_table, tag


def test_every_run_shows_its_input_options_counts_model_and_code(tmp_path, photos, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photos['chelsea']}\n{photos['coffee']}\n{tmp_path / 'missing.jpg'}\n")
    out = tmp_path / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--max_error_rate", "1", "--quiet",
             "--detector", "none"])
    tag.run(["--input", str(listing), "--output", str(out), "--skip_existing", "--ingest_only", "--allow_local_paths",
             "--quiet", "--max_error_rate", "1"])
    capsys.readouterr()
    first, second = runs_table.main([str(out)])
    shown = capsys.readouterr().out
    lineage, counts = first["lineage"], first["counts"]
    assert lineage["input"] == str(listing) and os.path.isabs(lineage["input"])
    assert lineage["options"]["allow_local_paths"] is True and lineage["options"]["detector"] == "none"
    assert "max_score" not in lineage["options"], "options left at their defaults are not listed"
    assert "tagger=" in lineage["model_version"] and "detector=" not in lineage["model_version"]
    assert lineage["package_version"] and first["started"] <= first["committed"]
    assert counts == {"tags": 2, "errors": 1, "errors:fetch/not_found": 1}
    assert second["mode"] == "skip_existing" and second["counts"]["tags"] == 0, "nothing tagged twice"
    assert second["counts"]["errors:fetch/not_found"] == 1, "the dead letter was retried"
    assert first["run_id"] in shown and "| 2 | 1 (fetch/not_found 1) |" in shown
    assert f"{first['run_id']}: " in shown and "--allow_local_paths=True" in shown


def test_an_output_without_runs_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert runs_table.main([str(tmp_path / "empty")]) == []
    assert "holds no runs" in capsys.readouterr().out
    (tmp_path / "list.txt").write_text("a.jpg\n")
    with pytest.raises(SystemExit) as info:
        runs_table.main([str(tmp_path / "list.txt")])
    assert str(info.value) == f"image-tagger runs: OUTPUT {tmp_path / 'list.txt'} is a file; give the --output folder of tag or feature runs"
