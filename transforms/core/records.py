"""Record shapes shared by every stage: the element, the output schemas, dead letters, names.

Elements travel through the pipeline as dicts typed by ``Element`` (a TypedDict: checked by
mypy, and at run time a plain dict, as cheap to pickle as before; a dataclass would cost more
on the hot path, see docs/ARCHITECTURE.md). An element that failed carries an ``error`` entry;
later stages pass it through untouched and the write stage routes it to the dead-letter
table, so no input is ever dropped. The tags table's base columns are here; stages add theirs
through the registry (transforms/core/registry.py).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any, TypedDict, cast

import pyarrow as pa

NAMESPACE = "image_tagger"  # Beam metrics; model stages use NAMESPACE.<stage>
ERRORS = "errors"  # the dead-letter output of every DoFn, and the dead-letter table's name


# Parquet compressions the writer offers (--parquet_codec)
CODECS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")


class Element(TypedDict, total=False):
    """What travels between stages. Ingest fills the first block; each model stage declares the
    fields it reads and writes in its registration (transforms/core/registry.py)."""

    uri: str
    image_id: str
    attempts: int
    data: bytes  # fetched bytes (dropped after the last stage that reads them)
    image: Any  # PIL.Image, RGB at the working size
    width: int
    height: int
    features: Any  # np.ndarray [D]
    imagenet_probs: Any  # np.ndarray [1000]
    backbone_path: str  # the numeric path that computed features and probabilities (provenance)
    label_scores: Any  # np.ndarray [labels] (TaggerNet)
    tags: list[dict[str, Any]]  # TAG_STRUCT: name, score, source, origin (sources: on write)
    likely: list[dict[str, Any]]  # words held likely but not written: contradiction evidence, never written
    objects: list[dict[str, Any]]  # OBJECT_STRUCT: label, score, box
    content_sha256: str
    phash: int
    embedding: Any  # np.ndarray [D] float16
    labels: list[str]  # feature job
    split: str  # feature job
    error: dict[str, Any]  # stage, error_type, error_message, attempts


def with_fields(element: Element, **fields: Any) -> Element:
    """A copy of ``element`` with ``fields`` set (how every stage adds what it writes)."""
    return cast(Element, {**element, **fields})



def described(name: str, kind: pa.DataType, description: str) -> pa.Field:
    """A column with its description in the field metadata (shown by pyarrow, Spark, DuckDB's
    parquet_schema and other tools that read Parquet field metadata)."""
    return pa.field(name, kind, metadata={"description": description})


PROCESSED_AT = described("processed_at", pa.timestamp("us", tz="UTC"), "When the row was written (UTC).")
URI = described("uri", pa.string(), "The input as given: a local path, gs:// object or http(s):// URL.")
IMAGE_ID = described("image_id", pa.string(), "First 128 bits of sha256 of the uri, hex: the row's key.")

TAG_STRUCT = pa.struct(
    [
        described("name", pa.string(), "The tag word."),
        described("score", pa.float32(), "Its calibrated chance of being right (0-1)."),
        described("source", pa.string(), "The stage that wrote it with this score (its tag source)."),
        described("origin", pa.string(), "For expansion and zero-shot words, the tag they came from."),
        described("sources", pa.list_(pa.string()), "Every stage that wrote this word for the image."),
    ]
)

OBJECT_STRUCT = pa.struct(
    [
        described("label", pa.string(), "The detector's COCO label."),
        described("score", pa.float32(), "Its calibrated chance of being right (0-1)."),
        described("box", pa.list_(pa.float32()), "x0, y0, x1, y1 as fractions of the image's width and height."),
    ]
)

TAGS_SCHEMA = pa.schema(
    [
        URI,
        IMAGE_ID,
        described("width", pa.int32(), "Width of the image as displayed (after EXIF orientation), pixels."),
        described("height", pa.int32(), "Height of the image as displayed, pixels."),
        described("tags", pa.list_(TAG_STRUCT), "Tags with scores, best first within each source."),
        described("objects", pa.list_(OBJECT_STRUCT), "Detected objects with boxes."),
        described("model_version", pa.string(), "Every enabled stage's model version and the calibration's "
                  "hash, ';'-separated."),
        PROCESSED_AT,
    ]
)

ERRORS_SCHEMA = pa.schema(
    [
        URI,
        IMAGE_ID,
        described("stage", pa.string(), "Where the input failed: read, fetch, decode or a model stage."),
        described("error_type", pa.string(), "A stable short code (http_404, timeout, too_large, "
                  "unsupported_format...)."),
        described("error_message", pa.string(), "What went wrong, for a person."),
        described("attempts", pa.int32(), "Fetch attempts made."),
        PROCESSED_AT,
    ]
)


FEATURES_SCHEMA = pa.schema(
    [
        IMAGE_ID,
        URI,
        described("features", pa.list_(pa.float32()), "The backbone's pooled features of the image."),
        described("labels", pa.list_(pa.string()), "The dataset's labels of the image."),
        described("split", pa.string(), "train, val or test, fixed by the image's content."),
        described("backbone", pa.string(), "The backbone's version string."),
        # the same picture in two splits is warned about
        described("content_sha256", pa.string(), "sha256 of the image's bytes, hex."),
    ]
)


def image_id_for(uri: str) -> str:
    """Stable id of an input: the first 128 bits of sha256(uri), hex."""
    return hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def new_element(uri: str) -> Element:
    return {"uri": uri, "image_id": image_id_for(uri)}


class StageError(Exception):
    """A failure with a stable short ``error_type`` code, raised by stage helpers."""

    def __init__(self, error_type: str, message: str, attempts: int = 1):
        super().__init__(message)
        self.error_type = error_type
        self.attempts = attempts


def mark_failed(
    element: Element, stage: str, error_type: str, message: str, attempts: int | None = None
) -> Element:
    """Attach an error to an element, dropping heavy payloads it no longer needs.

    ``attempts`` defaults to the fetch attempts the element already records (else 1)."""
    out: Element = {"uri": element["uri"], "image_id": element["image_id"]}
    out["error"] = {
        "stage": stage,
        "error_type": error_type,
        "error_message": message[:2000],
        "attempts": attempts if attempts is not None else int(element.get("attempts", 1)),
    }
    return out


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def merge_sources(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per word (case-insensitive), so counts are by image: the best-scoring entry
    (its ``source`` and ``origin``), with ``sources`` listing every source that wrote the word,
    best first. Words keep the order in which they first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in tags:
        groups.setdefault(t["name"].lower(), []).append(t)
    merged = []
    for entries in groups.values():
        ranked = sorted(entries, key=lambda t: -t["score"])  # stable: ties keep source order
        sources = list(dict.fromkeys(s for t in ranked for s in (t.get("sources") or [t["source"]])))
        merged.append({**ranked[0], "sources": sources})
    return merged


def sources_of(tag: dict[str, Any]) -> list[str]:
    """Every source that wrote a tag (rows written before ``sources`` existed: its ``source``)."""
    return list(tag.get("sources") or [tag["source"]])


def to_tags_row(element: Element, model_version: str, columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tags-table row: the base columns, then each stage column (null when its stage was off)."""
    row: dict[str, Any] = {
        "uri": element["uri"],
        "image_id": element["image_id"],
        "width": int(element["width"]),
        "height": int(element["height"]),
        "tags": merge_sources(element.get("tags", [])),
        "objects": element.get("objects", []),
        "model_version": model_version,
        "processed_at": now_utc(),
    }
    for name in columns:
        row[name] = element.get(name)
    return row





def to_error_row(element: Element) -> dict[str, Any]:
    err = element["error"]
    return {
        "uri": element["uri"],
        "image_id": element["image_id"],
        "stage": err["stage"],
        "error_type": err["error_type"],
        "error_message": err["error_message"],
        "attempts": int(err.get("attempts", 1)),
        "processed_at": now_utc(),
    }


def to_feature_row(element: Element, backbone: str) -> dict[str, Any]:
    return {
        "image_id": element["image_id"],
        "uri": element["uri"],
        "features": element["features"].astype("float32").tolist(),
        "labels": list(element.get("labels", [])),
        "split": element.get("split", "train"),
        "backbone": backbone,
        "content_sha256": element.get("content_sha256"),
    }
