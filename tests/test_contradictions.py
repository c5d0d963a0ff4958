"""A coin-flip tag that a sure tag of another kind of living thing contradicts is not written
(transforms/knowledge/contradictions.py)."""

from __future__ import annotations

from transforms.knowledge.contradictions import SURE, WEAK, without_contradicted


def tag(name: str, score: float, source: str = "tagger") -> dict:
    return {"name": name, "score": score, "source": source, "origin": None}


def test_a_weak_animal_beside_a_sure_flower_is_dropped_and_the_rest_kept():
    tags = [tag("animal", 0.51), tag("flower", 0.88, "everyday"), tag("plant", 0.93, "everyday"), tag("sky", 0.55)]
    assert [t["name"] for t in without_contradicted(tags)] == ["flower", "plant", "sky"], "sky is no living thing"


def test_two_sure_kinds_share_a_photo_and_a_kind_of_the_sure_one_stays():
    bee_on_aster = [tag("bee", 0.9), tag("flower", 0.9, "everyday")]
    assert without_contradicted(bee_on_aster) == bee_on_aster, "a sure second subject is kept"
    cat = [tag("cat", 0.96, "detector"), tag("tabby", 0.52), tag("mammal", 0.55)]
    assert without_contradicted(cat) == cat, "a kind of the sure word, or a word above it, never contradicts it"


def test_the_bounds_and_a_reviewers_word():
    assert without_contradicted([tag("person", SURE), tag("dog", WEAK)]) == [tag("person", SURE), tag("dog", WEAK)]
    assert without_contradicted([tag("person", SURE), tag("dog", WEAK - 0.01)]) == [tag("person", SURE)]
    reviewed = [tag("person", 0.99), {**tag("dog", 0.55, "tagger"), "sources": ["tagger", "review"]}]
    assert without_contradicted(reviewed, keep_sources=("review",)) == reviewed
