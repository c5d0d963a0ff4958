"""Launch checks every command and stage shares: a wrong value or a missing file is refused in
one line (``LaunchError``) before any worker starts or any output is written. A stage declares
its own checks (``Stage.check``) with these helpers; pipeline/checks.py runs them."""

from __future__ import annotations

import difflib
import json
import os

from transforms.core import uris
from transforms.core.artifacts import exists, sha256_of

BUILTIN_SOURCES = {"embedded", "coco", "none", "imagenet"}
# A file format told by how it starts: torch.save writes a zip archive (or an older pickle stream).
TORCH_FILE = ((b"PK\x03\x04", b"\x80"), "a PyTorch weights file (torch.save)")
TEXT_SNIFF = 1 << 16  # how much of a file that should be text is read to tell it from a binary one


def json_object(line: str, where: str) -> dict:
    """One line of a JSON Lines file the job reads back, as an object; ValueError naming
    ``where`` (file:line) otherwise: a line is data, never read as something else."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object per line")
    return record


def is_binary(head: bytes) -> bool:
    """Whether the start of a file that should be text holds a NUL byte, as no UTF-8 text does
    (an image or an archive named like a list; text in UTF-16)."""
    return b"\x00" in head[:TEXT_SNIFF]


def utf8_text(data: bytes, path: str, what: str) -> str:
    """The bytes of ``path``, a text file the job reads, as text (a BOM dropped); ValueError
    naming ``what`` it should be when it is a binary file, or the first byte that is not UTF-8."""
    if is_binary(data):
        raise ValueError(f"{path} is a binary file, not {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class LaunchError(Exception):
    """A command line that cannot run; the message is one line for the user."""


def need_file(option: str, path: str | None, builtins: set[str] = BUILTIN_SOURCES, sha256: str | None = None,
              form: tuple[tuple[bytes, ...], str] | None = None) -> None:
    """A local/gs:// file option must exist (https:// and gensim-data: are fetched when used). A
    local one is read at launch too, where a worker would only fail after the output is made: it
    must not be empty, must match ``sha256`` when one is expected, and must start as ``form``
    (its marks, and what it is called) says when one is given."""
    if not path or path in builtins or path.startswith(("http://", "https://", "gensim-data:")):
        return
    if not exists(path):
        raise LaunchError(f"{option}: no such file: {path}")
    if os.path.isdir(path):  # a local folder (a cloud "folder" is no object, so it does not exist above)
        raise LaunchError(f"{option}: {path} is a folder, not a file")
    if uris.scheme(path):
        return
    if os.path.getsize(path) == 0:
        raise LaunchError(f"{option}: {path} is empty")
    if form:
        starts, what = form
        with open(path, "rb") as f:
            head = f.read(max(len(s) for s in starts))
        if not head.startswith(starts):
            raise LaunchError(f"{option}: {path} is not {what}")
    if sha256 and sha256_of(path) != sha256.lower():
        raise LaunchError(f"{option}: {path} does not match its sha256 (expected {sha256})")


def at_least(option: str, value, low) -> None:
    if value is None or value < low:
        raise LaunchError(f"{option} must be >= {low}, got {value}")


def in_unit_range(option: str, value, high: float = 1.0) -> None:
    """A chance or share from 0 to 1 (``high`` 1.01 where a value above every chance means "never")."""
    if value is not None and not 0.0 <= value <= high:
        raise LaunchError(f"{option} must be between 0 and {high:g}, got {value}")


def unknown_option(flag: str, known: list[str]) -> str:
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
    return f"unknown option {flag}" + (f"; did you mean {close[0]}?" if close else " (see --help)")
