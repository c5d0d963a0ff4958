"""Expansion (the paper's zero-shot step) on the real embedded GloVe vectors: the precise
(WordNet-implied) default and the paper's nearest-word method."""

from __future__ import annotations

import json

import pytest

from pipeline.flags import defaults
from transforms.handlers.expansion import ExpansionHandler
from transforms.knowledge.lexicon import implied_words
from transforms.stages.expansion import ExpansionConfig, expand_tags, is_variant, stem
from transforms.stages.tagger import imagenet_table_data

NEAREST = ExpansionConfig(method="nearest")


def _tag(name, score, source="tagger"):
    return {"name": name, "score": score, "source": source, "origin": None}


def _expand(handler, model, tags):
    out = handler.run_inference([{"uri": "u", "image_id": "i", "tags": tags}], model)
    return [t for t in out[0]["tags"] if t["source"] == "expansion"]


@pytest.fixture(scope="module")
def handler_and_model():
    handler = ExpansionHandler(NEAREST)
    return handler, handler.load_model()


@pytest.fixture(scope="module")
def precise():
    handler = ExpansionHandler(ExpansionConfig())
    return handler, handler.load_model()


def test_precise_adds_only_what_the_tag_implies(precise):
    added = _expand(*precise, [_tag("cat", 0.9, "detector")])
    implied = {w for w, _ in implied_words("cat")}
    assert added and {t["name"] for t in added} <= implied
    assert {t["name"] for t in added} & {"animal", "mammal"}
    assert not {t["name"] for t in added} & {"dog", "rabbit", "bird", "kitten", "true cat"}
    for t in added:  # implied by the origin: as likely as the origin
        assert t["origin"] == "cat" and t["score"] == pytest.approx(0.9)


def test_precise_never_writes_a_word_the_taggers_table_calls_unfit(precise):
    unfit = set(imagenet_table_data()["unfit_words"])
    assert {"feline", "carnivore", "bovine", "dwelling", "house"} <= unfit
    assert {"feline", "carnivore"} <= {w for w, _ in implied_words("cat")}, "cat implies them in WordNet"
    added = {t["name"] for t in _expand(*precise, [_tag("cat", 0.9, "detector"), _tag("cow", 0.9, "detector")])}
    assert added and not added & unfit


def test_precise_leaves_the_embedded_taggers_tags_to_its_own_hierarchy(precise, tmp_path):
    handler, model = precise
    # The embedded tagger decodes over WordNet itself: "animal" and "mammal" were its own calls.
    assert _expand(handler, model, [_tag("tabby", 0.9)]) == []
    assert "+expands:detector," in handler.model_version(), "rows say whose tags were expanded"
    trained = ExpansionHandler(ExpansionConfig(decoded_sources=()))  # a TaggerNet's words are not decoded
    assert "+expands:tagger/detector," in trained.model_version()
    assert {t["name"] for t in _expand(trained, trained.load_model(), [_tag("tabby", 0.9)])} & {"cat", "animal"}
    assert ExpansionConfig.from_options(defaults()).decoded_sources == ("tagger",)
    from transforms.output import model_folder

    model_folder.publish(str(tmp_path), {"config.json": json.dumps({"labels": ["sea", "dog"]}).encode()}, "test")
    assert ExpansionConfig.from_options(defaults(tagger_model=str(tmp_path))).decoded_sources == ()
    model_folder.publish(str(tmp_path), {"config.json": json.dumps({"labels": ["landmark"], "role": "adds"}).encode()},
                         "test")
    assert ExpansionConfig.from_options(defaults(tagger_model=str(tmp_path))).decoded_sources == ("tagger",)


def test_precise_never_adds_siblings_senses_or_exclusive_pairs(precise):
    trained = ExpansionHandler(ExpansionConfig(decoded_sources=()))
    added = {t["name"] for t in _expand(trained, trained.load_model(), [
        _tag("person", 0.9), _tag("tie", 0.8, "detector"), _tag("coffee", 0.9), _tag("cup", 0.8, "detector")])}
    assert not added & {"man", "woman", "somebody", "someone", "straight", "round", "beer", "wine",
                        "championship", "champions", "tea"}
    assert added & {"beverage", "necktie", "neckwear", "garment"}


def test_precise_expands_confident_tags_only_and_needs_image_agreement(precise):
    handler, model = precise
    assert _expand(handler, model, [_tag("cat", 0.6, "detector")]) == []  # below the origin floor (0.7)
    loose = ExpansionHandler(ExpansionConfig(min_origin_score=0.0))
    assert _expand(loose, model, [_tag("cat", 0.6, "detector")])
    strict = ExpansionHandler(ExpansionConfig(min_similarity=0.99))
    assert _expand(strict, model, [_tag("cat", 0.9, "detector")]) == []


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown expansion method"):
        ExpansionHandler(ExpansionConfig(method="magic")).load_model()


def test_stem_and_variants():
    assert stem("cats") == stem("cat") == "cat"
    assert stem("berries") == "berry"
    assert stem("glass") == "glass"
    assert is_variant("cats", "cat") and is_variant("cat", "tiger cat")
    assert is_variant("tied", "tie") and is_variant("buses", "bus")
    assert is_variant("tabby cat", "tabby") and is_variant("true cat", "cat")
    assert not is_variant("dog", "cat") and not is_variant("catapult", "cat")


def test_nearest_cat_expands_to_related_animals(handler_and_model):
    handler, model = handler_and_model
    out = handler.run_inference([{"uri": "u", "image_id": "i", "tags": [_tag("cat", 0.9)]}], model)
    added = [t for t in out[0]["tags"] if t["source"] == "expansion"]
    assert len(added) == 2
    names = {t["name"] for t in added}
    assert names & {"dog", "rabbit", "cats", "kitten", "pet", "monkey"} - {"cats"}
    for t in added:
        assert t["origin"] == "cat" and 0 < t["score"] < 0.9


def test_no_duplicates_and_no_plural_variants():
    neighbours = {
        "dog": [("dogs", 0.9), ("cat", 0.88), ("puppy", 0.8), ("puppies", 0.79), ("pet", 0.7)],
        "cat": [("dog", 0.92), ("kitten", 0.8), ("kittens", 0.79)],
    }
    tags = [_tag("dog", 0.8), _tag("cat", 0.5)]
    out = expand_tags(tags, neighbours, ExpansionConfig(method="nearest", per_tag=2, min_similarity=0.5))
    names = [t["name"] for t in out]
    assert names[:2] == ["dog", "cat"]
    assert sorted(names[2:]) == ["kitten", "pet", "puppy"]
    assert len(names) == len(set(names))


def test_zero_shot_tags_are_not_expanded_and_low_similarity_is_cut():
    neighbours = {"sky": [("clouds", 0.4)], "beach": [("sand", 0.8)]}
    tags = [_tag("sky", 0.9), _tag("beach", 0.5, source="zero_shot")]
    out = expand_tags(tags, neighbours, ExpansionConfig(method="nearest", per_tag=2, min_similarity=0.5))
    assert out == tags


def test_neighbours_are_memoised_and_batched(handler_and_model):
    _, model = handler_and_model
    first = model.lookup(["espresso", "motorcycle", "zqxjkvw"])
    assert first["zqxjkvw"] == []
    assert model.lookup(["espresso"])["espresso"] is first["espresso"]
    top5 = {w for w, _ in first["espresso"][:5]}
    assert {"cappuccino", "latte", "coffee"} & top5


def test_hub_words_are_not_expansions(handler_and_model):
    handler, model = handler_and_model
    out = handler.run_inference([{"uri": "u", "image_id": "i", "tags": [_tag("person", 0.9)]}], model)
    added = {t["name"] for t in out[0]["tags"] if t["source"] == "expansion"}
    assert added and not added & {"actually", "knowing", "exactly"}
    nohub = ExpansionHandler(ExpansionConfig(method="nearest", mutual_k=0))
    raw = nohub.run_inference([{"uri": "u", "image_id": "i", "tags": [_tag("person", 0.9)]}], nohub.load_model())
    assert {t["name"] for t in raw[0]["tags"] if t["source"] == "expansion"} & {"actually", "knowing"}
