"""The learned stage's Beam ModelHandler (its declaration: transforms/stages/learned.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from transforms.core.records import Element, with_fields
from transforms.handlers.taggernet import MLPTaggerHandler
from transforms.knowledge.calibration import Platt, ScoringFlags
from transforms.stages.backbone import backbone_config
from transforms.stages.tagger import TaggerFlags
from transforms.stages.taggernet import LoadedTagger, MLPTaggerConfig, adds_to_embedded, predict_scores


class LearnedTaggerHandler(MLPTaggerHandler):
    """RunInference handler: ``features`` -> the learned words whose calibrated chance reaches
    ``--min_score`` and the model's precision-first floor (its config's thresholds), added to
    the tags already written (a word already there is kept as it is)."""

    stage_name = "learned"

    def infer(self, batch: list[Element], model: LoadedTagger) -> list[Element]:
        fit = model.config.get("calibration") or {}
        scores = Platt(fit.get("a", 1.0), fit.get("b", 0.0))(predict_scores(model.net, np.stack([e["features"] for e in batch])))
        vocab = model.config["vocabulary"]
        floors = np.maximum(model.thresholds, self._config.min_score)
        out = []
        for e, row in zip(batch, scores, strict=True):
            have = {t["name"] for t in e.get("tags") or []}
            new = [{"name": vocab[j], "score": float(row[j]), "source": "learned", "origin": None}
                   for j in np.argsort(-row)[: self._config.top_k]
                   if row[j] >= floors[j] and vocab[j] not in have]
            out.append(with_fields(e, tags=[*(e.get("tags") or []), *new]))
        return out

    def model_version(self) -> str:
        return f"learned@{self._config.model_dir}"


def build(o: Any, num_workers: int = 1) -> LearnedTaggerHandler | None:
    flags = TaggerFlags.from_options(o)
    if not adds_to_embedded(flags.tagger_model):
        return None
    assert flags.tagger_model
    backbone = backbone_config(o)
    return LearnedTaggerHandler(MLPTaggerConfig(flags.tagger_model, backbone.version(), flags.top_k, num_workers,
                                                backbone.torch_threads, ScoringFlags.from_options(o).min_score))
