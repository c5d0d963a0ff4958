"""Incremental, idempotent backfills: skip what earlier runs tagged, resume a partition safely.

- ``SkipExisting(glob)``: an anti-join (CoGroupByKey on image_id, so it scales on any runner and
  no id list is held on one machine) that drops inputs whose image_id already has a row in
  earlier outputs (``tags-*.parquet`` matched by the glob). Dead letters are not in the glob:
  failed images are retried by later runs.
- ``existing_rows(output)``: the rows a previous (finished or interrupted) run already wrote
  into this very partition. They are written again with the new rows, so rerunning a
  partition keeps them; with the anti-join they are never tagged twice.
- ``RemoveStaleShards``: once the new shards are final, shard files of an earlier run with a
  different shard count are deleted, so a partition never holds a row twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.records import NAMESPACE, Element, shard_pattern


def _matches(pattern: str) -> bool:
    try:
        return bool(FileSystems.match([pattern], limits=[1])[0].metadata_list)
    except Exception:  # noqa: BLE001 - a missing prefix or bucket means no earlier output
        return False


class SkipExisting(beam.PTransform):
    """elements -> elements whose image_id has no row in the files matched by ``patterns``."""

    def __init__(self, patterns: list[str]):
        super().__init__()
        self._patterns = [p for p in dict.fromkeys(patterns) if _matches(p)]

    def expand(self, elements):
        keyed = elements | "KeyNew" >> beam.Map(lambda e: (e["image_id"], e))
        reads = [
            elements.pipeline
            | f"ReadDone{i}" >> beam.io.ReadFromParquet(pattern, columns=["image_id"])
            for i, pattern in enumerate(self._patterns)
        ] or [elements.pipeline | "NothingDone" >> beam.Create([])]
        done = reads | "AllDone" >> beam.Flatten() | "KeyDone" >> beam.Map(lambda r: (r["image_id"], None))
        return (
            {"new": keyed, "done": done}
            | "AntiJoin" >> beam.CoGroupByKey()
            | "KeepNew" >> beam.FlatMap(_keep_new)
        )


def _keep_new(item) -> Iterable[Element]:
    _, groups = item
    new = list(groups["new"])
    if any(True for _ in groups["done"]):
        Metrics.counter(NAMESPACE, "skipped_existing").inc(len(new))
        return []
    return new


def _carried(row: dict, columns: tuple[str, ...]) -> dict:
    """An earlier run's row, with the columns that run did not have yet as nulls."""
    return {**{c: None for c in columns}, **row, "carried_over": True}


def existing_rows(pipeline: beam.Pipeline, output: str, table: str = "tags", columns: tuple[str, ...] = ()):
    """Rows already written to ``output`` by an earlier run of the same partition (or none);
    ``columns`` are today's columns, filled with nulls where an older run's files lack them."""
    pattern = shard_pattern(output, table)
    if not _matches(pattern):
        return pipeline | f"No{table.title()}Yet" >> beam.Create([])
    return (
        pipeline
        | f"Read{table.title()}Before" >> beam.io.ReadFromParquet(pattern)
        | f"Mark{table.title()}Carried" >> beam.Map(_carried, columns)
    )


class RemoveStaleShards(beam.DoFn):
    """After a table's write is final, delete its shard files that carry another shard count.

    This run's shards are ``<table>-SSSSS-of-NNNNN.parquet`` with its own NNNNN (the fixed
    --num_shards, else read off the files the write reports). The write's report is not the
    full list: Beam leaves out shards whose bytes already sat at the destination, so names
    are matched by their shard count, never by that list. With no count known, nothing is
    deleted."""

    def __init__(self, output: str, table: str, num_shards: int = 0):
        self._output = output.rstrip("/")
        self._table = table
        self._num_shards = num_shards

    def process(self, written: list[str]) -> Iterable[str]:
        shard = re.compile(rf"^{re.escape(self._table)}-\d{{5}}-of-(\d{{5}})\.parquet$")
        totals = {int(m.group(1)) for m in (shard.match(f.rsplit("/", 1)[-1]) for f in written) if m}
        total = self._num_shards or (totals.pop() if len(totals) == 1 else None)
        if total is None:
            return
        pattern = FileSystems.join(self._output, f"{self._table}-*.parquet")
        stale = []
        for meta in FileSystems.match([pattern])[0].metadata_list:
            m = shard.match(meta.path.rsplit("/", 1)[-1])
            if m and int(m.group(1)) != total:
                stale.append(meta.path)
        if stale:
            FileSystems.delete(stale)
        yield from stale
