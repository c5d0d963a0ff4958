"""The review stage: a reviewer's decisions act on every later run of the same pictures."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import tag
from tests.conftest import read_table
from transforms.handlers.review import apply
from transforms.knowledge.corrections import Correction


def _decision(**words) -> Correction:
    return Correction(uri="u", image_id="i", content_sha256="c", **{k: tuple(v) for k, v in words.items()})


def test_rejected_tags_and_boxes_go_and_reviewed_words_are_written_once():
    element = {"uri": "u", "image_id": "i", "tags": [
        {"name": "Cup", "score": 0.9, "source": "detector", "origin": None},
        {"name": "coffee", "score": 0.7, "source": "tagger", "origin": None},
        {"name": "mug", "score": 0.6, "source": "expansion", "origin": "coffee"}],
        "objects": [{"label": "cup", "score": 0.9, "box": [0, 0, 1, 1]}]}
    out = apply(element, _decision(rejected=["cup"], accepted=["coffee"], added=["espresso"]))
    assert [(t["name"], t["source"], t["score"]) for t in out["tags"]] == [
        ("mug", "expansion", 0.6), ("coffee", "review", 1.0), ("espresso", "review", 1.0)]
    assert out["objects"] == []
    assert apply(element, None) is element


def test_corrections_apply_in_a_tag_run_by_content_and_a_bad_file_is_refused(tmp_path, photos):
    coffee, cat = str(photos["coffee"]), str(photos["chelsea"])
    listing = tmp_path / "in.txt"
    listing.write_text(f"{coffee}\n{cat}\n")
    line = {"uri": "https://elsewhere/coffee.jpg", "image_id": "x",  # another URI: matched by content
            "content_sha256": hashlib.sha256(photos["coffee"].read_bytes()).hexdigest(),
            "rejected": ["cup"], "added": ["breakfast"], "reviewed": True, "time": "2026-12-02T00:00:00Z"}
    good = tmp_path / "c.jsonl"
    good.write_text(json.dumps(line) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    with pytest.raises(SystemExit, match=r"--corrections: .*bad\.jsonl:1: not JSON"):
        tag.run(["--input", str(listing), "--output", str(tmp_path / "refused"), "--allow_local_paths",
                 "--corrections", f"{good},{bad}"])
    assert not (tmp_path / "refused").exists()
    tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", "--quiet",
             "--corrections", str(good)])
    tag.run(["--input", str(listing), "--output", str(tmp_path / "plain"), "--allow_local_paths", "--quiet"])
    plain = {r["uri"]: r for r in read_table(tmp_path / "plain", "tags").to_pylist()}
    assert any(t["name"] == "cup" for t in plain[coffee]["tags"])  # what the reviewer rejected
    rows = {r["uri"]: r for r in read_table(tmp_path / "out", "tags").to_pylist()}
    coffee_tags = {(t["name"], t["source"]) for t in rows[coffee]["tags"]}
    assert ("breakfast", "review") in coffee_tags and not any(n == "cup" for n, _ in coffee_tags)
    assert all(o["label"] != "cup" for o in rows[coffee]["objects"] or [])
    assert not any(t["source"] == "review" for t in rows[cat]["tags"])  # another picture: untouched
    assert "review=corrections@" in rows[cat]["model_version"]
