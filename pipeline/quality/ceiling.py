"""How far score floors alone can take the product's own candidates on a kind of photo.

Before a precision or coverage target is called out of reach of a choice of floors, the best
choice is measured: each tag source's floor is picked on the kind's photos themselves (held out
of every fit in by_kind, the report half's in photo_set), an oracle no fit could match, as the
best precision that leaves at most ``UNTAGGED`` of the photos without a tag. When that oracle
is below a target, no threshold, calibration or decision rule over the same candidates reaches
it; better evidence must (docs/QUALITY.md, issue #33).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from transforms.knowledge.calibration import ScoringFlags

FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, float("inf"))  # inf: the source writes nothing
UNTAGGED = 0.1  # issue #33's bound on photos left without a tag
PRODUCT_FLOOR = ScoringFlags().min_score  # the tag job's default --min_score, for every source

Tag = tuple[str, float, "bool | None"]  # (source, calibrated score, right? None: not judged): photo_set.judged_tags


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


def _evaluate(tags: list[list[Tag]], sources: list[str], choices: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per choice of floors ([choices, sources]): (precision, -1 where nothing judged is
    written; untagged share; tags written; judged tags written). Vectorised over the choices."""
    low = float(choices.min()) if choices.size else 0.0
    flat = [(i, sources.index(s), score, r) for i, photo in enumerate(tags) for s, score, r in photo if score >= low]
    if not flat:
        zeros = np.zeros(len(choices), dtype=int)
        return np.full(len(choices), -1.0), np.full(len(choices), 1.0 if tags else 0.0), zeros, zeros
    photo_of, source_of, score, verdict = (np.array(v) for v in zip(*flat, strict=True))
    judged = np.array([r is not None for r in verdict])
    right = np.array([bool(r) for r in verdict])
    kept = score[None, :] >= choices[:, source_of]  # [choices, tags]
    n_right = (kept & right).sum(1)
    n_judged = (kept & judged).sum(1)
    tagged = np.zeros((len(choices), len(tags)), dtype=bool)
    for i in range(len(tags)):
        tagged[:, i] = kept[:, photo_of == i].any(1)
    precision = np.where(n_judged > 0, n_right / np.maximum(n_judged, 1), -1.0)
    return precision, 1.0 - tagged.mean(1), kept.sum(1), n_judged


def _choice(sources: list[str], choices: np.ndarray, figures: tuple[np.ndarray, ...], k: int) -> Choice:
    precision, untagged, written, n_judged = figures
    return Choice(float(precision[k]) if n_judged[k] else None, float(untagged[k]), int(written[k]),
                  dict(zip(sources, map(float, choices[k]), strict=True)))


def at_floors(tags: list[list[Tag]], floors: Mapping[str, float]) -> Choice:
    """Precision, untagged share and tags written when each source writes from its floor (a
    source without one: from PRODUCT_FLOOR)."""
    sources = sorted({s for photo in tags for s, _, _ in photo} | set(floors))
    choices = np.array([[floors.get(s, PRODUCT_FLOOR) for s in sources]], dtype=float)
    return replace(_choice(sources, choices, _evaluate(tags, sources, choices), 0), floors=dict(floors))


def oracle(tags: list[list[Tag]], untagged_at_most: float = UNTAGGED) -> tuple[Choice | None, Choice]:
    """(the most precise choice of per-source floors leaving at most ``untagged_at_most`` of the
    photos untagged, or None when no choice does; the choice that leaves the fewest untagged).
    Exhaustive over FLOORS for every source."""
    sources = sorted({s for photo in tags for s, _, _ in photo})
    choices = np.array(list(itertools.product(FLOORS, repeat=len(sources))))  # [choices, sources]
    figures = _evaluate(tags, sources, choices)
    precision, untagged, written = figures[:3]
    if not written.any():  # no candidate reaches the lowest floor
        return None, Choice(None, float(untagged[0]), 0)
    fewest = _choice(sources, choices, figures, int(np.lexsort((-precision, untagged))[0]))
    feasible = np.flatnonzero(untagged <= untagged_at_most + 1e-9)
    if not len(feasible):
        return None, fewest
    best = int(feasible[np.lexsort((untagged[feasible], -precision[feasible]))[0]])
    return _choice(sources, choices, figures, best), fewest


def summary(tags: list[list[Tag]]) -> dict[str, str]:
    """The product's floors and the oracle's, described for the by-kind table."""
    product = at_floors(tags, {})
    best, fewest = oracle(tags)
    return {"product_floors": product.figures(),
            "oracle": best.describe() if best else f"none leaves at most {UNTAGGED:g} untagged; fewest: {fewest.describe()}"}


def table(results: Mapping[str, Mapping]) -> str:
    """One line per kind: its summary() at the product's floor and at the oracle's."""
    lines = [f"what score floors alone can do with the same candidates (pipeline/quality/ceiling.py): each source's "
             f"floor chosen on the kind itself, the most precise choice leaving at most {UNTAGGED:g} untagged", "",
             f"| kind | every source from {PRODUCT_FLOOR:g} (the product's floor) | the best floors for the kind |",
             "|---|---|---|"]
    return "\n".join(lines + [f"| {kind} | {r['product_floors']} | {r['oracle']} |" for kind, r in results.items()])
