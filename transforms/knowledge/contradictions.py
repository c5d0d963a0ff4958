"""A tag that a likely tag of another kind of living thing contradicts needs evidence of its own.

A photo can show a plant and an animal, or a person and a dog, and then the models give the
second subject evidence of its own: a box around it, one class the classifier recognises
("ladybug", "bee"), or a word of the everyday head, which learned from labelled photos that
show plants beside animals. Where the only evidence is pooled mass, a tagger word above many
classes ("animal" or "insect" summed over beetles, lizards and frogs on a leaf close-up), it was
the models' confusion on the photo set, not a second subject: "animal 0.78, insect 0.71" on a
marigold beside "plant 0.97", "animal 0.55" on a dancer beside "person 0.98" (docs/QUALITY.md,
issue #33). So beside a likely word (CONTRADICTS) of an exclusive kind (lexicon.exclusive):
- a tag with evidence of its own is kept unless it is a coin flip (below WEAK);
- any other tag is kept only when it is sure (SURE): pooled mass at 0.8 on bamboo leaves beside
  an everyday "plant" at 0.8 is the confusion above, not a monkey;
- and a tag is kept whenever a kept one says that its subject is there: a kind of it (the
  "animal" above a kept "bird" box) or a word above it (the "mammal" and the coin-flip giraffe
  box below the everyday head's "animal" on giraffes among trees).
A reviewer's word is never dropped.

A likely word contradicts whether or not its source writes it: a learned head writes a word only
from the word's precision-first floor, often above CONTRADICTS, and its chance below that floor
is still the evidence (the head's "plant" at 0.85 beside pooled "animal, insect" on a flower it
was never taught). Such a stage passes those words in the element's ``likely`` field, never written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from transforms.core.records import Element, sources_of, with_fields
from transforms.knowledge.lexicon import exclusive, is_kind_of

WEAK = 0.6  # a tag with evidence of its own below this chance is dropped...
CONTRADICTS = 0.75  # ...beside a tag of an exclusive kind at this chance or more;
SURE = 0.92  # a tag without evidence of its own is dropped there below this one


Evidence = Mapping[str, "Collection[str] | None"]  # source -> its words that are evidence of their own (None: all)


def without_contradicted(tags: list[dict[str, Any]], keep_sources: Collection[str] = (),
                         evidence: Evidence | None = None,
                         unwritten: Collection[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The tags less those a likely tag of an exclusive kind contradicts (module docstring).
    ``evidence``: for each source, the words it writes from evidence of their own (the tagger's
    words that name one class), or None where every tag is (the detector's boxes).
    ``unwritten``: words the stages scored but did not write; the likely ones contradict too."""
    keep = set(keep_sources)
    likely = [t for t in (*tags, *unwritten) if t["score"] >= CONTRADICTS]

    def contradicted(t: dict[str, Any]) -> bool:
        return not keep & set(sources_of(t)) and any(exclusive(s["name"], t["name"]) for s in likely)

    known = evidence or {}

    def own_evidence(t: dict[str, Any]) -> bool:
        for source in sources_of(t):
            words = known.get(source, ())
            if words is None or t["name"] in words:
                return True
        return False

    kept = [t for t in tags if not contradicted(t) or t["score"] >= SURE or (own_evidence(t) and t["score"] >= WEAK)]
    kept_ids = {id(t) for t in kept}
    return [t for t in tags if id(t) in kept_ids
            or any(is_kind_of(k["name"], t["name"]) or is_kind_of(t["name"], k["name"]) for k in kept)]


def drop_contradicted(element: Element, keep_sources: Collection[str] = (), evidence: Evidence | None = None) -> Element:
    """The element with ``without_contradicted`` tags (a Beam Map over the tagged stream), its
    unwritten ``likely`` words counted and then dropped."""
    tags = without_contradicted(element.get("tags") or [], keep_sources, evidence, element.get("likely") or ())
    return with_fields(cast(Element, {k: v for k, v in element.items() if k != "likely"}), tags=tags)
