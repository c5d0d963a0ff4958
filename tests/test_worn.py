"""The worn stage: what every person shown wears, at the photo's person chance."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import tag
from tests.conftest import read_table
from transforms.core import registry
from transforms.core.records import merge_sources
from transforms.stages.worn import SOURCE, person_chance, worn_tags


def _tag(name: str, score: float, source: str) -> dict:
    return {"name": name, "score": score, "source": source, "origin": None}


def test_worn_words_take_the_best_person_chance_and_need_a_person():
    tags = [_tag("person", 0.7, "detector"), _tag("People", 0.8, "everyday"), _tag("dog", 0.99, "tagger")]
    assert person_chance(tags) == 0.8, "a group is persons too"
    assert [(t["name"], t["score"], t["source"], t["origin"]) for t in worn_tags(tags, ("clothing", "garment"))] == [
        ("clothing", 0.8, SOURCE, "person"), ("garment", 0.8, SOURCE, "person")]
    assert person_chance([_tag("scuba diver", 0.9, "tagger"), *tags]) == 0.9, "a kind of person is a person"
    assert worn_tags([_tag("dog", 0.99, "tagger")], ("clothing",)) == [], "no person, nothing worn"
    sure = _tag("clothing", 0.9, "tagger")  # a sweater the classifier is sure of keeps its own claim
    [merged] = [t for t in merge_sources([sure, *worn_tags(tags, ("clothing",))]) if t["name"] == "clothing"]
    assert (merged["score"], merged["source"], merged["sources"]) == (0.9, "tagger", ["tagger", SOURCE])


def test_it_runs_after_every_stage_that_writes_a_person_word_and_before_the_review():
    order = [s.name for s in registry.registered()]
    for writer in ("detector", "zero_shot", "expansion", "learned", "everyday"):
        assert order.index(writer) < order.index(SOURCE), writer
    assert order.index(SOURCE) < order.index("review"), "a reviewer's rejection wins"


@pytest.fixture()
def astronaut(tmp_path, photos):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['astronaut']}\n{photos['chelsea']}\n")
    return listing


def _tags(tmp_path, listing, name: str, *extra: str) -> dict[str, dict[str, dict]]:
    tag.run(["--input", str(listing), "--output", str(tmp_path / name), "--allow_local_paths", "--quiet", *extra])
    return {r["uri"].rsplit("/", 1)[-1]: {t["name"]: t for t in r["tags"]} for r in read_table(tmp_path / name, "tags").to_pylist()}


def test_a_tag_run_writes_clothing_on_a_person_unless_turned_off_or_rejected(tmp_path, photos, astronaut):
    rows = _tags(tmp_path, astronaut, "out")
    person, cat = rows["astronaut.png"], rows["chelsea.png"]
    assert person["clothing"]["score"] == pytest.approx(person["person"]["score"]) and person["clothing"]["source"] == SOURCE
    assert "clothing" not in cat and "garment" not in cat
    assert "clothing" not in _tags(tmp_path, astronaut, "off", "--worn_words", "")["astronaut.png"]
    line = {"uri": str(photos["astronaut"]), "image_id": "x", "rejected": ["clothing"], "reviewed": True,
            "content_sha256": hashlib.sha256(photos["astronaut"].read_bytes()).hexdigest(), "time": "2026-12-05T00:00:00Z"}
    (tmp_path / "c.jsonl").write_text(json.dumps(line) + "\n")
    reviewed = _tags(tmp_path, astronaut, "reviewed", "--corrections", str(tmp_path / "c.jsonl"))["astronaut.png"]
    assert "clothing" not in reviewed and "garment" in reviewed


def test_a_worn_word_that_is_not_a_word_is_refused_at_launch(tmp_path, astronaut):
    with pytest.raises(SystemExit) as exc:
        tag.run(["--input", str(astronaut), "--output", str(tmp_path / "out"), "--allow_local_paths",
                 "--worn_words", "clothing,../hat"])
    assert "--worn_words: '../hat' is not a lower-case word" in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()
