"""`make photo-packages` (pipeline/quality/photo_packages.py): unpacks what the photo set lacks,
refuses a wrong option in one line. The download is injected: no traffic leaves the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.quality import photo_packages, photo_set


def test_every_package_the_photo_set_reads_is_listed_with_its_paths():
    wanted = photo_set.packages()
    assert {"gcompris-qt-data", "wordnet-base", *photo_set.key()["files"]["packages"]} == set(wanted)
    assert all(paths and all(p.is_absolute() for p in paths) for paths in wanted.values())


def test_the_command_fetches_only_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    installed = tmp_path / "installed.jpg"
    installed.write_bytes(b"jpeg")
    monkeypatch.setattr(photo_set, "packages", lambda: {"installed-photos": [installed],
                                                        "no-such-photos": [Path("/usr/share/no-such-photos/a.jpg")]})
    asked: list[str] = []

    def download(package: str, folder: Path) -> None:
        asked.append(package)
        raise RuntimeError(f"apt-get download {package} failed")

    with pytest.raises(RuntimeError, match="no-such-photos"):
        photo_packages.main([], download)
    assert asked == ["no-such-photos"], "an installed package is never fetched"


def test_a_wrong_option_is_refused_in_one_line():
    with pytest.raises(SystemExit, match="--fast"):
        photo_packages.main(["--fast"])
