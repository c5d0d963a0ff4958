"""Write stage: rows -> OUTPUT/tags/, dead letters -> OUTPUT/errors/, published by one commit.

Beam's file sink writes the run's shards under OUTPUT/_staging/<run_id>/; the commit step
(transforms/output/runs.py) renames them to ``part-<run_id>-SSSSS-of-NNNNN.parquet`` and records them in
the run's manifest, so a killed run never leaves half a shard set where readers look and never
touches an earlier run's files. Files are zstd-compressed by default (``--parquet_codec``), with
row groups of about 64 MB.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.core import progress
from transforms.core.records import (
    CODECS,
    ERRORS,
    ERRORS_SCHEMA,
    NAMESPACE,
    TAGS_SCHEMA,
    Element,
    to_error_row,
)
from transforms.output import lock as output_lock
from transforms.output import runs

# About 64k tags rows per row group: large enough for fast scans in DuckDB/BigQuery/Spark,
# small enough that a worker buffers one at a time.
ROW_GROUP_BYTES = 64 * 1024 * 1024


class SplitFailures(beam.DoFn):
    """Main output: the elements that did not fail; ERRORS: the ones a step marked failed. The
    one dead-letter path: fetch, decode and every model stage split their failures off with it
    (pipeline/graph.py), so no later step ever sees a failed element."""

    def process(self, element: Element) -> Iterable:
        if "error" in element:
            yield beam.pvalue.TaggedOutput(ERRORS, element)
        else:
            yield element


class _CountErrors(beam.DoFn):
    def process(self, element: Element) -> Iterable[dict]:
        err = element["error"]
        Metrics.counter(NAMESPACE, "failed").inc()
        Metrics.counter(NAMESPACE, f"failed.{err['stage']}.{err['error_type']}").inc()
        progress.record("failed")
        progress.record(f"failed.{err['stage']}.{err['error_type']}")
        yield to_error_row(element)

    def finish_bundle(self) -> None:
        progress.flush()


class _CountTagged(beam.DoFn):
    def process(self, row: dict) -> Iterable[dict]:
        Metrics.counter(NAMESPACE, "tagged").inc()
        progress.record("tagged")
        yield row

    def finish_bundle(self) -> None:
        progress.flush()


class CommitRun(beam.DoFn):
    """Runs once, after both tables are final: publishes the run (transforms/output/runs.py) and
    releases the output's lock (which a remote runner's launcher may no longer be there to do)."""

    def __init__(self, output: str, manifest: runs.Manifest):
        self._output = output
        self._manifest = manifest

    def process(self, _, *written: list[str]) -> Iterable[str]:
        done = runs.commit(self._output, self._manifest)
        output_lock.release(self._output, done.run_id)
        yield done.run_id


class WriteOutputs(beam.PTransform):
    """(rows, error elements[, error rows carried from earlier runs]) -> the run's staged shards
    of ``table`` and errors, then one commit that publishes them (OUTPUT/<table>/, OUTPUT/errors/)."""

    def __init__(self, output: str, manifest: runs.Manifest, num_shards: int = 0, table: str = "tags",
                 schema=TAGS_SCHEMA, codec: str = "zstd"):
        super().__init__()
        if codec not in CODECS:
            raise ValueError(f"unknown Parquet codec {codec!r}; choose from {CODECS}")
        self._codec = codec
        self._output = output.rstrip("/")
        self._manifest = manifest
        self._num_shards = num_shards
        self._table = table
        self._schema = schema

    def _write(self, pcoll, table: str, schema):
        return pcoll | f"Write{table.title()}" >> beam.io.WriteToParquet(
            runs.staging_prefix(self._output, self._manifest.run_id, table),
            schema,
            file_name_suffix=".parquet",
            num_shards=self._num_shards,
            codec=self._codec,
            row_group_buffer_size=ROW_GROUP_BYTES,
        )

    def expand(self, pcolls):
        rows, errors, *carried = pcolls
        tags = self._write(rows | "CountTagged" >> beam.ParDo(_CountTagged()), self._table, self._schema)
        error_rows = errors | "CountErrors" >> beam.ParDo(_CountErrors())
        if carried:  # earlier runs' dead letters whose inputs this run did not retry
            error_rows = (error_rows, carried[0]) | "WithCarriedErrors" >> beam.Flatten()
        errs = self._write(error_rows, ERRORS, ERRORS_SCHEMA)
        return (
            tags.pipeline
            | "CommitTrigger" >> beam.Create([None])
            | "Commit" >> beam.ParDo(CommitRun(self._output, self._manifest),
                                     beam.pvalue.AsList(tags), beam.pvalue.AsList(errs))
        )
