"""URI lists that arrive compressed (urls.txt.gz, .bz2, .xz, .zst), read as the text they hold.

The standard library's gzip, bz2 and lzma readers and zstandard's frames are used rather than
Beam's CompressedFile, which reads a truncated gzip as a shorter list without a word: these
raise where the data stops, so a list cut short ends in a dead letter that says so.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import IO, cast

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

PACKINGS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "xz", ".zst": "zstd", ".zstd": "zstd"}
UNREAD = (".zip", ".deflate", ".7z", ".rar")  # archives and streams a list is not read from
BROKEN = (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError)  # what a bad packing raises
CHUNK = 1 << 20
MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))  # no text starts so


def packing(path: str) -> str | None:
    """The compression a list's name says it has (``gzip``...), or None for plain text."""
    lower = path.lower()
    return next((name for suffix, name in PACKINGS.items() if lower.endswith(suffix)), None)


def sniffed(raw: IO[bytes]) -> str | None:
    """The packing a list's first bytes show, where its name shows none: a gzip-encoded urls.txt
    (gsutil cp -Z stores one so, and Beam reads GCS objects as stored). bzip2 goes by its name
    only: its mark, "BZh", is text a list line could start with."""
    if hasattr(raw, "peek"):
        head = raw.peek(8)[:8]
    elif raw.seekable():
        head = raw.read(8)
        raw.seek(0)
    else:
        return None
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def packing_of(path: str) -> str | None:
    """A stored list's packing: by its name, else by its first bytes (``sniffed``)."""
    named = packing(path)
    if named:
        return named
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        return sniffed(raw)


def described(path: str) -> str:
    """What a message about a list's data calls it: its packing (by name or first bytes), else text."""
    try:
        return packing_of(path) or "text"
    except OSError:  # it cannot be opened again: its name is all there is to go by
        return packing(path) or "text"


def unpacked_name(path: str) -> str:
    """The name without its compression suffix: what says which kind of list it holds."""
    lower = path.lower()
    for suffix in (*PACKINGS, *UNREAD):
        if lower.endswith(suffix):
            return path[: -len(suffix)]
    return path


class _ZstdReader(io.RawIOBase):
    """zstandard's stream reader ends quietly at a cut-off frame; its decompressobj says whether
    the frame ended, so this reader raises EOFError there (concatenated frames are read on)."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._started = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            data = self._raw.read(CHUNK)
            if not data:
                if self._started and not self._frame.eof:
                    raise EOFError("zstd data ended before the end of its frame (truncated?)")
                return 0
            while data:
                if self._frame.eof:  # a next frame
                    self._frame = zstandard.ZstdDecompressor().decompressobj()
                self._started = True
                self._pending += self._frame.decompress(data)
                data = self._frame.unused_data if self._frame.eof else b""
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


READERS: dict[str, Callable[[IO[bytes]], object]] = {  # a packing's name -> its reader over the stored bytes
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
    "zstd": lambda raw: io.BufferedReader(_ZstdReader(raw), CHUNK),
}


def unpack(raw: IO[bytes], path: str) -> IO[bytes]:
    """The text of a list from its stored bytes, decompressed when its name or its first bytes say so."""
    kind = packing(path) or sniffed(raw)
    return cast(IO[bytes], READERS[kind](raw)) if kind else raw


@contextlib.contextmanager
def unpacked(raw: IO[bytes], path: str) -> Iterator[IO[bytes]]:
    """``unpack`` as a context: the reader and the stored file both closed at its end."""
    with raw:
        reader = unpack(raw, path)
        try:
            yield reader
        finally:
            if reader is not raw:
                reader.close()


def open_list(path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A list's text (local or gs://), decompressed when its name or first bytes say so; Beam's
    own decompression is off, so every runner reads a list the same way."""
    return unpacked(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED), path)


def skip_to(f: IO[bytes], offset: int) -> None:
    """Move a list's reader to ``offset`` in its text (a compressed one decompresses up to it)."""
    if f.seekable():
        f.seek(offset)
        return
    left = offset
    while left > 0:
        got = len(f.read(min(left, CHUNK)))
        if not got:
            return
        left -= got


def chunks(f: IO[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """A list's text in pieces of at most ``size`` bytes, each handed on as soon as it is
    decompressed (``read1``), so every line before a break in the data is read."""
    read = getattr(f, "read1", f.read)
    return iter(lambda: read(size), b"")


def text_bytes(path: str) -> int:
    """How long a list's text is, up to where its data breaks (decompressed once, in chunks)."""
    total = 0
    with open_list(path) as f, contextlib.suppress(*BROKEN):
        for chunk in chunks(f):
            total += len(chunk)
    return total
