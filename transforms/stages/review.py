"""Review stage: a reviewer's corrections act on every later run of the same pictures.

A rejected (picture, tag) pair is never written again for that content, nor its boxes; an
accepted or added tag is written with source ``review`` and score 1.0. Pictures are matched by
content_sha256 (the fingerprint stage's), so a decision follows the picture to any URI. The
corrections come from ``--corrections`` and from a ``--tagger_model`` learned from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transforms.core.artifacts import join
from transforms.core.launch import LaunchError, need_file
from transforms.core.options import Flags, option
from transforms.core.registry import EVERY_TAG, Stage, register
from transforms.knowledge import corrections
from transforms.stages.tagger import TaggerFlags
from transforms.stages.taggernet import CORRECTIONS, adds_to_embedded

SOURCE = "review"  # its tag source, named here once: other modules import it


@dataclass(frozen=True)
class ReviewFlags(Flags):
    corrections: str = option("", "Corrections JSONL files, comma-separated (the contact sheet's Export "
                              "corrections): a rejected tag is never written for that picture again, an accepted "
                              "or added one is written with source review and score 1.0. A --tagger_model "
                              "learned from corrections applies its own.")

    def files(self) -> list[str]:
        return [p.strip() for p in self.corrections.split(",") if p.strip()]

    def check(self) -> None:
        for path in self.files():
            need_file("--corrections", path)
        try:
            corrections.read(self.files())
        except ValueError as exc:
            raise LaunchError(f"--corrections: {exc}") from None


def correction_files(o: Any) -> list[str]:
    """--corrections, then the learned model's own (its merge of every file it learned from)."""
    model = TaggerFlags.from_options(o).tagger_model
    own = [join(model, CORRECTIONS)] if model and adds_to_embedded(model) else []
    return [*ReviewFlags.from_options(o).files(), *own]


STAGE = register(Stage(
    name=SOURCE,
    reads=("content_sha256", EVERY_TAG),
    writes=(f"tags:{SOURCE}",), build="transforms.handlers.review:build", options=ReviewFlags,
    tag_source=SOURCE, colour="#bcbd22", bench_batch=64,
))
