"""Files of Debian packages, installed or unpacked without root.

A package's file is read where dpkg installed it, else from its archive unpacked under the
cache (``apt-get download`` and ``dpkg-deb -x``): a reader of files needs no dependency of the
package (kphotoalbum's would pull in KDE), and no root either. The photo set's packages are
listed by pipeline/quality/photo_set.py and unpacked by pipeline/quality/photo_packages.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from transforms.core.artifacts import cache_dir

Download = Callable[[str, Path], None]  # (package, folder): leave its .deb in the folder


def apt_download(package: str, folder: Path) -> None:
    """Fetch one package's archive, without its dependencies (apt-get needs no root for this)."""
    done = subprocess.run(["apt-get", "download", "-q", package], cwd=folder, capture_output=True, text=True)
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"apt-get download {package} failed ({lines[-1]}); run apt-get update and try again")


def unpacked_root(package: str) -> Path:
    return cache_dir() / "debian-packages" / package


def located(package: str, path: str | Path) -> Path:
    """Where a package's file (or folder) is here: installed, else unpacked (which may be absent)."""
    installed = Path(path)
    return installed if installed.exists() else unpacked_root(package) / installed.relative_to("/")


def missing(required: Mapping[str, Iterable[Path]]) -> list[str]:
    """The packages with a required path neither installed nor unpacked here."""
    return [package for package, paths in required.items() if not all(located(package, p).exists() for p in paths)]


def unpack(package: str, download: Download = apt_download) -> Path:
    """Unpack one package's archive under the cache, whole or not at all (a rename ends it)."""
    root = unpacked_root(package)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".unpack-") as work:
        folder = Path(work)
        download(package, folder)
        archives = sorted(folder.glob("*.deb"))
        if len(archives) != 1:
            raise RuntimeError(f"{package}: expected one .deb, found {len(archives)}")
        done = subprocess.run(["dpkg-deb", "-x", str(archives[0]), str(folder / "tree")], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"dpkg-deb could not unpack {archives[0].name}: {done.stderr.strip() or 'no output'}")
        if root.exists():
            shutil.rmtree(root)
        (folder / "tree").rename(root)
    return root


def unpack_missing(required: Mapping[str, Iterable[Path]], download: Download = apt_download) -> list[str]:
    """Unpack every package with a required path missing; the packages unpacked. On a machine
    without apt-get, say what stays missing and unpack nothing."""
    lacking = missing(required)
    if lacking and download is apt_download and not shutil.which("apt-get"):
        print(f"no apt-get here, so these stay missing: {' '.join(lacking)}", file=sys.stderr)
        return []
    for package in lacking:
        print(f"unpacking {package}", flush=True)
        unpack(package, download)
    still = missing(required)
    if still:
        raise SystemExit(f"still missing files of: {' '.join(still)}")
    return lacking
