"""The worn stage's Beam ModelHandler (its declaration and rule: transforms/stages/worn.py)."""

from __future__ import annotations

from typing import Any

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.worn import SOURCE, WornFlags, worn_tags


class WornHandler(ElementModelHandler):
    """RunInference handler: appends the worn words at each image's person chance to ``tags``."""

    stage_name = SOURCE
    batch_sizes = (8, 64)

    def load_model(self) -> None:
        return None  # nothing to load: a rule over the tags already written

    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        return [with_fields(e, tags=[*(e.get("tags") or []), *worn_tags(e.get("tags") or [], self._config)]) for e in batch]

    def model_version(self) -> str:
        return f"worn:{','.join(self._config)}"


def build(o: Any, num_workers: int = 1) -> WornHandler | None:
    words = WornFlags.from_options(o).words()
    return WornHandler(words) if words else None
