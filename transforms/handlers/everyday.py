"""The everyday stage's Beam ModelHandler (its declaration: transforms/stages/everyday.py)."""

from __future__ import annotations

import logging
from typing import Any

from transforms.core.records import Element, with_fields
from transforms.handlers.learned import LearnedTaggerHandler
from transforms.handlers.taggernet import mlp_tagger_config
from transforms.stages.detector import unseen_person
from transforms.stages.everyday import EMBEDDED, SOURCE, EverydayFlags, class_mass, support_floors
from transforms.stages.tagger import ImageNetTagTable
from transforms.stages.taggernet import LoadedTagger, read_config


class EverydayHandler(LearnedTaggerHandler):
    """The learned handler over the everyday head: its words, source ``everyday``, each word
    that names ImageNet classes kept (written, or likely for the contradiction check) only where
    they hold its support floor."""

    stage_name = SOURCE

    def load_model(self) -> LoadedTagger:
        model = super().load_model()
        table = ImageNetTagTable.embedded()
        model.support = {word: (table.classes_of(word), floor) for word, floor in support_floors(model.config).items()}
        return model

    def infer(self, batch: list[Element], model: LoadedTagger) -> list[Element]:
        out = []
        for before, e in zip(batch, super().infer(batch, model), strict=True):
            probs, boxes = before.get("imagenet_probs"), before.get("objects")
            held = [t for t in e["tags"] if self._held(t, probs, model, boxes)]
            out.append(with_fields(e, tags=held, likely=[t for t in e.get("likely") or [] if self._held(t, probs, model, boxes)]))
        return out

    def _held(self, tag: dict, probs: Any, model: LoadedTagger, boxes: list[dict] | None) -> bool:
        """Whether a tag stands: another source's, or a word without a support floor, or one
        whose ImageNet classes hold their floor; a person word where the detector ran, only with a
        person box or when sure (detector.unseen_person)."""
        if tag["source"] != self.stage_name:
            return True
        if boxes is not None and unseen_person(tag, boxes):
            return False
        if tag["name"] not in model.support:
            return True
        classes, floor = model.support[tag["name"]]
        return probs is not None and class_mass(probs, classes) >= floor


def build(o: Any, num_workers: int = 1) -> EverydayHandler | None:
    flags = EverydayFlags.from_options(o)
    model_dir = flags.model_dir()
    if model_dir is None:
        return None
    config = mlp_tagger_config(o, num_workers, model_dir)
    if flags.everyday_model == EMBEDDED and read_config(model_dir).get("backbone") != config.backbone:
        logging.getLogger("image_tagger").warning(
            "the embedded everyday head was learned on another backbone's features; no everyday words this run "
            "(learn one for this backbone with python -m pipeline.quality.everyday)")
        return None
    return EverydayHandler(config)
