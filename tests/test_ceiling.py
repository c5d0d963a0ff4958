"""pipeline/quality/ceiling.py: the best per-source floors on a kind, found by trying them all."""

from __future__ import annotations

import math

from pipeline.quality import ceiling

TAGS = [
    [("tagger", 0.55, False), ("detector", 0.92, True)],
    [("tagger", 0.85, True)],
    [("tagger", 0.65, True), ("everyday", 0.62, False)],
    [("tagger", 0.75, None)],  # not judged: counts for coverage, not for precision
]


def test_the_products_floor_keeps_every_tag_from_half_a_chance():
    product = ceiling.at_floors(TAGS, {})
    assert (product.precision, product.untagged, product.written) == (3 / 5, 0.0, 6)


def test_the_oracle_finds_the_floors_that_drop_only_wrong_tags():
    best, fewest = ceiling.oracle(TAGS)
    assert best is not None and best.precision == 1.0 and best.untagged == 0.0
    assert 0.55 < best.floors["tagger"] <= 0.65
    assert best.floors["detector"] <= 0.92 and best.floors["everyday"] > 0.62
    again = ceiling.at_floors(TAGS, best.floors)
    assert (again.precision, again.untagged, again.written) == (best.precision, best.untagged, best.written)
    assert fewest.untagged == 0.0


def test_coverage_no_floor_reaches_is_said_with_the_fewest_untagged():
    tags = [*TAGS, [("tagger", 0.2, True)], [], [("detector", 0.4, False)]]  # 0.2: below every floor
    best, fewest = ceiling.oracle(tags)
    assert best is None
    assert math.isclose(fewest.untagged, 2 / 7) and fewest.floors["detector"] <= 0.4
    assert "none leaves at most 0.1 untagged" in ceiling.summary(tags)["oracle"]


def test_a_stricter_coverage_bound_never_gives_a_more_precise_choice():
    loose, _ = ceiling.oracle(TAGS, untagged_at_most=0.5)
    strict, _ = ceiling.oracle(TAGS, untagged_at_most=0.0)
    assert loose is not None and strict is not None and loose.precision >= strict.precision
