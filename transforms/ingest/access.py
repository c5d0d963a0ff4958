"""Which URIs a job may read: a scheme allow-list and, for local files, allowed root folders.

A URI list is untrusted input: by default it may name web images only (http, https). Local
paths, file:// and cloud objects (gs://, s3://, ...) in a list are read only when the user opts
in (--allowed_schemes file,gs or --allow_local_paths), because they would be read with the
worker's own permissions and credentials. An input that is itself a glob of images is the
user's own choice and allows its own scheme. A refused URI is a dead letter that says only
which rule refused it: nothing about whether the file exists or how large it is.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from transforms.core import uris
from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option
from transforms.core.records import StageError

WEB = ("http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
KNOWN_SCHEMES = ("http", "https", "file", "gs", "s3", "azfs", "hdfs")


def scheme_of(uri: str) -> str:
    """'file' for local paths and file:// URIs, else the URI's scheme (lower case).

    A known scheme without ``//`` (``http:/127.0.0.1/x``, ``http:127.0.0.1/x``) is a malformed
    URL, never a local path: StageError(invalid_uri)."""
    found = uris.scheme(uri)
    if found:
        return found
    match = _SCHEME.match(uri)
    if match and match.group(1).lower() in KNOWN_SCHEMES:
        raise StageError("invalid_uri", f"malformed URL (no // after {match.group(1)}:)")
    return "file"


def local_path(uri: str) -> str | None:
    """The filesystem path of a local URI: a plain path, or file:/// (any case, percent-encoded,
    host empty or localhost). None for other filesystems (gs://...)."""
    if not uris.scheme(uri):
        return uri
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc.lower() not in ("", "localhost"):
        raise StageError("invalid_uri", f"file URI names another host: {parts.netloc!r}")
    return unquote(parts.path)


@dataclass(frozen=True)
class AccessPolicy:
    schemes: frozenset[str] = frozenset(WEB)
    roots: tuple[str, ...] = ()  # real paths; empty: any local folder (when file is allowed)

    def check(self, uri: str) -> str | None:
        """Raise StageError(refused_scheme / outside_allowed_roots) for a URI this job may not
        read; returns the real local path to open for a local file (None otherwise)."""
        scheme = scheme_of(uri)
        if scheme not in self.schemes:
            hint = "--allow_local_paths" if scheme == "file" else f"--allowed_schemes {scheme}"
            raise StageError("refused_scheme", f"{scheme} URIs are not allowed from this input (opt in with {hint})")
        if scheme != "file":
            return None
        path = local_path(uri)
        assert path is not None
        real = os.path.realpath(path)  # resolves .. and every symlink, so neither escapes a root
        if self.roots and not any(real == r or real.startswith(r.rstrip("/") + "/") for r in self.roots):
            raise StageError("outside_allowed_roots", "local path outside --allowed_roots")
        return real


@dataclass(frozen=True)
class AccessFlags(Flags):
    """Which URIs a job may read besides the web: each field is its own flag."""

    GROUP: ClassVar[str] = "access"

    allowed_schemes: str = option("", "URI schemes a URI list may name, comma-separated from http, https, "
                                  "file, gs, s3, azfs, hdfs (default: http,https for a list; a glob of images "
                                  "allows its own scheme). Local files and cloud objects are read with this "
                                  "machine's permissions and credentials: allow them for lists you trust.", template=r"^[a-z0-9,]*$")
    allow_local_paths: bool = option(False, "Let a URI list name local paths and file:// URIs (adds file to "
                                     "--allowed_schemes). Relative paths resolve against the list's folder.")
    allowed_roots: str = option("", "Comma-separated folders local reads must stay inside (after resolving "
                                ".. and symbolic links); default: anywhere, once file is allowed.")

    def check(self) -> None:
        for s in filter(None, (x.strip().lower() for x in self.allowed_schemes.split(","))):
            if s not in KNOWN_SCHEMES:
                raise LaunchError(f"--allowed_schemes: unknown scheme {s!r} (known: {', '.join(KNOWN_SCHEMES)})")

    def policy(self, input_is_glob: bool, input_scheme: str) -> AccessPolicy:
        """The job's policy: no --allowed_schemes means web only for a URI list, and the input's
        own scheme for a glob of images."""
        schemes, roots = self.allowed_schemes, self.allowed_roots
        chosen = {s.strip().lower() for s in schemes.split(",") if s.strip()} if schemes else set(WEB)
        if input_is_glob and not schemes:
            chosen = {input_scheme}
        if self.allow_local_paths:
            chosen.add("file")
        real_roots = tuple(os.path.realpath(r) for r in roots.split(",") if r.strip()) if roots else ()
        return AccessPolicy(frozenset(chosen), real_roots)
