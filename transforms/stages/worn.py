"""Worn stage: what every person shown wears, written at the photo's person chance (source "worn").

A person in a photo wears clothes, so the chance that the photo shows clothing is at least the
chance that it shows a person. The tagger scores "clothing" from ImageNet's garment classes,
which say whether a garment is what the photo is of; on photos of people, where clothing is
always there, that chance sat far below the truth, and a calibration fitted without photos of
people cannot learn better (docs/QUALITY.md, issue #33). So each ``--worn_words`` word is
written at the best chance any source gives a person word ("person", a kind of person such as
"scuba diver", or "people": a group).
A stronger score of the same word from another source wins in the row's one merge
(records.merge_sources); a reviewer's rejection wins over both (the review stage runs after).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option
from transforms.core.registry import Stage, register
from transforms.stages.detector import PERSON
from transforms.stages.pose import PERSON_SOURCES, person_chance
from transforms.stages.pose import SOURCE as POSE

SOURCE = "worn"  # its tag source, named here once: other modules import it
WORD = re.compile(r"[a-z][a-z -]*[a-z]")


@dataclass(frozen=True)
class WornFlags(Flags):
    worn_words: str = option("clothing,garment", "Words every person shown wears, comma-separated: each is written "
                             "at the photo's person chance ('' writes none).", template=r"^[a-z ,\-]*$")

    def words(self) -> tuple[str, ...]:
        return tuple(w.strip() for w in self.worn_words.split(",") if w.strip())

    def check(self) -> None:
        for word in self.words():
            if not WORD.fullmatch(word):
                raise LaunchError(f"--worn_words: {word!r} is not a lower-case word (letters, spaces, hyphens)")


def worn_tags(tags: list[dict[str, Any]], words: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each worn word at the person chance, none where no person word was written."""
    chance = person_chance(tags)
    return [{"name": w, "score": chance, "source": SOURCE, "origin": PERSON} for w in words] if chance > 0 else []


STAGE = register(Stage(
    name=SOURCE, reads=(*PERSON_SOURCES, f"tags:{POSE}"),
    writes=(f"tags:{SOURCE}",), build="transforms.handlers.worn:build", options=WornFlags, tag_source=SOURCE,
    colour="#8c564b", bench_batch=64,
))
