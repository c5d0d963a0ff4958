"""A model folder is published whole and read back only when it matches its manifest
(transforms/output/model_folder.py), and the tag job refuses a broken one at launch."""

from __future__ import annotations

import json

import pytest

from pipeline import tag
from transforms.core.launch import LaunchError
from transforms.output import model_folder
from transforms.stages.tagger import check_model_folder
from transforms.stages.taggernet import build_taggernet, taggernet_files

CONFIG = {"role": "adds", "vocabulary": ["pet"], "thresholds": [0.5], "feature_dim": 4, "hidden": 2,
          "dropout": 0.0, "backbone": "x"}
GOOD_LINE = json.dumps({"image_id": "a", "added": ["pet"], "time": "2026-12-01T00:00:00Z"}) + "\n"


def _publish(folder, corrections: str = GOOD_LINE * 3) -> None:
    files = taggernet_files(build_taggernet(4, 1, 2, 0.0), CONFIG)
    model_folder.publish(str(folder), {**files, "corrections.jsonl": corrections.encode()}, "test")


def test_a_published_folder_verifies_and_leaves_no_staging(tmp_path):
    _publish(tmp_path / "m")
    manifest = model_folder.verify(str(tmp_path / "m"))
    assert set(manifest) == {"model.pt", "config.json", "corrections.jsonl"}
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json", "corrections.jsonl", "manifest.json", "model.pt"]
    check_model_folder(str(tmp_path / "m"))


@pytest.mark.parametrize("damage", ["truncated-corrections", "new-weights", "no-manifest", "manifest-paths",
                                    "bad-line"])
def test_a_damaged_folder_is_refused_at_launch_in_one_line(tmp_path, photos, damage):
    model = tmp_path / "m"
    _publish(model)
    if damage == "truncated-corrections":
        text = (model / "corrections.jsonl").read_text()
        (model / "corrections.jsonl").write_text(text[: len(text) // 2])
    elif damage == "new-weights":
        (model / "model.pt").write_bytes(taggernet_files(build_taggernet(4, 2, 2, 0.0), CONFIG)["model.pt"])
    elif damage == "no-manifest":
        (model / "manifest.json").unlink()
    elif damage == "manifest-paths":
        (model / "manifest.json").write_text(json.dumps({"files": {"../../etc/passwd": {"sha256": "0" * 64}}}))
    else:  # published whole, but a line fails the corrections' checks
        _publish(model, GOOD_LINE + json.dumps({"image_id": "b", "reviewed": "false"}) + "\n")
    with pytest.raises(LaunchError) as info:
        check_model_folder(str(model))
    assert "\n" not in str(info.value)
    if damage == "bad-line":
        assert "corrections.jsonl:2" in str(info.value)
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photos["chelsea"]), "--output", str(tmp_path / "out"), "--tagger_model", str(model)])
    assert str(info.value).startswith("image-tagger tag: --tagger_model") and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
