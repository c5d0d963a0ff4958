"""Tagger stage: backbone output -> scored tags (source "tagger"), decoded over WordNet.

The embedded tagger turns the backbone's ImageNet-1k head into everyday tags by decoding over
the WordNet hierarchy the 1000 classes sit in (transforms/data/imagenet_tags.json): every node
with a word people use (orange, citrus, fruit; dog, mammal, animal) scores the summed
probability of the classes below it. A calibrated logistic model (transforms/knowledge/calibration.py,
fitted on labelled photos by ``pipeline.quality --fit``) turns each node's evidence into the
chance it is right: its summed probability, its size, how much of it one class carries, how
sure the classifier is overall, and for a word the fit saw often, the word itself. So mass
spread over many sibling breeds (a donkey seen as twenty dogs) says "mammal", not "dog", and an
orange says "orange" as well as "fruit". The tagger writes every node whose chance reaches
``--min_score``, most specific first.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from transforms.core.artifacts import join
from transforms.core.launch import LaunchError, at_least, need_file
from transforms.core.options import Flags, option
from transforms.core.registry import Stage, register
from transforms.knowledge import calibration
from transforms.knowledge.calibration import ScoringFlags

SOURCE = "tagger"  # its tag source, named here once: other modules import it

CALIBRATION_KEY = "tagger:imagenet_tags"


@dataclass(frozen=True)
class TaggerFlags(Flags):
    tagger_model: str | None = option(None, "Model directory from pipeline.training.train (local or gs://): tag "
                                      "with the trained TaggerNet instead of the embedded ImageNet everyday tagger.", template=True)
    top_k: int = option(5, "Most tagger tags per image.", template=True)

    def check(self) -> None:
        at_least("--top_k", self.top_k, 1)
        if self.tagger_model:
            need_file("--tagger_model", join(self.tagger_model, "config.json"))
            check_model_folder(self.tagger_model)


def check_model_folder(model_dir: str, option: str = "--tagger_model") -> None:
    """A model folder is used only whole: every file matches its manifest, a learned model's
    calibration maps are finite numbers, one per word, and the corrections it carries parse line
    by line (LaunchError naming the file and line)."""
    from transforms.knowledge import corrections
    from transforms.output.model_folder import ModelFolderError, verify
    from transforms.stages.taggernet import CORRECTIONS, LEARNED_ROLE, calibration_maps, read_config

    try:
        manifest = verify(model_dir)
        config = read_config(model_dir)
        if config.get("role") == LEARNED_ROLE:
            calibration_maps(config)
            if CORRECTIONS in manifest:
                corrections.read([join(model_dir, CORRECTIONS)])
    except ValueError as exc:  # ModelFolderError, or a correction line that fails its checks
        kind = "" if isinstance(exc, ModelFolderError) else f"{model_dir}: "
        raise LaunchError(f"{option} {kind}{exc}") from None


@dataclass(frozen=True)
class TaggerConfig:
    top_k: int = TaggerFlags.top_k
    min_score: float = ScoringFlags.min_score  # on the calibrated score: the estimated chance the tag is right
    calibration: str = ScoringFlags.calibration  # source of the calibration models


@functools.lru_cache(maxsize=1)
def _table_text() -> str:
    return resources.files("transforms").joinpath("data/imagenet_tags.json").read_text()


@functools.lru_cache(maxsize=1)
def imagenet_table_data() -> dict:
    """The shipped table: ``classes`` (1000 ImageNet names, in model order) and ``groups``."""
    return json.loads(_table_text())


def table_fingerprint() -> str:
    """Which word table decoded a row, for ``model_version``: sha256 of the file (12 hex)."""
    return hashlib.sha256(_table_text().encode()).hexdigest()[:12]


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


def word_columns(candidates: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """[candidates, words]: 1 where a candidate is that word. The hierarchy model's per-word
    biases: how often a big word is right at a given score differs by word (a street's spread
    vehicle classes, a flower's insects), which the four FEATURES alone cannot tell apart."""
    column = {word: j for j, word in enumerate(words)}
    out = np.zeros((len(candidates), len(words)))
    for i, word in enumerate(candidates):
        if word in column:
            out[i, column[word]] = 1.0
    return out


class ImageNetTagTable:
    """Dense class->tag membership matrix over every tag word: a class's own name, the everyday
    groups and the named WordNet nodes; a word's score is ``group_scores`` over its classes."""

    def __init__(self, classes: list[str], groups: dict[str, list[int]], nodes: dict[str, list[int]] | None = None,
                 unnamed: Iterable[int] = ()):
        below: dict[str, set[int]] = {}
        skip = set(unnamed)  # classes whose pictures show more than their name (tools/build_imagenet_tags.py)
        for i, name in enumerate(classes):
            if i not in skip:
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
        return cls(data["classes"], {k: list(v) for k, v in data["groups"].items()}, nodes,
                   data.get("unnamed_classes", ()))

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

    def chances(self, probs: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, chance of being right) of every candidate word: the calibration's
        hierarchy model over its features and word columns (the raw score without one)."""
        rows, cols, raw, features = self.candidates(probs)
        model = calibration.load(source).get(HIERARCHY_KEY)
        if not isinstance(model, calibration.Logistic):
            return rows, cols, raw
        return rows, cols, model(np.column_stack([features, word_columns([self.names[c] for c in cols], model.words)]))

    def decode(self, probs: np.ndarray, source: str, top_k: int, min_score: float) -> list[list[dict]]:
        """Per image: the words whose chance of being right reaches ``min_score`` (raw summed
        probability when the calibration table has no hierarchy model), at most ``top_k``,
        the most specific first."""
        rows, cols, chance = self.chances(probs, source)
        kept: list[list[tuple[float, float, int]]] = [[] for _ in range(len(probs))]
        for r, c, p in zip(rows, cols, chance, strict=True):
            if p >= min_score:
                kept[r].append((float(self.size[c]), -float(p), int(c)))  # the most specific first
        return [[{"name": self.names[c], "score": -p, "source": SOURCE, "origin": None}
                 for _, p, c in sorted(words)[:top_k]] for words in kept]

    def classes_of(self, name: str) -> np.ndarray:
        """The ImageNet classes at or below a tag word (KeyError when the table has no such word)."""
        return self.members[self._column[name]]

    def support(self, probs: np.ndarray, name: str) -> float | None:
        """One image's score for a tag name, or None when the table has no such tag."""
        if name not in self._column:
            return None
        return float(group_scores(probs[None], self.matrix[:, [self._column[name]]])[0, 0])


def single_class_words() -> frozenset[str]:
    """The embedded table's words that name one ImageNet class: evidence of their own, where a
    word above classes pools the mass of many (transforms/knowledge/contradictions.py)."""
    table = ImageNetTagTable.embedded()
    return frozenset(name for name, size in zip(table.names, table.size, strict=True) if size == 1)


# --- registration -----------------------------------------------------------------------------
def check(o) -> None:
    """Across groups: the calibration's hierarchy model weighs what this tagger computes."""
    calibration.check_inputs(o, HIERARCHY_KEY, FEATURES)


STAGE = register(Stage(
    name=SOURCE, reads=("imagenet_probs", "features"), writes=(f"tags:{SOURCE}", "label_scores"), check=check,
    build="transforms.handlers.tagger:build", options=TaggerFlags, tag_source=SOURCE, colour="#1f77b4",
    quality="everyday", bench_batch=64, evidence="transforms.stages.tagger:single_class_words",
))
