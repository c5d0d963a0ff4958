"""Composition of the jobs: read -> fetch -> decode -> backbone -> tagger -> detect -> zero-shot
-> expand -> write.

Only wiring lives here; every stage is its own module under transforms/.
"""

from __future__ import annotations

import functools

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference

from pipeline import options as opt
from transforms import progress
from transforms.backfill import SkipExisting, existing_rows
from transforms.decode import DecodeBatch
from transforms.detect import DetectorHandler
from transforms.expand import ExpansionHandler
from transforms.fetch import FetchBatch
from transforms.read import ReadUris
from transforms.records import Element, to_tags_row
from transforms.write import ERRORS, SplitFailures, WriteOutputs
from transforms.zero_shot import ZeroShotHandler

PIXEL_FIELDS = ("image", "features", "imagenet_probs", "label_scores")


def _count_input(element: Element) -> Element:
    Metrics.counter("image_tagger", "inputs").inc()
    progress.record("inputs")
    return element


def _drop_pixels(element: Element) -> Element:
    """After the last vision model, images and feature arrays are dead weight: drop them."""
    return {k: v for k, v in element.items() if k not in PIXEL_FIELDS}


def fetch_and_decode(elements, o: opt.ImageOptions) -> tuple:
    """elements -> (decoded elements with ``image``, [dead-letter PCollections])."""
    counted = elements | "CountInputs" >> beam.Map(_count_input)
    fetched = (
        counted
        | "BatchFetch" >> beam.BatchElements(min_batch_size=1, max_batch_size=o.fetch_batch_size)
        | "Fetch" >> beam.ParDo(FetchBatch(opt.http_config(o), o.fetch_threads)).with_outputs(ERRORS, main="ok")
    )
    decoded = fetched.ok | "Decode" >> beam.ParDo(DecodeBatch(opt.decode_config(o), o.decode_threads)).with_outputs(
        ERRORS, main="ok"
    )
    return decoded.ok, [fetched[ERRORS], decoded[ERRORS]]


def model_handlers(o: opt.TagOptions, num_workers: int = 1) -> dict:
    """The model stages of the tag job, in order, keyed by stage name."""
    handlers = {
        "backbone": opt.backbone_handler(o, num_workers),
        "tagger": opt.tagger_handler(o, num_workers),
    }
    if o.detector != "none":
        handlers["detector"] = DetectorHandler(
            opt.detector_config(o, num_workers), max_batch_size=o.detector_batch_size
        )
    if o.vocabulary:
        handlers["zero_shot"] = ZeroShotHandler(opt.zero_shot_config(o))
    if o.expansion_per_tag > 0:
        handlers["expansion"] = ExpansionHandler(opt.expansion_config(o))
    return handlers


def model_version(handlers: dict) -> str:
    return ";".join(f"{name}={h.model_version()}" for name, h in handlers.items())


def run_models(stream, handlers: dict, drop_before: str | None = None):
    """Apply the handlers in order with RunInference; drop pixels before ``drop_before``."""
    for name, handler in handlers.items():
        if name == drop_before:
            stream = stream | "DropPixels" >> beam.Map(_drop_pixels)
        stream = stream | f"Model.{name}" >> RunInference(handler)
    if drop_before not in handlers:
        stream = stream | "DropPixels" >> beam.Map(_drop_pixels)
    return stream


def tag_images(pipeline: beam.Pipeline, o: opt.TagOptions, num_workers: int = 1):
    """Build the tag job on ``pipeline``; returns the write results (tags, errors)."""
    handlers = model_handlers(o, num_workers)
    elements = pipeline | "Read" >> ReadUris(o.input)
    carried = []
    if o.skip_existing:
        # Earlier partitions and this one: never tag an image twice, keep what this partition has.
        this_partition = FileSystems.join(o.output.rstrip("/"), "tags-*.parquet")
        elements = elements | "SkipExisting" >> SkipExisting([o.skip_existing, this_partition])
        carried = [existing_rows(pipeline, o.output)]
    decoded, dead = fetch_and_decode(elements, o)
    stream = run_models(decoded, handlers, drop_before="expansion")
    to_row = functools.partial(to_tags_row, model_version=model_version(handlers))
    split = stream | "Split" >> beam.ParDo(SplitFailures(to_row)).with_outputs(
        ERRORS, main="rows"
    )
    errors = (*dead, split[ERRORS]) | "AllErrors" >> beam.Flatten()
    return (split.rows, errors, *carried) | "Write" >> WriteOutputs(o.output, o.num_shards, codec=o.parquet_codec)
