"""Composition of the jobs: read -> fetch -> decode -> the registered stages -> write.

Only wiring lives here. The model stages, their order, what they need from the decoder, when
heavy fields are dropped and which columns they add all come from the stage registry
(transforms/core/registry.py, one declaration module per stage under transforms/stages/).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import options as opt
from pipeline.flags import IoFlags, TagJobFlags
from transforms.core import progress
from transforms.core.records import ERRORS, NAMESPACE, Element, to_tags_row
from transforms.core.registry import PIXELS, Stage, columns, enabled, needed_after, own_evidence, tags_schema
from transforms.core.threads import worker_threads
from transforms.ingest.decode import DecodeFlags
from transforms.ingest.decode_batch import DecodeBatch
from transforms.ingest.fetch import FetchWindow
from transforms.ingest.http_client import HttpConfig
from transforms.ingest.read import ReadUris
from transforms.knowledge import calibration
from transforms.knowledge.calibration import ScoringFlags
from transforms.knowledge.contradictions import drop_contradicted
from transforms.output import runs
from transforms.output.backfill import CarryErrors, ReuseByContent, SkipExisting
from transforms.output.write import SplitFailures, WriteOutputs
from transforms.stages.fingerprint import STAGE as FINGERPRINT
from transforms.stages.review import SOURCE as REVIEW

INTERMEDIATE = (*PIXELS, "features", "imagenet_probs", "label_scores")  # never written out


def _count_input(element: Element) -> Element:
    Metrics.counter(NAMESPACE, "inputs").inc()
    progress.record("inputs")
    return element


def _drop(element: Element, fields: frozenset[str]) -> Element:
    return {k: v for k, v in element.items() if k not in fields}  # type: ignore[return-value]


def fetch_and_decode(elements, o, stages: list[Stage] | None = None, num_workers: int = 1) -> tuple:
    """elements -> (decoded elements with ``image``, [dead-letter PCollections])."""
    counted = elements | "CountInputs" >> beam.Map(_count_input)
    window = FetchWindow(HttpConfig.from_options(o), opt.access_policy(o))
    fetched = counted | "Fetch" >> beam.ParDo(window).with_outputs(ERRORS, main="ok")
    threads = DecodeFlags.from_options(o).decode_threads or worker_threads(0, num_workers)
    decode = DecodeBatch(opt.decode_config(o, stages), threads)
    decoded = fetched.ok | "Decode" >> beam.ParDo(decode).with_outputs(ERRORS, main="ok")
    return decoded.ok, [fetched[ERRORS], decoded[ERRORS]]


def model_version(handlers: list[tuple[Stage, Any]], calibration_source: str | None = None) -> str:
    """Every enabled stage's model version, and the score calibration's file hash when scores
    are calibrated (the backbone's numeric path is per row: the backbone_path column)."""
    versions = [f"{stage.name}={handler.model_version()}" for stage, handler in handlers]
    if calibration_source is not None and handlers:
        versions.append(f"calibration={calibration.fingerprint(calibration_source)}")
    return ";".join(versions)


def run_stages(stream, handlers: list[tuple[Stage, Any]], after: dict[str, Callable] | None = None):
    """Each stage with RunInference, in order; its failed elements split off at once (the dead
    letters, as fetch and decode split theirs), and a field dropped as soon as no later stage
    reads it (the fetched bytes after the fingerprint, pixels after the last vision model).
    ``after`` maps a stage's name to a step applied to the stream once that stage has run.
    Returns (the elements every stage finished, [each stage's failed elements])."""
    if not handlers:
        return stream | "Drop" >> beam.Map(_drop, frozenset(INTERMEDIATE)), []
    # Beam's ml package imports torch (seconds): an ingest-only job or a launch refusal never needs it.
    from apache_beam.ml.inference.base import RunInference

    stages = [s for s, _ in handlers]
    dropped: set[str] = set()
    failed = []
    for i, (stage, handler) in enumerate(handlers):
        split = (stream | f"Model.{stage.name}" >> RunInference(handler)
                 | f"Failed.{stage.name}" >> beam.ParDo(SplitFailures()).with_outputs(ERRORS, main="ok"))
        stream = split.ok
        failed.append(split[ERRORS])
        droppable = set(INTERMEDIATE) - needed_after(stages, i) - dropped
        if droppable:
            stream = stream | f"Drop.{stage.name}" >> beam.Map(_drop, frozenset(droppable))
            dropped |= droppable
        if after and stage.name in after:
            stream = after[stage.name](stream)
    return stream, failed


def tag_images(pipeline: beam.Pipeline, o, num_workers: int = 1):
    """Build the tag job on ``pipeline`` for the run ``o.run_manifest`` (pipeline/run_output.py)."""
    io_flags = IoFlags.from_options(o)
    handlers = [] if TagJobFlags.from_options(o).ingest_only else enabled(o, num_workers)
    stages = [s for s, _ in handlers]
    schema = tags_schema()
    shard = getattr(o, "run_shard", None)  # a long local list's shard (pipeline/shards.py), already read
    if shard is None:
        elements = pipeline | "Read" >> ReadUris(io_flags.input, uri_column=io_flags.uri_column)
    else:
        elements = pipeline | "Read" >> beam.Create(shard.elements, reshuffle=False) | "Spread" >> beam.Reshuffle()
    manifest = o.run_manifest
    carried = []
    if manifest.mode == "skip_existing":
        # Never tag an image twice (any partition); keep this partition's open dead letters. A
        # shard's inputs with a row were dropped before the run (pipeline/shards.py).
        carried = [elements | "CarryErrors" >> CarryErrors(runs.paths(io_flags.output, manifest.supersedes))]
        if shard is None:
            elements = elements | "SkipExisting" >> SkipExisting(runs.committed_files(io_flags.output, "tags"))
    decoded, dead = fetch_and_decode(elements, o, stages, num_workers)
    reused: list = []
    after = {}
    if manifest.mode == "skip_existing" and TagJobFlags.from_options(o).skip_existing_key == "content":
        def reuse(stream):  # the same bytes as an earlier row: copy it, run no model on them
            fresh, rows = stream | "ReuseByContent" >> ReuseByContent(runs.committed_files(io_flags.output, "tags"),
                                                                       tuple(schema.names))
            reused.append(rows)
            return fresh
        after[FINGERPRINT.name] = reuse
    stream, failed = run_stages(decoded, handlers, after)
    extra = tuple(c.name for c in columns())
    calibrated = model_version(handlers, ScoringFlags.from_options(o).calibration)
    manifest.lineage["model_version"] = calibrated
    to_row = functools.partial(to_tags_row, model_version=calibrated, columns=extra)
    evidence = own_evidence(stage for stage, _ in handlers)
    finished = (stream | "Contradictions" >> beam.Map(drop_contradicted, keep_sources=(REVIEW,), evidence=evidence)
                | "ToRow" >> beam.Map(to_row))
    errors = (*dead, *failed) | "AllErrors" >> beam.Flatten()
    rows = (finished, *reused) | "AllRows" >> beam.Flatten() if reused else finished
    return (rows, errors, *carried) | "Write" >> WriteOutputs(io_flags.output, manifest, io_flags.num_shards,
                                                                    schema=schema, codec=io_flags.parquet_codec)
