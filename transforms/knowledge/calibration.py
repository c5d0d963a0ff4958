"""Score calibration: one ``--min_score`` that means the same for every tag source.

Raw scores differ in kind: the tagger's summed softmax probability, YOLOX's objectness x class
score, a cosine for zero-shot words. Each source's raw score is mapped to an estimate of the
chance that the tag is right with Platt scaling, p = sigmoid(a * x + b), where x is the logit
of a probability-like score (feature "logit"), or, for zero-shot cosines, the cosine
standardised over the image's vocabulary (feature "z": how far a word stands out for this
image; a raw cosine is near 0.5 for most words of most images). ``a`` and ``b`` are fitted per source on
labelled photos by ``python -m pipeline.quality --fit`` (the tuning half of the key only) and
shipped in transforms/data/calibration.json; ``--calibration PATH`` loads another fit and
``--calibration none`` keeps raw scores. Expansion tags inherit their origin's calibrated
score, since what they say follows from the origin.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from transforms.core.artifacts import read_bytes
from transforms.core.launch import LaunchError, in_unit_range, need_file, utf8_text
from transforms.core.options import Flags, option

EMBEDDED = "embedded"


@dataclass(frozen=True)
class ScoringFlags(Flags):
    """What every tag source's written scores mean (the tag job's flags, not one stage's)."""

    GROUP: ClassVar[str] = "scoring"

    min_score: float = option(0.5, "Smallest calibrated score of any written tag (tagger, detector, "
                              "expansion, zero-shot): the estimated chance the tag is right.", template=r"^(0(\.[0-9]+)?|1(\.0+)?)$")
    calibration: str = option(EMBEDDED, "Per-source score calibration: 'embedded' (fitted by pipeline.quality "
                              "--fit on the tuning photos), a JSON file (local/gs://), or 'none' (raw scores).")

    def check(self) -> None:
        in_unit_range("--min_score", self.min_score)
        need_file("--calibration", self.calibration)
        if self.calibration not in (EMBEDDED, "none"):
            try:
                load(self.calibration)
            except ValueError as exc:
                raise LaunchError(f"--calibration {exc}") from None


def sigmoid(z: np.ndarray) -> np.ndarray:
    """float32 probabilities of logits (clipped: no overflow warnings far from 0)."""
    return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(np.float32)


def logit(scores: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(x / (1 - x))


def standardise_rows(scores: np.ndarray, known: Any) -> np.ndarray:
    """Each row's scores as z-scores over its ``known`` columns (the "z" feature)."""
    s = np.asarray(scores, dtype=np.float64)
    if int(np.sum(known)) < 3:  # too few words to tell which stand out
        return np.zeros_like(s)
    cols = s[:, known]
    mean = cols.mean(1, keepdims=True)
    std = np.maximum(cols.std(1, keepdims=True), 1e-6)
    return (s - mean) / std


@dataclass(frozen=True)
class Platt:
    """p = sigmoid(a * x + b). ``feature`` says what x is: "logit" (this applies the logit to a
    probability-like score), or "raw"/"z" (the caller passes x as it is)."""

    a: float = 1.0
    b: float = 0.0
    feature: str = "logit"

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        x = logit(scores) if self.feature == "logit" else np.asarray(scores, dtype=np.float64)
        return sigmoid(self.a * x + self.b)


@dataclass(frozen=True)
class Logistic:
    """p = sigmoid(w . x + b) over several features of one candidate (the tagger's hierarchy
    nodes: score, size, share of the top class, overall confidence; see transforms/stages/tagger.py).
    ``words``: the last weights are one bias per named word, for a candidate of that word (the
    caller appends the columns: transforms/stages/tagger.py word_columns)."""

    weights: tuple[float, ...]
    bias: float
    words: tuple[str, ...] = ()
    features: tuple[str, ...] = field(default=(), compare=False)  # their names, where the file gives them

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return sigmoid(np.asarray(features, dtype=np.float64) @ np.asarray(self.weights) + self.bias)


@functools.lru_cache(maxsize=8)
def _text(source: str) -> str:
    if source == EMBEDDED:
        return resources.files("transforms").joinpath("data/calibration.json").read_text()
    return utf8_text(read_bytes(source), source, "a calibration file (JSON, as pipeline.quality --fit writes)")


@functools.lru_cache(maxsize=8)
def fingerprint(source: str = EMBEDDED) -> str:
    """Which calibration scored a row, for ``model_version``: sha256 of the file (12 hex), or none."""
    return "none" if source == "none" else hashlib.sha256(_text(source).encode()).hexdigest()[:12]


FEATURES = ("logit", "raw", "z")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def _entry(v: object) -> Platt | Logistic:
    """One source's map, every key checked: a calibration file is data, and a NaN in it would
    silently drop every tag."""
    if not isinstance(v, dict):
        raise ValueError("must be an object")
    if "weights" in v:
        weights = v["weights"]
        if not isinstance(weights, list) or not weights:
            raise ValueError("weights must be a list of numbers")
        words = _words(v.get("words", []))
        names = v.get("features")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
                                  or len(names) + len(words) != len(weights)):
            raise ValueError("features and words must name one weight each")
        if len(words) >= len(weights):
            raise ValueError("words need a feature's weight before theirs")
        return Logistic(tuple(_number(w) for w in weights), _entry_number(v, "b"), words, tuple(names or ()))
    feature = v.get("feature", "logit")
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {', '.join(FEATURES)}")
    return Platt(_entry_number(v, "a"), _entry_number(v, "b"), feature)


def _words(value: object) -> tuple[str, ...]:
    """A model's per-word columns: distinct visible words, as a correction's (a calibration file is data)."""
    from transforms.knowledge.corrections import MAX_WORD, visible

    if not isinstance(value, list) or not all(isinstance(w, str) and w for w in value):
        raise ValueError("words must be a list of words")
    for w in value:
        visible(w, "a word", MAX_WORD, "words")
    if len(set(value)) != len(value):
        raise ValueError("words must be distinct")
    return tuple(value)


def _entry_number(v: dict, key: str) -> float:
    if key not in v:
        raise ValueError(f"{key} is missing")
    try:
        return _number(v[key])
    except ValueError as exc:
        raise ValueError(f"{key} {exc}") from None


def _line_of(text: str, key: str) -> int:
    at = text.find(json.dumps(key))
    return text[:at].count("\n") + 1 if at >= 0 else 1


@functools.lru_cache(maxsize=8)
def load(source: str = EMBEDDED) -> dict[str, Platt | Logistic]:
    """Source key (e.g. ``tagger:imagenet_tags``) -> Platt map; ``none`` gives an empty table.
    ValueError naming ``file:line`` and the key when the file is not a calibration."""
    if source == "none":
        return {}
    text = _text(source)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source}: not JSON ({exc})") from None
    sources = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, dict):
        raise ValueError(f"{source}: needs an object with a \"sources\" object (pipeline.quality --fit writes one)")
    out: dict[str, Platt | Logistic] = {}
    for key, v in sources.items():
        try:
            out[key] = _entry(v)
        except ValueError as exc:
            raise ValueError(f"{source}:{_line_of(text, key)}: {key}: {exc}") from None
    return out


def check_inputs(o: Any, key: str, features: Sequence[str]) -> None:
    """At launch (a stage's ``check``): the logistic model under ``key`` in the job's
    --calibration, where it has one, weighs these features, in this order, before its words; a
    model of another width or order would fail or misjudge every image at run time."""
    source = ScoringFlags.from_options(o).calibration
    model = load(source).get(key)
    if not isinstance(model, Logistic):
        return
    width = len(model.weights) - len(model.words)
    if width != len(features) or (model.features and model.features != tuple(features)):
        weighs = ", ".join(model.features) if model.features else f"{width} features"
        raise LaunchError(f"--calibration {source}: {key} weighs {weighs}; this job computes {', '.join(features)}")


def for_source(source: str, key: str) -> Platt | None:
    """The one-feature map for one source key, or None when the table has none (raw scores are kept)."""
    found = load(source).get(key)
    return found if isinstance(found, Platt) else None
