"""A long local list runs shard by shard (pipeline/shards.py): offsets, resume, bounded skipping,
and a kill in the middle of a 20-shard run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import shards
from pipeline.flags import defaults
from tests.conftest import noise_images
from transforms.core.records import image_id_for
from transforms.ingest.read import count_entries, split_lines, split_lines_at
from transforms.output import runs
from transforms.output.backfill import present_ids

ROOT = Path(__file__).resolve().parents[1]


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1 << 20])
def test_line_ends_are_byte_offsets_past_each_line_whatever_the_chunks(size):
    data = b"a\r\nbb\rccc\n\n" + b"x" * 40 + b"\nlast"
    got = list(split_lines_at(_chunks(data, size), max_line=30))
    assert [end for _, end in got] == [3, 6, 10, 11, 52, 56]
    assert [line for line, _ in got if isinstance(line, bytes)] == [b"a", b"bb", b"ccc", b"", b"last"]
    assert isinstance(got[4][0], dict) and got[4][0]["error"]["error_type"] == "bad_input_line"
    assert [x if isinstance(x, bytes) else "dead" for x in split_lines(_chunks(data, size), max_line=30)] == \
        [x if isinstance(x, bytes) else "dead" for x, _ in got]


def _write_list(path: Path, n: int) -> Path:
    path.write_text("# a comment\n" + "".join(f"gs://b/{i:05d}.jpg\n" + ("\n" if i % 7 == 0 else "") for i in range(n)))
    return path


def test_shards_cover_the_list_once_and_resume_at_any_shard(tmp_path):
    listing = _write_list(tmp_path / "list.txt", 103)
    every = list(shards.read_shards(str(listing), 10))
    assert [len(s.elements) for s in every] == [10] * 10 + [3]
    assert [s.index for s in every] == list(range(11))
    uris = [e["uri"] for s in every for e in s.elements]
    assert uris == [f"gs://b/{i:05d}.jpg" for i in range(103)]
    assert all(a.end == b.start for a, b in zip(every, every[1:], strict=False))
    assert every[-1].end == listing.stat().st_size
    rest = list(shards.read_shards(str(listing), 10, every[4].end, 5))
    assert [(s.index, s.start, [e["uri"] for e in s.elements]) for s in rest] == \
        [(s.index, s.start, [e["uri"] for e in s.elements]) for s in every[5:]]
    assert count_entries(str(listing)) == 103
    assert count_entries(str(listing), every[4].end) == 53


def _manifest(record: object, status: str = "committed") -> runs.Manifest:
    return runs.Manifest(run_id="20261203T000000Z-abcdef", mode="new", status=status, lineage={"shard": record})


def test_resume_point_trusts_only_plain_records_of_the_same_list(tmp_path):
    listing = _write_list(tmp_path / "list.txt", 30)
    ident = shards.identity(str(listing))
    size = int(ident["list_bytes"])
    good = [_manifest({**ident, "index": 0, "end": 100}), _manifest({**ident, "index": 1, "end": 200})]
    assert shards.resume_point(good, ident) == (200, 2)
    bad = [
        _manifest({**ident, "index": 5, "end": size + 1}),  # past the end of the list
        _manifest({**ident, "index": 5, "end": "300"}),
        _manifest({**ident, "index": True, "end": 300}),
        _manifest({**ident, "index": 5, "end": -1}),
        _manifest({**ident, "list": "/elsewhere.txt", "index": 5, "end": 300}),
        _manifest({**ident, "list_mtime_ns": 1, "index": 5, "end": 300}),  # the list changed since
        _manifest({**ident, "index": 5, "end": 300}, status="committing"),
        _manifest("not a record"),
    ]
    assert shards.resume_point(good + bad, ident) == (200, 2)


def test_present_ids_reads_only_the_id_column_batch_by_batch(tmp_path):
    ids = [f"{i:016x}" for i in range(50_000)]
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"image_id": ids, "uri": [f"u{i}" for i in range(50_000)]}), path, row_group_size=4096)
    asked = [ids[3], ids[49_999], "not-there", ids[20_000]]
    assert present_ids([str(path)], asked, batch_rows=1000) == {ids[3], ids[49_999], ids[20_000]}
    assert present_ids([str(path)], []) == set()
    assert present_ids([], asked) == set()


def test_a_short_list_is_one_run_and_a_long_or_resumed_one_is_sharded(tmp_path):
    listing = _write_list(tmp_path / "list.txt", 30)
    out = tmp_path / "out"

    def options(**values):
        return defaults(input=str(listing), output=str(out), **values)

    assert shards.plan(options(), local=True, mode="new") is None  # 30 lines: one run
    assert shards.plan(options(shard_size=10), local=False, mode="new") is None  # Dataflow: never
    sharded = shards.plan(options(shard_size=10), local=True, mode="new")
    assert sharded is not None and (sharded.size, sharded.start) == (10, 0)
    assert sharded.remaining() == 30
    csv_list = tmp_path / "list.csv"
    csv_list.write_text("uri\ngs://b/1.jpg\n")
    assert shards.plan(defaults(input=str(csv_list), output=str(out), shard_size=10), local=True, mode="new") is None


def _committed(out: Path) -> list[dict]:
    return [m.lineage["shard"] for m in runs.read_manifests(str(out)) if m.status == "committed"]


def test_a_kill_in_the_middle_of_a_20_shard_run_then_a_rerun_tags_every_input_once(tmp_path):
    uris = noise_images(tmp_path / "imgs", 38, ".png", (24, 32), seed=1) + [str(tmp_path / "gone1.png"), str(tmp_path / "gone2.png")]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(u + "\n" for u in uris))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.tag", "--input", str(listing), "--output", str(out), "--ingest_only",
           "--allow_local_paths", "--shard_size", "2", "--max_error_rate", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}  # the killed job's Beam temp folder too
    rng = random.Random(36)
    after = rng.randint(3, 16)  # committed shards before the kill, then a random instant inside the next
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_committed(out)) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    done = _committed(out)
    assert after <= len(done) < 20, "killed in the middle"
    last = max(r["end"] for r in done)

    rerun = subprocess.run([*cmd, "--skip_existing"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    records = sorted(_committed(out), key=lambda r: r["index"])
    assert [r["index"] for r in records] == list(range(20)), "every shard once, in order"
    resumed = [r for r in records if r["index"] >= len(done)]
    assert resumed[0]["start"] == last, "the rerun starts at the next shard, without reading the finished ones"
    tags = [i for f in runs.committed_files(str(out), "tags") for i in pq.read_table(f).column("image_id").to_pylist()]
    errors = [i for f in runs.committed_files(str(out), "errors") for i in pq.read_table(f).column("image_id").to_pylist()]
    assert len(tags) == len(set(tags)) == 38 and len(errors) == len(set(errors)) == 2
    assert set(tags) | set(errors) == {image_id_for(u) for u in uris}
    manifests = [json.loads(p.read_text()) for p in (out / runs.RUNS).glob("*.json")]
    assert len(manifests) == 20 and all(m["status"] == "committed" for m in manifests)


def test_one_summary_counts_every_shard(tmp_path, capsys):
    from pipeline import tag
    from tests.conftest import noise_images

    listing = tmp_path / "list.txt"
    listing.write_text("".join(u + "\n" for u in noise_images(tmp_path / "imgs", 11, ".png", (16, 16), seed=2)))
    totals = tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--ingest_only", "--allow_local_paths",
                      "--shard_size", "4", "--quiet"])
    assert (totals["inputs"], totals["tagged"]) == (11, 11)
    out = capsys.readouterr().out
    assert "3 shards" in out and out.count("inputs ") == 1, "one summary for the whole list"


def test_one_progress_line_follows_the_whole_list_across_shards(tmp_path, capsys):
    import re

    from pipeline import tag
    from tests.conftest import noise_images

    listing = tmp_path / "list.txt"
    listing.write_text("".join(u + "\n" for u in noise_images(tmp_path / "imgs", 11, ".png", (16, 16), seed=3)))
    tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--ingest_only", "--allow_local_paths",
             "--shard_size", "4", "--progress_interval", "0.05"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[progress]")]
    assert lines and all("/11 " in line for line in lines), "the total is the whole list's, not a shard's"
    done = [int(re.search(r"done (\d+)", line).group(1)) for line in lines]
    assert done == sorted(done) and max(done) > 4, "counts go on from shard to shard"
