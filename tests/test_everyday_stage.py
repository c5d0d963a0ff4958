"""The everyday stage (transforms/stages/everyday.py): TaggerNet's everyday head, on by default,
its model folder read as untrusted data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from transforms.core.launch import LaunchError
from transforms.stages.everyday import EMBEDDED, OFF, EverydayFlags, embedded_dir
from transforms.stages.taggernet import LoadedTagger, MLPTaggerConfig, calibration_maps, read_config


def test_the_embedded_head_is_on_by_default_and_none_turns_it_off():
    assert EverydayFlags().everyday_model == EMBEDDED
    assert EverydayFlags().model_dir() == embedded_dir()
    assert EverydayFlags(everyday_model=OFF).model_dir() is None
    config = read_config(embedded_dir())  # verified against its manifest
    assert config["role"] == "adds" and {"person", "sky", "building"} <= set(config["vocabulary"])
    assert len(config["thresholds"]) == len(config["vocabulary"])


def test_a_folder_that_is_not_a_learned_model_is_refused_at_launch(tmp_path):
    with pytest.raises(LaunchError, match="--everyday_model"):
        EverydayFlags(everyday_model=str(tmp_path / "missing")).check()
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(LaunchError, match="--everyday_model") as raised:
        EverydayFlags(everyday_model=str(folder)).check()
    assert "\n" not in str(raised.value)


def test_the_embedded_head_is_checked_whole_at_launch(tmp_path, monkeypatch):
    import shutil

    from transforms.stages import everyday

    EverydayFlags().check()
    broken = tmp_path / "everyday"
    shutil.copytree(embedded_dir(), broken)
    (broken / "model.pt").unlink()  # an install that lost the weights
    monkeypatch.setattr(everyday, "embedded_dir", lambda: str(broken))
    with pytest.raises(LaunchError, match="--everyday_model .*model.pt") as raised:
        EverydayFlags().check()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("bad", [{"a": "1", "b": 0}, {"a": float("nan"), "b": 0}, {"a": True, "b": 0}, [1, 2]])
def test_calibration_maps_are_numbers_never_anything_else(bad):
    config = {"vocabulary": ["sky"], "calibration": {"a": 1.0, "b": 0.0}, "word_calibration": [bad]}
    with pytest.raises(ValueError):
        calibration_maps(config)
    with pytest.raises(ValueError, match="one map"):
        calibration_maps({**config, "word_calibration": [None, None]})


def test_each_word_takes_its_own_map_or_the_pooled_one():
    a, b = calibration_maps({"vocabulary": ["sky", "tree"], "calibration": {"a": 2.0, "b": -1.0},
                             "word_calibration": [{"a": 0.5, "b": 0.25}, None]})
    assert a.tolist() == [0.5, 2.0] and b.tolist() == [0.25, -1.0]


def test_the_stage_writes_its_words_with_source_everyday():
    handler, model = _head(["sky", "tree"])
    model.maps = calibration_maps({**model.config, "word_calibration": [None, {"a": 1.0, "b": -30.0}]})
    [out] = handler.infer([{"uri": "u", "tags": [], "features": np.array([1.0, 1.0], np.float32)}], model)
    assert [(t["name"], t["source"]) for t in out["tags"]] == [("sky", "everyday")], "tree's own map keeps it out"


def test_a_likely_word_below_its_floor_is_passed_on_for_the_contradiction_check_only():
    from transforms.knowledge.contradictions import CONTRADICTS

    handler, model = _head(["plant", "sky", "tree"])
    model.thresholds = np.array([0.99, 0.5, 0.5], np.float32)  # plant's precision-first floor above its chance
    model.maps = calibration_maps({**model.config, "word_calibration": [{"a": 1.0, "b": -8.2}, None,
                                                                        {"a": 1.0, "b": -30.0}]})
    element = {"uri": "u", "tags": [], "likely": [{"name": "x", "score": 0.9, "source": "learned", "origin": None}],
               "features": np.array([1.0, 1.0, 1.0], np.float32)}
    [out] = handler.infer([element], model)
    assert [t["name"] for t in out["tags"]] == ["sky"]
    [earlier, plant] = out["likely"]
    assert earlier["name"] == "x" and (plant["name"], plant["source"]) == ("plant", "everyday")
    assert CONTRADICTS <= plant["score"] < 0.99, "likely, under its floor; tree (a chance near 0) is neither"


def test_the_embedded_head_stays_off_on_another_backbone_with_one_warning(caplog):
    from pipeline.flags import defaults
    from transforms.handlers import everyday

    o = defaults(backbone="resnet50")
    with caplog.at_level(logging.WARNING, logger="image_tagger"):
        assert everyday.build(o) is None
    assert any("another backbone" in r.getMessage() for r in caplog.records)


def test_the_shipped_head_was_built_from_the_labels_as_they_are():
    """Editing the photo set's everyday labels without rebuilding the head fails here; the rebuild
    itself is tests/test_everyday_head.py."""
    from pipeline.quality import everyday

    config = json.loads((Path(embedded_dir()) / "config.json").read_text())
    assert config["corrections"]["labels"]["sha256"] == everyday.labels_sha256()
    assert config["corrections"]["labels"]["left_out_kind"] is None


def _head(vocabulary: list[str]):
    import torch

    from transforms.handlers.everyday import EverydayHandler

    handler = object.__new__(EverydayHandler)
    handler._config = MLPTaggerConfig(model_dir="unused", backbone="b", top_k=5, min_score=0.5)
    net = torch.nn.Linear(len(vocabulary), len(vocabulary))
    with torch.no_grad():
        net.weight.copy_(torch.eye(len(vocabulary)) * 10)
        net.bias.zero_()
    model = LoadedTagger(net, {"role": "adds", "vocabulary": vocabulary, "thresholds": [0.5] * len(vocabulary),
                               "calibration": {"a": 1.0, "b": 0.0}})
    return handler, model


def test_a_word_imagenet_names_needs_its_classes_support_and_person_never_does():
    """A head sure of "animal" on a tool it never saw is vetoed where ImageNet's animal classes
    hold less than the word's support floor; person has no floor (ImageNet is silent on people)."""
    from transforms.stages.everyday import support_floors
    from transforms.stages.tagger import ImageNetTagTable

    handler, model = _head(["animal", "person"])
    with pytest.raises(ValueError, match="person"):
        support_floors({**model.config, "support": {"person": 0.1}})
    table = ImageNetTagTable.embedded()
    animals = table.members[table.names.index("animal")]
    model.support = {"animal": (animals, 0.4)}
    probs = np.zeros(1000, np.float32)
    probs[animals[0]], probs[999] = 0.3, 0.7  # some animal mass, under the floor
    element = {"uri": "u", "tags": [], "features": np.ones(2, np.float32), "imagenet_probs": probs}
    [vetoed] = handler.infer([element], model)
    assert [t["name"] for t in vetoed["tags"]] == ["person"]
    model.thresholds = np.array([1.0, 0.5], np.float32)  # animal not written: vetoed as a likely word too
    assert handler.infer([element], model)[0]["likely"] == []
    model.thresholds = np.array([0.5, 0.5], np.float32)
    probs[animals[0]], probs[999] = 0.6, 0.4
    [kept] = handler.infer([element], model)
    assert sorted(t["name"] for t in kept["tags"]) == ["animal", "person"]
    [blind] = handler.infer([{**element, "imagenet_probs": None}], model)
    assert [t["name"] for t in blind["tags"]] == ["person"], "no classifier output: no support"


def test_a_person_word_needs_a_person_box_or_a_sure_head_where_the_detector_ran():
    """#33: without a box, the head's person words were wrong on every photo of the set under
    0.92 (dogs at a window, a statue, a mural) and right above it (dancers YOLOX missed)."""
    from transforms.knowledge.contradictions import CONTRADICTS, SURE

    handler, model = _head(["person", "people", "sky"])
    model.maps = calibration_maps({**model.config, "word_calibration": [{"a": 1.0, "b": -8.3}, {"a": 1.0, "b": -8.3}, None]})
    element = {"uri": "u", "tags": [], "features": np.ones(3, np.float32)}
    box = {"label": "person", "score": 0.9, "box": [0, 0, 1, 1]}

    def words(**fields) -> tuple[list[str], list[str]]:
        [out] = handler.infer([{**element, **fields}], model)
        return sorted(t["name"] for t in out["tags"]), sorted(t["name"] for t in out.get("likely") or [])

    [unsure] = handler.infer([{**element, "objects": [box]}], model)
    assert all(CONTRADICTS <= t["score"] < SURE for t in unsure["tags"] if t["name"] != "sky")
    assert words(objects=[]) == (["sky"], []), "no box: not written, nor likely"
    assert words(objects=[box]) == (["people", "person", "sky"], [])
    assert words() == (["people", "person", "sky"], []), "the detector off: no silence to read"
    model.thresholds = np.array([0.99, 0.99, 0.5], np.float32)  # under the floors: likely words only
    assert words(objects=[]) == (["sky"], []) and words(objects=[box]) == (["sky"], ["people", "person"])
    model.thresholds = np.array([0.5, 0.5, 0.5], np.float32)
    model.maps = calibration_maps({**model.config, "word_calibration": [None, None, None]})
    assert words(objects=[]) == (["people", "person", "sky"], []), "a sure head stands without a box"
