"""The review stage's Beam ModelHandler (its declaration: transforms/stages/review.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from transforms.core.artifacts import read_bytes
from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.knowledge import corrections
from transforms.knowledge.corrections import Correction, normalise
from transforms.stages.review import SOURCE, correction_files


def apply(element: Element, decision: Correction | None) -> Element:
    """The element with the decision's rejected tags and boxes gone and its accepted and added
    tags written as reviewed (score 1.0, replacing any other source's tag of that name)."""
    if decision is None:
        return element
    drop = decision.negatives | decision.positives
    tags = [t for t in element.get("tags") or [] if normalise(t["name"]) not in drop]
    tags += [{"name": w, "score": 1.0, "source": SOURCE, "origin": None} for w in sorted(decision.positives)]
    fields: dict[str, Any] = {"tags": tags}
    if "objects" in element:
        fields["objects"] = [o for o in element["objects"] or [] if normalise(o["label"]) not in decision.negatives]
    return with_fields(element, **fields)


class Decisions(dict[str, Correction]):
    """The latest decision per picture (a dict subclass: Beam's Shared holds a weak reference)."""


class ReviewHandler(ElementModelHandler):
    """RunInference handler: applies the latest decision about each picture."""

    stage_name = SOURCE

    def __init__(self, files: list[str]):
        super().__init__(tuple(files))
        digest = hashlib.sha256(b"".join(hashlib.sha256(read_bytes(p)).digest() for p in files))
        self._version = f"corrections@{digest.hexdigest()[:12]}"

    def load_model(self) -> Decisions:
        return Decisions(corrections.read(self._config))

    def infer(self, batch: list[Element], model: Decisions) -> list[Element]:
        return [apply(e, model.get(e.get("content_sha256") or "") or model.get(e["image_id"])) for e in batch]

    def model_version(self) -> str:
        return self._version


def build(o: Any, num_workers: int = 1) -> ReviewHandler | None:
    files = correction_files(o)
    return ReviewHandler(files) if files else None
