"""The detector stage's Beam ModelHandler (its declaration and model code: transforms/stages/detector.py)."""

from __future__ import annotations

from typing import Any

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.detector import (
    DETECTORS,
    SOURCE,
    SPECS,
    DetectorFlags,
    TorchvisionDetector,
    Yolox,
    assess,
    detector_config,
    merge_detections,
)


class DetectorHandler(ElementModelHandler):
    """RunInference handler: fills ``objects`` and merges detected labels into ``tags``."""

    stage_name = SOURCE

    batch_sizes = (1, 8)

    def load_model(self) -> Any:
        spec = SPECS.get(self._config.name)
        if spec is None:
            raise ValueError(f"unknown detector {self._config.name!r}; choose from {DETECTORS}")
        return Yolox(self._config) if spec.runtime == "onnx" else TorchvisionDetector(self._config)

    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        detections = model([e["image"] for e in batch])
        out = []
        for e, objs in zip(batch, detections, strict=True):
            tags = e.get("tags", [])
            objs = assess(objs, tags, self._config, e.get("imagenet_probs"))
            out.append(with_fields(e, objects=objs, tags=merge_detections(tags, objs)))
        return out

    def model_version(self) -> str:
        return self._config.version()


def build(o, num_workers: int = 1) -> DetectorHandler | None:
    flags = DetectorFlags.from_options(o)
    if flags.detector == "none":
        return None
    size = max(1, flags.detector_batch_size)  # at least 2 images per batch keep both cores busy
    return DetectorHandler(detector_config(o, num_workers), min_batch_size=max(1, size // 2), max_batch_size=size)
