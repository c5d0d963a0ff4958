"""The shipped calibration is reproducible: refitting on the tune photos gives the same maps."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from pipeline.quality.calibrate import WORD_MIN_CANDIDATES, Candidates, fit, hierarchy_model
from transforms.stages.tagger import FEATURES

# The models' float32 outputs differ in their last bits between CPU kernels (AVX2 vs AVX-512):
# a refit on another machine moved b by 1.1e-6. Four decimals is what the shipped file promises.
TOLERANCE = 1e-4


@pytest.mark.slow  # the whole fit over the photo set: about 95 s on 2 cores (make test-slow; CI runs it)
def test_refit_reproduces_the_shipped_calibration(tmp_path):
    fitted = fit(str(tmp_path / "calibration.json"), str(tmp_path / "work"))
    shipped = json.loads(resources.files("transforms").joinpath("data/calibration.json").read_text())
    assert fitted["fitted_on"] == shipped["fitted_on"]
    assert set(fitted["sources"]) == set(shipped["sources"])
    for key, ours in fitted["sources"].items():
        theirs = shipped["sources"][key]
        assert (ours["n"], ours["positives"]) == (theirs["n"], theirs["positives"]), key
        assert ours["b"] == pytest.approx(theirs["b"], abs=TOLERANCE), key
        if "weights" in ours:  # a logistic model over several features
            assert ours["features"] == theirs["features"] and ours["weights"] == pytest.approx(theirs["weights"], abs=TOLERANCE)
            assert ours.get("words") == theirs.get("words"), key
        else:
            assert ours["feature"] == theirs["feature"] and ours["a"] == pytest.approx(theirs["a"], abs=TOLERANCE)


def _hierarchy(rng: np.random.Generator) -> Candidates:
    """The same evidence for four words: "vehicle" mostly wrong, "landscape" and "clothing" mostly
    right, and "kite" too rare for a bias of its own, on photos of two kinds."""
    counts = {"vehicle": 60, "landscape": 60, "clothing": 60, "kite": WORD_MIN_CANDIDATES - 1}
    words = [w for w, n in counts.items() for _ in range(n)]
    features = rng.normal(size=(len(words), len(FEATURES)))
    chance = {"vehicle": 0.1, "landscape": 0.9, "clothing": 0.9, "kite": 0.5}
    right = [int(rng.random() < chance[w]) for w in words]
    kinds = ["scenes" if i % 2 else "objects" for i in range(len(words))]
    return Candidates.empty(len(FEATURES)).add(features, right, kinds, ["tune"] * len(words), words)


def test_the_hierarchy_model_gives_a_bias_to_each_word_it_saw_often():
    """...but none to what every person wears (the worn stage's words): it is right where people are."""
    model = hierarchy_model(_hierarchy(np.random.default_rng(0)))
    assert model["words"] == ["landscape", "vehicle"] and model["features"] == list(FEATURES)
    bias = dict(zip(model["words"], model["weights"][len(FEATURES):], strict=True))
    assert bias["vehicle"] < 0 < bias["landscape"]


def test_a_kind_left_out_takes_its_words_with_it():
    gathered = _hierarchy(np.random.default_rng(1))
    assert gathered.words is not None
    objects = gathered.chosen(leave_out="scenes")
    assert objects.words is not None and objects.words.tolist() == gathered.words[gathered.kinds == "objects"].tolist()
    assert len(objects.words) == len(objects.right) == len(objects.features)
