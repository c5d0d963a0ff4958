"""Word by word: what a review is missing, and how each learned word did held out
(pipeline/training/held_out.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.training import held_out


def test_the_precision_floor_is_the_lowest_score_reaching_the_target():
    scores = np.array([[0.95], [0.9], [0.8], [0.7], [0.6], [0.55], [0.2]])
    y = np.array([[1], [1], [1], [0], [1], [0], [0]], dtype=np.float32)
    known = np.ones_like(y)
    assert held_out.precision_floor(scores, y, known, 0.75) == pytest.approx(0.6)  # 4 of 5 from 0.6
    assert held_out.precision_floor(scores, y, known, 0.9) == pytest.approx(0.8)  # 3 of 3 from 0.8
    assert held_out.precision_floor(scores, y, known * 0, 0.9) is None  # nothing known: never written
    assert held_out.precision_floor(scores, 1 - y, known, 0.9) is None  # never precise enough


def test_readiness_names_what_each_word_is_missing():
    y = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    known = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 1]], dtype=np.float32)
    ready, missing = held_out.readiness(["sky", "gadget", "tree"], y, known, 2)
    assert ready == [0]
    assert missing == ["gadget: no picture without it was reviewed (tick pictures that lack it, or correct other "
                       "pictures in the same review)", "tree: 1 picture, needs 2 (--min_label_count)"]


def test_word_figures_say_where_a_word_is_written_from_or_why_not():
    calibrated = np.array([[0.9, 0.9], [0.8, 0.8], [0.7, 0.7], [0.6, 0.6], [0.3, 0.3]], dtype=np.float32)
    y = np.array([[1, 0], [1, 0], [1, 1], [0, 0], [0, 1]], dtype=np.float32)
    known = np.ones_like(y)
    scored = np.array([True, True, True, True, False])
    sky, fog = held_out.word_figures(["sky", "fog"], calibrated, y, known, scored, 0.9)
    assert sky.floor == pytest.approx(0.7) and (sky.right, sky.written, sky.held_positives) == (3, 3, 3)
    assert sky.line(0.9).endswith("written from a calibrated score of 0.70")
    assert "sky: 3 pictures with it, 2 without" in sky.line(0.9)
    assert fog.floor is None and "not written: held-out precision 0.25 (1 of 4, 90% interval" in fog.line(0.9)
    assert held_out.overall([sky, fog])["words_written"] == 1


def test_the_printed_precision_carries_its_interval_which_narrows_with_more_tags():
    """#37: a word printed at 0.94 on 17 held-out tags wrote 0.64 on new photos; the line now says
    how far a precision from that few tags can be off (Wilson, 90%)."""
    import math

    def figures(right: int, written: int) -> held_out.WordFigures:
        return held_out.WordFigures("w", written, 5, written, 5, written, right, 0.6)

    few, many = figures(16, 17), figures(160, 170)
    z, n, p = 1.6448536, 17, 16 / 17
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert few.interval == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert few.interval[0] < few.precision < few.interval[1]
    assert many.interval[1] - many.interval[0] < few.interval[1] - few.interval[0]
    assert f"(16 of 17, 90% interval {few.interval[0]:.2f}-{few.interval[1]:.2f})" in few.line(0.9)
    assert figures(0, 0).interval is None and "interval" not in figures(0, 0).line(0.9)


def test_a_word_takes_the_pooled_floor_unless_its_own_tags_miss_the_target_there():
    """One word's 10 held-out pictures make its own floor noisy: the words' pooled floor is used
    while the word's own tags reach the target from it."""
    calibrated = np.array([[0.95, 0.95], [0.7, 0.9], [0.62, 0.8], [0.6, 0.65], [0.55, 0.52]], dtype=np.float32)
    y = np.array([[1, 1], [1, 1], [1, 1], [0, 1], [0, 0]], dtype=np.float32)
    known, scored = np.ones_like(y), np.ones(5, dtype=bool)
    assert held_out.precision_floor(calibrated, y, known, 0.8) == pytest.approx(0.6)  # pooled: 7 of 8 from 0.6
    wide, tight = held_out.word_figures(["wide", "tight"], calibrated, y, known, scored, 0.8)
    assert tight.floor == pytest.approx(0.6) and tight.recall == 1.0  # 4 of 4 from the pooled floor
    assert wide.floor == pytest.approx(0.62) and wide.precision == 1.0  # 3 of 4 at 0.6 misses 0.8: its own


def test_a_word_with_enough_held_out_pictures_is_written_from_its_own_floor():
    """learn's --word_floor_min: a word with that many held-out pictures of it is written from
    its own floor, lower than the pooled one when its tags reach the target from there (the
    everyday head's sky and person: docs/QUALITY.md); a rarer word keeps the pooled rule."""
    calibrated = np.array([[0.95, 0.95], [0.7, 0.9], [0.62, 0.8], [0.6, 0.65], [0.55, 0.52]], dtype=np.float32)
    y = np.array([[1, 1], [1, 1], [1, 1], [0, 1], [0, 0]], dtype=np.float32)
    known, scored = np.ones_like(y), np.ones(5, dtype=bool)
    pooled = held_out.word_figures(["wide", "tight"], calibrated, y, known, scored, 0.8, low=0.5)
    own = held_out.word_figures(["wide", "tight"], calibrated, y, known, scored, 0.8, low=0.5, own_floor_min=4)
    assert pooled[1].floor == pytest.approx(0.6) and own[1].floor == pytest.approx(0.52)  # 4 of 4 from 0.52
    assert own[1].precision == pytest.approx(0.8) and own[1].written == pooled[1].written + 1
    assert own[0] == pooled[0], "3 held-out pictures of it: the pooled rule"


def test_no_word_is_written_below_the_lowest_floor():
    """Held-out tags precise from 0.5 still write a word only from LOWEST_FLOOR: nearer a coin
    flip, a few pictures unlike the corrected ones turn it."""
    calibrated = np.array([[0.9], [0.7], [0.58], [0.52], [0.3]], dtype=np.float32)
    y = np.array([[1], [1], [1], [1], [0]], dtype=np.float32)
    known, scored = np.ones_like(y), np.ones(5, dtype=bool)
    assert held_out.precision_floor(calibrated, y, known, 0.9, low=0.5) == pytest.approx(0.52)
    (word,) = held_out.word_figures(["person"], calibrated, y, known, scored, 0.9)
    assert word.floor == pytest.approx(0.7) and word.floor >= held_out.LOWEST_FLOOR and word.written == 2


def test_a_word_with_enough_held_out_pictures_gets_its_own_calibration_map():
    """learn's --word_calibration_min: a word seen often enough both ways is calibrated on its own
    held-out scores; a rare one keeps the pooled map (None)."""
    rng = np.random.default_rng(0)
    n = 200
    y = np.zeros((n, 2), dtype=np.float32)
    y[:100, 0] = 1  # common: half the pictures
    y[:4, 1] = 1  # rare: 4 pictures
    scores = np.clip(0.5 + 0.3 * (y * 2 - 1) + rng.normal(0, 0.15, (n, 2)), 0.01, 0.99)
    common, rare = held_out.calibrate_words(scores, y, np.ones_like(y), min_each=10)
    assert rare is None and common is not None and common["n"] == n and common["positives"] == 100
    assert common["a"] > 0, "a higher score means more likely right"
    known = np.ones_like(y)
    known[:, 0] = 0  # nothing known about a word: no map of its own
    assert held_out.calibrate_words(scores, y, known, min_each=10)[0] is None
