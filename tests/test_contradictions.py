"""A tag that a likely tag of another kind of living thing contradicts needs evidence of its own
(transforms/knowledge/contradictions.py)."""

from __future__ import annotations

from transforms.core.registry import own_evidence, registered
from transforms.knowledge.contradictions import (
    CONTRADICTS,
    SURE,
    WEAK,
    drop_contradicted,
    without_contradicted,
)

EVIDENCE = {"detector": None, "everyday": None, "tagger": frozenset({"bee", "ladybug", "tabby"})}


def tag(name: str, score: float, source: str = "tagger") -> dict:
    return {"name": name, "score": score, "source": source, "origin": None}


def names(tags: list[dict]) -> list[str]:
    return [t["name"] for t in without_contradicted(tags, evidence=EVIDENCE)]


def test_pooled_animal_words_beside_a_sure_plant_are_dropped_and_the_rest_kept():
    marigold = [tag("animal", 0.78), tag("insect", 0.71), tag("plant", 0.97, "everyday"), tag("sky", 0.55)]
    assert names(marigold) == ["plant", "sky"], "sky is no living thing"
    assert names([tag("animal", 0.55, "everyday"), tag("flower", 0.9, "everyday")]) == ["flower"], "a coin flip"


def test_pooled_mass_as_likely_as_the_plant_beside_it_is_dropped():
    """Bamboo held out of every fit (docs/QUALITY.md, twelfth step): the tagger pools 0.83 of
    "animal" over monkeys in foliage, no class of its own, beside the everyday head's plant."""
    bamboo = [tag("animal", 0.83), tag("mammal", 0.81), tag("plant", 0.80, "everyday"), tag("primate", 0.74),
              tag("monkey", 0.72)]
    assert names(bamboo) == ["plant"]
    assert names([{**t, "score": 0.7} if t["name"] == "plant" else t for t in bamboo]) == [t["name"] for t in bamboo], \
        "a plant no likelier than 0.7 contradicts nothing"


def test_a_second_subject_with_evidence_of_its_own_is_kept_with_the_words_above_it():
    egret_by_a_lake = [tag("bird", 0.64, "detector"), tag("animal", 0.62), tag("plant", 0.97, "everyday")]
    assert names(egret_by_a_lake) == ["bird", "animal", "plant"], "a box, and the word above it"
    ladybird = [tag("ladybug", 0.82), tag("insect", 0.7), tag("animal", 0.66), tag("plant", 0.91, "everyday")]
    assert names(ladybird) == ["ladybug", "insect", "animal", "plant"], "one class the model recognises"
    bee_on_aster = [tag("bee", 0.9), tag("flower", 0.9, "everyday")]
    assert names(bee_on_aster) == ["bee", "flower"], "a sure second subject is kept"
    nuthatch = [tag("animal", 0.99, "everyday"), tag("plant", 0.98, "everyday"), tag("bird", 0.64)]
    assert names(nuthatch) == ["animal", "plant", "bird"], "a kind of the sure animal: the animal is there"
    giraffes = [tag("plant", 0.88, "everyday"), tag("animal", 0.81, "everyday"), tag("mammal", 0.71),
                tag("giraffe", 0.54, "detector")]
    assert names(giraffes) == ["plant", "animal", "mammal", "giraffe"], "below the everyday head's animal"
    heron_in_reeds = [tag("animal", 0.93, "everyday"), tag("plant", 0.83, "everyday")]
    assert names(heron_in_reeds) == ["animal", "plant"], "the everyday head learned plants beside animals"
    cat = [tag("cat", 0.96, "detector"), tag("tabby", 0.52), tag("mammal", 0.55)]
    assert names(cat) == ["cat", "tabby", "mammal"], "a kind of the sure word, or a word above it, never contradicts it"


def test_a_likely_word_its_source_did_not_write_contradicts_and_stays_unwritten():
    """Plants held out of every fit (docs/QUALITY.md, sixteenth step): the head's "plant" is 0.85
    on a marigold, below the 0.96 floor it is written from, and the pooled "animal, insect" beside
    it is still the models' confusion."""
    marigold = {"uri": "u", "tags": [tag("animal", 0.78), tag("insect", 0.71), tag("sky", 0.55)],
                "likely": [tag("plant", 0.85, "everyday")]}
    out = drop_contradicted(marigold, evidence=EVIDENCE)
    assert [t["name"] for t in out["tags"]] == ["sky"] and "likely" not in out, "never written"
    below = {**marigold, "likely": [tag("plant", CONTRADICTS - 0.01, "everyday")]}
    assert [t["name"] for t in drop_contradicted(below, evidence=EVIDENCE)["tags"]] == ["animal", "insect", "sky"]
    ladybird = {**marigold, "tags": [tag("ladybug", 0.82), tag("insect", 0.7)]}
    assert [t["name"] for t in drop_contradicted(ladybird, evidence=EVIDENCE)["tags"]] == ["ladybug", "insect"], \
        "evidence of its own, and the word above it"


def test_the_bounds_and_a_reviewers_word():
    box = tag("dog", WEAK, "detector")
    assert names([tag("person", CONTRADICTS), box]) == ["person", "dog"]
    assert names([tag("person", CONTRADICTS), {**box, "score": WEAK - 0.01}]) == ["person"]
    assert names([tag("person", CONTRADICTS - 0.01), {**box, "score": WEAK - 0.01}]) == ["person", "dog"]
    person = tag("person", CONTRADICTS, "everyday")
    assert names([person, tag("dog", SURE - 0.01)]) == ["person"], "pooled evidence needs a sure word"
    assert names([person, tag("dog", SURE)]) == ["person", "dog"]
    assert names([tag("person", CONTRADICTS), tag("dog", SURE - 0.01)]) == [], "two pooled words: neither holds"
    reviewed = [tag("person", 0.99), {**tag("dog", 0.55, "tagger"), "sources": ["tagger", "review"]}]
    assert without_contradicted(reviewed, keep_sources=("review",), evidence=EVIDENCE) == reviewed


def test_the_stages_declare_their_evidence():
    evidence = own_evidence(registered())
    assert evidence["detector"] is None and evidence["everyday"] is None, "every box, every everyday word"
    assert {"ladybug", "bee", "tabby"} <= evidence["tagger"] and not {"animal", "insect", "dog"} & evidence["tagger"]
    assert "expansion" not in evidence and "zero_shot" not in evidence
