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


def _bad_line(line: str, reason: str) -> Element:
    return mark_failed(new_element(line[:2000]), "read", "bad_input_line", reason)


def parse_text_line(line: str) -> list[Element]:
    uri = line.strip()
    return [new_element(uri)] if uri and not uri.startswith("#") else []


def parse_jsonl_line(line: str) -> list[Element]:
    if not line.strip():
        return []
    try:
        obj = json.loads(line)
        for key in URI_COLUMNS:
            if isinstance(obj, dict) and isinstance(obj.get(key), str) and obj[key].strip():
                return [new_element(obj[key].strip())]
        return [_bad_line(line, "JSON line has no string 'uri' or 'url' field")]
    except json.JSONDecodeError as exc:
        return [_bad_line(line, f"invalid JSON: {exc}")]


class _ParseDelimitedLine(beam.DoFn):
    def __init__(self, delimiter: str, column_index: int):
        self._delimiter = delimiter
        self._index = column_index

    def process(self, line: str) -> Iterable[Element]:
        if not line.strip():
            return
        try:
            row = next(csv.reader(io.StringIO(line), delimiter=self._delimiter))
            uri = row[self._index].strip()
        except (csv.Error, IndexError, StopIteration) as exc:
            yield _bad_line(line, f"cannot read the uri column: {exc!r}")
            return
        if uri:
            yield new_element(uri)
        else:
            yield _bad_line(line, "empty uri")


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
            with FileSystems.open(first) as f:
                column = pick_uri_column(pq.read_schema(f).names, first)
            elements = (
                pbegin
                | "ReadParquet" >> beam.io.ReadFromParquet(self._pattern, columns=[column])
                | "ToElement" >> beam.FlatMap(lambda row: parse_text_line(str(row[column] or "")))
            )
        else:
            lines = pbegin | "ReadLines" >> beam.io.ReadFromText(
                self._pattern,
                skip_header_lines=1 if kind in ("csv", "tsv") else 0,
                strip_trailing_newlines=True,
            )
            if kind == "text":
                elements = lines | "ParseText" >> beam.FlatMap(parse_text_line)
            elif kind == "jsonl":
                elements = lines | "ParseJson" >> beam.FlatMap(parse_jsonl_line)
            else:
                delimiter = DELIMITED_SUFFIXES["." + kind]
                with FileSystems.open(first) as f:
                    header_line = f.readline().decode("utf-8-sig")
                header = next(csv.reader([header_line], delimiter=delimiter))
                column = pick_uri_column(header, first)
                elements = lines | "ParseDelimited" >> beam.ParDo(
                    _ParseDelimitedLine(delimiter, header.index(column))
                )
        if self._reshuffle:
            # Spread URIs over workers before the expensive fetch/decode/model stages.
            elements = elements | "Spread" >> beam.Reshuffle()
        return elements
