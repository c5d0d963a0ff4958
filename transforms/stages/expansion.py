"""Expansion stage (the paper's zero-shot step): each tag adds words beyond the models' labels.

Two methods (``--expansion_method``):
- ``precise`` (default): the words a tag *implies*, its WordNet synonyms and hypernyms in the
  sense the model means (transforms/knowledge/lexicon.py): cat -> feline, mammal; espresso -> coffee,
  beverage. A candidate must be a common word (among the ``vocab_limit`` most frequent words
  of the vectors) and agree with the whole image: its cosine with the image's evidence vector
  (the score-weighted mean of the vectors of all its tagger/detector tags) must reach
  ``min_similarity``, so a wrong guess among the tags finds little support. Since an implied
  word is true whenever its origin is, it carries the origin's (calibrated) score. Words the
  tagger's table leaves unnamed as unfit are never written, and the embedded tagger's own tags
  are not expanded (it writes their named ancestors itself: DECODED_SOURCES). Siblings
  (cat -> dog), other senses (cup -> championship), antonyms and hyponyms (person -> man and
  woman) cannot come out of it.
- ``nearest``: the paper's plain method. The ``per_tag`` nearest words by cosine among the
  most frequent words, score = tag score x cosine, hub words refused by reciprocal nearest
  neighbours (the tag must be among the word's ``mutual_k`` nearest). Measured in
  docs/QUALITY.md: most of its words are siblings or other senses, wrong for the image.

Both skip words already tagged, repeats and trivial variants (plural/singular of a tag).
Word lookups are memoised per worker; new tags of a batch go through one matrix product.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from transforms.core.launch import at_least, in_unit_range
from transforms.core.options import Flags, option
from transforms.core.registry import Stage, register
from transforms.knowledge.lexicon import implied_words
from transforms.knowledge.vectors import VectorFlags, candidate_words, load_vectors, phrase_vector
from transforms.stages.detector import SOURCE as DETECTOR
from transforms.stages.tagger import SOURCE as TAGGER
from transforms.stages.tagger import TaggerFlags, imagenet_table_data
from transforms.stages.taggernet import adds_to_embedded

SOURCE = "expansion"  # its tag source, named here once: other modules import it

EXPANDABLE = (TAGGER, DETECTOR)
METHODS = ("precise", "nearest")
DEFAULT_MIN_SIMILARITY = {"precise": 0.3, "nearest": 0.5}
DEFAULT_VOCAB_LIMIT = {"precise": 60_000, "nearest": 50_000}
# Implied words a person would not use as a tag: archaic or technical lemmas of a hypernym
# whose everyday lemma is also implied (creature/animal, mammalian/mammal) and place words that
# say nothing about a picture (landscape -> vicinity, area). Reviewed on the photo set's tune
# half (pipeline/quality/photo_set.py); bare synonyms (edifice for building) are never written at all,
# nor the words the tagger's table leaves unnamed as unfit (carnivore, dwelling: "unfit_words" in
# transforms/data/imagenet_tags.json).
ODD_WORDS = frozenset({"creature", "mammalian", "felid", "bovid", "vicinity", "locality", "neighborhood",
                       "neighbourhood", "area", "region", "individual", "edifice", "beast", "brute"})
# An implied word repeats its origin's error, so only confident origins are expanded.
DEFAULT_MIN_ORIGIN = {"precise": 0.7, "nearest": 0.0}
# Sources whose tags come decoded over WordNet already: the embedded tagger scores and writes an
# ImageNet class's named ancestors itself (transforms/stages/tagger.py), so what precise expansion
# could add to its tags is only synonyms of words it decided, words its table leaves out as unfit
# or rare ("aquatic vertebrate" on every fish), or a "yes" over its own calibrated "no".
DECODED_SOURCES = (TAGGER,)


@dataclass(frozen=True)
class ExpansionFlags(Flags):
    expansion_method: str = option("precise", "precise: the WordNet synonyms and hypernyms a tag implies, kept "
                                   "when they agree with the whole image; nearest: the paper's nearest words by "
                                   "cosine (mostly siblings and other senses: see docs/QUALITY.md).", choices=METHODS, template=True)
    expansion_per_tag: int = option(2, "Words added per tag (the paper: 2); 0 disables expansion.", template=True)
    expansion_min_similarity: float | None = option(None, "precise: smallest cosine of a word with the image's "
                                                    "evidence vector (default 0.3); nearest: with the tag (default 0.5).")
    expansion_min_origin_score: float | None = option(None, "Expand only tags scoring at least this (default: "
                                                      "precise 0.7, since an implied word repeats its origin's "
                                                      "error; nearest 0).")
    expansion_vocab_size: int | None = option(None, "Expansion words come from this many most frequent words "
                                              "(default: precise 60000, nearest 50000).")
    expansion_mutual_k: int = option(30, "nearest: keep a word only if the tag is among its k nearest words "
                                     "(drops hub words near everything); 0 disables.")

    def check(self) -> None:
        at_least("--expansion_per_tag", self.expansion_per_tag, 0)
        in_unit_range("--expansion_min_origin_score", self.expansion_min_origin_score)
        if self.expansion_vocab_size is not None:
            at_least("--expansion_vocab_size", self.expansion_vocab_size, 1)


@dataclass(frozen=True)
class ExpansionConfig:
    method: str = ExpansionFlags.expansion_method
    per_tag: int = ExpansionFlags.expansion_per_tag
    min_similarity: float | None = None  # None: the method's default
    vocab_limit: int | None = None  # None: the method's default
    min_origin_score: float | None = None  # None: the method's default
    mutual_k: int = ExpansionFlags.expansion_mutual_k  # nearest: keep a word only if the tag is among the word's k nearest (0: off)
    word_vectors: str = VectorFlags.word_vectors
    word_vectors_sha256: str | None = None
    decoded_sources: tuple[str, ...] = DECODED_SOURCES  # precise: sources whose tags are not expanded

    @classmethod
    def from_options(cls, o) -> ExpansionConfig:
        f, vectors = ExpansionFlags.from_options(o), VectorFlags.from_options(o)
        tagger_model = TaggerFlags.from_options(o).tagger_model
        # A trained TaggerNet in the embedded tagger's place writes its own words, undecoded.
        decoded = () if tagger_model and not adds_to_embedded(tagger_model) else DECODED_SOURCES
        return cls(method=f.expansion_method, per_tag=f.expansion_per_tag, min_similarity=f.expansion_min_similarity,
                   vocab_limit=f.expansion_vocab_size, min_origin_score=f.expansion_min_origin_score,
                   mutual_k=f.expansion_mutual_k, word_vectors=vectors.word_vectors,
                   word_vectors_sha256=vectors.word_vectors_sha256, decoded_sources=decoded)

    def similarity(self) -> float:
        return DEFAULT_MIN_SIMILARITY[self.method] if self.min_similarity is None else self.min_similarity

    def vocabulary_limit(self) -> int:
        return DEFAULT_VOCAB_LIMIT[self.method] if self.vocab_limit is None else self.vocab_limit

    def origin_floor(self) -> float:
        return DEFAULT_MIN_ORIGIN[self.method] if self.min_origin_score is None else self.min_origin_score


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


def _word_stems(phrase: str) -> set[str]:
    return {stem(w) for w in phrase.lower().replace("-", " ").split()}


def is_variant(candidate: str, tag: str) -> bool:
    """True when ``candidate`` adds nothing over ``tag``: same word, a word of it, its plural,
    or an inflection (one word is the other plus at most 3 letters: tie/tied, bus/buses)."""
    c = stem(candidate)
    if _word_stems(candidate) & _word_stems(tag):  # shares a word: "tabby cat" adds nothing to "tabby"
        return True
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
        self.words, self.matrix = candidate_words(self.kv, config.vocabulary_limit())
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
    """Append expansion tags to ``tags`` (a list of tag structs), best-scoring origin wins.
    ``neighbours`` maps each tag to (word, similarity) candidates, best first; the ``nearest``
    method scores a word tag score x similarity, ``precise`` gives it the tag's score."""
    taken = {t["name"].lower() for t in tags}
    taken_stems = {stem(n) for n in taken}
    added: dict[str, dict] = {}
    for tag in tags:
        if tag["source"] not in EXPANDABLE or tag["score"] < config.origin_floor():
            continue
        count = 0
        for word, sim in neighbours.get(tag["name"], []):
            if count >= config.per_tag or sim < config.similarity():
                break
            if word in taken or is_variant(word, tag["name"]):
                continue
            key = stem(word)
            if key in taken_stems:
                continue
            score = float(tag["score"]) * (sim if config.method == "nearest" else 1.0)
            previous = added.get(key)
            if previous is not None and previous["origin"] == tag["name"]:
                continue  # a plural of a word this tag already added
            if previous is None or previous["score"] < score:
                added[key] = {"name": word, "score": score, "source": SOURCE, "origin": tag["name"]}
            count += 1
    return tags + sorted(added.values(), key=lambda t: -t["score"])


class Implied:
    """Precise candidates: each tag's implied words (lexicon), kept when they are common words,
    ranked per image by agreement with the image's evidence vector."""

    def __init__(self, config: ExpansionConfig):
        from gensim.parsing.preprocessing import STOPWORDS

        self.kv = load_vectors(config.word_vectors, config.word_vectors_sha256)
        limit = config.vocabulary_limit()
        index = self.kv.key_to_index  # frequency order for GloVe/word2vec files

        def common(word: str) -> bool:
            parts = word.replace("-", " ").split()
            return bool(parts) and word not in STOPWORDS and all(index.get(p, limit) < limit for p in parts)

        self._common = functools.lru_cache(maxsize=None)(common)
        self._vectors: dict[str, np.ndarray | None] = {}
        self.unfit = frozenset(imagenet_table_data().get("unfit_words", ()))
        self.decoded = frozenset(config.decoded_sources)

    def vector(self, word: str) -> np.ndarray | None:
        if word not in self._vectors:
            v = phrase_vector(self.kv, word)
            self._vectors[word] = None if v is None else v / max(float(np.linalg.norm(v)), 1e-12)
        return self._vectors[word]

    def candidates(self, tags: list[dict]) -> dict[str, list[tuple[str, float]]]:
        """Tag name -> [(implied word, agreement with this image)], best agreement first."""
        expandable = [t for t in tags if t["source"] in EXPANDABLE]
        weighted = [(float(t["score"]), v) for t in expandable if (v := self.vector(t["name"])) is not None]
        if not weighted:
            return {}
        evidence = np.sum([w * v for w, v in weighted], axis=0)
        evidence /= max(float(np.linalg.norm(evidence)), 1e-12)
        out = {}
        for t in expandable:
            if t["source"] in self.decoded:
                continue
            scored = []
            for word, relation in implied_words(t["name"]):
                if relation == "synonym" or word in ODD_WORDS or word in self.unfit:  # adds no information, or reads oddly
                    continue
                v = self.vector(word) if self._common(word) else None
                if v is not None:
                    scored.append((word, float(v @ evidence)))
            out[t["name"]] = sorted(scored, key=lambda p: -p[1])
        return out


STAGE = register(Stage(
    name=SOURCE, reads=("tags:tagger", "tags:detector", "tags:zero_shot"), writes=(f"tags:{SOURCE}",),
    build="transforms.handlers.expansion:build", options=ExpansionFlags, tag_source=SOURCE,
    colour="#2ca02c", quality="everyday", bench_batch=64,
))
