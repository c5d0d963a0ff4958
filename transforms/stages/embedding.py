"""Embedding stage (``--embeddings``): each image's backbone embedding on its tags row.

The backbone already computed it for tagging; writing it L2-normalised as float16 (2.5 KB per
image for EfficientNet-Lite0's 1280 dimensions) lets users search by similarity (a dot product
is the cosine) and train downstream models without running the backbone twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.core.options import Flags, option
from transforms.core.registry import Column, Stage, register


@dataclass(frozen=True)
class EmbeddingFlags(Flags):
    embeddings: bool = option(False, "Write each image's L2-normalised backbone embedding (float16) to the "
                              "tags table's 'embedding' column.")


STAGE = register(Stage(
    name="embedding", reads=("features",), writes=("embedding",), options=EmbeddingFlags,
    build="transforms.handlers.embedding:build", bench_batch=64,
    columns=(Column("embedding", pa.list_(pa.float16()),
                    "L2-normalised backbone embedding, float16 (with --embeddings, else null)"),),
))
