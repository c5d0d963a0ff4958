"""The backbone stage's Beam ModelHandler (its declaration and model code: transforms/stages/backbone.py)."""

from __future__ import annotations

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.backbone import BackboneFlags, Model, backbone_config, center_crop_array, load_backbone


class BackboneHandler(ElementModelHandler):
    """RunInference handler: adds ``features`` and ``imagenet_probs`` to each element."""

    stage_name = "backbone"

    batch_sizes = (4, 8)

    def load_model(self) -> Model:
        return load_backbone(self._config)

    def infer(self, batch: list[Element], model: Model) -> list[Element]:
        pixels = np.stack([center_crop_array(e["image"]) for e in batch])
        feats, probs = model(pixels)
        path = getattr(model, "path", "unknown")
        out = []
        for i, e in enumerate(batch):
            enriched = with_fields(e, features=feats[i], backbone_path=path)
            if probs is not None:
                enriched["imagenet_probs"] = probs[i]
            out.append(enriched)
        return out

    def model_version(self) -> str:
        return self._config.version()


def build(o, num_workers: int = 1) -> BackboneHandler:
    """Batches of half to full --backbone_batch_size: tiny batches waste the vector units."""
    size = max(1, BackboneFlags.from_options(o).backbone_batch_size)
    return BackboneHandler(backbone_config(o, num_workers), min_batch_size=max(1, size // 2), max_batch_size=size)
