"""A coin-flip tag that a sure tag of another kind of living thing contradicts is not written.

A photo can show a plant and an animal, or a person and a dog, but on the photo set a word the
models give only a coin-flip chance beside a sure word of an exclusive kind (lexicon.exclusive)
was their confusion every time, never a second subject: "animal 0.51" on a flower close-up beside
"flower 0.88", "animal 0.55" on a dancer beside "person 0.98" (docs/QUALITY.md, issue #33).
A reviewer's word is never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transforms.core.records import Element, sources_of, with_fields
from transforms.knowledge.lexicon import exclusive

WEAK = 0.6  # a tag below this chance is dropped...
SURE = 0.85  # ...beside a tag of an exclusive kind at this chance or more


def without_contradicted(tags: list[dict[str, Any]], keep_sources: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The tags less every weak one that a sure tag of an exclusive kind contradicts."""
    keep = set(keep_sources)
    sure = [t for t in tags if t["score"] >= SURE]
    return [t for t in tags if t["score"] >= WEAK or keep & set(sources_of(t))
            or not any(exclusive(s["name"], t["name"]) for s in sure)]


def drop_contradicted(element: Element, keep_sources: tuple[str, ...] = ()) -> Element:
    """The element with ``without_contradicted`` tags (a Beam Map over the tagged stream)."""
    return with_fields(element, tags=without_contradicted(element.get("tags") or [], keep_sources))
