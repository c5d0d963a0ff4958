"""A model folder written whole or not at all, and read back only when it checks out.

``publish`` stages every file under MODEL_DIR/_staging/<token>/, renames each into place, and
last writes MODEL_DIR/manifest.json (each file's size and sha256): the commit point. A folder
killed between the renames no longer matches its manifest, so ``verify`` refuses it in one line
until the writer is run again; nothing in it is used half old, half new. The manifest is data:
its names are plain file names inside the folder, its hashes hex.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets

from transforms.core import faults, uris
from transforms.core.artifacts import exists, filesystems, join, read_bytes, write_bytes

MANIFEST = "manifest.json"
STAGING = "_staging"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")
_TOKEN = re.compile(r"^[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class ModelFolderError(ValueError):
    """The folder is half-written, altered, or not one this tool wrote; one line for the user."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remove_staging(model_dir: str) -> None:
    """Staged files of earlier, killed publishes (never following a link)."""
    root = join(model_dir, STAGING)
    if uris.scheme(model_dir):
        fs = filesystems()
        with contextlib.suppress(Exception):
            found = [m.path for m in fs.match([join(root, "**")])[0].metadata_list]
            if found:
                fs.delete(found)
        return
    if os.path.islink(root) or not os.path.isdir(root):
        return
    import shutil

    for name in os.listdir(root):
        path = os.path.join(root, name)
        if _TOKEN.match(name) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(root)


def _rename(src: str, dst: str) -> None:
    if not uris.scheme(dst):
        os.replace(src, dst)  # atomic per file, replacing the old one
        return
    fs = filesystems()
    if fs.exists(dst):
        fs.delete([dst])
    fs.rename([src], [dst])


def publish(model_dir: str, files: dict[str, bytes], writer: str) -> None:
    """Write ``files`` (name -> bytes) into ``model_dir`` as one version with its manifest."""
    for name in files:
        if not _NAME.match(name) or name == MANIFEST:
            raise ValueError(f"not a model file name: {name!r}")
    if not uris.scheme(model_dir):
        if os.path.islink(model_dir) or os.path.islink(os.path.join(model_dir, STAGING)):
            raise ModelFolderError(f"{model_dir}: a symbolic link where a model folder is written")
        os.makedirs(model_dir, exist_ok=True)
    _remove_staging(model_dir)
    staging = join(join(model_dir, STAGING), secrets.token_hex(6))
    if not uris.scheme(staging):
        os.makedirs(staging)
    manifest = {"writer": writer, "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "files": {name: {"bytes": len(data), "sha256": _sha(data)} for name, data in files.items()}}
    for name, data in {**files, MANIFEST: json.dumps(manifest, indent=1).encode()}.items():
        write_bytes(join(staging, name), data)
    faults.step("model:staged")
    for i, name in enumerate(files):
        _rename(join(staging, name), join(model_dir, name))
        faults.step(f"model:rename{i}")
    _rename(join(staging, MANIFEST), join(model_dir, MANIFEST))
    faults.step("model:published")
    _remove_staging(model_dir)


def holds_model(path: str) -> bool:
    """Whether a folder holds a published model (its manifest): no run or report writes there."""
    return exists(join(path, MANIFEST))


def read_manifest(model_dir: str) -> dict[str, str]:
    """name -> sha256 of the folder's published version; ModelFolderError when there is none or
    it is not one this tool wrote."""
    path = join(model_dir, MANIFEST)
    if not exists(path):
        raise ModelFolderError(f"{model_dir} has no {MANIFEST}: it is half-written or from an older version; "
                               "run learn or train into it again")
    try:
        data = json.loads(read_bytes(path))
        files = data["files"]
        out = {name: entry["sha256"] for name, entry in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFolderError(f"{path} is not one this tool wrote ({type(exc).__name__})") from None
    if not all(isinstance(n, str) and _NAME.match(n) and isinstance(h, str) and _HEX.match(h) for n, h in out.items()):
        raise ModelFolderError(f"{path} is not one this tool wrote (a name or hash is malformed)")
    return out


def verify(model_dir: str) -> dict[str, str]:
    """Every file the manifest lists is there with its hash; returns the manifest."""
    manifest = read_manifest(model_dir)
    for name in manifest:
        read_file(model_dir, name, manifest)
    return manifest


def read_file(model_dir: str, name: str, manifest: dict[str, str] | None = None) -> bytes:
    """A file of the folder's published version, checked against the manifest."""
    manifest = manifest if manifest is not None else read_manifest(model_dir)
    if name not in manifest:
        raise ModelFolderError(f"{model_dir}: {name} is not part of its published version")
    try:
        data = read_bytes(join(model_dir, name))
    except Exception as exc:  # noqa: BLE001 - any filesystem's missing file
        raise ModelFolderError(f"{model_dir}: {name} is missing ({type(exc).__name__}); run learn or train "
                               "into it again") from None
    if _sha(data) != manifest[name]:
        raise ModelFolderError(f"{model_dir}: {name} does not match {MANIFEST} (a write was interrupted, or "
                               "the file was changed); run learn or train into it again")
    return data
