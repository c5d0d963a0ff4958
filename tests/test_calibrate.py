"""The shipped calibration is reproducible: refitting on the tune photos gives the same maps."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from pipeline.quality.calibrate import fit

# The models' float32 outputs differ in their last bits between CPU kernels (AVX2 vs AVX-512):
# a refit on another machine moved b by 1.1e-6. Four decimals is what the shipped file promises.
TOLERANCE = 1e-4


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
        else:
            assert ours["feature"] == theirs["feature"] and ours["a"] == pytest.approx(theirs["a"], abs=TOLERANCE)
