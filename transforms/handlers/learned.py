"""The learned stage's Beam ModelHandler (its declaration: transforms/stages/learned.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from transforms.core.records import Element, with_fields
from transforms.handlers.taggernet import MLPTaggerHandler, mlp_tagger_config
from transforms.knowledge.contradictions import CONTRADICTS
from transforms.stages.learned import SOURCE
from transforms.stages.tagger import TaggerFlags
from transforms.stages.taggernet import LoadedTagger, adds_to_embedded, calibrated, predict_scores


class LearnedTaggerHandler(MLPTaggerHandler):
    """RunInference handler: ``features`` -> the learned words whose calibrated chance reaches
    ``--min_score`` and the model's precision-first floor (its config's thresholds), added to
    the tags already written. A word another source wrote too is added all the same: the row's
    one merge (records.merge_sources) keeps the stronger score and lists both sources. A word it
    holds likely but below its floor goes to the element's ``likely`` words, for the contradiction
    check alone (transforms/knowledge/contradictions.py)."""

    stage_name = SOURCE

    def infer(self, batch: list[Element], model: LoadedTagger) -> list[Element]:
        assert model.maps is not None, "a learned model"
        scores = calibrated(predict_scores(model.net, np.stack([e["features"] for e in batch])), model.maps)
        vocab = model.config["vocabulary"]
        floors = np.maximum(model.thresholds, self._config.min_score)
        out = []
        for e, row in zip(batch, scores, strict=True):
            new = [self._tag(vocab[j], row[j]) for j in np.argsort(-row)[: self._config.top_k] if row[j] >= floors[j]]
            written = {t["name"] for t in new}
            likely = [self._tag(vocab[j], row[j]) for j in np.flatnonzero(row >= CONTRADICTS) if vocab[j] not in written]
            out.append(with_fields(e, tags=[*(e.get("tags") or []), *new], likely=[*(e.get("likely") or []), *likely]))
        return out

    def _tag(self, name: str, score: float) -> dict:
        return {"name": name, "score": float(score), "source": self.stage_name, "origin": None}

    def model_version(self) -> str:
        return f"learned@{self._config.model_dir}"


def build(o: Any, num_workers: int = 1) -> LearnedTaggerHandler | None:
    if not adds_to_embedded(TaggerFlags.from_options(o).tagger_model):
        return None
    return LearnedTaggerHandler(mlp_tagger_config(o, num_workers))
