"""Model and vector artifacts: local paths, gs:// objects and https:// URLs, sha256-checked.

Remote artifacts are copied once into a local cache (``$IMAGE_TAGGER_CACHE``, else
``$XDG_CACHE_HOME/image-tagger``, else ``~/.cache/image-tagger``) named by their sha256 (or by
a hash of the URI when no checksum is given), so every worker process on a machine downloads
each file once. A file given with a sha256 is immutable and never asked for again. One given
without is revalidated on every load: its version (a gs:// object's size and update time, an
https:// file's ETag or Last-Modified and length) is kept beside the cached copy, and a new
version is downloaded again; when the source cannot be reached, the cached copy is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from transforms.core import uris


class ArtifactError(RuntimeError):
    """An artifact could not be found, fetched, or failed its checksum."""


_LOG = logging.getLogger(__name__)


def filesystems() -> Any:
    """Beam's FileSystems, imported on first use: declaring options (``--help``) never imports Beam."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.environ.get("IMAGE_TAGGER_CACHE") or os.path.join(xdg, "image-tagger")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, sha256: str | None, source: str) -> None:
    if sha256 and sha256_of(path) != sha256.lower():
        raise ArtifactError(f"{source}: sha256 mismatch (expected {sha256})")


def _download(uri: str, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            if uri.lower().startswith(("http://", "https://")):
                with urllib.request.urlopen(uri, timeout=60) as resp:  # noqa: S310 - explicit artifact URL
                    shutil.copyfileobj(resp, out, 1 << 20)
            else:
                with filesystems().open(uri) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, target)  # atomic: concurrent workers never see a partial file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remote_version(uri: str) -> str:
    """What identifies this version of a remote file: gs:// size and update time (Beam's
    FileSystems metadata), http(s):// ETag, else Last-Modified, with the length."""
    if uri.lower().startswith(("http://", "https://")):
        request = urllib.request.Request(uri, method="HEAD")
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - explicit artifact URL
            h = resp.headers
            return json.dumps({"etag": h.get("ETag"), "modified": h.get("Last-Modified"),
                               "length": h.get("Content-Length")}, sort_keys=True)
    matches = filesystems().match([uri], limits=[1])[0].metadata_list
    if not matches:
        raise FileNotFoundError(uri)
    meta = matches[0]
    return json.dumps({"size": meta.size_in_bytes, "updated": meta.last_updated_in_seconds}, sort_keys=True)


def _stale_version(uri: str, target: Path) -> str | None:
    """For an artifact given without a sha256: None when the cached copy is the current version
    (or the source cannot be asked and a copy exists), else the version to download."""
    stamp = target.with_name(target.name + ".version")
    try:
        version = remote_version(uri)
    except Exception as exc:  # noqa: BLE001 - any scheme's "cannot ask"
        if target.exists():
            _LOG.warning("cannot revalidate %s (%s); using the cached copy", uri, exc)
            return None
        return ""
    if target.exists() and stamp.exists() and stamp.read_text() == version:
        return None
    return version


def exists(path: str) -> bool:
    """Whether ``path`` exists on any Beam filesystem; an unreachable one (a missing bucket or
    prefix, no credentials) counts as absent."""
    try:
        return filesystems().exists(path)
    except Exception:  # noqa: BLE001 - every filesystem raises its own types
        return False


def read_bytes(path: str) -> bytes:
    """The whole file at ``path`` on any Beam filesystem (local, gs://, ...)."""
    with filesystems().open(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` on any Beam filesystem, replacing it."""
    with filesystems().create(path) as f:
        f.write(data)


def write_temp(folder: str, name: str, text: str) -> str:
    """``text`` written whole and flushed to disk as a hidden temp file beside ``name`` in a local
    ``folder`` (created if needed); its path, for the caller to rename or link into place. A
    failed write (a full disk) leaves no temp file behind."""
    import secrets

    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def join(directory: str, name: str) -> str:
    return filesystems().join(directory.rstrip("/"), name)


def resolve(uri: str, sha256: str | None = None) -> Path:
    """Return a local path for ``uri`` (local path, gs://, https://), verifying ``sha256`` if given."""
    if not uris.scheme(uri) or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ArtifactError(f"artifact not found: {uri}")
        _verify(path, sha256, uri)
        return path
    name = sha256.lower() if sha256 else hashlib.sha256(uri.encode()).hexdigest()
    suffix = "".join(Path(uri.split("?")[0]).suffixes[-2:])
    target = cache_dir() / f"{name}{suffix}"
    version = (None if target.exists() else "") if sha256 else _stale_version(uri, target)
    if version is not None:
        try:
            _download(uri, target)
        except Exception as exc:  # noqa: BLE001 - network and storage errors vary by scheme
            raise ArtifactError(f"cannot fetch artifact {uri}: {exc}") from exc
        if version:
            target.with_name(target.name + ".version").write_text(version)
    try:
        _verify(target, sha256, uri)
    except ArtifactError:
        target.unlink(missing_ok=True)
        raise
    return target
