"""A reviewer's corrections: what the contact sheet exports and what `learn` and the review stage read.

One JSON object per line and per reviewed image (pipeline/templates/report.html.j2 writes them):
``uri``, ``image_id``, ``content_sha256``, ``accepted`` (written tags the reviewer kept),
``rejected`` (tags marked wrong), ``added`` (missing tags typed in), ``reviewed`` (the image was
marked "all its tags right": after the reviewer's changes its tag list is complete, so a
collection word it lacks is a negative), ``reviewer`` and ``time`` (ISO 8601, UTC). ``review``
names the review a line came from (the file's content hash when the export gives none), so a
later merge still knows which pictures one review corrected together. ``group`` (optional) names
the subject, album or burst a picture belongs to: `learn` keeps a group's pictures in one
cross-fitting fold, so a word's held-out precision is measured on subjects its fold model never
saw (near copies of one subject in two folds make it look better than it is on new photos).

Files add to each other; the same content reviewed twice keeps the latest decision. An image is
keyed by its content (``content_sha256``), so a decision follows the picture to any URI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from transforms.core.artifacts import read_bytes
from transforms.core.launch import json_object, utf8_text

FIELDS = ("uri", "image_id", "content_sha256", "accepted", "rejected", "added", "reviewed", "reviewer", "time",
          "review", "group")
MAX_REVIEW = 100  # characters of a review id or a group
WORD_LISTS = ("accepted", "rejected", "added")
MAX_WORD = 100  # characters: longer is a paste accident, not a tag
MAX_FIELD = 8192  # characters of a uri, image_id or reviewer
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HIDDEN = ("Cc", "Cf", "Cs", "Co", "Cn")  # control, format (bidi, zero-width), surrogate, private, unassigned


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
    review: str = ""  # which review (export) the decision came from
    group: str = ""  # the subject or album it belongs to: one cross-fitting fold per group

    @property
    def key(self) -> str:
        """The picture it is about: its content when known, else its image_id."""
        return self.content_sha256 or self.image_id

    @property
    def fold_key(self) -> str:
        """What decides its cross-fitting fold: its group when it has one, else the picture."""
        return f"group:{self.group}" if self.group else self.key

    @property
    def positives(self) -> frozenset[str]:
        return frozenset(self.accepted) | frozenset(self.added)

    @property
    def negatives(self) -> frozenset[str]:
        return frozenset(self.rejected) - self.positives

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()},
                          ensure_ascii=False)


def _hidden(text: str) -> str | None:
    """The first character a reader would not see (controls, bidi overrides, NUL), named."""
    for ch in text:
        if unicodedata.category(ch) in _HIDDEN:
            return f"U+{ord(ch):04X}"
    return None


def visible(value: str, what: str, limit: int, where: str) -> str:
    """``value`` when it is at most ``limit`` characters, all of them visible; else ValueError."""
    if len(value) > limit:
        raise ValueError(f"{where}: {what} is longer than {limit} characters")
    hidden = _hidden(value)
    if hidden:
        raise ValueError(f"{where}: {what} holds the invisible character {hidden}")
    return value


def _text(record: dict, name: str, where: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} must be a string")
    return visible(value, name, MAX_FIELD, where)


def _time(record: dict, where: str) -> str:
    """ISO 8601 with a time zone, as UTC (so times compare as text); '' when absent."""
    value = _text(record, "time", where)
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: time {value[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{where}: time {value[:40]!r} has no time zone (the export writes UTC, ending in Z)")
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _words(record: dict, name: str, where: str) -> tuple[str, ...]:
    words = record.get(name)
    if words is None:
        return ()
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{where}: {name} must be a list of words")
    cleaned = tuple(dict.fromkeys(w for w in map(normalise, words) if w))
    for w in cleaned:
        visible(w, f"a word in {name}", MAX_WORD, where)
    return cleaned


def parse_line(line: str, where: str) -> Correction:
    """One exported line, validated field by field; ValueError naming ``where`` (file:line) and
    what is wrong. A line is data: a wrong type is an error, never read as something else."""
    record = json_object(line, where)
    uri, image_id = _text(record, "uri", where), _text(record, "image_id", where)
    content = _text(record, "content_sha256", where)
    if not (content or image_id):
        raise ValueError(f"{where}: needs content_sha256 or image_id")
    if content and not _SHA256.match(content):
        raise ValueError(f"{where}: content_sha256 must be 64 lower-case hex digits")
    reviewed = record.get("reviewed")
    reviewed = False if reviewed is None else reviewed
    if not isinstance(reviewed, bool):
        raise ValueError(f"{where}: reviewed must be true or false, not {json.dumps(reviewed)[:20]}")
    lists = {name: _words(record, name, where) for name in WORD_LISTS}
    review = visible(_text(record, "review", where), "review", MAX_REVIEW, where)
    group = visible(_text(record, "group", where), "group", MAX_REVIEW, where)
    return Correction(uri=uri, image_id=image_id, content_sha256=content, reviewed=reviewed,
                      reviewer=_text(record, "reviewer", where), time=_time(record, where), review=review,
                      group=group, **lists)


def read_lines(paths: Iterable[str]) -> list[Correction]:
    """Every correction of ``paths`` (local, gs://, https://), in file and line order; a line
    without a ``review`` belongs to its file's review (named by the file's content)."""
    out = []
    for path in paths:
        data = read_bytes(path)
        text = utf8_text(data, path, "exported corrections (JSON Lines)")
        review = "file:" + hashlib.sha256(data).hexdigest()[:12]
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                c = parse_line(line, f"{path}:{number}")
                out.append(c if c.review else replace(c, review=review))
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
