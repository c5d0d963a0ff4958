"""Zero-shot tagging: rank any vocabulary against each image through word vectors.

Two published methods, one matrix product per batch each:
- ConSE (Norouzi et al., 2014): the image's semantic vector is the probability-weighted mean
  of the word vectors of its top-T predicted seen labels (ImageNet classes for the embedded
  tagger, the trained TaggerNet's tags otherwise); vocabulary words are ranked by cosine.
- Fast0Tag (Zhang et al., CVPR 2016): a linear map from backbone features into word space,
  trained with a ranking loss so every relevant seen tag outranks every irrelevant one; words
  are ranked by their cosine with the mapped direction. ``pipeline.training.train`` learns it and saves
  it in the model directory (zero_shot_mapping.npz).
Phrases use the mean of their word vectors; words the vectors do not know are reported once.

Hypernyms are handled exactly where the models allow (transforms/knowledge/lexicon.py, WordNet): a
vocabulary word that names an ancestor of ImageNet classes ("animal", "vehicle", "drink")
scores the summed probability of every class below it, and a word implied by one of the
image's tagger/detector tags (person -> "person", tabby -> "cat", "animal") takes that tag's
score. With the embedded ImageNet tagger, the word-vector score (calibrated,
transforms/knowledge/calibration.py) answers only the words no ImageNet class lies below ("sport", "sky",
"pet"): for the others the summed class probability is the exact answer, and a word vector near
a class name only adds noise to it (espresso -> "food"). The final score is the largest of the
scores that apply, so it estimates the chance the word applies.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import cast

import numpy as np

from transforms.core.artifacts import join, read_bytes
from transforms.core.launch import LaunchError, at_least, in_unit_range, need_file, utf8_text
from transforms.core.options import Flags, option
from transforms.core.records import Element
from transforms.core.registry import Stage, register
from transforms.knowledge import calibration
from transforms.knowledge.calibration import ScoringFlags, standardise_rows
from transforms.knowledge.lexicon import imagenet_ancestor_words, implied_words
from transforms.knowledge.vectors import VectorFlags, load_vectors, phrase_vector
from transforms.stages.detector import SOURCE as DETECTOR
from transforms.stages.tagger import CALIBRATION_KEY as TAGGER_CALIBRATION_KEY
from transforms.stages.tagger import SOURCE as TAGGER
from transforms.stages.tagger import TaggerFlags, group_scores, imagenet_table_data

SOURCE = "zero_shot"  # its tag source, named here once: other modules import it

MAPPING = "zero_shot_mapping.npz"
METHODS = ("auto", "conse", "fast0tag")
_LOG = logging.getLogger(__name__)


def normalise_rows(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def embed_phrases(kv, phrases: list[str]) -> tuple[np.ndarray, list[str]]:
    """(unit vectors [n, d], zero rows for unknown phrases; the unknown phrases)."""
    out = np.zeros((len(phrases), kv.vector_size), dtype=np.float32)
    unknown = []
    for i, phrase in enumerate(phrases):
        v = phrase_vector(kv, phrase)
        if v is None:
            unknown.append(phrase)
        else:
            out[i] = v
    return normalise_rows(out).astype(np.float32), unknown


def conse_scores(probs: np.ndarray, seen: np.ndarray, vocab: np.ndarray, top_t: int = 10) -> np.ndarray:
    """ConSE: cosine of each vocabulary vector with the top-T probability-weighted seen vectors."""
    t = min(top_t, probs.shape[1])
    idx = np.argpartition(-probs, t - 1, axis=1)[:, :t]
    weights = np.zeros_like(probs, dtype=np.float32)
    np.put_along_axis(weights, idx, np.take_along_axis(probs, idx, axis=1), axis=1)
    weights /= np.maximum(weights.sum(1, keepdims=True), 1e-12)
    return normalise_rows(weights @ seen) @ vocab.T


class Fast0TagMapping:
    """Linear map features -> word space: direction = ((x - mean) / std) @ W + b."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, mean: np.ndarray, std: np.ndarray, meta: dict):
        self.weight, self.bias, self.mean, self.std, self.meta = weight, bias, mean, std, meta

    def project(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weight + self.bias

    def scores(self, features: np.ndarray, vocab: np.ndarray) -> np.ndarray:
        return normalise_rows(self.project(features)) @ vocab.T

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, weight=self.weight, bias=self.bias, mean=self.mean, std=self.std,
                 meta=np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fast0TagMapping:
        z = np.load(io.BytesIO(data))
        return cls(z["weight"], z["bias"], z["mean"], z["std"], json.loads(z["meta"].tobytes().decode()))


def load_mapping(model_dir: str, required: bool = False) -> Fast0TagMapping | None:
    """The model directory's zero-shot mapping; None when it has none (an error if ``required``)."""
    from transforms.output.model_folder import read_file, read_manifest

    if MAPPING not in read_manifest(model_dir):
        if required:
            raise FileNotFoundError(f"{model_dir} has no zero-shot mapping ({MAPPING})")
        return None
    try:
        return Fast0TagMapping.from_bytes(read_file(model_dir, MAPPING))
    except (ValueError, KeyError) as exc:  # a mapping that fails its checks or has the wrong arrays
        if required:
            raise FileNotFoundError(f"{model_dir} has no zero-shot mapping ({MAPPING})") from exc
        return None


def read_vocabulary(path: str) -> list[str]:
    """Words/phrases, one per line ('#' comments); an empty, binary or non-UTF-8 file is refused."""
    lines = utf8_text(read_bytes(path), path, "a vocabulary (one word or phrase per line)").splitlines()
    words = list(dict.fromkeys(w.strip().lower() for w in lines if w.strip() and not w.startswith("#")))
    if not words:
        raise ValueError(f"vocabulary {path} is empty")
    return words


def resolve_method(config: ZeroShotConfig) -> str:
    """'auto' becomes fast0tag when the model directory carries a mapping, else conse."""
    if config.method != "auto":
        return config.method
    if config.model_dir:
        from apache_beam.io.filesystems import FileSystems

        if FileSystems.exists(join(config.model_dir, MAPPING)):
            return "fast0tag"
    return "conse"


@dataclass(frozen=True)
class ZeroShotFlags(Flags):
    vocabulary: str | None = option(None, "File of words/phrases, one per line (local or gs://): every image gets "
                                    "its best-ranked entries as tags with source zero_shot.", template=True)
    zero_shot_method: str = option("auto", "conse (probability-weighted seen-label vectors), fast0tag (the "
                                   "learned linear map in --tagger_model), auto (fast0tag when the model has one).",
                                   choices=METHODS, template=True)
    zero_shot_top_k: int = option(3, "Most zero-shot tags per image.")
    zero_shot_min_score: float | None = option(None, "Smallest calibrated score of a zero-shot tag (default: "
                                               "--min_score).")
    conse_top_t: int = option(10, "ConSE: how many top seen labels form the image's semantic vector.")

    def check(self) -> None:
        """Numbers in range and a vocabulary that reads."""
        at_least("--zero_shot_top_k", self.zero_shot_top_k, 1)
        at_least("--conse_top_t", self.conse_top_t, 1)
        in_unit_range("--zero_shot_min_score", self.zero_shot_min_score)
        if self.vocabulary:
            need_file("--vocabulary", self.vocabulary)
            try:
                read_vocabulary(self.vocabulary)
            except (ValueError, UnicodeDecodeError) as exc:
                raise LaunchError(f"--vocabulary: {exc}") from None


@dataclass(frozen=True)
class ZeroShotConfig:
    vocabulary: str
    method: str = ZeroShotFlags.zero_shot_method  # auto: fast0tag when the model directory has a mapping, else conse
    top_k: int = ZeroShotFlags.zero_shot_top_k
    min_score: float = ScoringFlags.min_score  # calibrated
    top_t: int = ZeroShotFlags.conse_top_t
    calibration: str = ScoringFlags.calibration
    word_vectors: str = VectorFlags.word_vectors
    word_vectors_sha256: str | None = None
    model_dir: str | None = None  # TaggerNet directory (seen labels, mapping); None: ImageNet

    @classmethod
    def from_options(cls, o) -> ZeroShotConfig | None:
        """None when no --vocabulary turns the stage on."""
        f, scoring, vectors = ZeroShotFlags.from_options(o), ScoringFlags.from_options(o), VectorFlags.from_options(o)
        if not f.vocabulary:
            return None
        return cls(vocabulary=f.vocabulary, method=f.zero_shot_method, top_k=f.zero_shot_top_k,
                   min_score=scoring.min_score if f.zero_shot_min_score is None else f.zero_shot_min_score,
                   top_t=f.conse_top_t, calibration=scoring.calibration, word_vectors=vectors.word_vectors,
                   word_vectors_sha256=vectors.word_vectors_sha256, model_dir=seen_labels_model(o))


class ZeroShotModel:
    def __init__(self, config: ZeroShotConfig):
        from transforms.stages.taggernet import read_config

        kv = load_vectors(config.word_vectors, config.word_vectors_sha256)
        self.words = read_vocabulary(config.vocabulary)
        self.vocab, unknown = embed_phrases(kv, self.words)
        if unknown:  # once per worker, never per image
            _LOG.warning("zero-shot vocabulary: %d of %d entries unknown to %s and never ranked: %s",
                         len(unknown), len(self.words), config.word_vectors, ", ".join(unknown[:50]))
        self.known = self.vocab.any(axis=1)  # unknown entries embed as zero rows
        self.mapping = None
        if config.model_dir:
            seen = read_config(config.model_dir)["vocabulary"]
            self.probs_field = "label_scores"
            if config.method in ("auto", "fast0tag"):
                self.mapping = load_mapping(config.model_dir, required=config.method == "fast0tag")
                if self.mapping is not None and self.mapping.weight.shape[1] != kv.vector_size:
                    raise ValueError("the zero-shot mapping was trained with other word vectors "
                                     f"({self.mapping.meta.get('word_vectors')}); pass the same --word_vectors")
        else:
            if config.method == "fast0tag":
                raise ValueError("--zero_shot_method fast0tag needs --tagger_model with a trained mapping")
            seen = imagenet_table_data()["classes"]
            self.probs_field = "imagenet_probs"
        self.seen, _ = embed_phrases(kv, seen)
        self.method = "fast0tag" if self.mapping is not None else "conse"
        self.platt = calibration.for_source(config.calibration, f"zero_shot:{self.method}")
        self.index = {w: i for i, w in enumerate(self.words)}
        self.below = None  # [classes, vocabulary]: 1 where the word names the class or an ancestor
        if self.probs_field == "imagenet_probs":
            self.below = np.zeros((len(seen), len(self.words)), dtype=np.float32)
            for c, words in enumerate(imagenet_ancestor_words()):
                for w in words:
                    if w in self.index:
                        self.below[c, self.index[w]] = 1.0
            self.tagger_platt = calibration.for_source(config.calibration, f"{TAGGER_CALIBRATION_KEY}:group")
            self.has_classes = self.below.any(0)  # words that name ImageNet classes or their ancestors

    def conse_answers(self) -> np.ndarray:
        """[vocabulary] bool: the words whose score is the word-vector score (what calibration
        fits): every known word, less those the ImageNet hierarchy answers exactly."""
        known = np.asarray(self.known, dtype=bool)
        return known if self.below is None else known & ~self.has_classes

    def implied(self, batch: list[Element]) -> np.ndarray:
        """[batch, vocabulary]: the best score of a tagger/detector tag that implies each word."""
        out = np.zeros((len(batch), len(self.words)), dtype=np.float32)
        for row, e in enumerate(batch):
            for t in e.get("tags", []):
                if t["source"] not in (TAGGER, DETECTOR):
                    continue
                for w in [t["name"], *(w for w, _ in implied_words(t["name"]))]:
                    j = self.index.get(w)
                    if j is not None:
                        out[row, j] = max(out[row, j], float(t["score"]))
        return out

    def scores(self, batch: list[Element], top_t: int) -> np.ndarray:
        if self.mapping is not None:
            s = self.mapping.scores(np.stack([e["features"] for e in batch]), self.vocab)
        else:
            probs = np.stack([cast(dict, e)[self.probs_field] for e in batch])
            s = conse_scores(probs, self.seen, self.vocab, top_t)
        if self.platt is not None:
            s = self.platt(standardise_rows(s, self.known) if self.platt.feature == "z" else s)
        s[:, ~self.known] = -np.inf
        if self.below is not None:  # the embedded ImageNet tagger: exact hypernym scores
            hierarchy = group_scores(np.stack([e["imagenet_probs"] for e in batch]), self.below)
            if self.tagger_platt is not None:
                hierarchy = self.tagger_platt(hierarchy)
            s = np.where(self.has_classes, hierarchy, s)
        implied = self.implied(batch)
        return np.maximum(s, np.where(implied > 0, implied, -np.inf))


def seen_labels_model(o) -> str | None:
    """The TaggerNet whose labels are the seen ones: --tagger_model, unless it only adds words
    next to the embedded tagger (then the ImageNet classes are)."""
    from transforms.stages.taggernet import adds_to_embedded

    model = TaggerFlags.from_options(o).tagger_model
    return None if adds_to_embedded(model) else model


# --- registration -----------------------------------------------------------------------------
def check(o) -> None:
    """Across groups: the fast0tag method needs a TaggerNet model with a mapping."""
    if ZeroShotFlags.from_options(o).zero_shot_method == "fast0tag" and not seen_labels_model(o):
        raise LaunchError("--zero_shot_method fast0tag needs --tagger_model (a model trained with a mapping)")


STAGE = register(Stage(
    name=SOURCE,
    reads=("imagenet_probs", "label_scores", "features", "tags:tagger", "tags:detector"),
    writes=(f"tags:{SOURCE}",), build="transforms.handlers.zero_shot:build", options=ZeroShotFlags, check=check,
    tag_source=SOURCE, colour="#9467bd", quality="vocabulary", bench_batch=64,
))
