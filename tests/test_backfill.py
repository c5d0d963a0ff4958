"""Backfills: partitions, --skip_existing anti-join, resumed and repeated runs, --overwrite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import tag
from tests.conftest import base_url, loopback, read_table, routed

FAST = ["--detector", "none", "--expansion_per_tag", "0"]


def _images(root: Path, n: int, start: int = 0) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        p = root / f"img{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _listing(path: Path, uris: list[str]) -> str:
    path.write_text("\n".join(uris) + "\n")
    return str(path)


def _all_ids(out: Path) -> list[str]:
    return read_table(out, "tags").column("image_id").to_pylist()


def _day(out: Path, day: int, listing: str, *extra: str) -> dict:
    return tag.run(["--input", listing, "--output", str(out), "--allow_local_paths", "--partition", f"dt={day}",
                    *extra, *FAST])


def test_partitions_never_duplicate_and_reruns_are_idempotent(tmp_path):
    uris = _images(tmp_path / "imgs", 12)
    out = tmp_path / "tags"
    _day(out, 1, _listing(tmp_path / "d1.txt", uris[:6]))
    c2 = _day(out, 2, _listing(tmp_path / "d2.txt", uris), "--skip_existing", "--num_shards", "2")
    assert c2["tagged"] == 6 and c2["skipped_existing"] == 6
    ids = _all_ids(out)
    assert len(ids) == len(set(ids)) == 12
    # The same day again: nothing new is tagged, nothing is lost, nothing doubles.
    files = sorted((out / "tags").glob("*/*.parquet"))
    c3 = _day(out, 2, _listing(tmp_path / "d2.txt", uris), "--skip_existing", "--num_shards", "2")
    assert c3.get("tagged", 0) == 0 and c3["skipped_existing"] == 12
    assert sorted((out / "tags").glob("*/*.parquet")) == files, "a rerun adds no file (empty shards are not kept)"
    ids = _all_ids(out)
    assert len(ids) == len(set(ids)) == 12


def test_overwrite_replaces_only_its_own_partition(tmp_path):
    uris = _images(tmp_path / "imgs", 5)
    out = tmp_path / "tags"
    listing = _listing(tmp_path / "in.txt", uris)
    _day(out, 1, listing, "--num_shards", "3")
    _day(out, 2, _listing(tmp_path / "one.txt", uris[:1]), "--skip_existing")  # all skipped: no rows
    _day(out, 1, listing, "--num_shards", "1", "--overwrite")
    assert [p.name.rsplit("-", 3)[-2:] for p in (out / "tags" / "dt=1").glob("*.parquet")] == [["of", "00001.parquet"]]
    assert sorted(read_table(out, "tags").column("uri").to_pylist()) == sorted(uris)


def test_a_run_killed_midway_resumes_without_duplicates_or_losses(tmp_path):
    uris = _images(tmp_path / "imgs", 6)
    out = tmp_path / "tags"
    _day(out, 1, _listing(tmp_path / "d1.txt", uris[:3]))

    # Day 2 adds 8 web images served slowly, so the run is still going when it is killed.
    body = Path(uris[0]).read_bytes()

    def slow(req):
        time.sleep(0.5)
        req.send_response(200)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    routes = {f"/w{i}.jpg": slow for i in range(8)}
    with loopback(routed(routes)) as server:
        base = base_url(server)
        day2 = uris + [f"{base}/w{i}.jpg" for i in range(8)]
        args = ["--input", _listing(tmp_path / "d2.txt", day2), "--output", str(out), "--allow_local_paths",
                "--partition", "dt=2", "--skip_existing", "--allow_private_networks", "--fetch_threads", "1",
                "--fetch_batch_size", "1", "--num_shards", "2", *FAST]
        env = dict(os.environ, PYTHONPATH=os.getcwd(), TMPDIR=str(tmp_path))  # the killed job's Beam temp folder too
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.tag", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any((out / "_staging").glob("*/*/*")):  # the job has started writing: kill it now
                break
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode != 0, "the run should have been killed before finishing"
        counters = tag.run(args)
    assert counters["tagged"] == 11 and counters["skipped_existing"] == 3
    ids = _all_ids(out)
    assert len(ids) == len(set(ids)) == 14


def test_a_moved_archive_is_not_retagged_when_skipping_by_content(tmp_path, capsys):
    """#35, row 7: image_id hashes the uri, so the same photos under a new folder were tagged
    again. Keyed by content, the copy is fetched but no model runs on it: its rows are the
    earlier rows under the new uris."""
    import shutil

    first = _images(tmp_path / "archive", 4)
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "archive", moved)
    new = _images(moved, 1, start=10)  # one photo the archive never had
    out = tmp_path / "out"
    tag.run(["--input", _listing(tmp_path / "a.txt", first), "--output", str(out), "--allow_local_paths", *FAST])
    before = {r["content_sha256"]: r for r in read_table(out, "tags").to_pylist()}
    capsys.readouterr()
    listing = _listing(tmp_path / "b.txt", [str(moved / Path(p).name) for p in first] + new)
    totals = tag.run(["--input", listing, "--output", str(out), "--allow_local_paths", "--skip_existing",
                      "--skip_existing_key", "content", *FAST])
    shown = capsys.readouterr().out
    assert totals["reused_by_content"] == 4 and totals["tagged"] == 5
    assert "reused" in shown and "backbone" in shown  # the one new photo went through the models
    import re

    backbone = next(line for line in shown.splitlines() if line.strip().startswith("backbone"))
    batches, size = re.search(r"(\d+) batches of\s+([\d.]+)", backbone).groups()
    assert int(batches) * float(size) == 1, f"only the new photo reached the models: {backbone}"
    rows = read_table(out, "tags").to_pylist()
    assert len(rows) == 9
    for row in rows:
        if row["uri"].startswith(str(moved)) and row["content_sha256"] in before:
            earlier = before[row["content_sha256"]]
            assert row["tags"] == earlier["tags"] and row["image_id"] != earlier["image_id"]
            assert row["processed_at"] > earlier["processed_at"]


def test_skipping_by_content_needs_skip_existing_and_the_models(tmp_path):
    import pytest

    listing = _listing(tmp_path / "a.txt", _images(tmp_path / "i", 1))
    for extra in (["--skip_existing_key", "content"], ["--skip_existing", "--skip_existing_key", "content", "--ingest_only"]):
        with pytest.raises(SystemExit, match="--skip_existing_key content .* needs --skip_existing"):
            tag.run(["--input", listing, "--output", str(tmp_path / "out"), "--allow_local_paths", *extra])
    assert not (tmp_path / "out").exists()
