"""The quality tools pass the options they do not know on to the tag job they run
(pipeline/quality/flags.py): a wrong one is refused at launch, in one line, before any photo,
fit or output is written; the job options a tool sets itself are refused, not overridden."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.quality import beside_animals, by_kind, calibrate, command, photo_set

TOOLS: dict[str, Callable] = {"quality": command.main, "photo_set": photo_set.main, "by_kind": by_kind.main,
                              "beside_animals": beside_animals.main}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize(("job", "said"), [
    (["--min_score", "7"], "--min_score must be between 0 and 1, got 7.0"),
    (["--detecter", "none"], "unknown option --detecter"),
    (["--output", "elsewhere"], "--output is set by this tool for each job it runs"),
])
def test_a_wrong_job_option_is_refused_before_anything_is_written(tool, job, said, tmp_path):
    workdir = tmp_path / "work"
    with pytest.raises(SystemExit) as refused:
        TOOLS[tool](["--workdir", str(workdir), *job])
    message = str(refused.value)
    assert said in message and "\n" not in message
    assert not workdir.exists() and list(tmp_path.iterdir()) == []


def test_by_kind_refuses_the_fits_it_makes_itself(tmp_path):
    for option in by_kind.FITTED:
        with pytest.raises(SystemExit, match=f"{option} is set by this tool"):
            by_kind.main(["--workdir", str(tmp_path / "w"), option, "none"])
    assert not (tmp_path / "w").exists()


def test_by_kind_runs_each_job_with_the_options_given(monkeypatch, tmp_path):
    """The held-out kind's job writes from the given floor; its candidates still from the low one."""
    runs: dict[str, list[str]] = {}

    def run_job(photos, workdir, extra):
        runs[workdir.name] = list(extra)
        return {}

    monkeypatch.setattr(photo_set, "run_job", run_job)
    monkeypatch.setattr(calibrate, "fit_sources", lambda candidates, leave_out: {})
    monkeypatch.setattr(calibrate, "write", lambda path, sources, leave_out: {})
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
