"""The shipped WordNet table: senses fixed by the models, implied words, exclusive kinds."""

from __future__ import annotations

import json
from pathlib import Path

from transforms.knowledge.lexicon import exclusive, imagenet_ancestor_words, implied_words, sense
from transforms.stages.detector import COCO80
from transforms.stages.everyday import embedded_dir
from transforms.stages.tagger import imagenet_table_data


def test_every_model_tag_word_has_one_sense():
    data = imagenet_table_data()
    names = set(data["classes"]) | set(data["groups"]) | set(COCO80)
    missing = sorted(n for n in names if sense(n) is None)
    assert len(missing) <= 0.02 * len(names), missing


def test_every_named_node_of_the_tagger_has_its_nodes_sense():
    """The tagger writes its hierarchy's named nodes too ("new world monkey"): each has the
    node's own synset (a class's, a group's or a COCO label's own sense wins where the word is
    one of those too), so contradictions and implications reach it."""
    data = imagenet_table_data()
    elsewhere = set(data["classes"]) | set(data["groups"]) | set(COCO80)
    named = {name: node["synset"] for name, node in data["nodes"].items() if node.get("synset")}
    assert len(named) > 200
    assert sorted(name for name in named if sense(name) is None) == []
    assert sorted(name for name, synset in named.items() if name not in elsewhere and sense(name).synset != synset) == []
    assert exclusive("plant", "new world monkey") and not exclusive("monkey", "new world monkey")
    assert [w for w, relation in implied_words("new world monkey") if relation == "hypernym"][:2] == ["monkey", "mammal"]


def test_every_everyday_head_word_with_a_noun_sense_has_its_sense():
    vocabulary = json.loads((Path(embedded_dir()) / "config.json").read_text())["vocabulary"]
    missing = sorted(w for w in vocabulary if sense(w) is None)
    assert missing == ["indoor"], "indoor is no noun; every other word the head writes needs a sense"
    assert sense("plant").synset == "plant.n.02" and sense("tree").synset == "tree.n.01"  # living things, not a factory
    assert exclusive("plant", "insect") and exclusive("tree", "animal") and not exclusive("plant", "flower")
    assert not exclusive("sky", "bird") and not exclusive("water", "fish")


def test_senses_are_the_ones_the_models_mean():
    assert sense("tie").synset == "necktie.n.01"  # not a draw, not a railway sleeper
    assert sense("mouse").synset == "mouse.n.04"  # the computer mouse of COCO
    assert sense("cup").synset == "cup.n.01"  # not ImageNet's class 'cup' (a punch)
    assert sense("cat").synset == "cat.n.01" and sense("tabby").synset == "tabby.n.01"


def test_implied_words_are_synonyms_and_hypernyms_only():
    words = {w for w, _ in implied_words("tabby")}
    assert {"cat", "animal"} <= words
    assert not words & {"dog", "kitten", "tiger", "tabby"}
    person = {w for w, _ in implied_words("person")}
    assert not person & {"man", "woman", "somebody", "someone", "soul", "mortal"}
    assert implied_words("qzxv") == []
    assert all(" of " not in w for n in ("tie", "chair", "coffee") for w, _ in implied_words(n))


def test_exclusive_kinds_of_living_things():
    assert exclusive("person", "monkey") and exclusive("cat", "dog") and exclusive("bird", "fox squirrel")
    assert not exclusive("cat", "animal") and not exclusive("tabby", "cat")
    assert not exclusive("person", "cup") and not exclusive("person", "unknownword")


def test_imagenet_classes_know_their_ancestor_words():
    words = imagenet_ancestor_words()
    classes = imagenet_table_data()["classes"]
    assert len(words) == 1000
    assert {"cat", "animal", "mammal"} <= set(words[classes.index("tabby")])
    assert {"beverage", "drink", "coffee"} <= set(words[classes.index("espresso")])
    assert "animal" not in words[classes.index("espresso")]
