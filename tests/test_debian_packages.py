"""Debian packages' files (pipeline/quality/debian_packages.py): read where installed, else
unpacked under the cache whole or not at all, with no root and no dependency. The archive
here is built with dpkg-deb and handed over by an injected download: no traffic leaves the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.quality import debian_packages

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")

PHOTO = "/usr/share/test-photos/leaf.jpg"


@pytest.fixture()
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def build_deb(folder: Path, package: str, files: dict[str, bytes]) -> Path:
    tree = folder / f"{package}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n")
    for path, data in files.items():
        (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tree / path.lstrip("/")).write_bytes(data)
    deb = folder / f"{package}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_an_unpacked_package_is_read_where_nothing_is_installed(cache, tmp_path):
    deb = build_deb(tmp_path, "test-photos", {PHOTO: b"leaf bytes"})
    assert not debian_packages.located("test-photos", PHOTO).exists()
    debian_packages.unpack("test-photos", lambda package, folder: shutil.copy(deb, folder))
    path = debian_packages.located("test-photos", PHOTO)
    assert path.read_bytes() == b"leaf bytes" and cache in path.parents
    assert debian_packages.located("test-photos", "/bin/sh") == Path("/bin/sh"), "an installed file wins"
    assert [p.name for p in (cache / "debian-packages").iterdir()] == ["test-photos"], "no work folder left"


def test_a_failed_download_leaves_the_earlier_unpacked_tree_whole(cache, tmp_path):
    deb = build_deb(tmp_path, "test-photos", {PHOTO: b"leaf bytes"})
    debian_packages.unpack("test-photos", lambda package, folder: shutil.copy(deb, folder))

    def broken(package: str, folder: Path) -> None:
        (folder / "half.deb").write_bytes(b"!<arch>\n")  # a truncated archive
        raise RuntimeError("connection reset")

    with pytest.raises(RuntimeError, match="connection reset"):
        debian_packages.unpack("test-photos", broken)
    with pytest.raises(RuntimeError, match="dpkg-deb could not unpack half.deb"):
        debian_packages.unpack("test-photos", lambda package, folder: (folder / "half.deb").write_bytes(b"!<arch>\n"))
    assert debian_packages.located("test-photos", PHOTO).read_bytes() == b"leaf bytes"
    assert [p.name for p in (cache / "debian-packages").iterdir()] == ["test-photos"]


def test_what_is_missing_is_unpacked_once_and_what_stays_missing_is_refused(cache, tmp_path):
    deb = build_deb(tmp_path, "test-photos", {PHOTO: b"leaf bytes"})
    wanted = {"test-photos": [Path(PHOTO)]}
    fetched: list[str] = []

    def download(package: str, folder: Path) -> None:
        fetched.append(package)
        shutil.copy(deb, folder)

    assert debian_packages.missing(wanted) == ["test-photos"]
    assert debian_packages.unpack_missing(wanted, download) == ["test-photos"] == fetched
    assert debian_packages.unpack_missing(wanted, download) == [] and fetched == ["test-photos"], "nothing fetched twice"
    wanted["test-photos"].append(Path("/usr/share/test-photos/absent.jpg"))
    with pytest.raises(SystemExit, match="still missing files of: test-photos"):
        debian_packages.unpack_missing(wanted, download)
