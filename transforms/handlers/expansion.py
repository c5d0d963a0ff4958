"""The expansion stage's Beam ModelHandler (its declaration and model code: transforms/stages/expansion.py)."""

from __future__ import annotations

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import Element, with_fields
from transforms.stages.expansion import (
    EXPANDABLE,
    METHODS,
    SOURCE,
    ExpansionConfig,
    Implied,
    Neighbours,
    expand_tags,
)


class ExpansionHandler(ElementModelHandler):
    """RunInference handler: appends expansion tags (``precise`` or ``nearest``) to ``tags``."""

    stage_name = SOURCE

    def load_model(self) -> Neighbours | Implied:
        if self._config.method not in METHODS:
            raise ValueError(f"unknown expansion method {self._config.method!r}; choose from {METHODS}")
        return Implied(self._config) if self._config.method == "precise" else Neighbours(self._config)

    def infer(self, batch: list[Element], model: Neighbours | Implied) -> list[Element]:
        if isinstance(model, Implied):
            return [
                with_fields(e, tags=expand_tags(e.get("tags", []), model.candidates(e.get("tags", [])), self._config))
                for e in batch
            ]
        names = [t["name"] for e in batch for t in e.get("tags", []) if t["source"] in EXPANDABLE]
        neighbours = model.lookup(names)
        return [with_fields(e, tags=expand_tags(e.get("tags", []), neighbours, self._config)) for e in batch]

    def model_version(self) -> str:
        c = self._config
        if c.method == "nearest":
            return f"nearest,vectors={c.word_vectors}"
        expands = "/".join(s for s in EXPANDABLE if s not in c.decoded_sources)  # which sources' tags it expands
        return f"precise@v2+wordnet3.0+expands:{expands},vectors={c.word_vectors}"


def build(o, num_workers: int = 1) -> ExpansionHandler | None:
    config = ExpansionConfig.from_options(o)
    return ExpansionHandler(config) if config.per_tag > 0 else None
