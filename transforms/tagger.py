"""Tagger stage: backbone output -> scored tags (source "tagger").

The embedded tagger turns the backbone's ImageNet-1k head into everyday tags: each class
contributes its own name and its group tags (tabby, tiger cat, Persian... -> "cat"), and a
tag's score is the summed probability of its (at most 5 most likely) classes, so a group is
as likely as its members together. The table ships as data (transforms/data/imagenet_tags.json). Scores are
then calibrated (transforms/calibration.py) so ``min_score`` is an estimated chance of being right.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from transforms import calibration
from transforms.model_handler import ElementModelHandler
from transforms.records import Element, with_fields
from transforms.stage import Stage, register

CALIBRATION_KEY = "tagger:imagenet_tags"


@dataclass(frozen=True)
class TaggerConfig:
    top_k: int = 5
    min_score: float = 0.5  # on the calibrated score: the estimated chance the tag is right
    calibration: str = calibration.EMBEDDED  # source of the per-kind Platt maps


@functools.lru_cache(maxsize=1)
def imagenet_table_data() -> dict:
    """The shipped table: ``classes`` (1000 ImageNet names, in model order) and ``groups``."""
    return json.loads(resources.files("transforms").joinpath("data/imagenet_tags.json").read_text())


TOP_MEMBERS = 5


def group_scores(probs: np.ndarray, membership: np.ndarray, top_m: int = TOP_MEMBERS) -> np.ndarray:
    """[batch, groups]: each group's score is the summed probability of its ``top_m`` most likely
    member classes. A plain sum over a big group (398 animal classes) adds up the small
    probabilities an unfamiliar picture spreads everywhere (the moon scores 0.5 "animal"); a
    group the picture really shows is carried by a few confident members."""
    out = probs @ membership
    for j in np.flatnonzero(membership.sum(0) > top_m):
        members = probs[:, membership[:, j] > 0]
        out[:, j] = -np.sum(np.partition(-members, top_m - 1, axis=1)[:, :top_m], axis=1)
    return np.minimum(out, 1.0)


class ImageNetTagTable:
    """Dense class->tag membership matrix: tag scores = group_scores(probs, matrix)."""

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
        self.is_group = np.array([name in groups for name in names])
        self._column = column

    @classmethod
    @functools.lru_cache(maxsize=1)
    def embedded(cls) -> ImageNetTagTable:
        data = imagenet_table_data()
        return cls(data["classes"], {k: list(v) for k, v in data["groups"].items()})

    def scores(self, probs: np.ndarray) -> np.ndarray:
        return group_scores(probs, self.matrix)

    def calibrated(self, probs: np.ndarray, source: str) -> np.ndarray:
        """Tag scores mapped to the chance of being right, class names and group names apart:
        at the same score a specific class ("daisy") is wrong more often than its group ("flower")."""
        scores = self.scores(probs)
        for kind, mask in (("class", ~self.is_group), ("group", self.is_group)):
            platt = calibration.for_source(source, f"{CALIBRATION_KEY}:{kind}")
            if platt is not None:
                scores[:, mask] = platt(scores[:, mask])
        return scores

    def support(self, probs: np.ndarray, name: str) -> float | None:
        """One image's score for a tag name, or None when the table has no such tag."""
        if name not in self._column:
            return None
        return float(group_scores(probs[None], self.matrix[:, [self._column[name]]])[0, 0])


def top_tags(
    scores: np.ndarray, names: list[str], top_k: int, min_score: float, source: str = "tagger"
) -> list[list[dict]]:
    """Per row: the ``top_k`` names scoring at least ``min_score``, best first, as tag structs."""
    k = min(top_k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, cand in zip(scores, idx, strict=True):
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
        scores = model.calibrated(np.stack([e["imagenet_probs"] for e in batch]), self._config.calibration)
        tags = top_tags(scores, model.names, self._config.top_k, self._config.min_score)
        return [with_fields(e, tags=t) for e, t in zip(batch, tags, strict=True)]

    def model_version(self) -> str:
        return "imagenet_tags@v1"


# --- registration -----------------------------------------------------------------------------
def add_options(group) -> None:
    group.add_argument("--tagger_model", default=None,
                       help="Model directory from pipeline.train (local or gs://): tag with the "
                       "trained TaggerNet instead of the embedded ImageNet everyday tagger.")
    group.add_argument("--top_k", type=int, default=5, help="Most tagger tags per image.")
    group.add_argument("--min_score", type=float, default=0.5,
                       help="Smallest calibrated score of any written tag (tagger, detector, "
                       "expansion, zero-shot): the estimated chance the tag is right.")
    group.add_argument("--calibration", default=calibration.EMBEDDED,
                       help="Per-source score calibration: 'embedded' (fitted by pipeline.quality "
                       "--fit on the tuning photos), a JSON file (local/gs://), or 'none' (raw scores).")


def build(o, num_workers: int = 1):
    """The trained TaggerNet when --tagger_model is given, else the embedded ImageNet tagger."""
    if o.tagger_model:
        from transforms.features import backbone_config
        from transforms.mlp_tagger import MLPTaggerConfig, MLPTaggerHandler

        return MLPTaggerHandler(MLPTaggerConfig(o.tagger_model, backbone_config(o).version(), o.top_k,
                                                num_workers, o.torch_threads, o.min_score))
    return ImageNetTaggerHandler(TaggerConfig(top_k=o.top_k, min_score=o.min_score, calibration=o.calibration))


STAGE = register(Stage(
    name="tagger", reads=("imagenet_probs", "features"), writes=("tags:tagger", "label_scores"),
    build=build, options=add_options, tag_source="tagger", colour="#1f77b4", bench_batch=64,
))
