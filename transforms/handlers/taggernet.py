"""The taggernet stage's Beam ModelHandler (its declaration and model code: transforms/stages/taggernet.py)."""

from __future__ import annotations

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.core.threads import configure_process, worker_threads
from transforms.stages.tagger import SOURCE as TAGGER
from transforms.stages.taggernet import (
    LoadedTagger,
    MLPTaggerConfig,
    check_backbone,
    load_taggernet,
    predict_scores,
    read_config,
)


class MLPTaggerHandler(ElementModelHandler):
    """RunInference handler: ``features`` -> ``tags`` at or above each tag's validation threshold
    and ``--min_score``."""

    stage_name = TAGGER

    def __init__(self, config: MLPTaggerConfig, min_batch_size: int | None = None, max_batch_size: int | None = None):
        super().__init__(config, min_batch_size, max_batch_size)
        # Refuse a model trained on another backbone at construction, before any worker starts.
        check_backbone(read_config(config.model_dir), config.backbone, config.model_dir)

    def load_model(self) -> LoadedTagger:

        configure_process(worker_threads(self._config.torch_threads, self._config.num_workers), torch_model=True)
        net, config = load_taggernet(self._config.model_dir)
        check_backbone(config, self._config.backbone, self._config.model_dir)
        return LoadedTagger(net, config)

    def infer(self, batch: list[Element], model: LoadedTagger) -> list[Element]:
        scores = predict_scores(model.net, np.stack([e["features"] for e in batch]))
        vocab = model.config["vocabulary"]
        thresholds = np.maximum(model.thresholds, self._config.min_score)
        out = []
        for e, row in zip(batch, scores, strict=True):
            order = np.argsort(-row)[: self._config.top_k]
            tags = [
                {"name": vocab[j], "score": float(row[j]), "source": TAGGER, "origin": None}
                for j in order
                if row[j] >= thresholds[j]
            ]
            out.append(with_fields(e, tags=tags, label_scores=row))
        return out

    def model_version(self) -> str:
        return f"taggernet@{self._config.model_dir}"


def mlp_tagger_config(o, num_workers: int, model_dir: str | None = None) -> MLPTaggerConfig:
    """A --tagger_model's run settings (or ``model_dir``'s): the job's backbone version (checked
    against the model's), --top_k, the backbone's threads and --min_score."""
    from transforms.knowledge.calibration import ScoringFlags
    from transforms.stages.backbone import backbone_config
    from transforms.stages.tagger import TaggerFlags

    flags, backbone = TaggerFlags.from_options(o), backbone_config(o)
    model_dir = model_dir or flags.tagger_model
    assert model_dir, "only called with a model folder"
    return MLPTaggerConfig(model_dir, backbone.version(), flags.top_k, num_workers,
                           backbone.torch_threads, ScoringFlags.from_options(o).min_score)
