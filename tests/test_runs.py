"""The output as a dataset the job owns run by run: no silent overwrite, only its own files read or
deleted, one job at a time, folders that read as one table (transforms/output/runs.py,
transforms/output/lock.py, pipeline/run_output.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline import report, runs_table, tag
from tests.conftest import read_table
from transforms.output import lock as output_lock
from transforms.output import runs

FAST = ["--ingest_only", "--max_error_rate", "1"]


@pytest.fixture()
def photo_dir(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        src = photos[name]
        (folder / f"{name}{src.suffix}").write_bytes(src.read_bytes())
    from PIL import Image

    Image.open(photos["motorcycle"]).convert("RGB").save(folder / "motorcycle.jpg")
    return folder


def _uris(out) -> list[str]:
    return sorted(os.path.basename(u) for u in read_table(out, "tags").column("uri").to_pylist())


def test_a_second_run_into_an_output_is_refused_unless_told_how(tmp_path, photo_dir, capsys):
    out = tmp_path / "out"
    tag.run(["--input", str(photo_dir / "*.jpg"), "--output", str(out), *FAST])
    assert _uris(out) == ["motorcycle.jpg"]
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), *FAST])
    message = str(info.value)
    assert "\n" not in message and "--skip_existing" in message and "--overwrite" in message
    assert _uris(out) == ["motorcycle.jpg"], "the refused run changed nothing"
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), "--skip_existing", *FAST])
    assert _uris(out) == ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle.jpg"]
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), "--overwrite", *FAST])
    assert _uris(out) == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert len(list((out / runs.RUNS).iterdir())) == 1, "replaced runs leave no manifest behind"


def test_tables_read_in_one_call_by_pandas_duckdb_and_pyarrow(tmp_path, photo_dir):
    out = tmp_path / "out"
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photo_dir / 'chelsea.png'}\n{photo_dir / 'gone.jpg'}\n")
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", *FAST])
    tag.run(["--input", str(photo_dir / "*.jpg"), "--output", str(out), "--skip_existing", *FAST])
    assert len(pd.read_parquet(out / "tags")) == 2 and len(pd.read_parquet(out / "errors")) == 1
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/tags/*.parquet')").fetchall() == [(2,)]
    assert ds.dataset(out / "errors").to_table().column("error_type").to_pylist() == ["not_found"]


def test_partitions_are_hive_style_and_skip_across_them(tmp_path, photo_dir):
    out = tmp_path / "out"
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), "--partition", "dt=2026-11-29", *FAST])
    counters = tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--partition", "dt=2026-11-30",
                        "--skip_existing", *FAST])
    assert counters["skipped_existing"] == 3 and counters["tagged"] == 1
    table = pd.read_parquet(out / "tags")
    assert sorted(table["dt"].astype(str)) == ["2026-11-29"] * 3 + ["2026-11-30"]
    with pytest.raises(SystemExit, match="partition"):
        tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--partition", "day 1", *FAST])


def test_files_the_job_did_not_write_are_never_read_nor_deleted(tmp_path, photo_dir):
    out = tmp_path / "out"
    out.mkdir()
    rows = pa.table({"uri": ["x"], "image_id": ["y"]})
    for name in ("tags-00000-of-00003.parquet", "errors-00001-of-00002.parquet", "tags-summary.parquet"):
        pq.write_table(rows, out / name)
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), *FAST])
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), "--overwrite", *FAST])
    assert {"tags-00000-of-00003.parquet", "errors-00001-of-00002.parquet", "tags-summary.parquet"} <= {
        p.name for p in out.iterdir()}
    html = report.build_report(str(out), sample=10)
    assert "chelsea" in html
    tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--skip_existing", *FAST])
    # Someone else's file inside a table folder would mix into what readers see: refused.
    pq.write_table(rows, out / "tags" / "mine.parquet")
    with pytest.raises(SystemExit, match="did not write"):
        tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--skip_existing", *FAST])


def test_one_job_per_output_and_stale_locks_are_taken_over(tmp_path, photo_dir):
    out = tmp_path / "out"
    out.mkdir()
    live = output_lock.Lock("other-run")  # this very process: alive
    (out / output_lock.LOCK).write_text(json.dumps(live.__dict__))
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), *FAST])
    assert "in use by run other-run" in str(info.value) and str(os.getpid()) in str(info.value)
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), "--break_lock", *FAST])
    assert not (out / output_lock.LOCK).exists(), "released at the end"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = {**output_lock.Lock("gone-run").__dict__, "pid": int(dead.stdout), "host": socket.gethostname()}
    (out / output_lock.LOCK).write_text(json.dumps(stale))
    tag.run(["--input", str(photo_dir / "*.jpg"), "--output", str(out), "--skip_existing", *FAST])
    assert len(_uris(out)) == 4


def test_lock_is_exclusive_between_two_takers(tmp_path):
    out = str(tmp_path / "out")
    mine, _ = output_lock.acquire(out, "a")
    with pytest.raises(output_lock.OutputBusyError):
        output_lock.acquire(out, "b")
    output_lock.release(out, "b")  # not b's: kept
    assert output_lock.read_lock(out).run_id == "a"
    output_lock.release(out, "a")
    assert output_lock.read_lock(out) is None


@pytest.mark.parametrize("case", ["read-only", "dangling-symlink", "inside-input"])
def test_outputs_that_cannot_be_written_are_refused_at_launch(tmp_path, photo_dir, case):
    if case == "read-only":
        if os.geteuid() == 0:
            locked = tmp_path / "locked"
            locked.mkdir()
            out = tmp_path / "file-parent" / "out"
            (tmp_path / "file-parent").write_text("a file, not a folder")
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            out = locked / "out"
        args = ["--input", str(photo_dir / "*.png"), "--output", str(out)]
    elif case == "dangling-symlink":
        out = tmp_path / "link"
        out.symlink_to(tmp_path / "nowhere")
        args = ["--input", str(photo_dir / "*.png"), "--output", str(out)]
    else:
        out = photo_dir / "out"
        args = ["--input", str(photo_dir / "**"), "--output", str(out)]
    with pytest.raises(SystemExit) as info:
        tag.run([*args, *FAST])
    assert str(info.value).startswith("image-tagger tag: --output") and "\n" not in str(info.value)
    assert not (tmp_path / "nowhere").exists() and not (photo_dir / "out").exists()


def _victim(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (victim / name).write_text(name)
    (victim / "sub").mkdir()
    (victim / "sub" / "keep.txt").write_text("keep")
    return victim


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", ["run_id", "supersedes", "renames", "files", "name", "not-json-object", "lineage",
                                  "counts"])
def test_a_hostile_manifest_is_refused_at_launch_and_nothing_outside_is_touched(tmp_path, photo_dir, case):
    """Hostile round 4, class 1: manifests are data to validate, never paths to act on."""
    out = tmp_path / "out"
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), *FAST])
    victim = _victim(tmp_path)
    before = _snapshot(victim)
    good = json.loads(next((out / runs.RUNS).iterdir()).read_text())
    evil = {**good, "run_id": "20300101T000000Z-evil00", "status": "committed", "files": {}, "renames": [],
            "supersedes": []}
    name = evil["run_id"] + ".json"
    if case == "run_id":
        evil["run_id"] = str(victim / "sub")
        evil["status"] = "committing"
    elif case == "supersedes":
        evil["supersedes"] = ["../victim/a.txt", str(victim / "b.txt")]
    elif case == "renames":
        evil["status"] = "committing"
        evil["renames"] = [[str(victim / "c.txt"), str(victim / "d.txt")]]
    elif case == "files":
        evil["files"] = {"tags": ["../victim/a.txt"]}
    elif case == "name":
        name = "20300101T000000Z-other0.json"  # a manifest filed under another run's name
    elif case == "lineage":
        evil["lineage"] = {"options": {"input": {"deeper": ["x" * 10]}}}
    elif case == "counts":
        evil["counts"] = {"tags": -3}
    else:
        evil = ["a", "list"]  # type: ignore[assignment]
    (out / runs.RUNS / name).write_text(json.dumps(evil))
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--skip_existing", *FAST])
    message = str(info.value)
    assert "\n" not in message and "not one this tool wrote" in message and "move it away" in message
    with pytest.raises(SystemExit, match="not one this tool wrote"):
        report.main(["--input", str(out), "--html", str(tmp_path / "r.html")])
    with pytest.raises(SystemExit, match="not one this tool wrote"):
        runs_table.main([str(out)])
    assert _snapshot(victim) == before, "nothing outside OUTPUT was read, written or deleted"
    assert not (tmp_path / "r.html").exists()


def test_the_commit_steps_never_touch_a_path_outside_the_output(tmp_path):
    """Defence in depth under the validation: a rename or deletion outside OUTPUT raises."""
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="outside"):
        runs._delete(str(out), [str(out / ".." / "victim" / "a.txt")])
    with pytest.raises(ValueError, match="outside"):
        runs._rename(str(out), str(victim / "c.txt"), str(out / "tags" / "x.parquet"))
    assert (victim / "a.txt").exists() and (victim / "c.txt").exists()


@pytest.mark.parametrize("link", [runs.STAGING, runs.RUNS, "tags", "errors", "tags/dt=x", "_staging/20300101T000000Z-abc123"])
def test_symbolic_links_inside_the_output_are_refused_at_launch(tmp_path, photo_dir, link):
    """Hostile round 4, class 2: a linked _staging once had its target emptied by recovery."""
    out = tmp_path / "out"
    tag.run(["--input", str(photo_dir / "*.png"), "--output", str(out), *FAST])
    elsewhere = _victim(tmp_path)
    (elsewhere / "20300101T000000Z-abc123").mkdir()
    (elsewhere / "20300101T000000Z-abc123" / "x.parquet").write_text("x")
    before = _snapshot(elsewhere)
    target = out / link
    if target.exists():
        moved = tmp_path / "moved"
        target.rename(moved)
        for p in moved.iterdir():  # the real files go along: only the link is new
            p.rename(elsewhere / p.name)
        before = _snapshot(elsewhere)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photo_dir / "*"), "--output", str(out), "--skip_existing", *FAST])
    assert "symbolic link" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SystemExit, match="symbolic link"):
        report.main(["--input", str(out), "--html", str(tmp_path / "r.html")])
    assert _snapshot(elsewhere) == before


def test_the_report_reads_local_files_only_when_allowed(tmp_path, photos):
    """Hostile round 4, class 1b: a row's URI is data; a local file is thumbnailed only under
    --allow_local_paths, and gs:// only under --allowed_schemes gs."""
    from tests.conftest import publish
    from transforms.core.records import TAGS_SCHEMA

    out = tmp_path / "out"
    row = {"uri": str(photos["chelsea"]), "image_id": "x", "width": 1, "height": 1, "tags": [], "objects": [],
           "model_version": "", "processed_at": None}
    publish(out, {"tags": pa.Table.from_pylist([row], schema=TAGS_SCHEMA)})
    refused = report.build_report(str(out), sample=1)
    assert "data:image/jpeg;base64," not in refused and report.PLACEHOLDER in refused
    allowed = report.build_report(str(out), sample=1, policy=report.thumbnail_policy(allow_local_paths=True))
    assert "data:image/jpeg;base64," in allowed
    assert "gs" in report.thumbnail_policy(allowed_schemes="gs").schemes
    assert "file" not in report.thumbnail_policy(allowed_schemes="gs").schemes


def _race(folder: str, barrier, results, rounds: int) -> None:
    for i in range(rounds):
        barrier.wait()
        try:
            output_lock.acquire(os.path.join(folder, str(i)), f"r{os.getpid()}")
            results.put((i, os.getpid()))
        except output_lock.OutputBusyError:
            pass


def test_two_racing_takers_never_both_hold_the_lock(tmp_path):
    """Hostile round 4, class 6: 1000 rounds of two processes taking a new folder's lock at once."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    rounds, barrier, results = 1000, ctx.Barrier(2), ctx.Queue()
    takers = [ctx.Process(target=_race, args=(str(tmp_path), barrier, results, rounds)) for _ in range(2)]
    for p in takers:
        p.start()
    for p in takers:
        p.join(120)
    held: dict[int, list[int]] = {}
    while not results.empty():
        i, pid = results.get()
        held.setdefault(i, []).append(pid)
    assert all(p.exitcode == 0 for p in takers)
    assert len(held) == rounds, "every round has a holder"
    assert all(len(pids) == 1 for pids in held.values()), "never two"


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b'{"run_id": 7}'])
def test_an_unreadable_lock_is_never_taken_silently(tmp_path, content):
    out = tmp_path / "out"
    out.mkdir()
    (out / output_lock.LOCK).write_bytes(content)
    with pytest.raises(output_lock.OutputBusyError, match="unreadable.*--break_lock"):
        output_lock.acquire(str(out), "20300101T000000Z-a")
    assert (out / output_lock.LOCK).read_bytes() == content
    mine, _ = output_lock.acquire(str(out), "20300101T000000Z-a", break_lock=True)
    assert output_lock.read_lock(str(out)) == mine


def test_a_full_disk_refuses_the_lock_in_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "out"
    monkeypatch.setattr(output_lock.os, "fsync", full)
    with pytest.raises(output_lock.OutputBusyError) as info:
        output_lock.acquire(str(out), "20300101T000000Z-a")
    assert "No space left on device" in str(info.value) and "\n" not in str(info.value)
    assert list(out.iterdir()) == [], "no empty or temporary lock file is left"


def test_runs_started_in_one_second_keep_their_order_and_older_ids_still_read():
    """The CI of stop 43: two runs started in one second were ordered by their random suffix."""
    import datetime as dt

    start = dt.datetime(2026, 12, 4, 1, 10, 45, tzinfo=dt.UTC)
    ids = [runs.new_run_id(start + dt.timedelta(microseconds=k * 1000)) for k in range(20)]
    assert sorted(ids) == ids and all(runs.RUN_ID.match(i) for i in ids)
    assert runs.RUN_ID.match("20261202T011045Z-3fa9c1")  # an output written before microseconds
    assert not runs.RUN_ID.match("20261202T0110451Z-3fa9c1")
