"""The pose stage's Beam ModelHandler (its declaration and rule: transforms/stages/pose.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages import pose
from transforms.stages.pose import COLUMN, SOURCE, PoseConfig


class PoseHandler(ElementModelHandler):
    """RunInference handler: each photo's calibrated person chance, and the rule it decides."""

    stage_name = SOURCE
    batch_sizes = (1, 8)

    def load_model(self) -> Any:
        from transforms.models.pose_files import from_source
        from transforms.models.pose_model import PoseModel

        config: PoseConfig = self._config
        return PoseModel(*from_source(config.source, config.sha256, config.spec), config)

    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        config: PoseConfig = self._config
        platt = config.calibration
        if platt is None:  # build() turns the stage off without its map
            raise ValueError("the pose stage needs its calibration map")
        out = []
        for e, people in zip(batch, model([e["image"] for e in batch]), strict=True):
            scores = np.asarray(people[:, config.spec.person_column], dtype=np.float64)
            chances = platt(scores)
            width, height = e["image"].size
            found = pose.person_boxes(people, chances, width, height, config.min_score, config.spec)
            chance = float(chances.max())
            face = pose.face_share(people[int(np.argmax(scores))], width, height, config.spec)
            tags, objects = pose.decide(e.get("tags") or [], e.get("objects"), scores.tolist(), chance, config, found,
                                        pose.likeness_of(e.get("imagenet_probs")), face)
            fields: dict[str, Any] = {"tags": tags, COLUMN: chance}
            if objects is not None:
                fields["objects"] = objects
            out.append(with_fields(e, **fields))
        return out

    def model_version(self) -> str:
        return self._config.version()


def build(o: Any, num_workers: int = 1) -> PoseHandler | None:
    config = pose.pose_config(o, num_workers)
    return None if config is None else PoseHandler(config, min_batch_size=1, max_batch_size=8)
