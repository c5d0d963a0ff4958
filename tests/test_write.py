"""The Parquet outputs: zstd-compressed, sensible row groups, and queryable with DuckDB using
exactly the README's example queries."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline import tag
from transforms.output.write import WriteOutputs

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def output(tmp_path_factory, photos):
    tmp = tmp_path_factory.mktemp("write")
    listing = tmp / "in.txt"
    names = ("chelsea", "coffee", "grace_hopper", "motorcycle")
    listing.write_text("".join(f"{photos[n]}\n" for n in names) + f"{tmp / 'gone.jpg'}\n{listing}\n")
    out = tmp / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--num_shards", "2"])
    return out


def readme_queries() -> dict[str, str]:
    """The SQL blocks of the README's 'Querying the outputs' section, by their comment line."""
    section = README.read_text().split("### Querying the outputs", 1)[1].split("\n##", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    return {b.splitlines()[0].lstrip("- ").strip(): b for b in blocks}


def test_outputs_are_zstd_with_row_groups(output):
    checked = 0
    for path in glob.glob(str(output / "*" / "*.parquet")):
        meta = pq.ParquetFile(path).metadata
        if meta.num_rows:  # a shard can be empty
            assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
            checked += 1
    assert checked >= 2


def test_readme_queries_run_on_the_outputs(output, monkeypatch):
    monkeypatch.chdir(output.parent)  # the README's queries read out/tags-*.parquet
    queries = readme_queries()
    assert len(queries) == 3, list(queries)
    con = duckdb.connect()
    top = con.sql(queries["top tags"]).fetchall()
    names = [r[0] for r in top]
    assert {"cat", "person", "motorcycle"} <= set(names)
    person = con.sql(queries["images with a person"]).fetchall()
    assert [Path(r[0]).name for r in person] == ["grace_hopper.jpg"]
    assert len(person[0][2]) == 4 and all(0 <= v <= 1 for v in person[0][2])
    dead = dict(((r[0], r[1]), r[2]) for r in con.sql(queries["dead letters by type"]).fetchall())
    assert dead == {("fetch", "not_found"): 1, ("decode", "not_an_image"): 1}


def test_unknown_codec_is_refused():
    from transforms.output.runs import Manifest

    with pytest.raises(ValueError, match="unknown Parquet codec"):
        WriteOutputs("out", Manifest(run_id="r", mode="new"), codec="zip")


def test_every_column_carries_its_description_into_the_files(output):
    """#35: tools that show Parquet field metadata show what each column means."""
    import pyarrow as pa

    def fields(schema_or_type) -> list:
        out = []
        for f in schema_or_type:
            out.append(f)
            inner = f.type.value_type if pa.types.is_list(f.type) else f.type
            if pa.types.is_struct(inner):
                out += fields(list(inner))
        return out

    for table in ("tags", "errors"):
        schema = pq.read_schema(glob.glob(str(output / table / "*.parquet"))[0])
        missing = [f.name for f in fields(schema) if not (f.metadata or {}).get(b"description")]
        assert missing == [], (table, missing)
