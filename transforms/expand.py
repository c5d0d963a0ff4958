"""Expansion stage (the paper's zero-shot step): each tag adds its nearest words by cosine.

For each tagger/detector tag, the ``per_tag`` nearest words among the most frequent words
of the vector vocabulary are added with source "expansion", origin = the tag, and score =
tag score x cosine similarity (always below the tag they came from). Words already tagged,
repeats and trivial variants (plural/singular of the same word) are skipped, and so are
"hub" words that are near everything ('actually', 'knowing' for 'person'): a word is kept only
when the tag is also among the word's ``mutual_k`` nearest words (reciprocal nearest
neighbours, a standard cure for hubness in word-vector spaces). Neighbours of a tag are
computed once per worker: new tags of a batch go through one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.model_handler import ElementModelHandler
from transforms.records import Element
from transforms.vectors import EMBEDDED, candidate_words, load_vectors, phrase_vector

EXPANDABLE = ("tagger", "detector")


@dataclass(frozen=True)
class ExpansionConfig:
    per_tag: int = 2
    min_similarity: float = 0.5
    vocab_limit: int = 50_000
    mutual_k: int = 30  # keep a word only if the tag is among the word's k nearest (0: off)
    word_vectors: str = EMBEDDED
    word_vectors_sha256: str | None = None


def stem(word: str) -> str:
    """A crude singular form, enough to tell 'cats'/'cat' and 'berries'/'berry' apart from new words."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def is_variant(candidate: str, tag: str) -> bool:
    """True when ``candidate`` adds nothing over ``tag``: same word, a word of it, its plural,
    or an inflection (one word is the other plus at most 3 letters: tie/tied, bus/buses)."""
    c = stem(candidate)
    for part in tag.lower().replace("-", " ").split() + [tag.lower()]:
        p = stem(part)
        short, long_ = sorted((c, p), key=len)
        if c == p or (len(short) >= 3 and long_.startswith(short) and len(long_) - len(short) <= 3):
            return True
    return False


class Neighbours:
    """Nearest-word lookup over a fixed candidate vocabulary, memoised per tag."""

    def __init__(self, config: ExpansionConfig):
        self.kv = load_vectors(config.word_vectors, config.word_vectors_sha256)
        self.words, self.matrix = candidate_words(self.kv, config.vocab_limit)
        self._pool = max(config.per_tag * 4 + 4, 12)
        self._mutual_k = config.mutual_k
        self._cache: dict[str, list[tuple[str, float]]] = {}

    def lookup(self, tags: list[str]) -> dict[str, list[tuple[str, float]]]:
        missing = [t for t in dict.fromkeys(tags) if t not in self._cache]
        vecs = [(t, phrase_vector(self.kv, t)) for t in missing]
        known = [(t, v) for t, v in vecs if v is not None]
        for t, v in vecs:
            if v is None:
                self._cache[t] = []
        if known:
            query = np.stack([v for _, v in known])
            query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
            sims = query @ self.matrix.T  # one matrix product for every new tag of the batch
            k = min(self._pool, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for (t, _), row, cand in zip(known, sims, top, strict=True):
                cand = cand[np.argsort(-row[cand])]
                if self._mutual_k:
                    # How many words each candidate finds nearer than the tag: a reciprocal rank.
                    reciprocal = (self.matrix[cand] @ self.matrix.T > row[cand, None]).sum(1)
                    cand = cand[reciprocal <= self._mutual_k]
                self._cache[t] = [(self.words[j], float(row[j])) for j in cand]
        return {t: self._cache[t] for t in tags}


def expand_tags(tags: list[dict], neighbours: dict[str, list[tuple[str, float]]], config: ExpansionConfig) -> list[dict]:
    """Append expansion tags to ``tags`` (a list of tag structs), best-scoring origin wins."""
    taken = {t["name"].lower() for t in tags}
    taken_stems = {stem(n) for n in taken}
    added: dict[str, dict] = {}
    for tag in tags:
        if tag["source"] not in EXPANDABLE:
            continue
        count = 0
        for word, sim in neighbours.get(tag["name"], []):
            if count >= config.per_tag or sim < config.min_similarity:
                break
            if word in taken or is_variant(word, tag["name"]):
                continue
            key = stem(word)
            if key in taken_stems:
                continue
            score = float(tag["score"]) * sim
            previous = added.get(key)
            if previous is not None and previous["origin"] == tag["name"]:
                continue  # a plural of a word this tag already added
            if previous is None or previous["score"] < score:
                added[key] = {"name": word, "score": score, "source": "expansion", "origin": tag["name"]}
            count += 1
    return tags + sorted(added.values(), key=lambda t: -t["score"])


class ExpansionHandler(ElementModelHandler):
    """RunInference handler: appends nearest-word expansion tags to each element's ``tags``."""

    stage_name = "expansion"

    def load_model(self) -> Neighbours:
        return Neighbours(self._config)

    def infer(self, batch: list[Element], model: Neighbours) -> list[Element]:
        names = [t["name"] for e in batch for t in e.get("tags", []) if t["source"] in EXPANDABLE]
        neighbours = model.lookup(names)
        return [{**e, "tags": expand_tags(e.get("tags", []), neighbours, self._config)} for e in batch]

    def model_version(self) -> str:
        return f"vectors={self._config.word_vectors}"
