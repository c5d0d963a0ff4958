"""Read stage: turn the --input argument into a PCollection of elements, one per URI.

INPUT is either a glob of image files (local or gs://) or a URI list:
.txt/.lst (one per line), .csv/.tsv (a ``uri`` or ``url`` column), .jsonl/.ndjson
(objects with ``uri`` or ``url``) or .parquet (a ``uri`` or ``url`` column).
Lists are read with Beam's splittable text/Parquet sources, so they scale to
millions of lines; a line that cannot be parsed becomes a dead letter, not a crash.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.core import uris
from transforms.core.launch import TEXT_SNIFF, is_binary
from transforms.core.records import Element, StageError, mark_failed, new_element
from transforms.ingest.access import scheme_of
from transforms.ingest.packed import (
    BROKEN,
    UNREAD,
    chunks,
    described,
    open_list,
    packing,
    skip_to,
    unpacked,
    unpacked_name,
)

URI_COLUMNS = ("uri", "url")
TEXT_SUFFIXES = (".txt", ".lst")
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
UNCOMPRESSED = CompressionTypes.UNCOMPRESSED  # Beam opens lists as stored; transforms/ingest/packed.py unpacks


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ico", ".ppm",
                  ".pgm", ".pbm", ".tga", ".jp2", ".j2k", ".jpf", ".jpx")


def input_kind(pattern: str) -> str:
    """Classify INPUT: a local directory (every image below it), else by its suffix, a compression
    suffix aside (urls.txt.gz is a text list): text, csv, tsv, jsonl, parquet or glob (image files)."""
    if not uris.scheme(pattern) and os.path.isdir(pattern):
        return "directory"
    lower = unpacked_name(pattern).lower()
    if lower.endswith(TEXT_SUFFIXES):
        return "text"
    for suffix in DELIMITED_SUFFIXES:
        if lower.endswith(suffix):
            return suffix[1:]
    if lower.endswith(JSON_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "glob"


def is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


def directory_images(folder: str) -> Iterator[str]:
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if is_image_name(name):
                yield os.path.join(root, name)


def check_packing(pattern: str) -> None:
    """A list in an archive (urls.txt.zip) or a Parquet list compressed again is refused at launch,
    saying what is read: gzip, bzip2, xz and zstd text lists (transforms/ingest/packed.py)."""
    kind = input_kind(pattern)
    if kind in ("glob", "directory"):
        return
    lower = pattern.lower()
    for suffix in UNREAD:
        if lower.endswith(suffix):
            raise ValueError(f"{pattern} is a {suffix[1:]} file, which is not read: give the list itself, or one "
                             "compressed with gzip, bzip2, xz or zstd (.gz, .bz2, .xz, .zst)")
    if kind == "parquet" and packing(pattern):
        raise ValueError(f"{pattern} is a compressed Parquet list, which is not read: Parquet is compressed "
                         "inside, give the .parquet file itself")


def first_match(pattern: str) -> str:
    """One file the pattern matches (its header names the columns); listing stops at one, so a
    glob over millions of images is not listed at launch (MatchFiles lists it on the workers)."""
    if input_kind(pattern) == "directory":
        found = next(directory_images(pattern), None)
        if found is None:
            raise FileNotFoundError(f"--input {pattern} is a folder with no image files ({', '.join(IMAGE_SUFFIXES[:5])}, ...)")
        return found
    matches = FileSystems.match([pattern], limits=[1])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"--input matches no file: {pattern}")
    return matches[0].path


def check_lists(pattern: str) -> None:
    """A URI list with no URI at all is refused at launch (it would load every model for nothing),
    and so is a binary file named like a text list (an image saved as list.txt would end as
    hundreds of dead letters of garbage). Reads each matched list only up to its first URI."""
    kind = input_kind(pattern)
    if kind in ("glob", "directory"):
        return
    for meta in FileSystems.match([pattern])[0].metadata_list:
        if kind == "parquet":
            with FileSystems.open(meta.path) as f:
                if pq.ParquetFile(f).metadata.num_rows:
                    return
            continue
        with readable_data(meta.path):
            if _has_uri(meta.path, kind):
                return
    raise ValueError(f"{pattern} holds no URI (empty, or only comments and a header)")


@contextlib.contextmanager
def readable_data(path: str) -> Iterator[None]:
    """A list whose data breaks where a launch check reads it is refused, naming the file."""
    try:
        yield
    except BROKEN as exc:
        raise ValueError(f"{path} is not readable {described(path)} data ({exc})") from None


def _has_uri(path: str, kind: str) -> bool:
    """Whether one text list holds a URI line (a CSV's after its header); ValueError for a binary file."""
    with open_list(path) as f:
        pieces = chunks(f, TEXT_SNIFF)
        head = next(pieces, b"")
        if is_binary(head):
            raise ValueError(f"{path} is a binary file, not a {kind} list of URIs (it holds NUL bytes)")
        rows = 0
        for raw in split_lines(itertools.chain([head], pieces)):
            text = raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else "x"
            if text and not text.startswith("#"):
                rows += 1
                if kind not in ("csv", "tsv") or rows > 1:  # a CSV's first line is its header
                    return True
    return False


def pick_uri_column(names: Iterable[str], source: str, wanted: str = "") -> str:
    """The column holding the URIs, any case: ``wanted`` (--uri_column), else 'uri', else 'url'."""
    names = list(names)
    lowered = {n.strip().lower(): n for n in names}
    for candidate in (wanted.strip().lower(),) if wanted else URI_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    hint = "" if wanted else "; name yours with --uri_column"
    raise ValueError(f"{source} has no {_uri_names(wanted)} column (columns: {[n.strip() for n in names]}){hint}")


def _uri_names(wanted: str = "") -> str:
    """How a message names the column or key a list's URIs are read from."""
    return repr(wanted) if wanted else " or ".join(map(repr, URI_COLUMNS))


def check_uri_column(pattern: str, column: str) -> None:
    """--uri_column names a column of a CSV/TSV/Parquet list or a key of a JSONL one: refused for
    any other input, where it would be silently ignored."""
    kind = input_kind(pattern)
    if column and kind not in ("csv", "tsv", "jsonl", "parquet"):
        raise ValueError(f"--uri_column names a column of a CSV, TSV, JSONL or Parquet list; {pattern} is "
                         f"{'a ' + kind + ' list' if kind == 'text' else 'a ' + kind + ' of images'}")


MAX_LINE_CHARS = 2000  # of a bad line kept in its dead letter
BOM = b"\xef\xbb\xbf"


def _bad_line(line: str, reason: str) -> Element:
    return mark_failed(new_element(line[:MAX_LINE_CHARS]), "read", "bad_input_line", reason)


def decode_line(raw: bytes | str) -> str | Element:
    """A list line as text: UTF-8 (a leading BOM dropped). Anything else is a dead letter that
    keeps the line readable (undecodable bytes as \\xNN escapes)."""
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    raw = raw.removeprefix(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", "backslashreplace")
        return _bad_line(text, f"line is not UTF-8 text (byte 0x{raw[exc.start]:02x} at {exc.start})")


def resolve(uri: str, list_path: str = "") -> str:
    """Local paths are stored absolute: a relative path in a list resolves against the list's own
    folder (so a list works from any working folder), a relative glob match against the working
    folder. URIs with a scheme are left as they are."""
    if uris.scheme(uri) or os.path.isabs(uri):
        return uri
    try:
        scheme_of(uri)
    except StageError:
        return uri  # a malformed URL: the fetch stage says so
    if not list_path:
        return os.path.abspath(uri)
    if uris.scheme(list_path):
        return list_path.rsplit("/", 1)[0] + "/" + uri
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(list_path)), uri))


def _uri_element(uri: str, line: str, list_path: str = "") -> Element:
    """An element for a non-empty URI string, or a dead letter if it cannot be stored as text."""
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        return _bad_line(line.encode("utf-8", "backslashreplace").decode("utf-8"),
                         "uri contains a lone surrogate (an invalid \\u escape)")
    return new_element(resolve(uri, list_path))


def parse_text_line(raw: bytes | str, list_path: str = "") -> list[Element]:
    line = decode_line(raw)
    if isinstance(line, dict):
        return [line]
    uri = line.strip()
    return [new_element(resolve(uri, list_path))] if uri and not uri.startswith("#") else []


def parse_jsonl_line(raw: bytes | str, list_path: str = "", key: str = "") -> list[Element]:
    """One JSONL line: its ``key`` (--uri_column), else its 'uri', else its 'url' field."""
    line = decode_line(raw)
    if isinstance(line, dict):
        return [line]
    if not line.strip():
        return []
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 4300+ digit integers, deep nesting
        return [_bad_line(line, f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}")]
    for name in (key,) if key else URI_COLUMNS:
        if isinstance(obj, dict) and isinstance(obj.get(name), str) and obj[name].strip():
            return [_uri_element(obj[name].strip(), line, list_path)]
    return [_bad_line(line, f"JSON line has no string {_uri_names(key)} field")]


LineParser = Callable[[bytes | str, str], list[Element]]


def line_parser(kind: str, column: str = "") -> LineParser:
    """How one line of a text or JSONL list becomes elements (JSONL: the URI under ``column``)."""
    if kind == "text":
        return parse_text_line
    return functools.partial(parse_jsonl_line, key=column)


MAX_LIST_LINE = 1 << 20  # bytes: a longer list line is one dead letter, never held whole
_EOL = re.compile(rb"\r\n|\r|\n")


def split_lines(chunks: Iterable[bytes], max_line: int = MAX_LIST_LINE) -> Iterator[bytes | Element]:
    """Lines of a stream of byte chunks (\\n, \\r\\n or a lone \\r ends one), in time linear in the
    input whatever the line lengths; a line over ``max_line`` bytes becomes one dead letter and
    its bytes are dropped as they arrive."""
    for line, _ in split_lines_at(chunks, max_line):
        yield line


def split_lines_at(chunks: Iterable[bytes], max_line: int = MAX_LIST_LINE) -> Iterator[tuple[bytes | Element, int]]:
    """``split_lines`` with the byte offset just past each line (its end of line included): where
    a reader resumes to take the lines after it (pipeline/shards.py)."""
    buffer = b""
    base = 0  # offset of buffer[0] in the stream
    too_long: bytes | None = None  # the start of the overlong line being skipped
    for chunk in chunks:
        buffer += chunk
        start = 0
        for match in _EOL.finditer(buffer):
            if match.end() == len(buffer) and match.group() == b"\r":
                break  # a \r that may be half of \r\n: decide with the next chunk
            line = buffer[start:match.start()]
            start = match.end()
            if too_long is not None:
                yield _bad_line(too_long.decode("utf-8", "backslashreplace"), f"list line longer than {max_line} bytes"), base + start
                too_long = None
            elif len(line) > max_line:
                yield (_bad_line(line[:MAX_LINE_CHARS].decode("utf-8", "backslashreplace"),
                                 f"list line longer than {max_line} bytes"), base + start)
            else:
                yield line, base + start
        base += start
        buffer = buffer[start:]
        if len(buffer) > max_line:
            too_long = too_long if too_long is not None else buffer[:MAX_LINE_CHARS]
            keep = buffer[-1:] if buffer.endswith(b"\r") else b""
            base += len(buffer) - len(keep)
            buffer = keep
    end = base + len(buffer)
    if too_long is not None:
        yield _bad_line(too_long.decode("utf-8", "backslashreplace"), f"list line longer than {max_line} bytes"), end
    elif buffer.rstrip(b"\r"):
        yield buffer.rstrip(b"\r"), end


def list_lines(f: IO[bytes], path: str, start: int = 0) -> Iterator[tuple[bytes | Element, int]]:
    """``split_lines_at`` over a list's text (``open_list``) from byte ``start`` on, with offsets
    in the text; a list whose data breaks (a truncated or corrupt .gz) ends in one dead letter
    saying where, after every line before the break."""
    end = start
    try:
        skip_to(f, start)
        for line, at in split_lines_at(chunks(f)):
            end = start + at
            yield line, end
    except BROKEN as exc:
        yield _bad_line(path, f"list ends early: its {described(path)} data breaks after byte {end} of "
                              f"its text ({type(exc).__name__}: {exc})"), end


def _entry_ends(path: str, start: int = 0) -> Iterator[int]:
    """The text offset past each line of a local list that is neither blank nor a comment."""
    with open_list(path) as f:
        for raw, end in list_lines(f, path, start):
            if isinstance(raw, dict) or (raw.strip() and not raw.lstrip().startswith(b"#")):
                yield end


def count_entries(path: str, start: int = 0) -> int:
    """Lines of a local list that are neither blank nor comments, from byte ``start`` of its text
    on: streamed and not parsed, for a progress line's total (a CSV's header is one of them)."""
    return sum(1 for _ in _entry_ends(path, start))


def count_entries_within(path: str, limit: int) -> int | None:
    """``count_entries``, or None once the text runs past ``limit`` bytes (a launch estimate)."""
    count = 0
    for end in _entry_ends(path):
        if end > limit:
            return None
        count += 1
    return count


class ParseLineFile(beam.DoFn):
    """One text or JSONL list, read in chunks and split with ``split_lines`` (Beam's text source
    rescans a long line for every buffer it reads: quadratic in the line length)."""

    def __init__(self, kind: str, column: str = ""):
        self._parse = line_parser(kind, column)

    def process(self, readable) -> Iterable[Element]:
        path = readable.metadata.path
        with unpacked(readable.open(compression_type=UNCOMPRESSED), path) as f:
            for line, _ in list_lines(f, path):
                if isinstance(line, dict):
                    yield line
                else:
                    yield from self._parse(line, path)


def parse_uri_value(value, list_path: str = "") -> Element:
    """One value of a Parquet list's uri column -> an element, or a dead letter saying why."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return _bad_line(value.decode("utf-8", "backslashreplace"), "binary uri value is not UTF-8")
    if value is None:
        return _bad_line("", "uri is null")
    if not isinstance(value, str):
        return _bad_line(repr(value), f"uri is a {type(value).__name__}, not a string")
    if not value.strip():
        return _bad_line(value, "empty uri")
    return _uri_element(value.strip(), value, list_path)


def _open_list(path: str, kind: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A list as a launch check reads it: a Parquet file as stored, any other list as its text."""
    return FileSystems.open(path) if kind == "parquet" else open_list(path)


def first_uris(path: str, kind: str, limit: int = 20, column: str = "") -> list[str]:
    """Up to ``limit`` URIs from the top of one list (text, JSONL, CSV/TSV or Parquet), as the
    job would read them; lines it would refuse are skipped. For launch checks only."""
    with _open_list(path, kind) as f, readable_data(path):
        if kind == "parquet":
            table = pq.ParquetFile(f)
            batch = next(table.iter_batches(batch_size=limit, columns=[pick_uri_column(table.schema_arrow.names, path, column)]), None)
            values = batch.column(0).to_pylist() if batch is not None else []
            elements = [parse_uri_value(v, path) for v in values]
        elif kind in ("csv", "tsv"):
            head = f.read(1 << 16).decode("utf-8-sig", "replace")
            rows = list(csv.reader(io.StringIO(head), delimiter=DELIMITED_SUFFIXES["." + kind]))
            if not rows:
                return []
            index = [h.strip().lower() for h in rows[0]].index(pick_uri_column(rows[0], path, column).strip().lower())
            elements = [new_element(resolve(r[index].strip(), path)) for r in rows[1:limit + 1]
                        if index < len(r) and r[index].strip()]
        else:
            parse = line_parser(kind, column)
            elements = []
            for raw in split_lines(chunks(f, 1 << 16)):
                elements += parse(raw, path) if isinstance(raw, bytes) else []
                if len(elements) >= limit:
                    break
    return [e["uri"] for e in elements if "error" not in e][:limit]


def check_header(path: str, kind: str, column: str = "") -> str:
    """The uri column of one CSV/TSV/Parquet list (``column``, else uri or url); ValueError if it has none."""
    with _open_list(path, kind) as f, readable_data(path):
        if kind == "parquet":
            return pick_uri_column(pq.read_schema(f).names, path, column)
        header_line = f.readline().decode("utf-8-sig", "replace")
    return pick_uri_column(next(csv.reader([header_line], delimiter=DELIMITED_SUFFIXES["." + kind])), path, column)


class ParseDelimitedFile(beam.DoFn):
    """One CSV/TSV list, parsed whole with a real CSV reader (quoted fields may hold newlines and
    escaped quotes), with *its own* header naming the uri column. Every data row gives one
    element or one dead letter; the file as a whole fails only if it has no uri column."""

    def __init__(self, delimiter: str, column: str = ""):
        self._delimiter = delimiter
        self._column = column

    def process(self, readable) -> Iterable[Element]:
        path = readable.metadata.path
        with unpacked(readable.open(compression_type=UNCOMPRESSED), path) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=self._delimiter)
            try:
                header = next(reader)
                index = [h.strip().lower() for h in header].index(pick_uri_column(header, path, self._column).strip().lower())
            except (StopIteration, ValueError, csv.Error) as exc:
                yield _bad_line(path, f"list has no usable header: {exc}")
                return
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield _bad_line(f"{path}:{reader.line_num}", f"CSV error: {exc}")
                    continue
                except BROKEN as exc:
                    yield _bad_line(f"{path}:{reader.line_num}", f"list ends early: its {described(path)} data breaks "
                                                                 f"after line {reader.line_num} ({type(exc).__name__}: {exc})")
                    return
                if not any(cell.strip() for cell in row):
                    continue
                line = self._delimiter.join(row)
                if index >= len(row):
                    yield _bad_line(line, f"row has {len(row)} columns, no uri column")
                    continue
                uri = row[index].strip()
                if not uri:
                    yield _bad_line(line, "empty uri")
                elif any("\udc80" <= c <= "\udcff" for c in uri):
                    yield _bad_line(line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                                    "row is not UTF-8 text")
                else:
                    yield new_element(resolve(uri, path))


class ReadUris(beam.PTransform):
    """PTransform: INPUT pattern -> elements ``{"uri", "image_id"}`` (or read-stage dead letters)."""

    def __init__(self, pattern: str, reshuffle: bool = True, uri_column: str = ""):
        super().__init__()
        self._pattern = pattern
        self._reshuffle = reshuffle
        self._column = uri_column

    def expand(self, pbegin):
        kind = input_kind(self._pattern)
        first = first_match(self._pattern)  # fail fast on an input that matches nothing
        if kind == "directory":
            elements = (
                pbegin
                | "MatchFolder" >> fileio.MatchFiles(os.path.join(self._pattern, "**"))
                | "ImagesOnly" >> beam.Filter(lambda m: is_image_name(m.path))
                | "ToElement" >> beam.Map(lambda m: new_element(resolve(m.path)))
            )
        elif kind == "glob":
            elements = (
                pbegin
                | "MatchImages" >> fileio.MatchFiles(self._pattern)
                | "ToElement" >> beam.Map(lambda m: new_element(resolve(m.path)))
            )
        elif kind == "parquet":
            column = check_header(first, kind, self._column)
            elements = (
                pbegin
                | "MatchLists" >> fileio.MatchFiles(self._pattern)
                | "ListPaths" >> beam.Map(lambda m: m.path)
                | "ReadParquet" >> beam.io.ReadAllFromParquet(columns=[column], with_filename=True)
                | "ToElement" >> beam.MapTuple(lambda path, row: parse_uri_value(row[column], path))
            )
        elif kind in ("csv", "tsv"):
            check_header(first, kind, self._column)  # a list without a uri column is refused at launch
            elements = (
                pbegin
                | "MatchLists" >> fileio.MatchFiles(self._pattern)
                | "OpenLists" >> fileio.ReadMatches(compression=UNCOMPRESSED)
                | "ParseDelimited" >> beam.ParDo(ParseDelimitedFile(DELIMITED_SUFFIXES["." + kind], self._column))
            )
        else:  # text and JSONL: one record per line; bytes, decoded per line
            elements = (
                pbegin
                | "MatchLists" >> fileio.MatchFiles(self._pattern)
                | "OpenLists" >> fileio.ReadMatches(compression=UNCOMPRESSED)
                | f"Parse{kind.title()}" >> beam.ParDo(ParseLineFile(kind, self._column))
            )
        if self._reshuffle:
            # Spread URIs over workers before the expensive fetch/decode/model stages.
            elements = elements | "Spread" >> beam.Reshuffle()
        return elements
