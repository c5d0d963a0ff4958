"""The tagger stage's Beam ModelHandler (its declaration and model code: transforms/stages/tagger.py)."""

from __future__ import annotations

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.knowledge.calibration import ScoringFlags
from transforms.stages.tagger import SOURCE, ImageNetTagTable, TaggerConfig, TaggerFlags, table_fingerprint
from transforms.stages.taggernet import adds_to_embedded


class ImageNetTaggerHandler(ElementModelHandler):
    """RunInference handler: ``imagenet_probs`` -> ``tags`` via the everyday tag table."""

    stage_name = SOURCE

    def load_model(self) -> ImageNetTagTable:
        return ImageNetTagTable.embedded()

    def infer(self, batch: list[Element], model: ImageNetTagTable) -> list[Element]:
        if any("imagenet_probs" not in e for e in batch):
            raise ValueError("the imagenet tagger needs a backbone with an ImageNet head")
        tags = model.decode(np.stack([e["imagenet_probs"] for e in batch]), self._config.calibration,
                            self._config.top_k, self._config.min_score)
        return [with_fields(e, tags=t) for e, t in zip(batch, tags, strict=True)]

    def model_version(self) -> str:
        return f"imagenet_hierarchy@{table_fingerprint()}"


def build(o, num_workers: int = 1):
    """The trained TaggerNet when --tagger_model is given, else the embedded ImageNet tagger."""
    flags, scoring = TaggerFlags.from_options(o), ScoringFlags.from_options(o)
    if flags.tagger_model and not adds_to_embedded(flags.tagger_model):
        from transforms.handlers.taggernet import MLPTaggerHandler, mlp_tagger_config

        return MLPTaggerHandler(mlp_tagger_config(o, num_workers))
    return ImageNetTaggerHandler(TaggerConfig(flags.top_k, scoring.min_score, scoring.calibration))
