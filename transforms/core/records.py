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



TAG_STRUCT = pa.struct(
    [
        ("name", pa.string()),
        ("score", pa.float32()),
        ("source", pa.string()),
        ("origin", pa.string()),
        ("sources", pa.list_(pa.string())),
    ]
)

OBJECT_STRUCT = pa.struct(
    [
        ("label", pa.string()),
        ("score", pa.float32()),
        ("box", pa.list_(pa.float32())),
    ]
)

TAGS_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("image_id", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("tags", pa.list_(TAG_STRUCT)),
        ("objects", pa.list_(OBJECT_STRUCT)),
        ("model_version", pa.string()),
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ]
)

ERRORS_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("image_id", pa.string()),
        ("stage", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("attempts", pa.int32()),
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ]
)


FEATURES_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("uri", pa.string()),
        ("features", pa.list_(pa.float32())),
        ("labels", pa.list_(pa.string())),
        ("split", pa.string()),
        ("backbone", pa.string()),
        ("content_sha256", pa.string()),  # the same picture in two splits is warned about
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
