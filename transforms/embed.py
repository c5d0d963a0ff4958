"""Embedding stage (``--embeddings``): each image's backbone embedding on its tags row.

The backbone already computed it for tagging; writing it L2-normalised as float16 (2.5 KB per
image for EfficientNet-Lite0's 1280 dimensions) lets users search by similarity (a dot product
is the cosine) and train downstream models without running the backbone twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from transforms.model_handler import ElementModelHandler
from transforms.records import Element, with_fields
from transforms.stage import Column, Stage, register


class EmbeddingHandler(ElementModelHandler):
    """RunInference handler: ``features`` -> ``embedding`` (unit length, float16)."""

    stage_name = "embedding"
    batch_sizes = (8, 64)

    def load_model(self) -> None:
        return None

    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        feats = np.stack([e["features"] for e in batch]).astype(np.float32)
        unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        return [with_fields(e, embedding=row.astype(np.float16)) for e, row in zip(batch, unit, strict=True)]

    def model_version(self) -> str:
        return "l2-float16"


def add_options(group) -> None:
    group.add_argument("--embeddings", action="store_true", default=False,
                       help="Write each image's L2-normalised backbone embedding (float16) to the "
                       "tags table's 'embedding' column.")


def build(o: Any, num_workers: int = 1) -> EmbeddingHandler | None:
    return EmbeddingHandler(None) if o.embeddings else None


STAGE = register(Stage(
    name="embedding", reads=("features",), writes=("embedding",), options=add_options,
    build=build, bench_batch=64,
    columns=(Column("embedding", pa.list_(pa.float16()),
                    "L2-normalised backbone embedding, float16 (with --embeddings, else null)"),),
))
