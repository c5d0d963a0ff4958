"""Incremental, idempotent backfills: skip what earlier runs tagged, carry their open dead letters.

- ``SkipExisting(files)``: an anti-join (CoGroupByKey on image_id, so it scales on any runner and
  no id list is held on one machine) that drops inputs whose image_id already has a row in the
  committed tags files of the output (every partition). Dead letters are not skipped: failed
  images are retried by later runs.
- ``CarryErrors(files)``: the earlier dead letters of this partition whose inputs this run does
  not retry, so the run's commit can replace the earlier error files without losing one.

Both read only files named in the output's run manifests (transforms/output/runs.py), never a glob.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.core.records import NAMESPACE
from transforms.output import runs


def _read_files(pipeline: beam.Pipeline, label: str, files: list[str], columns: list[str] | None = None):
    """Rows of exactly these files (a missing one fails the run: Beam's ReadAllFromParquet would
    match it as an empty pattern and silently read nothing)."""
    if not files:
        return pipeline | f"No{label}" >> beam.Create([])
    return (
        pipeline
        | f"{label}Files" >> beam.Create(files)
        | f"Read{label}" >> beam.FlatMap(runs.iter_file_rows, columns)
    )


def _without(keep, drop, label: str, counter: str = ""):
    """The values of ``keep`` ((key, value) pairs) whose key has no pair in ``drop``: a scalable
    anti-join (CoGroupByKey), counting what it drops in ``counter`` when given."""
    return (
        {"keep": keep, "drop": drop}
        | f"{label}Join" >> beam.CoGroupByKey()
        | f"{label}Kept" >> beam.FlatMap(_kept, counter)
    )


def _kept(item, counter: str) -> Iterable:
    _, groups = item
    values = list(groups["keep"])
    if any(True for _ in groups["drop"]):
        if counter:
            Metrics.counter(NAMESPACE, counter).inc(len(values))
        return []
    return values


class SkipExisting(beam.PTransform):
    """elements -> elements whose image_id has no row in the tags ``files``."""

    def __init__(self, files: list[str]):
        super().__init__()
        self._files = list(files)

    def expand(self, elements):
        keyed = elements | "KeyNew" >> beam.Map(lambda e: (e["image_id"], e))
        done = (
            _read_files(elements.pipeline, "Done", self._files, ["image_id"])
            | "KeyDone" >> beam.Map(lambda r: (r["image_id"], None))
        )
        return _without(keyed, done, "AntiJoin", counter="skipped_existing")


class CarryErrors(beam.PTransform):
    """this run's inputs -> the error rows in ``files`` whose image_id is not among them."""

    def __init__(self, files: list[str]):
        super().__init__()
        self._files = list(files)

    def expand(self, elements):
        inputs = elements | "KeyInputs" >> beam.Map(lambda e: (e["image_id"], None))
        earlier = (
            _read_files(elements.pipeline, "EarlierErrors", self._files)
            | "KeyEarlier" >> beam.Map(lambda r: (r["image_id"], r))
        )
        return _without(earlier, inputs, "NotRetried")


REUSED = "reused"  # ReuseByContent's second output: rows copied from an earlier run


class ReuseByContent(beam.PTransform):
    """elements with ``content_sha256`` -> (elements whose bytes no earlier tags row has, rows
    copied from an earlier row of the same bytes under the element's own uri and image_id).

    ``--skip_existing_key content``: a moved or copied archive is fetched again (its bytes are
    the key) but never re-tagged; the copy's rows say what the earlier run found. A join by key
    (CoGroupByKey), like SkipExisting; failed elements (no content hash) pass through."""

    def __init__(self, files: list[str], names: tuple[str, ...]):
        super().__init__()
        self._files, self._names = list(files), tuple(names)

    def expand(self, elements):
        hashed = elements | "Hashed" >> beam.Partition(lambda e, _: 0 if e.get("content_sha256") else 1, 2)
        keyed = hashed[0] | "KeyByContent" >> beam.Map(lambda e: (e["content_sha256"], e))
        earlier = (
            _read_files(elements.pipeline, "Tagged", self._files)
            | "WithContent" >> beam.Filter(lambda r: bool(r.get("content_sha256")))
            | "KeyTagged" >> beam.Map(lambda r: (r["content_sha256"], r))
        )
        joined = (
            {"new": keyed, "old": earlier}
            | "ContentJoin" >> beam.CoGroupByKey()
            | "Reuse" >> beam.ParDo(_Reuse(self._names)).with_outputs(REUSED, main="fresh")
        )
        fresh = (joined.fresh, hashed[1]) | "Fresh" >> beam.Flatten()
        return fresh, joined[REUSED]


class _Reuse(beam.DoFn):
    def __init__(self, names: tuple[str, ...]):
        self._names = names
        self._reused = Metrics.counter(NAMESPACE, "reused_by_content")

    def process(self, item):
        from transforms.core.records import now_utc

        _, groups = item
        new, old = list(groups["new"]), list(groups["old"])
        if not old:
            yield from new
            return
        source = max(old, key=lambda r: r.get("processed_at") or now_utc())  # the latest result
        for e in new:
            self._reused.inc()
            row = {name: source.get(name) for name in self._names}
            yield beam.pvalue.TaggedOutput(REUSED, {**row, "uri": e["uri"], "image_id": e["image_id"],
                                                    "processed_at": now_utc()})


def present_ids(files: list[str], ids: Iterable[str], batch_rows: int = 1 << 16) -> set[str]:
    """Which of ``ids`` have a row in ``files``: the image_id column only, batch by batch, matched
    with pyarrow's ``is_in``. Memory is bounded by ``ids`` and one batch, however many rows the
    files hold (the local runner's shards, pipeline/shards.py; SkipExisting is the distributed join)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = pa.array(sorted(set(ids)), pa.string())
    found: set[str] = set()
    if not len(wanted):
        return found
    for path in files:
        for batch in runs.iter_file_batches(path, ["image_id"], batch_rows):
            column = batch.column(0)
            found.update(pc.filter(column, pc.is_in(column, value_set=wanted)).to_pylist())
    return found
