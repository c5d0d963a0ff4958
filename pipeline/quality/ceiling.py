"""How far score floors alone can take the product's own candidates on a kind of photo.

Before a precision or coverage target is called out of reach of a choice of floors, the best
choice is measured: each tag source's floor is picked on the held-out kind itself, an oracle
no fit could match, as the best precision that leaves at most ``UNTAGGED`` of the photos
without a tag. When that oracle is below a target, no threshold, calibration or decision rule
over the same candidates reaches it; better evidence must (docs/QUALITY.md, issue #33).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline.quality import photo_set
from transforms.knowledge.calibration import ScoringFlags

FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, float("inf"))  # inf: the source writes nothing
UNTAGGED = 0.1  # issue #33's bound on photos left without a tag
PRODUCT_FLOOR = ScoringFlags().min_score  # the tag job's default --min_score, for every source

Tag = tuple[str, float, "bool | None"]  # (source, calibrated score, right? None: not judged)


@dataclass(frozen=True)
class Choice:
    """What one choice of floors (source -> smallest score written) gives on a set of photos."""

    precision: float | None
    untagged: float
    written: int
    floors: dict[str, float] = field(default_factory=dict)

    def figures(self) -> str:
        precision = "-" if self.precision is None else f"{self.precision:.2f}"
        return f"{precision}, untagged {self.untagged:.2f}"

    def describe(self) -> str:
        """The figures and the floors that give them."""
        kept = ", ".join(f"{s} {f:g}" for s, f in sorted(self.floors.items()) if np.isfinite(f))
        off = [s for s, f in sorted(self.floors.items()) if not np.isfinite(f)]
        return f"{self.figures()} ({kept}{'; none from ' + ', '.join(off) if off else ''})"


def judged_tags(photos: Iterable[photo_set.Photo], rows: Mapping[str, dict], judge: photo_set.Judge) -> list[list[Tag]]:
    """Each photo's tags as (source, score, right?), judged as the quality figures judge them."""
    return [[(t["source"], float(t["score"]), photo_set.verdict(t["name"], judge, p))
             for t in rows.get(p.path, {}).get("tags", [])] for p in photos]


def at_floors(tags: list[list[Tag]], floors: Mapping[str, float]) -> Choice:
    """Precision, untagged share and tags written when each source writes from its floor."""
    right = judged = written = untagged = 0
    for photo in tags:
        kept = [(s, r) for s, score, r in photo if score >= floors.get(s, PRODUCT_FLOOR)]
        untagged += not kept
        written += len(kept)
        judged += sum(r is not None for _, r in kept)
        right += sum(bool(r) for _, r in kept)
    return Choice(right / judged if judged else None, untagged / max(len(tags), 1), written, dict(floors))


def oracle(tags: list[list[Tag]], untagged_at_most: float = UNTAGGED) -> tuple[Choice | None, Choice]:
    """(the most precise choice of per-source floors leaving at most ``untagged_at_most`` of the
    photos untagged, or None when no choice does; the choice that leaves the fewest untagged).
    Exhaustive over FLOORS for every source, vectorised over the choices."""
    sources = sorted({s for photo in tags for s, _, _ in photo})
    choices = np.array(list(itertools.product(FLOORS, repeat=len(sources))))  # [choices, sources]
    flat = [(i, sources.index(s), score, r) for i, photo in enumerate(tags) for s, score, r in photo if score >= FLOORS[0]]
    if not flat:
        return None, Choice(None, 1.0 if tags else 0.0, 0)
    photo_of, source_of, score, verdict = (np.array(v) for v in zip(*flat, strict=True))
    judged = np.array([r is not None for r in verdict])
    right = np.array([bool(r) for r in verdict])
    kept = score[None, :] >= choices[:, source_of]  # [choices, tags]
    n_right = (kept & right).sum(1)
    n_judged = (kept & judged).sum(1)
    tagged = np.zeros((len(choices), len(tags)), dtype=bool)
    for i in range(len(tags)):
        tagged[:, i] = kept[:, photo_of == i].any(1)
    untagged = 1.0 - tagged.mean(1)
    precision = np.where(n_judged > 0, n_right / np.maximum(n_judged, 1), -1.0)

    def choice(k: int) -> Choice:
        return Choice(float(precision[k]) if n_judged[k] else None, float(untagged[k]), int(kept[k].sum()),
                      dict(zip(sources, map(float, choices[k]), strict=True)))

    fewest = choice(int(np.lexsort((-precision, untagged))[0]))
    feasible = np.flatnonzero(untagged <= untagged_at_most + 1e-9)
    if not len(feasible):
        return None, fewest
    return choice(int(feasible[np.lexsort((untagged[feasible], -precision[feasible]))[0]])), fewest


def summary(tags: list[list[Tag]]) -> dict[str, str]:
    """The product's floors and the oracle's, described for the by-kind table."""
    product = at_floors(tags, {})
    best, fewest = oracle(tags)
    return {"product_floors": product.figures(),
            "oracle": best.describe() if best else f"none leaves at most {UNTAGGED:g} untagged; fewest: {fewest.describe()}"}
