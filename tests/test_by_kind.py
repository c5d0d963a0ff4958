"""Leave-one-kind-out fitting (pipeline/quality/calibrate.py, pipeline/quality/by_kind.py): a
kind held out never shapes a model, and a fit without people never maps person boxes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.quality import by_kind, calibrate, photo_set
from pipeline.quality.calibrate import MIN_PERSON_BOXES, Candidates, fit_sources
from transforms.stages.detector import AGREEMENT_FEATURES
from transforms.stages.pose import calibration_key as pose_key
from transforms.stages.tagger import FEATURES, HIERARCHY_KEY

pytestmark = pytest.mark.usefixtures("photo_set_packages")  # the kind of a noun comes from WordNet


def _candidates(rng: np.random.Generator, kinds: list[str], width: int) -> Candidates:
    features = rng.normal(size=(len(kinds), width))
    right = (features[:, 0] + rng.normal(scale=0.5, size=len(kinds)) > 0).astype(int)
    return Candidates(features, right, np.asarray(kinds, dtype=object), np.asarray(["tune"] * len(kinds), dtype=object))


def _gathered(seed: int, held_out_noise: bool = False) -> dict[str, Candidates]:
    rng = np.random.default_rng(seed)
    kinds = ["animals"] * 60 + ["people"] * 40
    out = {name: _candidates(rng, kinds, 1) for name in ("group", "detector", "conse", "person", "pose")}
    out["hierarchy"] = _candidates(rng, kinds, len(FEATURES))
    out["boxes"] = _candidates(rng, kinds, len(AGREEMENT_FEATURES))
    if held_out_noise:  # change every people candidate: a fit without people must not move
        for name, c in out.items():
            people = c.kinds == "people"
            features = c.features.copy()
            features[people] = rng.normal(size=(int(people.sum()), c.features.shape[1])) * 9
            right = c.right.copy()
            right[people] = 1 - right[people]
            out[name] = Candidates(features, right, c.kinds, c.halves)
    return out


def test_a_kind_held_out_never_shapes_a_model():
    plain, changed = _gathered(1), _gathered(1, held_out_noise=True)
    assert fit_sources(plain, leave_out="people") == fit_sources(changed, leave_out="people")
    assert fit_sources(plain) != fit_sources(changed), "with every kind, the people photos count"
    left = fit_sources(plain, leave_out="people")
    assert left[HIERARCHY_KEY]["n"] == 60 and fit_sources(plain)[HIERARCHY_KEY]["n"] == 100


@pytest.mark.parametrize(("name", "key"), [("person", "detector:yolox_nano:person"), ("pose", pose_key())])
def test_a_fit_that_saw_too_few_people_maps_no_person_score(name, key):
    gathered = _gathered(2)
    person = gathered[name]
    assert key in fit_sources(gathered)
    few = np.concatenate([np.flatnonzero(person.right == 1)[:MIN_PERSON_BOXES - 1], np.flatnonzero(person.right == 0)])
    gathered[name] = Candidates(person.features[few], person.right[few], person.kinds[few], person.halves[few])
    assert key not in fit_sources(gathered), "a map fitted without people must not veto them"


@pytest.mark.parametrize(("synset", "kind"), [
    ("soldier.n.01", "people"), ("people.n.01", "people"), ("orange.n.01", "food"), ("espresso.n.01", "food"),
    ("cat.n.01", "animals"), ("ladybug.n.01", "animals"), ("leaf.n.01", "plants"), ("moss.n.01", "plants"),
    ("lake.n.01", "scenes"), ("mausoleum.n.01", "scenes"), ("cloud.n.02", "scenes"), ("hammer.n.02", "objects"),
])
def test_a_photos_kind_comes_from_its_noun(synset, kind):
    assert photo_set.Judge().kind(synset) == kind


def test_what_one_photo_shows_is_right_on_that_photo_only():
    judge = photo_set.Judge()
    assert judge.seen_on("clothing", "people/zidane"), "a suit is clothing"
    assert judge.seen_on("tripod", "samples/camera") and judge.seen_on("garment", "samples/camera"), "a coat is one"
    assert not judge.seen_on("tie", "samples/camera")
    assert not judge.seen_on("cat", "people/zidane")


def test_by_kind_refuses_the_fits_it_makes_itself(tmp_path):
    for option in by_kind.FITTED:
        with pytest.raises(SystemExit, match=f"{option} is set by this command"):
            by_kind.main(["--workdir", str(tmp_path / "w"), option, "none"])
    assert not (tmp_path / "w").exists()


def test_by_kind_runs_each_job_with_the_options_given(monkeypatch, tmp_path):
    """The held-out kind's job writes from the given floor; its candidates still from the low one."""
    runs: dict[str, list[str]] = {}

    def run_job(photos, workdir, extra):
        runs[workdir.name] = list(extra)
        return {}

    monkeypatch.setattr(photo_set, "run_job", run_job)
    monkeypatch.setattr(calibrate, "fit_sources", lambda candidates, leave_out, half: {})
    monkeypatch.setattr(calibrate, "write", lambda path, sources, leave_out, half: {})
    photo = photo_set.Photo("gcompris/erase/heron", str(tmp_path / "heron.webp"), "heron.n.02", "report",
                            kind="animals")
    result = by_kind.held_out_kind("animals", [photo], {}, {}, tmp_path / "animals", None, ["--min_score", "0.7"])
    assert result["photos"] == 1

    def floor(options: list[str]) -> str:
        last = max(i for i, a in enumerate(options) if a == "--min_score")  # the last one given wins
        return options[last + 1]

    assert floor(runs["job"]) == "0.7"
    assert floor(runs["candidates"]) == photo_set.CANDIDATES[photo_set.CANDIDATES.index("--min_score") + 1]
    assert runs["job"][-4:] == ["--calibration", str(tmp_path / "animals" / "calibration.json"),
                                "--everyday_model", "none"]
