"""The shipped calibration is reproducible: refitting on the tune photos gives the same maps."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from pipeline.quality.calibrate import fit


def test_refit_reproduces_the_shipped_calibration(tmp_path):
    fitted = fit(str(tmp_path / "calibration.json"), str(tmp_path / "work"))
    shipped = json.loads(resources.files("transforms").joinpath("data/calibration.json").read_text())
    assert fitted["fitted_on"] == shipped["fitted_on"]
    assert set(fitted["sources"]) == set(shipped["sources"])
    for key, ours in fitted["sources"].items():
        theirs = shipped["sources"][key]
        assert (ours["n"], ours["positives"]) == (theirs["n"], theirs["positives"]), key
        assert ours["b"] == pytest.approx(theirs["b"], abs=1e-6), key
        if "weights" in ours:  # a logistic model over several features
            assert ours["features"] == theirs["features"] and ours["weights"] == pytest.approx(theirs["weights"], abs=1e-6)
        else:
            assert ours["feature"] == theirs["feature"] and ours["a"] == pytest.approx(theirs["a"], abs=1e-6)
