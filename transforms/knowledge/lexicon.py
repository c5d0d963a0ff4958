"""What a tag word implies, from WordNet, read from a table shipped with the package.

The table (transforms/data/wordnet_tags.json, made by tools/build_wordnet_table.py) ties every
tag word of the embedded tagger, the COCO detector and MIRFLICKR's concepts to one WordNet
sense, with its synonyms, its hypernyms nearest first and the ids of all its ancestors. The
sense is fixed by the model (an ImageNet class *is* a WordNet synset), so the words a tag
implies are true whenever the tag is: a cat is a feline, a mammal and an animal; it is never
a dog (a sibling) and "person" is never both "man" and "woman" (hyponyms). Workers need
neither NLTK nor the WordNet database.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

ORGANISM = "organism.n.01"


@dataclass(frozen=True)
class Sense:
    synset: str
    synonyms: tuple[str, ...]
    hypernyms: tuple[str, ...]
    ancestors: frozenset[str]


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("transforms").joinpath("data/wordnet_tags.json").read_text())


@functools.lru_cache(maxsize=4096)
def sense(word: str) -> Sense | None:
    """The sense a tag word has in this product, or None for words outside the table."""
    entry = _table()["words"].get(word.lower())
    if entry is None:
        return None
    return Sense(entry["synset"], tuple(entry["synonyms"]), tuple(entry["hypernyms"]),
                 frozenset(entry["ancestors"]))


def implied_words(word: str) -> list[tuple[str, str]]:
    """(word, relation) pairs that are true whenever ``word`` is: synonyms, then hypernyms
    nearest first."""
    s = sense(word)
    if s is None:
        return []
    return [(w, "synonym") for w in s.synonyms] + [(w, "hypernym") for w in s.hypernyms]


def imagenet_ancestor_words() -> list[list[str]]:
    """For each ImageNet-1k class (model order): its own and its ancestors' words."""
    return _table()["imagenet_ancestor_words"]


def is_kind_of(word: str, kind: str) -> bool:
    """True when ``word`` names ``kind`` or a kind of it (tabby -> cat). Unknown words: False."""
    sw, sk = sense(word), sense(kind)
    return sw is not None and sk is not None and (sw.synset == sk.synset or sk.synset in sw.ancestors)


def exclusive(a: str, b: str) -> bool:
    """True when one thing cannot be both: two different kinds of living thing, neither a kind
    of the other (cat/dog, person/monkey, bird/squirrel). Unknown words are never exclusive."""
    sa, sb = sense(a), sense(b)
    if sa is None or sb is None or ORGANISM not in sa.ancestors or ORGANISM not in sb.ancestors:
        return False
    return not is_kind_of(a, b) and not is_kind_of(b, a)
