"""The embedded everyday head (transforms/data/everyday/) is rebuilt from installed packages by
its script (pipeline/quality/everyday.py) and matches what ships."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.quality import everyday, photo_set
from transforms.stages.everyday import embedded_dir
from transforms.stages.taggernet import load_taggernet, predict_scores


@pytest.mark.slow
def test_the_script_rebuilds_the_shipped_head(tmp_path, photo_set_packages):
    from pipeline.training.train import load_features

    photos = photo_set.collect(tmp_path / "photos")
    features = everyday.extract_features(photos, tmp_path)
    everyday.build(str(tmp_path / "head"), photos, features, tmp_path)
    shipped, rebuilt = (json.loads((Path(d) / "config.json").read_text()) for d in (embedded_dir(), tmp_path / "head"))
    assert rebuilt["vocabulary"] == shipped["vocabulary"]
    assert rebuilt["corrections"]["labels"] == shipped["corrections"]["labels"]
    assert np.allclose(rebuilt["thresholds"], shipped["thresholds"], atol=0.02)
    x = load_features(features).features
    (a, _), (b, _) = load_taggernet(embedded_dir()), load_taggernet(str(tmp_path / "head"))
    assert np.abs(predict_scores(a, x) - predict_scores(b, x)).max() < 0.02


def test_the_head_learns_complete_labels_of_both_halves(tmp_path, photo_set_packages):
    """The labels the head learns from: both halves but the 19-photo key's report photos,
    complete (every other word rejected), a person left unknown where people are too small to judge."""
    every = photo_set.collect(tmp_path / "photos")
    photos = photo_set.fit_photos(every)
    assert {p.split for p in photos} == set(photo_set.HALVES) and len(every) - len(photos) == 9
    judge = photo_set.Judge()
    lines = [json.loads(line) for line in everyday.corrections(photos, judge)]
    words = set(everyday.words())
    for photo, line in zip(photos, lines, strict=True):
        shown, unknown = judge.everyday(photo)
        assert set(line["added"]) == shown and set(line["rejected"]) == words - shown - unknown
        assert ("person" in unknown) == (photo.people == "unjudged")
    sky = [line for line in lines if "sky" in line["added"]]
    assert sky and all("sky" not in line["rejected"] for line in sky)
    assert any(p.kind == "people" and "person" in line["added"] for p, line in zip(photos, lines, strict=True))


def test_features_are_reused_only_for_the_same_photos(tmp_path, monkeypatch):
    """A work folder kept from another photo list once fed the head stale features (it learned
    other thresholds than a fresh build): the listing must match to be reused."""
    from pipeline.training import extract_features as job

    runs: list[list[str]] = []

    def fake_run(argv, then=""):
        runs.append(argv)
        out = Path(argv[argv.index("--output") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "_SUCCESS").write_text("")

    monkeypatch.setattr(job, "run", fake_run)
    one = [photo_set.Photo("a", str(tmp_path / "a.jpg"), "cat.n.01", "tune")]
    two = [*one, photo_set.Photo("b", str(tmp_path / "b.jpg"), "dog.n.01", "tune")]
    for photos, expected_runs in ((one, 1), (one, 1), (two, 2), (two, 2), (one, 3)):
        everyday.extract_features(photos, tmp_path)
        assert len(runs) == expected_runs
    assert "--overwrite" in runs[-1]
