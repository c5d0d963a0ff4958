"""The zero_shot stage's Beam ModelHandler (its declaration and model code: transforms/stages/zero_shot.py)."""

from __future__ import annotations

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.zero_shot import SOURCE, ZeroShotConfig, ZeroShotModel, resolve_method


class ZeroShotHandler(ElementModelHandler):
    """RunInference handler: appends the top zero-shot tags from ``--vocabulary`` to ``tags``."""

    stage_name = SOURCE

    def load_model(self) -> ZeroShotModel:
        return ZeroShotModel(self._config)

    def infer(self, batch: list[Element], model: ZeroShotModel) -> list[Element]:
        scores = model.scores(batch, self._config.top_t)
        k = min(self._config.top_k, scores.shape[1])
        top = np.argsort(-scores, axis=1)[:, :k]
        out = []
        for e, row, idx in zip(batch, scores, top, strict=True):
            # The user asked which of *their* words apply: each is answered, even when another
            # source already wrote the same word.
            extra = [
                {"name": model.words[j], "score": float(row[j]), "source": SOURCE, "origin": None}
                for j in idx
                if row[j] >= self._config.min_score
            ]
            out.append(with_fields(e, tags=e.get("tags", []) + extra))
        return out

    def model_version(self) -> str:
        c = self._config
        return f"{resolve_method(c)}@{c.vocabulary}"


def build(o, num_workers: int = 1) -> ZeroShotHandler | None:
    config = ZeroShotConfig.from_options(o)
    return None if config is None else ZeroShotHandler(config)
