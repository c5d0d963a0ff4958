"""Read stage: turn the --input argument into a PCollection of elements, one per URI.

INPUT is either a glob of image files (local or gs://) or a URI list:
.txt/.lst (one per line), .csv/.tsv (a ``uri`` or ``url`` column), .jsonl/.ndjson
(objects with ``uri`` or ``url``) or .parquet (a ``uri`` or ``url`` column).
Lists are read with Beam's splittable text/Parquet sources, so they scale to
millions of lines; a line that cannot be parsed becomes a dead letter, not a crash.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from transforms.records import Element, mark_failed, new_element

URI_COLUMNS = ("uri", "url")
TEXT_SUFFIXES = (".txt", ".lst")
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)


def input_kind(pattern: str) -> str:
    """Classify INPUT by its suffix: text, csv, tsv, jsonl, parquet or glob (image files)."""
    lower = pattern.lower()
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


def first_match(pattern: str) -> str:
    """One file the pattern matches (its header names the columns); listing stops at one, so a
    glob over millions of images is not listed at launch (MatchFiles lists it on the workers)."""
    matches = FileSystems.match([pattern], limits=[1])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"--input matches no file: {pattern}")
    return matches[0].path


def pick_uri_column(names: Iterable[str], source: str) -> str:
    lowered = {n.strip().lower(): n for n in names}
    for candidate in URI_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    raise ValueError(f"{source} has no 'uri' or 'url' column (columns: {list(lowered)})")


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


def _uri_element(uri: str, line: str) -> Element:
    """An element for a non-empty URI string, or a dead letter if it cannot be stored as text."""
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        return _bad_line(line.encode("utf-8", "backslashreplace").decode("utf-8"),
                         "uri contains a lone surrogate (an invalid \\u escape)")
    return new_element(uri)


def parse_text_line(raw: bytes | str) -> list[Element]:
    line = decode_line(raw)
    if isinstance(line, dict):
        return [line]
    uri = line.strip()
    return [new_element(uri)] if uri and not uri.startswith("#") else []


def parse_jsonl_line(raw: bytes | str) -> list[Element]:
    line = decode_line(raw)
    if isinstance(line, dict):
        return [line]
    if not line.strip():
        return []
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 4300+ digit integers, deep nesting
        return [_bad_line(line, f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}")]
    for key in URI_COLUMNS:
        if isinstance(obj, dict) and isinstance(obj.get(key), str) and obj[key].strip():
            return [_uri_element(obj[key].strip(), line)]
    return [_bad_line(line, "JSON line has no string 'uri' or 'url' field")]


def parse_uri_value(value) -> Element:
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
    return _uri_element(value.strip(), value)


def check_header(path: str, kind: str) -> str:
    """The uri column of one CSV/TSV/Parquet list; ValueError if it has none."""
    with FileSystems.open(path) as f:
        if kind == "parquet":
            return pick_uri_column(pq.read_schema(f).names, path)
        header_line = f.readline().decode("utf-8-sig", "replace")
    return pick_uri_column(next(csv.reader([header_line], delimiter=DELIMITED_SUFFIXES["." + kind])), path)


class ParseDelimitedFile(beam.DoFn):
    """One CSV/TSV list, parsed whole with a real CSV reader (quoted fields may hold newlines and
    escaped quotes), with *its own* header naming the uri column. Every data row gives one
    element or one dead letter; the file as a whole fails only if it has no uri column."""

    def __init__(self, delimiter: str):
        self._delimiter = delimiter

    def process(self, readable) -> Iterable[Element]:
        path = readable.metadata.path
        with readable.open() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=self._delimiter)
            try:
                header = next(reader)
                index = [h.strip().lower() for h in header].index(pick_uri_column(header, path).strip().lower())
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
                    yield new_element(uri)


class ReadUris(beam.PTransform):
    """PTransform: INPUT pattern -> elements ``{"uri", "image_id"}`` (or read-stage dead letters)."""

    def __init__(self, pattern: str, reshuffle: bool = True):
        super().__init__()
        self._pattern = pattern
        self._reshuffle = reshuffle

    def expand(self, pbegin):
        kind = input_kind(self._pattern)
        first = first_match(self._pattern)  # fail fast on an input that matches nothing
        if kind == "glob":
            elements = (
                pbegin
                | "MatchImages" >> fileio.MatchFiles(self._pattern)
                | "ToElement" >> beam.Map(lambda m: new_element(m.path))
            )
        elif kind == "parquet":
            column = check_header(first, kind)
            elements = (
                pbegin
                | "ReadParquet" >> beam.io.ReadFromParquet(self._pattern, columns=[column])
                | "ToElement" >> beam.Map(lambda row: parse_uri_value(row[column]))
            )
        elif kind in ("csv", "tsv"):
            check_header(first, kind)  # a list without a uri column is refused at launch
            elements = (
                pbegin
                | "MatchLists" >> fileio.MatchFiles(self._pattern)
                | "OpenLists" >> fileio.ReadMatches()
                | "ParseDelimited" >> beam.ParDo(ParseDelimitedFile(DELIMITED_SUFFIXES["." + kind]))
            )
        else:  # text and JSONL: one record per line, split across workers; bytes, decoded per line
            lines = pbegin | "ReadLines" >> beam.io.ReadFromText(
                self._pattern, strip_trailing_newlines=True, coder=beam.coders.BytesCoder()
            )
            parse = parse_text_line if kind == "text" else parse_jsonl_line
            elements = lines | f"Parse{kind.title()}" >> beam.FlatMap(parse)
        if self._reshuffle:
            # Spread URIs over workers before the expensive fetch/decode/model stages.
            elements = elements | "Spread" >> beam.Reshuffle()
        return elements
