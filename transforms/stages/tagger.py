"""Tagger stage: backbone output -> scored tags (source "tagger"), decoded over WordNet.

The embedded tagger turns the backbone's ImageNet-1k head into everyday tags by decoding over
the WordNet hierarchy the 1000 classes sit in (transforms/data/imagenet_tags.json): every node
with a word people use (orange, citrus, fruit; dog, mammal, animal) scores the summed
probability of the classes below it. A calibrated logistic model (transforms/knowledge/calibration.py,
fitted on labelled photos by ``pipeline.quality --fit``) turns each node's evidence into the
chance it is right: its summed probability, its size, how much of it one class carries and how
sure the classifier is overall. So mass spread over many sibling breeds (a donkey seen as
twenty dogs) says "mammal", not "dog", and an orange says "orange" as well as "fruit". The
tagger writes every node whose chance reaches ``--min_score``, most specific first.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import ClassVar

import numpy as np

from transforms.core.artifacts import join
from transforms.core.launch import at_least, in_unit_range, need_file
from transforms.core.registry import Stage, register
from transforms.knowledge import calibration

CALIBRATION_KEY = "tagger:imagenet_tags"


@dataclass(frozen=True)
class TaggerConfig:
    FLAGS: ClassVar[dict[str, str]] = {"top_k": "top_k", "min_score": "min_score", "calibration": "calibration"}  # flag -> field: the flag's default is the field's
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


CANDIDATE_FLOOR = 0.02  # nodes with less summed probability are never candidates
HIERARCHY_KEY = "tagger:imagenet_hierarchy"
FEATURES = ("logit_score", "log_size", "share", "logit_top")  # the calibrator's inputs, in order


class ImageNetTagTable:
    """Dense class->tag membership matrix over every tag word: a class's own name, the everyday
    groups and the named WordNet nodes; a word's score is ``group_scores`` over its classes."""

    def __init__(self, classes: list[str], groups: dict[str, list[int]], nodes: dict[str, list[int]] | None = None):
        below: dict[str, set[int]] = {}
        for i, name in enumerate(classes):
            below.setdefault(name, set()).add(i)
        for table in (groups, nodes or {}):
            for tag, members in table.items():
                below.setdefault(tag, set()).update(members)
        names = sorted(below)
        matrix = np.zeros((len(classes), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            matrix[sorted(below[name]), j] = 1.0
        self.names = names
        self.matrix = matrix
        self.members = [np.array(sorted(below[name])) for name in names]
        self.size = matrix.sum(0)
        self._column = {name: j for j, name in enumerate(names)}

    @classmethod
    @functools.lru_cache(maxsize=1)
    def embedded(cls) -> ImageNetTagTable:
        data = imagenet_table_data()
        nodes = {word: node["members"] for word, node in data.get("nodes", {}).items()}
        return cls(data["classes"], {k: list(v) for k, v in data["groups"].items()}, nodes)

    def scores(self, probs: np.ndarray) -> np.ndarray:
        """[batch, names]: each word's summed probability of its (at most TOP_MEMBERS most likely) classes."""
        return group_scores(probs, self.matrix)

    def candidates(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, raw scores, features in FEATURES order) of every word scoring at least
        CANDIDATE_FLOOR on each image."""
        scores = self.scores(probs)
        rows, cols = np.nonzero(scores >= CANDIDATE_FLOOR)
        raw = scores[rows, cols]
        top = np.array([probs[r, self.members[c]].max() for r, c in zip(rows, cols, strict=True)], dtype=np.float64)
        features = np.column_stack([calibration.logit(raw), np.log(self.size[cols]),
                                    top / np.maximum(raw, 1e-9), calibration.logit(probs.max(1)[rows])])
        return rows, cols, raw, features

    def decode(self, probs: np.ndarray, source: str, top_k: int, min_score: float) -> list[list[dict]]:
        """Per image: the words whose chance of being right reaches ``min_score`` (raw summed
        probability when the calibration table has no hierarchy model), at most ``top_k``,
        the most specific first."""
        rows, cols, raw, features = self.candidates(probs)
        model = calibration.load(source).get(HIERARCHY_KEY)
        chance = model(features) if isinstance(model, calibration.Logistic) else raw
        kept: list[list[tuple[float, float, int]]] = [[] for _ in range(len(probs))]
        for r, c, p in zip(rows, cols, chance, strict=True):
            if p >= min_score:
                kept[r].append((float(self.size[c]), -float(p), int(c)))  # the most specific first
        return [[{"name": self.names[c], "score": -p, "source": "tagger", "origin": None}
                 for _, p, c in sorted(words)[:top_k]] for words in kept]

    def support(self, probs: np.ndarray, name: str) -> float | None:
        """One image's score for a tag name, or None when the table has no such tag."""
        if name not in self._column:
            return None
        return float(group_scores(probs[None], self.matrix[:, [self._column[name]]])[0, 0])


# --- registration -----------------------------------------------------------------------------
def add_options(group) -> None:
    group.add_argument("--tagger_model", default=None,
                       help="Model directory from pipeline.training.train (local or gs://): tag with the "
                       "trained TaggerNet instead of the embedded ImageNet everyday tagger.")
    group.add_argument("--top_k", type=int, default=TaggerConfig.top_k, help="Most tagger tags per image.")
    group.add_argument("--min_score", type=float, default=TaggerConfig.min_score,
                       help="Smallest calibrated score of any written tag (tagger, detector, "
                       "expansion, zero-shot): the estimated chance the tag is right.")
    group.add_argument("--calibration", default=TaggerConfig.calibration,
                       help="Per-source score calibration: 'embedded' (fitted by pipeline.quality "
                       "--fit on the tuning photos), a JSON file (local/gs://), or 'none' (raw scores).")


def check(o) -> None:
    """Launch checks of the tagger's options (--min_score is every source's floor)."""
    at_least("--top_k", o.top_k, 1)
    in_unit_range("--min_score", o.min_score)
    need_file("--calibration", o.calibration)
    if o.tagger_model:
        need_file("--tagger_model", join(o.tagger_model, "config.json"))


STAGE = register(Stage(
    name="tagger", reads=("imagenet_probs", "features"), writes=("tags:tagger", "label_scores"),
    build="transforms.handlers.tagger:build", options=add_options, check=check, tag_source="tagger", colour="#1f77b4",
    quality="everyday", bench_batch=64,
))
