"""A measure's working folder (pipeline/workdir.py): the named one is kept, a temporary one
goes when the measure ends, whether it ends well or not."""

from __future__ import annotations

import pytest

from pipeline.workdir import working_folder


def test_a_named_folder_is_used_and_kept(tmp_path):
    with working_folder(str(tmp_path / "mine"), "measure-") as folder:
        folder.mkdir()
        (folder / "photo.jpg").write_bytes(b"x")
    assert folder == tmp_path / "mine" and (folder / "photo.jpg").read_bytes() == b"x"


def test_without_a_name_the_folder_goes_when_the_measure_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    with working_folder(None, "measure-") as folder:
        (folder / "features.npy").write_bytes(b"x" * 1000)
        assert folder.parent == tmp_path and folder.name.startswith("measure-")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), working_folder(None, "measure-") as folder:
        (folder / "features.npy").write_bytes(b"x")
        raise RuntimeError("the job failed")
    assert list(tmp_path.iterdir()) == []
