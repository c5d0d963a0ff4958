"""A reviewer's corrections file: parsed strictly, merged with the latest decision per picture."""

from __future__ import annotations

import json

import pytest

from transforms.knowledge import corrections


def _line(**fields) -> str:
    base = {"uri": "https://x/a.jpg", "image_id": "i1", "content_sha256": "c" * 64, "accepted": [],
            "rejected": [], "added": [], "reviewed": False, "reviewer": "ada", "time": "2026-12-01T10:00:00Z"}
    return json.dumps({**base, **fields})


def test_words_are_normalised_and_a_word_both_added_and_rejected_counts_as_added(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(_line(accepted=["Cat "], rejected=["dog", "Garden  Shed"], added=["garden shed", "garden shed"]) + "\n\n")
    (c,) = corrections.read_lines([str(path)])
    assert c.added == ("garden shed",) and c.positives == {"cat", "garden shed"} and c.negatives == {"dog"}
    assert corrections.parse_line(c.to_json(), "round trip") == c


def test_the_latest_decision_per_picture_wins_across_files(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(_line(rejected=["dog"], time="2026-12-01T10:00:00Z") + "\n"
                     + _line(image_id="i2", content_sha256="", added=["shed"]) + "\n")
    second.write_text(_line(uri="https://mirror/a.jpg", image_id="i9", added=["dog"], time="2026-12-02T09:00:00Z") + "\n"
                      + _line(rejected=["cat"], time="2026-11-30T00:00:00Z") + "\n")  # older: loses
    merged = corrections.read([str(first), str(second)])
    assert set(merged) == {"c" * 64, "i2"}  # keyed by content, else image_id
    assert merged["c" * 64].added == ("dog",) and merged["c" * 64].uri == "https://mirror/a.jpg"


@pytest.mark.parametrize("text,message", [
    ("not json", "not JSON"),
    ("[1]", "an object per line"),
    (json.dumps({"added": ["x"]}), "content_sha256 or image_id"),
    (json.dumps({"image_id": "i", "added": "x"}), "added must be a list"),
    (json.dumps({"image_id": "i", "added": ["x" * 101]}), "longer than 100"),
    # Hostile round 4, class 9: every field is checked for its type and content.
    (json.dumps({"image_id": "i", "reviewed": "false"}), "reviewed must be true or false"),
    (json.dumps({"image_id": "i", "reviewed": 0}), "reviewed must be true or false"),
    (json.dumps({"image_id": "i", "time": "zzz"}), "not an ISO 8601 time"),
    (json.dumps({"image_id": "i", "time": "2026-12-01T10:00:00"}), "no time zone"),
    (json.dumps({"image_id": "i", "added": ["\x1b[31mred"]}), "invisible character U\\+001B"),
    (json.dumps({"image_id": "i", "added": ["gro\u202eup"]}), "invisible character U\\+202E"),
    (json.dumps({"image_id": "i", "rejected": ["a\x00b"]}), "invisible character U\\+0000"),
    (json.dumps({"image_id": "i\u2066", "added": ["x"]}), "image_id holds the invisible"),
    (json.dumps({"image_id": 7, "added": ["x"]}), "image_id must be a string"),
    (json.dumps({"content_sha256": "../../x", "added": ["x"]}), "64 lower-case hex"),
    (json.dumps({"image_id": "i", "group": ["a"]}), "group must be a string"),
    (json.dumps({"image_id": "i", "group": "g" * 101}), "group is longer than 100"),
    (json.dumps({"image_id": "i", "group": "a\u202eb"}), "group holds the invisible character U\\+202E"),
])
def test_a_bad_line_is_refused_with_its_file_and_line(tmp_path, text, message):
    path = tmp_path / "c.jsonl"
    path.write_text(_line() + "\n" + text + "\n")
    with pytest.raises(ValueError, match=rf"c\.jsonl:2: .*{message}"):
        corrections.read([str(path)])


def test_times_compare_as_instants_not_as_text(tmp_path):
    """A later decision in another time zone wins; "zzz" can no longer win every comparison."""
    path = tmp_path / "c.jsonl"
    path.write_text(_line(added=["late"], time="2026-12-01T12:00:00+02:00") + "\n"   # 10:00 UTC
                    + _line(added=["later"], time="2026-12-01T10:30:00Z") + "\n")
    assert corrections.read([str(path)])["c" * 64].added == ("later",)


def test_a_group_decides_the_fold_and_survives_a_round_trip(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(_line(group="album 7") + "\n" + _line(content_sha256="d" * 64) + "\n")
    grouped, plain = corrections.read_lines([str(path)])
    assert grouped.group == "album 7" and grouped.fold_key == "group:album 7"
    assert plain.group == "" and plain.fold_key == "d" * 64, "without a group, the picture decides"
    assert corrections.parse_line(grouped.to_json(), "round trip") == grouped
