"""Dataset readers on the real MIRFLICKR file layout (synthetic content) and labelled lists."""

from __future__ import annotations

import json

import pytest

from pipeline.training.datasets import assign_split, read_labelled_list, read_mirflickr
from tests.synthetic_mirflickr import make_dataset


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirflickr")
    truth = make_dataset(root, n=40, seed=1)
    return root, truth


def test_annotated24_labels_match_the_annotation_files(mini):
    root, truth = mini
    examples = read_mirflickr(str(root), "annotated24")
    assert len(examples) == 40
    by_number = {int(e["uri"].rsplit("im", 1)[1].split(".")[0]): e for e in examples}
    for number, labels in truth.items():
        assert by_number[number]["labels"] == labels
    assert by_number[1]["uri"].endswith("mirflickr/im1.jpg")


def test_annotated38_adds_r1_subsets(mini):
    root, truth = mini
    labels = {lab for e in read_mirflickr(str(root), "annotated38") for lab in e["labels"]}
    assert {"sea_r1", "car_r1"} & labels
    assert not any(lab.endswith("_r1") for e in read_mirflickr(str(root)) for lab in e["labels"])


def test_user_tags_respect_the_frequency_cut(mini):
    root, _ = mini
    examples = read_mirflickr(str(root), "user_tags", min_tag_count=5)
    counts = {}
    for e in examples:
        for t in e["labels"]:
            counts[t] = counts.get(t, 0) + 1
    assert counts and min(counts.values()) >= 5
    assert "blue" in counts


def test_paper_split_last_images_are_test(mini):
    root, _ = mini
    splits = {int(e["uri"].rsplit("im", 1)[1].split(".")[0]): e["split"] for e in read_mirflickr(str(root))}
    assert all(splits[n] == "test" for n in range(33, 41))
    assert all(splits[n] in ("train", "val") for n in range(1, 33))
    assert assign_split(20001, 25000, "im20001", 0.2, 0.2) == "test"
    assert assign_split(20000, 25000, "im20000", 0.2, 0.2) in ("train", "val")


def test_missing_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="im\\*.jpg"):
        read_mirflickr(str(tmp_path))


def test_labelled_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "l.csv"
    csv_path.write_text('url,tags,split\n/a.jpg,"cat;pet",train\n/b.jpg,dog|Pet,\n,x,train\n')
    got = read_labelled_list(str(csv_path))
    assert got[0] == {"uri": "/a.jpg", "labels": ["cat", "pet"], "split": "train"}
    assert got[1]["labels"] == ["dog", "pet"] and got[1]["split"] in ("train", "val", "test")
    assert len(got) == 2
    jl = tmp_path / "l.jsonl"
    jl.write_text(json.dumps({"uri": "/c.jpg", "tags": ["Sky", "sea"], "split": "test"}) + "\n")
    assert read_labelled_list(str(jl)) == [{"uri": "/c.jpg", "labels": ["sea", "sky"], "split": "test"}]
