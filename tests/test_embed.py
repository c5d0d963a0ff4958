"""The embedding stage: unit-length float16 backbone embeddings, only with --embeddings."""

from __future__ import annotations

import numpy as np

from pipeline.flags import defaults
from transforms.handlers.embedding import EmbeddingHandler, build


def test_embeddings_are_unit_length_float16():
    rng = np.random.default_rng(0)
    batch = [{"uri": str(i), "image_id": str(i), "features": rng.random(1280, dtype=np.float32) * 7} for i in range(3)]
    out = EmbeddingHandler(None).run_inference(batch, None)
    for e in out:
        assert e["embedding"].dtype == np.float16 and e["embedding"].shape == (1280,)
        assert abs(float(np.linalg.norm(e["embedding"].astype(np.float32))) - 1) < 1e-2
    assert np.allclose(out[0]["embedding"], batch[0]["features"] / np.linalg.norm(batch[0]["features"]), atol=1e-3)


def test_the_stage_is_off_unless_asked_for():
    assert build(defaults(embeddings=False)) is None
    assert isinstance(build(defaults(embeddings=True)), EmbeddingHandler)
