"""Per-source score calibration: the Platt maps, their loading, and the z feature."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from transforms.knowledge import calibration
from transforms.knowledge.calibration import Logistic, Platt, standardise_rows


def test_platt_is_monotone_and_logit_identity_at_a1_b0():
    s = np.array([0.05, 0.3, 0.5, 0.9])
    assert np.allclose(Platt()(s), s, atol=1e-6)
    p = Platt(2.0, -1.0)(s)
    assert np.all(np.diff(p) > 0) and p[2] == pytest.approx(1 / (1 + np.exp(1.0)))
    raw = Platt(1.0, 0.0, "raw")(np.array([0.0, 1e6, -1e6]))  # no overflow
    assert raw[0] == pytest.approx(0.5) and raw[1] == pytest.approx(1.0) and raw[2] == pytest.approx(0.0)


def test_embedded_calibration_covers_every_embedded_source():
    table = calibration.load(calibration.EMBEDDED)
    assert {"tagger:imagenet_hierarchy", "tagger:imagenet_tags:group", "detector:yolox_nano",
            "detector:yolox_nano:agreement", "zero_shot:conse"} <= set(table)
    platts = [p for p in table.values() if isinstance(p, Platt)]
    assert all(p.a > 0 for p in platts), "a higher raw score never means less likely right"
    models = [m for m in table.values() if isinstance(m, Logistic)]
    assert len(models) == 2 and all(m.weights[0] > 0 for m in models), "nor does a higher raw score in a model"
    assert calibration.for_source(calibration.EMBEDDED, "tagger:imagenet_hierarchy") is None, "one-feature maps only"
    assert calibration.load("none") == {}
    assert calibration.for_source("none", "detector:yolox_nano") is None


def test_a_calibration_file_is_read(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"sources": {"detector:yolox_nano": {"a": 2, "b": 1, "feature": "logit", "n": 5}}}))
    p = calibration.for_source(str(path), "detector:yolox_nano")
    assert p == Platt(2.0, 1.0, "logit")


def test_a_logistic_model_weighs_its_features(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"sources": {"m": {"weights": [2.0, -1.0], "b": 0.5, "features": ["x", "y"]}}}))
    model = calibration.load(str(path))["m"]
    assert model == Logistic((2.0, -1.0), 0.5)
    p = model(np.array([[0.0, 0.5], [1.0, 0.0], [1e6, 0.0]]))
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(1 / (1 + np.exp(-2.5))) and p[2] == pytest.approx(1.0)


def test_a_logistic_model_reads_its_per_word_columns(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"sources": {"m": {"weights": [1.0, -3.0, 2.0], "b": 0.0, "features": ["x"],
                                                  "words": ["dog", "cat"]}}}))
    model = calibration.load(str(path))["m"]
    assert model == Logistic((1.0, -3.0, 2.0), 0.0, ("dog", "cat"))
    p = model(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))  # a dog, a cat, another word
    assert p[0] < p[2] < p[1]


def test_standardise_rows_over_known_columns_only():
    s = np.array([[1.0, 2.0, 3.0, 100.0]])
    z = standardise_rows(s, np.array([True, True, True, False]))
    assert z[0, 1] == pytest.approx(0.0) and z[0, 2] > 1.0
    assert not standardise_rows(s, np.array([True, True, False, False])).any(), "too few words: no z"


@pytest.mark.parametrize("text,message", [
    ('{"sources": {"detector:yolox_nano": {"a": 1.0, "b": NaN}}}', r":1: detector:yolox_nano: b must be a finite"),
    ('{"sources": {\n "detector:yolox_nano": {"b": 0.1}}}', r":2: detector:yolox_nano: a is missing"),
    ('[1, 2]', "needs an object"),
    ('{"sources": {"x": {"a": 1, "b": 0, "feature": "cube"}}}', "feature must be one of"),
    ('{"sources": {"x": {"weights": [1, "2"], "b": 0}}}', "finite number"),
    ('{"sources": {"x": {"weights": [1, 2], "b": 0, "features": ["s"], "words": ["a", "a"]}}}', "distinct"),
    ('{"sources": {"x": {"weights": [1, 2], "b": 0, "features": ["s"], "words": ["a\\u202e"]}}}', "invisible character U\\+202E"),
    ('{"sources": {"x": {"weights": [1, 2], "b": 0, "features": ["s"], "words": ["a", "b"]}}}', "one weight each"),
    ('{"sources": {"x": {"weights": [1], "b": 0, "words": ["a"]}}}', "a feature's weight before"),
    ('{"sources": {"x": {"weights": [1, 2], "b": 0, "words": "ab"}}}', "list of words"),
    ('{"sources": {"tagger:imagenet_hierarchy": {"weights": [1, 2, 3], "b": 0}}}', "hierarchy weighs 3 features; this job"),
    ('{"sources": {"tagger:imagenet_hierarchy": {"weights": [1, 2, 3, 4], "b": 0, "words": ["cat"], '
     '"features": ["logit_score", "log_size", "share"]}}}', "weighs logit_score, log_size, share; this job computes"),
    ('{"sources": {"detector:yolox_nano:agreement": {"weights": [1, 2, 3], "b": 0, '
     '"features": ["logit_score", "has_support", "logit_support"]}}}', "agreement weighs logit_score, has_support"),
])
def test_a_bad_calibration_file_is_refused_at_launch(tmp_path, photos, text, message):
    """Hostile round 4, class 10: NaN once gave zero tags and exit 0; a missing key a traceback
    after the lock was taken."""
    from pipeline import tag

    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photos["chelsea"]), "--output", str(tmp_path / "out"), "--calibration", str(path)])
    assert str(info.value).startswith("image-tagger tag: --calibration") and "\n" not in str(info.value)
    assert re.search(message, str(info.value)), info.value
    assert not (tmp_path / "out").exists()
