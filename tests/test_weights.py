"""pipeline/weights.py: the embedded weights no package carries, fetched once, at set-up or at
a local run's launch, never halfway through a run."""

from __future__ import annotations

import pytest

from pipeline import tag, weights


@pytest.fixture()
def listing(tmp_path, photos):
    path = tmp_path / "in.txt"
    path.write_text(f"{photos['chelsea']}\n")
    return path


def test_a_local_run_that_cannot_fetch_the_pose_model_is_refused_before_writing(tmp_path, listing, monkeypatch):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "empty-cache"))  # the suite reaches loopback only
    with pytest.raises(SystemExit) as exc:
        tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths"])
    message = str(exc.value)
    assert message.startswith("image-tagger tag: --pose_model embedded: cannot fetch it") and "\n" not in message
    assert "--pose_model none" in message and not (tmp_path / "out").exists()


def test_without_the_pose_model_nothing_is_fetched(tmp_path, listing, monkeypatch):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "empty-cache"))
    counters = tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", "--quiet",
                        "--pose_model", "none", "--detector", "none"])
    assert counters["tagged"] == 1
    assert not list((tmp_path / "empty-cache").glob("*.pose"))


def test_set_up_fetches_nothing_when_the_cache_holds_the_model(pose_model_files):
    assert weights.main([]) is False
