"""The embedding stage's Beam ModelHandler (its declaration and model code: transforms/stages/embedding.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.embedding import EmbeddingFlags


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


def build(o: Any, num_workers: int = 1) -> EmbeddingHandler | None:
    return EmbeddingHandler(None) if EmbeddingFlags.from_options(o).embeddings else None
