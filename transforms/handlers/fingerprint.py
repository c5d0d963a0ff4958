"""The fingerprint stage's Beam ModelHandler (its declaration and model code: transforms/stages/fingerprint.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.fingerprint import phash


class FingerprintHandler(ElementModelHandler):
    """RunInference handler: adds ``content_sha256`` (from ``data``) and ``phash`` (from ``image``)."""

    stage_name = "fingerprint"
    batch_sizes = (8, 64)

    def load_model(self) -> None:
        return None  # nothing to load: hashes and scipy's DCT

    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        return [
            with_fields(e, content_sha256=hashlib.sha256(e["data"]).hexdigest(), phash=phash(e["image"]))
            for e in batch
        ]

    def model_version(self) -> str:
        return "phash-dct64"


def build(o: Any, num_workers: int = 1) -> FingerprintHandler:
    return FingerprintHandler(None)  # always on: two cheap columns every bulk user wants
