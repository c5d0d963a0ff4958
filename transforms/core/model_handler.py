"""The one interface every model stage implements: a Beam ModelHandler over element dicts.

Subclasses implement ``load_model`` and ``infer(batch, model) -> list[Element]``.
This base adds what every stage needs: a batch that raises is retried element by element so
one bad image becomes one failed element (stage "model") instead of failing the batch, and
batch sizes come from options. The graph splits failed elements off right after each stage
(pipeline/graph.py run_stages), so a handler never sees one.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler
from PIL import Image

from transforms.core.kept import kept
from transforms.core.records import Element, mark_failed


def _loaded_once(load):
    """A stage's loader, made to load once per job across its shards (transforms/core/kept.py)."""

    @functools.wraps(load)
    def load_model(self):
        try:
            key = pickle.dumps((type(self).__module__, type(self).__qualname__, self._config))
        except Exception:  # noqa: BLE001 - a configuration that cannot be a key is never reused
            return load(self)
        return kept(key, lambda: load(self))

    return load_model


class ElementModelHandler(ModelHandler[Element, Element, Any]):
    """Base for model stages: element dicts in, enriched element dicts out."""

    stage_name = "model"
    batch_sizes = (1, 64)  # default (min, max) batch of this stage; options may override

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "load_model" in cls.__dict__:  # every stage's loader, reused across a job's shards
            cls.load_model = _loaded_once(cls.__dict__["load_model"])  # type: ignore[method-assign]

    def __init__(self, config: Any, min_batch_size: int | None = None, max_batch_size: int | None = None):
        low, high = self.batch_sizes  # Beam's ModelHandler keeps them for BatchElements
        super().__init__(min_batch_size=min_batch_size or low, max_batch_size=max_batch_size or high)
        self._config = config

    # --- to implement -------------------------------------------------------------
    def infer(self, batch: list[Element], model: Any) -> list[Element]:
        raise NotImplementedError

    # --- ModelHandler -------------------------------------------------------------
    def run_inference(
        self,
        batch: Sequence[Element],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[Element]:
        live = list(batch)
        if not live:
            return live
        try:
            results = self.infer(live, model)
            if len(results) != len(live):  # a handler that loses elements would drop them silently
                raise RuntimeError(f"{len(results)} results for {len(live)} elements")
        except Exception:  # noqa: BLE001 - isolate the culprit below
            results = [self._infer_one(e, model) for e in live]
        return results

    def _infer_one(self, element: Element, model: Any) -> Element:
        try:
            (result,) = self.infer([element], model)
            return result
        except Exception as exc:  # noqa: BLE001 - one bad element, one dead letter
            return mark_failed(
                element, "model", "model_error", f"{self.stage_name}: {type(exc).__name__}: {exc}"
            )

    def get_num_bytes(self, batch: Sequence[Element]) -> int:
        """The batch's payload size for Beam's byte-size metric, from array and image sizes.
        Beam's default pickles the whole batch just to measure it (8.5 ms for 8 decoded images)."""
        total = 0
        for e in batch:
            for value in e.values():
                if hasattr(value, "nbytes"):  # numpy arrays
                    total += int(value.nbytes)
                elif isinstance(value, bytes | str):
                    total += len(value)
                elif isinstance(value, Image.Image):
                    total += value.size[0] * value.size[1] * len(value.getbands())
        return total

    def get_metrics_namespace(self) -> str:
        return f"image_tagger.{self.stage_name}"
