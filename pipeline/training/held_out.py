"""What a review can teach, word by word: which words have enough pictures, and how each
learned word did on pictures its model never saw (pipeline/training/learn.py cross-fits them).

A word is trained only with at least ``min_count`` positive pictures and one negative. A trained
word is written from the lowest calibrated score at which the held-out tags of every word
together reach the target precision (a review's few pictures per word make one word's own floor
noisy), unless the word's own held-out tags miss the target there: then from its own floor, or
not at all. A word with enough held-out pictures of its own (learn's --word_floor_min) is
written from its own floor: it has the pictures to fix one. Every word ends in one printed line: what is missing, or its figures and the
score it is written from, or why it is not written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pipeline.training.metrics import INTERVAL, precision_interval

NEVER = 2.0  # the threshold of a word that is not written: no calibrated chance reaches it


def readiness(vocabulary: list[str], y: np.ndarray, known: np.ndarray, min_count: int) -> tuple[list[int], list[str]]:
    """(the columns that can be trained, one line per word that cannot, saying what is missing)."""
    ready, missing = [], []
    for j, word in enumerate(vocabulary):
        positives = int(y[:, j].sum())
        negatives = int(((known[:, j] > 0) & (y[:, j] == 0)).sum())
        if positives < min_count:
            missing.append(f"{word}: {_pictures(positives)}, needs {min_count} (--min_label_count)")
        elif negatives == 0:
            missing.append(f"{word}: no picture without it was reviewed (tick pictures that lack it, or correct "
                           "other pictures in the same review)")
        else:
            ready.append(j)
    return ready, missing


def _pictures(n: int) -> str:
    return f"{n} picture{'' if n == 1 else 's'}"


def calibrate(scores: np.ndarray, y: np.ndarray, known: np.ndarray) -> dict:
    """A Platt map of held-out scores of known labels (identity when they lack either kind)."""
    from pipeline.quality.calibrate import platt

    mask = known > 0
    right = y[mask] > 0
    if right.all() or not right.any():
        return {"a": 1.0, "b": 0.0, "feature": "logit", "n": int(mask.sum()), "fitted": False}
    return {**platt(scores[mask].tolist(), right.tolist(), "logit"), "fitted": True}


def calibrate_words(scores: np.ndarray, y: np.ndarray, known: np.ndarray, min_each: int) -> list[dict | None]:
    """Per word, a Platt map of its own held-out scores when it has at least ``min_each`` known
    held-out pictures with it and without it (None: it keeps the pooled map, as a review's few
    pictures per word do)."""
    from pipeline.quality.calibrate import platt

    maps: list[dict | None] = []
    for j in range(y.shape[1]):
        mask = known[:, j] > 0
        right = y[mask, j] > 0
        enough = min(int(right.sum()), int((~right).sum())) >= min_each
        maps.append(platt(scores[mask, j].tolist(), right.tolist(), "logit") if enough else None)
    return maps


LOWEST_FLOOR = 0.6  # a learned word is never written below this chance: nearer a coin flip, a few
# pictures unlike the corrected ones turn it (the everyday head's "person" at 0.5 on hand tools)


def precision_floor(scores: np.ndarray, y: np.ndarray, known: np.ndarray, target: float,
                    low: float = LOWEST_FLOOR) -> float | None:
    """The lowest score (at least ``low``) from which the known held-out tags reach ``target``
    precision; None when none does."""
    mask = known > 0
    s, right = scores[mask], y[mask] > 0
    for t in np.unique(s[s >= low]):
        written = s >= t
        if right[written].mean() >= target:
            return float(t)
    return None


@dataclass(frozen=True)
class WordFigures:
    """One learned word: its pictures, and its held-out tags from ``floor`` (or from LOWEST_FLOOR
    when it is not written: the figures that kept it out)."""

    word: str
    positives: int  # pictures that have it
    negatives: int  # pictures known to lack it
    held_positives: int  # of those, pictures scored by a model that never saw them
    held_negatives: int
    written: int  # held-out tags written
    right: int
    floor: float | None  # the calibrated score it is written from; None: not written

    @property
    def precision(self) -> float:
        return self.right / max(1, self.written)

    @property
    def recall(self) -> float:
        return self.right / max(1, self.held_positives)

    @property
    def interval(self) -> tuple[float, float] | None:
        """Where the word's precision on new pictures is likely to lie given how few held-out tags
        it has: the Wilson interval at INTERVAL confidence (None when no tag was written)."""
        return precision_interval(self.right, self.written)

    def line(self, target: float) -> str:
        counts = f"{self.word}: {_pictures(self.positives)} with it, {self.negatives} without"
        if not self.held_positives:
            return f"{counts}; not written: no picture of it could be held out (correct a few more)"
        spread = f", {INTERVAL:.0%} interval {self.interval[0]:.2f}-{self.interval[1]:.2f}" if self.interval else ""
        shown = (f"held-out precision {self.precision:.2f} ({self.right} of {self.written}{spread}), recall "
                 f"{self.recall:.2f} ({self.right} of {self.held_positives})")
        if self.floor is None:
            return f"{counts}; not written: {shown}; precision < {target:.2f}"
        return f"{counts}; {shown}; written from a calibrated score of {self.floor:.2f}"

    def to_dict(self) -> dict:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "interval": self.interval}


def _word_floor(s: np.ndarray, right: np.ndarray, held: np.ndarray, pooled: float | None, target: float,
                low: float) -> float | None:
    """The pooled floor while the word's own held-out tags reach ``target`` from it (or it writes
    none of them), else the word's own floor; None when it has no held-out positive."""
    if not (held & right).any():
        return None
    if pooled is not None:
        at_pooled = held & (s >= pooled)
        if not at_pooled.any() or right[at_pooled].mean() >= target:
            return pooled
    return precision_floor(s[held], right[held], np.ones(int(held.sum())), target, low)


def word_figures(vocabulary: list[str], calibrated: np.ndarray, y: np.ndarray, known: np.ndarray,
                 scored: np.ndarray, target: float, low: float = LOWEST_FLOOR,
                 own_floor_min: int | None = None) -> list[WordFigures]:
    """Each word's held-out figures from its floor (a word with at least ``own_floor_min``
    held-out pictures of it: its own floor)."""
    pooled = precision_floor(calibrated[scored], y[scored], known[scored], target, low)
    out = []
    for j, word in enumerate(vocabulary):
        k, s, right = known[:, j] > 0, calibrated[:, j], y[:, j] > 0
        held = scored & k
        if own_floor_min is not None and (held & right).sum() >= own_floor_min:
            floor = precision_floor(s[held], right[held], np.ones(int(held.sum())), target, low)
        else:
            floor = _word_floor(s, right, held, pooled, target, low)
        written = held & (s >= (floor if floor is not None else low))
        out.append(WordFigures(word, int((k & right).sum()), int((k & ~right).sum()), int((held & right).sum()),
                               int((held & ~right).sum()), int(written.sum()), int((written & right).sum()), floor))
    return out


def overall(figures: list[WordFigures]) -> dict:
    """The written words' held-out tags together (what the contact sheet's model panel shows)."""
    shown = [f for f in figures if f.floor is not None]
    written, right = sum(f.written for f in shown), sum(f.right for f in shown)
    positives = sum(f.held_positives for f in figures)
    return {"written": written, "right": right, "positives": positives, "words_written": len(shown),
            "precision": right / max(1, written), "recall": right / max(1, positives)}
