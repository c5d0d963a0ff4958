"""Tagger stage: backbone output -> scored tags (source "tagger").

The embedded tagger turns the backbone's ImageNet-1k head into everyday tags: each class
contributes its own name and its group tags (tabby, tiger cat, Persian... -> "cat"), and a
tag's score is the summed probability of its classes, so a group is as likely as its
members together. The table ships as data (transforms/data/imagenet_tags.json).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from transforms.model_handler import ElementModelHandler
from transforms.records import Element


@dataclass(frozen=True)
class TaggerConfig:
    top_k: int = 5
    min_score: float = 0.1


@functools.lru_cache(maxsize=1)
def imagenet_table_data() -> dict:
    """The shipped table: ``classes`` (1000 ImageNet names, in model order) and ``groups``."""
    return json.loads(resources.files("transforms").joinpath("data/imagenet_tags.json").read_text())


class ImageNetTagTable:
    """Dense class->tag membership matrix: tag scores = probs @ matrix (one matmul per batch)."""

    def __init__(self, classes: list[str], groups: dict[str, list[int]]):
        names = sorted(set(classes) | set(groups))
        column = {name: j for j, name in enumerate(names)}
        matrix = np.zeros((len(classes), len(names)), dtype=np.float32)
        for i, name in enumerate(classes):
            matrix[i, column[name]] = 1.0
        for tag, members in groups.items():
            matrix[members, column[tag]] = 1.0
        self.names = names
        self.matrix = matrix

    @classmethod
    def embedded(cls) -> ImageNetTagTable:
        data = imagenet_table_data()
        return cls(data["classes"], {k: list(v) for k, v in data["groups"].items()})

    def scores(self, probs: np.ndarray) -> np.ndarray:
        return np.minimum(probs @ self.matrix, 1.0)


def top_tags(
    scores: np.ndarray, names: list[str], top_k: int, min_score: float, source: str = "tagger"
) -> list[list[dict]]:
    """Per row: the ``top_k`` names scoring at least ``min_score``, best first, as tag structs."""
    k = min(top_k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, cand in zip(scores, idx, strict=False):
        cand = cand[np.argsort(-row[cand], kind="stable")]
        out.append(
            [
                {"name": names[j], "score": float(row[j]), "source": source, "origin": None}
                for j in cand
                if row[j] >= min_score
            ]
        )
    return out


class ImageNetTaggerHandler(ElementModelHandler):
    """RunInference handler: ``imagenet_probs`` -> ``tags`` via the everyday tag table."""

    stage_name = "tagger"

    def load_model(self) -> ImageNetTagTable:
        return ImageNetTagTable.embedded()

    def infer(self, batch: list[Element], model: ImageNetTagTable) -> list[Element]:
        if any("imagenet_probs" not in e for e in batch):
            raise ValueError("the imagenet tagger needs a backbone with an ImageNet head")
        scores = model.scores(np.stack([e["imagenet_probs"] for e in batch]))
        tags = top_tags(scores, model.names, self._config.top_k, self._config.min_score)
        return [{**e, "tags": t} for e, t in zip(batch, tags, strict=False)]

    def model_version(self) -> str:
        return "imagenet_tags@v1"
