"""Each half of the photo set measured by fits learned on the other (pipeline/quality/cross_fit.py):
no fit learns from the half it is measured on, nor ever from the 19-photo key's report photos."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.quality import calibrate, cross_fit, everyday, photo_set
from pipeline.quality.calibrate import EVERY_FIT, Candidates, fit_sources
from transforms.stages.detector import AGREEMENT_FEATURES
from transforms.stages.tagger import FEATURES, HIERARCHY_KEY

pytestmark = pytest.mark.usefixtures("photo_set_packages")


def _gathered(seed: int, report_noise: bool = False) -> dict[str, Candidates]:
    """Candidates of both halves, and the key's one-feature ones in every fit; with
    ``report_noise`` every report candidate is changed."""
    rng, noise = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    halves = ["tune"] * 50 + ["report"] * 40 + [EVERY_FIT] * 10
    kinds = ["animals", "people"] * 50
    out = {}
    for name, width in (("group", 1), ("detector", 1), ("conse", 1), ("person", 1), ("pose", 1),
                        ("hierarchy", len(FEATURES)), ("boxes", len(AGREEMENT_FEATURES))):
        features = rng.normal(size=(100, width))
        right = (features[:, 0] + rng.normal(scale=0.5, size=100) > 0).astype(int)
        if report_noise:
            report = np.asarray(halves) == "report"
            features[report] = noise.normal(size=(int(report.sum()), width)) * 9
            right[report] = 1 - right[report]
        out[name] = Candidates(features, right, np.asarray(kinds, dtype=object), np.asarray(halves, dtype=object))
    return out


def test_a_half_never_shapes_the_fit_it_is_measured_by():
    plain, changed = _gathered(3), _gathered(3, report_noise=True)
    assert fit_sources(plain, half="tune") == fit_sources(changed, half="tune")
    assert fit_sources(plain) != fit_sources(changed), "the shipped fit learns from both halves"
    assert fit_sources(plain, half="tune")[HIERARCHY_KEY]["n"] == 60, "the tune half and the key's every-fit candidates"
    assert fit_sources(plain)[HIERARCHY_KEY]["n"] == 100
    assert fit_sources(plain, leave_out="people", half="report")[HIERARCHY_KEY]["n"] == 25


def test_a_fit_learns_from_its_half_and_never_from_the_keys_report_photos(tmp_path):
    def photo(name: str, split: str, kind: str = "animals") -> photo_set.Photo:
        return photo_set.Photo(name, str(tmp_path / name), "cat.n.01", split, kind=kind)

    photos = [photo("samples/chelsea", "report"), photo("samples/coffee", "tune", "food"), photo("gcompris/a", "tune"),
              photo("gcompris/b", "report"), photo("samples/camera", "report", "people")]
    names = lambda chosen: {p.name for p in chosen}  # noqa: E731
    assert names(photo_set.fit_photos(photos)) == {"samples/coffee", "gcompris/a", "gcompris/b", "samples/camera"}
    assert names(photo_set.fit_photos(photos, "tune")) == {"samples/coffee", "gcompris/a"}
    assert names(photo_set.fit_photos(photos, "report", leave_out="people")) == {"gcompris/b"}
    assert photo_set.other_half("tune") == "report" and photo_set.other_half("report") == "tune"


def test_each_half_runs_with_the_fits_of_the_other(monkeypatch, tmp_path):
    photos = [photo_set.Photo(f"gcompris/{i}", str(tmp_path / f"{i}.webp"), "cat.n.01", half)
              for i, half in enumerate(["tune", "report", "report"])]
    monkeypatch.setattr(photo_set, "collect", lambda folder: photos)
    monkeypatch.setattr(calibrate, "gather", lambda folder, half: {})
    monkeypatch.setattr(everyday, "extract_features", lambda chosen, folder: "features")
    fits: list[tuple[str | None, str | None]] = []

    def fitted(folder, candidates, every, features, leave_out=None, half=None):
        fits.append((leave_out, half))
        return ["--calibration", str(folder / "calibration.json")]

    jobs: dict[str, tuple[set[str], list[str]]] = {}

    def run_job(chosen, workdir, extra):
        jobs[workdir.name] = ({p.split for p in chosen}, list(extra))
        return {}

    monkeypatch.setattr(cross_fit, "fitted", fitted)
    monkeypatch.setattr(photo_set, "run_job", run_job)
    monkeypatch.setattr(photo_set, "naive_top5", lambda paths: {})
    results = cross_fit.measure(str(tmp_path), ["--min_score", "0.7"], split="all")
    assert set(results) == {"tune", "report", "all"} and results["all"]["photos"] == 3
    assert sorted(fits) == [(None, "report"), (None, "tune")]
    for half in photo_set.HALVES:
        other = photo_set.other_half(half)
        for job in (f"job-{half}", f"candidates-{half}"):
            splits, extra = jobs[job]
            assert splits == {half} and extra[:2] == ["--min_score", "0.7"]
            assert extra[extra.index("--calibration") + 1] == str(tmp_path / f"fits-{other}" / "calibration.json")


def test_cross_fit_refuses_the_fits_it_makes_itself(tmp_path):
    for option in cross_fit.FITTED:
        with pytest.raises(SystemExit, match=f"{option} is set by this command"):
            cross_fit.main(["--workdir", str(tmp_path / "w"), option, "none"])
    assert not (tmp_path / "w").exists()


@pytest.mark.slow  # the whole measurement: about 4.5 min on 2 cores (make test-slow; CI runs it)
def test_the_job_is_measured_beside_a_naive_classifier(tmp_path):
    results = cross_fit.measure(str(tmp_path), split="report")  # the job runs on the report photos only
    assert set(results) == {"report"}
    report = results["report"]
    assert report["photos"] >= 150 and report["nouns"] >= 50
    # Today's figures (docs/QUALITY.md: 0.85 overall, everyday words judged by each photo's labels);
    # #33's targets are higher. These guard against regressions.
    for source in ("overall", "tagger", "detector"):
        assert report[f"precision.{source}"] >= 0.75, source
    # The tagger writes the WordNet ancestors of its classes itself; expansion adds to detector tags.
    assert report.get("written.expansion", 0) <= 0.05 * report["photos"]
    assert report["ece.tagger"] <= 0.07 and report["ece.overall"] <= 0.07, "calibrated on every candidate"
    assert report["right_tags_per_photo"] > 4 * report["naive_top1_precision"]
    assert report["untagged"] <= 0.2 and report["named_at_level"] >= 0.25
    # The everyday head (0.92 precision, ECE 0.056, 53% of the labelled everyday words: docs/QUALITY.md).
    # A word two sources wrote counts for both in precision, and only for the source whose score is
    # written in ECE. Under-confident at 0.6-0.8: held to the others' bound, not yet its own 0.05.
    assert report["precision.everyday"] >= 0.85 and report["ece.everyday"] <= 0.07
    assert report["everyday_recall"] >= 0.4
    assert report["named_on_nameable"] >= report["naive_top1_named_on_nameable"] - 0.1
    assert report["precision_nameable"] >= 0.85, "#33 asks 0.9 there: 0.91 today"
    assert report["naive_top5_named"] >= report["naive_top1_named"]
    # No decoding of the classifier can name a noun none of its words covers: the ceiling.
    assert report["named_at_level"] <= report["nameable"] and report["naive_top5_named"] <= report["nameable"]
    assert 0.3 < report["nameable"] < 0.7, "about half the report nouns lie outside ImageNet-1k's words"
    # Beyond the tagger's words (#33 asks 0.85, mostly from right coarse words): 0.80 and 0.41 today.
    assert report["precision_beyond"] >= 0.7 and 0.2 <= report["coarse_share_beyond"] <= 1
    assert report["wrong"] and all(" (" in w and w.endswith("]") for w in report["wrong"]), \
        "wrong tags are listed: photo (noun): word [source]"
    assert all(bins for bins in report["reliability"].values())
    kinds = report["kinds"]  # by kind as well as by noun (#33)
    assert set(kinds) == set(photo_set.kinds()) and sum(k["photos"] for k in kinds.values()) == report["photos"]
    assert kinds["people"]["person_recall"] >= 0.9 and kinds["people"]["precision.overall"] >= 0.9
    assert "| people |" in photo_set.table(report)
    photo_set.plot_reliability(report, str(tmp_path / "reliability.png"))
    assert (tmp_path / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
