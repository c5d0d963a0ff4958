"""Read stage: every list format and globs become one element per URI; bad lines dead-letter."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import tag
from pipeline.runner import make_pipeline
from tests.conftest import read_table
from transforms.core.records import image_id_for
from transforms.ingest.read import ReadUris, input_kind, parse_jsonl_line, pick_uri_column


def _read(pattern: str, uri_column: str = "") -> list:
    """Run ReadUris in a real pipeline; return sorted (uri, error_type or None) pairs."""
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = make_pipeline(PipelineOptions([]))
        try:
            with pipeline as p:
                _ = (
                    p
                    | ReadUris(pattern, uri_column=uri_column)
                    | beam.Map(lambda e: json.dumps([e["uri"], e.get("error", {}).get("error_type")]))
                    | beam.io.WriteToText(os.path.join(tmp, "out"))
                )
        finally:  # a pattern refused while the graph is built never runs it: Beam would keep its temp folder
            shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
        lines = [line for f in glob.glob(os.path.join(tmp, "out*")) for line in Path(f).read_text().splitlines()]
    return sorted(tuple(json.loads(line)) for line in lines)


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [("a/*.jpg", "glob"), ("x.txt", "text"), ("x.CSV", "csv"), ("x.tsv", "tsv"),
     ("x.jsonl", "jsonl"), ("gs://b/x-*.parquet", "parquet"), ("gs://b/imgs/**", "glob"),
     ("x.txt.gz", "text"), ("gs://b/x-*.csv.BZ2", "csv"), ("x.jsonl.zst", "jsonl"), ("a/*.jpg.gz", "glob")],
)
def test_input_kind(pattern, kind):
    assert input_kind(pattern) == kind


def test_text_list_skips_blank_and_comment_lines(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("# header comment\n/a.jpg\n\n  https://x.test/b.png  \n")
    assert _read(str(f)) == [("/a.jpg", None), ("https://x.test/b.png", None)]


def test_csv_and_tsv_use_the_uri_or_url_column(tmp_path):
    c = tmp_path / "in.csv"
    c.write_text('id,URL,caption\n1,/a.jpg,"a, cat"\n2,gs://b/c.jpg,dog\n3,,empty\n')
    t = tmp_path / "in.tsv"
    t.write_text("uri\tlabel\n/x.png\tcat\n")
    assert _read(str(c)) == [("/a.jpg", None), ("3,,empty", "bad_input_line"), ("gs://b/c.jpg", None)]
    assert _read(str(t)) == [("/x.png", None)]


def test_csv_without_uri_column_is_refused_up_front(tmp_path):
    c = tmp_path / "in.csv"
    c.write_text("id,path\n1,/a.jpg\n")
    with pytest.raises(ValueError, match=r"no 'uri' or 'url' column \(columns: \[.*\]\); name yours with --uri_column"):
        _read(str(c))


def test_jsonl_and_bad_lines(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"url": "/a.jpg"}) + "\n{broken\n" + json.dumps({"other": 1}) + "\n")
    got = _read(str(f))
    assert ("/a.jpg", None) in got
    assert sum(1 for _, err in got if err == "bad_input_line") == 2


def test_parquet_list(tmp_path):
    f = tmp_path / "in.parquet"
    pq.write_table(pa.table({"uri": ["/a.jpg", "/b.jpg"], "n": [1, 2]}), f)
    assert _read(str(f)) == [("/a.jpg", None), ("/b.jpg", None)]


def test_glob_of_image_files(tmp_path):
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_bytes(b"x")
    got = _read(str(tmp_path / "*"))
    assert [u for u, _ in got] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]


def test_missing_list_file_fails_fast(tmp_path):
    with pytest.raises(FileNotFoundError):
        ReadUris(str(tmp_path / "none.csv")).expand(None)


def test_elements_have_stable_ids():
    assert parse_jsonl_line('{"uri": "/a.jpg"}')[0]["image_id"] == image_id_for("/a.jpg")
    assert image_id_for("/a.jpg") != image_id_for("/b.jpg")
    assert len(image_id_for("/a.jpg")) == 32


def test_pick_uri_column_prefers_uri():
    assert pick_uri_column(["URL", "uri"], "f") == "uri"


# --- hostile lists, through the whole job: every line or row ends in exactly one table --------
def _job(tmp_path, pattern: str) -> tuple[list[dict], list[dict]]:
    from pipeline import tag
    from tests.conftest import read_table

    out = tmp_path / "out"
    tag.run(["--input", pattern, "--output", str(out), "--allow_local_paths", "--detector", "none", "--expansion_per_tag", "0",
             "--max_error_rate", "1"])
    tables = {}
    for name in ("tags", "errors"):
        try:
            tables[name] = read_table(out, name).to_pylist()
        except AssertionError:
            tables[name] = []
    return tables["tags"], tables["errors"]


def _bad_reasons(errors: list[dict]) -> list[str]:
    assert all((e["stage"], e["error_type"]) == ("read", "bad_input_line") for e in errors if e["stage"] == "read")
    return sorted(e["error_message"] for e in errors if e["stage"] == "read")


def test_hostile_text_list(tmp_path, photos):
    good = str(photos["chelsea"]).encode()
    (tmp_path / "l.txt").write_bytes(b"\xef\xbb\xbf" + good + b"\n/tmp/caf\xe9.jpg\n# comment\n\n" + good + b"\n")
    tags, errors = _job(tmp_path, str(tmp_path / "l.txt"))
    assert len(tags) == 2, "the BOM does not break the first URI"
    reasons = _bad_reasons(errors)
    assert len(errors) == 1 and "not UTF-8" in reasons[0] and "caf\\xe9" in errors[0]["uri"]


def test_hostile_jsonl_list(tmp_path, photos):
    good = json.dumps({"uri": str(photos["chelsea"])}).encode()
    lines = [b"\xef\xbb\xbf" + good, b"[" * 100_000, b'{"uri": ' + b"7" * 5000 + b"}",
             b'{"uri": "\\ud800.jpg"}', b'{"url": ""}', b'{"uri": 3}', b"{not json", b"\xff\xfe{}"]
    (tmp_path / "l.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    tags, errors = _job(tmp_path, str(tmp_path / "l.jsonl"))
    assert len(tags) == 1 and len(errors) == len(lines) - 1
    reasons = _bad_reasons(errors)
    assert sum("RecursionError" in r for r in reasons) == 1 and sum("lone surrogate" in r for r in reasons) == 1
    assert sum("not UTF-8" in r for r in reasons) == 1
    assert all(len(e["uri"]) <= 2000 for e in errors)


def test_hostile_csv_lists_use_a_real_reader_and_each_files_header(tmp_path, photos):
    cat, coffee = str(photos["chelsea"]), str(photos["coffee"])
    (tmp_path / "a.csv").write_text(
        f'id,caption,uri\n1,"a cat\non two lines, with ""quotes""",{cat}\n2,"plain",\n3,x\n', newline="")
    (tmp_path / "b.csv").write_bytes(f"uri,caption\n{coffee},caf\xe9\n".encode() + b"/tmp/\xe9t\xe9.jpg,x\n")
    tags, errors = _job(tmp_path, str(tmp_path / "*.csv"))
    assert sorted(Path(r["uri"]).name for r in tags) == ["chelsea.png", "coffee.png"], "no phantom inputs"
    reasons = _bad_reasons(errors)
    assert len(errors) == 3
    assert any("empty uri" in r for r in reasons) and any("columns" in r for r in reasons)
    assert any("not UTF-8" in r for r in reasons)


def test_hostile_parquet_lists_give_one_record_per_row(tmp_path, photos):
    cat = str(photos["chelsea"])
    pq.write_table(pa.table({"uri": [cat, None, "", "  "]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"uri": pa.array([cat.encode(), b"\xff\xfe"], pa.binary())}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"uri": pa.array([0], pa.int64())}), tmp_path / "c.parquet")
    pq.write_table(pa.table({"uri": pa.array([[]], pa.list_(pa.string()))}), tmp_path / "d.parquet")
    tags, errors = _job(tmp_path, str(tmp_path / "*.parquet"))
    assert len(tags) == 2 and len(errors) == 6
    reasons = _bad_reasons(errors)
    for expected in ("uri is null", "empty uri", "binary uri value is not UTF-8", "uri is a int",
                     "uri is a list"):
        assert any(expected in r for r in reasons), expected
    assert not any(e["uri"].startswith("b'") for e in errors), "binary is never stringified"


@pytest.mark.parametrize("content", ["", "# only a comment\n\n", "uri\n"], ids=["empty", "comments", "header-only"])
def test_a_list_without_uris_is_refused_at_launch(tmp_path, content):
    listing = tmp_path / ("in.csv" if content == "uri\n" else "in.txt")
    listing.write_text(content)
    with pytest.raises(SystemExit, match="holds no URI"):
        tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--ingest_only"])
    assert not (tmp_path / "out").exists()


def test_a_folder_means_every_image_below_it(tmp_path, photos):
    from pipeline.progress import estimate_inputs

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "cat.png").write_bytes(photos["chelsea"].read_bytes())
    (folder / "sub" / "cup.PNG").write_bytes(photos["coffee"].read_bytes())
    (folder / "notes.txt").write_text("not an image")
    assert estimate_inputs(str(folder)) == 2
    counters = tag.run(["--input", str(folder), "--output", str(tmp_path / "out"), "--ingest_only"])
    assert counters["inputs"] == counters["tagged"] == 2
    uris = sorted(read_table(tmp_path / "out", "tags").column("uri").to_pylist())
    assert uris == [str(folder / "cat.png"), str(folder / "sub" / "cup.PNG")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no image files"):
        tag.run(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "out2"), "--ingest_only"])


def test_compressed_lists_read_as_their_text_on_every_path(tmp_path, photos):
    """Through Beam's reader (Dataflow, Flink, a short local list) and the local shard planner
    alike; a CSV cut short keeps its rows before the cut and says where it broke."""
    import bz2
    import gzip

    import zstandard

    from pipeline.progress import estimate_inputs

    cat, cup = str(photos["chelsea"]), str(photos["coffee"])
    (tmp_path / "l.txt.gz").write_bytes(gzip.compress(f"# photos\n{cat}\n\n{cup}\n".encode()))
    (tmp_path / "l.csv.bz2").write_bytes(bz2.compress(f"id,uri\n1,{cat}\n2,{cup}\n".encode()))
    (tmp_path / "l.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        "".join(json.dumps({"uri": u}) + "\n" for u in (cat, cup)).encode()))
    (tmp_path / "encoded.txt").write_bytes(gzip.compress(f"{cat}\n{cup}\n".encode()))  # as gsutil cp -Z stores it
    for name in ("l.txt.gz", "l.csv.bz2", "l.jsonl.zst", "encoded.txt"):
        assert _read(str(tmp_path / name)) == [(cat, None), (cup, None)], name
        assert estimate_inputs(str(tmp_path / name)) == 2, name
    from transforms.ingest.read import check_lists

    check_lists(str(tmp_path / "encoded.txt"))  # not refused as a binary file
    rows = "uri\n" + "".join(f"http://127.0.0.1:9/{i:05d}-{i * 7919 % 10007:05d}.jpg\n" for i in range(40_000))
    packed = gzip.compress(rows.encode())
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    read = _read(str(tmp_path / "cut.csv.gz"))
    good = [uri for uri, error in read if error is None]
    assert 10_000 < len(good) < 40_000 and sorted(good) == sorted(rows.splitlines()[1:len(good) + 1])
    assert [error for _, error in read if error] == ["bad_input_line"]


def test_a_list_cut_short_ends_in_one_dead_letter_after_every_line_before_it(tmp_path, photos):
    import gzip

    names = sorted(photos)[:4]
    text = "".join(json.dumps({"uri": str(photos[n])}) + "\n" for n in names).encode()
    listing = tmp_path / "cut.jsonl.gz"
    listing.write_bytes(gzip.compress(text)[:-12])  # the crc and length gone: the last line may be whole
    for run, extra in (("one", []), ("sharded", ["--shard_size", "2"])):
        out = tmp_path / run
        counters = tag.run(["--input", str(listing), "--output", str(out), "--ingest_only", "--allow_local_paths",
                            "--max_error_rate", "1", *extra])
        uris = sorted(read_table(out, "tags").column("uri").to_pylist())
        errors = read_table(out, "errors").to_pylist()
        assert uris == sorted(str(photos[n]) for n in names[: len(uris)]) and len(uris) >= 3, run
        assert [(e["stage"], e["error_type"]) for e in errors] == [("read", "bad_input_line")], run
        assert errors[0]["error_message"].startswith("list ends early: its gzip data breaks after byte"), run
        assert counters["failed"] == 1, run


def test_uri_column_names_the_column_or_key_that_holds_the_uris(tmp_path, photos):
    """Lists from other tools name the column otherwise (image_url, contentUrl): --uri_column
    picks it in CSV, TSV and Parquet (any case) and JSONL (its key), plain or compressed, and
    its 'url' column is then just data."""
    import gzip

    cat, cup = str(photos["chelsea"]), str(photos["coffee"])
    (tmp_path / "l.csv").write_text(f"url,Image_URL\nhttp://127.0.0.1:9/x.jpg,{cat}\nhttp://127.0.0.1:9/y.jpg,{cup}\n")
    (tmp_path / "l.tsv").write_text(f"image_url\tcaption\n{cat}\ta cat\n{cup}\ta cup\n")
    (tmp_path / "l.jsonl.gz").write_bytes(gzip.compress("".join(
        json.dumps({"uri": "http://127.0.0.1:9/x.jpg", "contentUrl": u}) + "\n" for u in (cat, cup)).encode()))
    pq.write_table(pa.table({"IMAGE_URL": [cat, cup], "url": ["http://127.0.0.1:9/x.jpg"] * 2}), tmp_path / "l.parquet")
    for name, column in (("l.csv", "image_url"), ("l.tsv", "IMAGE_URL"), ("l.jsonl.gz", "contentUrl"),
                         ("l.parquet", "image_url")):
        assert _read(str(tmp_path / name), column) == [(cat, None), (cup, None)], name
    from pipeline import shards
    from pipeline.flags import defaults

    plan = shards.plan(defaults(input=str(tmp_path / "l.jsonl.gz"), output=str(tmp_path / "out"), shard_size=1,
                                uri_column="contentUrl"), local=True, mode="new")
    assert plan is not None
    assert [e["uri"] for s in plan.shards() for e in s.elements] == [cat, cup], "the local shard planner too"
    (tmp_path / "other.jsonl").write_text(json.dumps({"uri": cat}) + "\n")
    assert _read(str(tmp_path / "other.jsonl"), "contentUrl") == [(json.dumps({"uri": cat}), "bad_input_line")]


def test_long_lines_are_read_in_linear_time_and_bounded(tmp_path):
    from transforms.ingest.read import MAX_LIST_LINE

    listing = tmp_path / "in.jsonl"
    one_array = "[" + ",".join(f'{{"uri": "http://x/{i}.jpg"}}' for i in range(400_000)) + "]"
    assert len(one_array) > 8 * MAX_LIST_LINE
    listing.write_text(one_array + "\r" + '{"uri": "http://127.0.0.1:9/a.jpg"}' + "\r")
    start = time.monotonic()
    counters = tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--ingest_only",
                        "--max_error_rate", "1", "--connect_timeout", "0.2", "--max_attempts", "1"])
    assert time.monotonic() - start < 30
    errors = {r["error_type"]: r for r in read_table(tmp_path / "out", "errors").to_pylist()}
    assert errors["bad_input_line"]["error_message"].startswith("list line longer than")
    assert counters["inputs"] == 2, "the CR-only line after the long one is read too"
