"""A reviewer's corrections: what the contact sheet exports and what `learn` and the review stage read.

One JSON object per line and per reviewed image (pipeline/templates/report.html.j2 writes them):
``uri``, ``image_id``, ``content_sha256``, ``accepted`` (written tags the reviewer kept),
``rejected`` (tags marked wrong), ``added`` (missing tags typed in), ``reviewed`` (the image was
marked "all its tags right": after the reviewer's changes its tag list is complete, so a
collection word it lacks is a negative), ``reviewer`` and ``time`` (ISO 8601, UTC).

Files add to each other; the same content reviewed twice keeps the latest decision. An image is
keyed by its content (``content_sha256``), so a decision follows the picture to any URI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from transforms.core.artifacts import read_bytes

FIELDS = ("uri", "image_id", "content_sha256", "accepted", "rejected", "added", "reviewed", "reviewer", "time")
WORD_LISTS = ("accepted", "rejected", "added")
MAX_WORD = 100  # characters: longer is a paste accident, not a tag


def normalise(word: str) -> str:
    return " ".join(str(word).lower().split())


@dataclass(frozen=True)
class Correction:
    uri: str
    image_id: str
    content_sha256: str
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    reviewed: bool = False
    reviewer: str = ""
    time: str = ""

    @property
    def key(self) -> str:
        """The picture it is about: its content when known, else its image_id."""
        return self.content_sha256 or self.image_id

    @property
    def positives(self) -> frozenset[str]:
        return frozenset(self.accepted) | frozenset(self.added)

    @property
    def negatives(self) -> frozenset[str]:
        return frozenset(self.rejected) - self.positives

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()},
                          ensure_ascii=False)


def parse_line(line: str, where: str) -> Correction:
    """One exported line; ValueError naming ``where`` (file:line) and what is wrong."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object per line")
    if not (record.get("content_sha256") or record.get("image_id")):
        raise ValueError(f"{where}: needs content_sha256 or image_id")
    lists = {}
    for name in WORD_LISTS:
        words = record.get(name) or []
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{where}: {name} must be a list of words")
        cleaned = tuple(dict.fromkeys(w for w in map(normalise, words) if w))
        if any(len(w) > MAX_WORD for w in cleaned):
            raise ValueError(f"{where}: a word in {name} is longer than {MAX_WORD} characters")
        lists[name] = cleaned
    return Correction(uri=str(record.get("uri") or ""), image_id=str(record.get("image_id") or ""),
                      content_sha256=str(record.get("content_sha256") or ""), reviewed=bool(record.get("reviewed")),
                      reviewer=str(record.get("reviewer") or ""), time=str(record.get("time") or ""), **lists)


def read_lines(paths: Iterable[str]) -> list[Correction]:
    """Every correction of ``paths`` (local, gs://, https://), in file and line order."""
    out = []
    for path in paths:
        for number, line in enumerate(read_bytes(path).decode("utf-8").splitlines(), 1):
            if line.strip():
                out.append(parse_line(line, f"{path}:{number}"))
    return out


def latest(corrections: Iterable[Correction]) -> dict[str, Correction]:
    """One decision per picture: the latest by time, and of equal times the later line."""
    out: dict[str, Correction] = {}
    for c in corrections:
        if c.key not in out or c.time >= out[c.key].time:
            out[c.key] = c
    return out


def read(paths: Iterable[str]) -> dict[str, Correction]:
    return latest(read_lines(paths))
