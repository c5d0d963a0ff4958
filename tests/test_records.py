"""Record shapes: one tag per word in a written row, every source that wrote it kept."""

from __future__ import annotations

from transforms.core.records import merge_sources, new_element, to_tags_row


def test_a_word_written_by_two_sources_is_one_tag_with_both_sources():
    tags = [
        {"name": "person", "score": 0.62, "source": "tagger", "origin": None},
        {"name": "tie", "score": 0.9, "source": "detector", "origin": None},
        {"name": "Person", "score": 0.81, "source": "zero_shot", "origin": None},
        {"name": "person", "score": 0.3, "source": "expansion", "origin": "man"},
    ]
    merged = merge_sources(tags)
    assert [t["name"] for t in merged] == ["Person", "tie"]
    person = merged[0]
    assert person["score"] == 0.81 and person["source"] == "zero_shot"
    assert person["sources"] == ["zero_shot", "tagger", "expansion"]
    assert merge_sources(merged) == merged, "merging twice changes nothing"


def test_written_rows_carry_merged_tags():
    element = {**new_element("http://x/a.jpg"), "width": 4, "height": 3, "tags": [
        {"name": "cat", "score": 0.9, "source": "tagger", "origin": None},
        {"name": "cat", "score": 0.7, "source": "detector", "origin": None}]}
    row = to_tags_row(element, "m")
    assert row["tags"] == [{"name": "cat", "score": 0.9, "source": "tagger", "origin": None,
                            "sources": ["tagger", "detector"]}]
