"""Write stage: tagged elements -> OUTPUT/tags-*.parquet, dead letters -> OUTPUT/errors-*.parquet.

Shard names are deterministic (``tags-00000-of-00004.parquet``), written atomically by
Beam's file sink (temp files, then rename), so a rerun replaces rather than duplicates.
Files are zstd-compressed by default (``--parquet_codec``), with row groups of about 64 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import progress
from transforms.backfill import RemoveStaleShards
from transforms.records import (
    ERRORS,
    ERRORS_SCHEMA,
    NAMESPACE,
    TAGS_SCHEMA,
    Element,
    to_error_row,
)

CODECS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")
# About 64k tags rows per row group: large enough for fast scans in DuckDB/BigQuery/Spark,
# small enough that a worker buffers one at a time.
ROW_GROUP_BYTES = 64 * 1024 * 1024


class SplitFailures(beam.DoFn):
    """Main output: finished elements as rows (``to_row``); ERRORS: elements that failed."""

    def __init__(self, to_row: Callable[[Element], dict]):
        self._to_row = to_row

    def process(self, element: Element) -> Iterable:
        if "error" in element:
            yield beam.pvalue.TaggedOutput(ERRORS, element)
        else:
            yield self._to_row(element)


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
        if "carried_over" in row:  # not a new result of this run
            yield {k: v for k, v in row.items() if k != "carried_over"}
            return
        Metrics.counter(NAMESPACE, "tagged").inc()
        progress.record("tagged")
        yield row

    def finish_bundle(self) -> None:
        progress.flush()


def remove_leftover_temp(output: str) -> int:
    """Delete the ``beam-temp-*`` files (and local directories) a killed run left in ``output``
    (Beam's file sinks write there and rename on success). Runs at launch, so one run per output
    at a time. Returns how many files were removed."""
    import logging

    log = logging.getLogger(__name__)
    pattern = FileSystems.join(output.rstrip("/"), "beam-temp-*")
    try:
        files = [m.path for m in FileSystems.match([pattern + "/*"])[0].metadata_list]
    except Exception:  # noqa: BLE001 - nothing matched, or a new output
        return 0
    removed = 0
    for path in files:
        try:
            FileSystems.delete([path])
            removed += 1
        except Exception as exc:  # noqa: BLE001 - best effort: a leftover never fails a run
            log.warning("cannot remove leftover %s: %s", path, exc)
    if "://" not in output:  # local directories outlive their files
        import glob
        import shutil

        for directory in glob.glob(pattern):
            shutil.rmtree(directory, ignore_errors=True)
    if removed:
        log.info("removed %d leftover beam-temp files from %s", removed, output)
    return removed


class WriteOutputs(beam.PTransform):
    """(rows, error elements[, carried-over rows]) -> OUTPUT/<table>-*.parquet and
    OUTPUT/errors-*.parquet; shard files of an earlier run that are not rewritten are removed."""

    def __init__(self, output: str, num_shards: int = 0, table: str = "tags", schema=TAGS_SCHEMA,
                 codec: str = "zstd"):
        super().__init__()
        if codec not in CODECS:
            raise ValueError(f"unknown Parquet codec {codec!r}; choose from {CODECS}")
        self._codec = codec
        self._output = output.rstrip("/")
        self._num_shards = num_shards
        self._table = table
        self._schema = schema

    def expand(self, pcolls):
        remove_leftover_temp(self._output)
        rows, errors, *carried = pcolls
        if carried:  # rows an earlier run already wrote to this partition, kept as they are
            rows = (rows, carried[0]) | "WithCarriedOver" >> beam.Flatten()
        tags = (
            rows
            | "CountTagged" >> beam.ParDo(_CountTagged())
            | "WriteRows" >> beam.io.WriteToParquet(
                FileSystems.join(self._output, self._table),
                self._schema,
                file_name_suffix=".parquet",
                num_shards=self._num_shards,
                codec=self._codec,
                row_group_buffer_size=ROW_GROUP_BYTES,
            )
        )
        errs = (
            errors
            | "CountErrors" >> beam.ParDo(_CountErrors())
            | "WriteErrors" >> beam.io.WriteToParquet(
                FileSystems.join(self._output, ERRORS),
                ERRORS_SCHEMA,
                file_name_suffix=".parquet",
                num_shards=self._num_shards,
                codec=self._codec,
                row_group_buffer_size=ROW_GROUP_BYTES,
            )
        )
        for name, table, written in ((self._table, self._table, tags), ("Errors", ERRORS, errs)):
            _ = (
                written
                | f"AllFinal{name.title()}" >> beam.combiners.ToList()
                | f"RemoveStale{name.title()}" >> beam.ParDo(RemoveStaleShards(self._output, table, self._num_shards))
            )
        return tags, errs
