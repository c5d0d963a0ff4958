"""The tag job on other runners: multi-process DirectRunner and the portable (Fn API) path,
plus the source distribution that remote workers install."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from pipeline import tag
from tests.conftest import read_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def inputs(tmp_path, photos):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n{photos['coffee']}\n{bad}\n")
    return listing


def _check(out: Path, counters: dict) -> None:
    rows = read_table(out, "tags").to_pylist()
    errors = read_table(out, "errors").to_pylist()
    assert len(rows) == 2 and [e["error_type"] for e in errors] == ["not_an_image"]
    assert counters["inputs"] == 3 == counters["tagged"] + counters["failed"]
    cat = next(r for r in rows if r["uri"].endswith("chelsea.png"))
    assert "cat" in {t["name"] for t in cat["tags"]}


def test_multi_process_direct_runner(tmp_path, inputs):
    out = tmp_path / "out"
    counters = tag.run(["--input", str(inputs), "--output", str(out), "--allow_local_paths", "--direct_running_mode=multi_processing",
                        "--direct_num_workers=2", "--expansion_per_tag", "0"])
    _check(out, counters)


def test_portable_runner_loopback(tmp_path, inputs, monkeypatch):
    """The run leaves the temp folder as it found it but for Beam's requirements cache: Beam's
    job-service submission makes three temporary folders per run that it never removes."""
    out, temp = tmp_path / "out", tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    counters = tag.run(["--input", str(inputs), "--output", str(out), "--allow_local_paths", "--runner=PortableRunner",
                        "--job_endpoint=embed", "--environment_type=LOOPBACK"])
    _check(out, counters)
    assert sorted(os.listdir(temp)) == ["beam-requirements-cache"] and tempfile.gettempdir() == str(temp)


def test_sdist_carries_every_module_and_data_file(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    (archive,) = tmp_path.glob("image_tagger-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {str(p.relative_to(ROOT)) for d in ("pipeline", "transforms") for p in (ROOT / d).rglob("*")
              if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    assert needed and needed <= names, sorted(needed - names)
    assert {"requirements.txt", "setup.py", "transforms/data/imagenet_tags.json"} <= names
