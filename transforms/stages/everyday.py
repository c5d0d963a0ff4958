"""Everyday stage: the paper's TaggerNet taught the words a photo library is searched by
(person, sky, building, plant...) from the photo set's tune half, with the project's own
``learn`` (pipeline/quality/everyday.py builds it). Its score is the head's cross-fitted,
Platt-calibrated chance of being right; it writes a word only from the word's precision-first
floor. A word that names ImageNet classes (animal, vehicle...) is written only where the
classifier gives those classes at least the head's ``support`` floor: a head learned from a few
hundred photos is sure of "animal" on a tool it never saw, ImageNet's 1.2M photos are not.
"person" never takes a floor (ImageNet has no person class). On by default; the embedded head
sits in transforms/data/everyday/."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import ClassVar

import numpy as np

from transforms.core.artifacts import join
from transforms.core.launch import LaunchError, need_file
from transforms.core.options import Flags, option
from transforms.core.registry import Stage, register

SOURCE = "everyday"  # its tag source, named here once: other modules import it

EMBEDDED, OFF = "embedded", "none"
UNSUPPORTED = frozenset({"person"})  # ImageNet is silent about people: its mass never vetoes them


def support_floors(config: dict) -> dict[str, float]:
    """A learned head's config "support" (word -> the least ImageNet probability under the word's
    classes for it to be written), checked: vocabulary words that name ImageNet classes, floors
    in [0, 1]; ValueError otherwise."""
    import math

    from transforms.stages.tagger import ImageNetTagTable

    support = config.get("support") or {}
    if not isinstance(support, dict):
        raise ValueError("support must map words to floors")
    names = set(ImageNetTagTable.embedded().names)
    for word, floor in support.items():
        if word not in config["vocabulary"] or word not in names or word in UNSUPPORTED:
            raise ValueError(f"support: {word!r} is not a vocabulary word that names ImageNet classes")
        if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not 0 <= floor <= 1 or math.isnan(floor):
            raise ValueError(f"support: the floor of {word!r} must be a number in [0, 1]")
    return {word: float(floor) for word, floor in support.items()}


def class_mass(probs: np.ndarray, classes: np.ndarray) -> float:
    """The ImageNet probability under a word's classes: what its support floor is fitted on
    (pipeline/quality/everyday.py) and compared with (transforms/handlers/everyday.py)."""
    return float(np.sum(probs[classes]))


def embedded_dir() -> str:
    return str(resources.files("transforms").joinpath("data/everyday"))


@dataclass(frozen=True)
class EverydayFlags(Flags):
    GROUP: ClassVar[str] = "everyday"

    everyday_model: str = option(EMBEDDED, "The everyday head: 'embedded' (built by python -m "
                                 "pipeline.quality.everyday), a model folder image-tagger learn wrote (local or "
                                 "gs://), or 'none' to leave everyday words to the other sources.",
                                 template=rf"^({EMBEDDED}|{OFF}|gs://[^\n\r]+)$")

    def check(self) -> None:
        from transforms.stages.tagger import check_model_folder
        from transforms.stages.taggernet import LEARNED_ROLE, read_config

        folder = self.model_dir()
        if folder is None:
            return
        need_file("--everyday_model", join(folder, "config.json"))
        check_model_folder(folder, "--everyday_model")  # the embedded one too: a broken install fails here
        config = read_config(folder)
        if config.get("role") != LEARNED_ROLE:
            raise LaunchError(f"--everyday_model {folder} is not a model image-tagger learn wrote")
        try:
            support_floors(config)
        except ValueError as exc:
            raise LaunchError(f"--everyday_model {folder}: {exc}") from None

    def model_dir(self) -> str | None:
        """The folder the stage reads, or None when it is off."""
        if self.everyday_model == OFF:
            return None
        return embedded_dir() if self.everyday_model == EMBEDDED else self.everyday_model


STAGE = register(Stage(
    name=SOURCE, reads=("features", "imagenet_probs", "tags:expansion"), writes=(f"tags:{SOURCE}", f"likely:{SOURCE}"), options=EverydayFlags,
    build="transforms.handlers.everyday:build", tag_source=SOURCE, colour="#e377c2", bench_batch=64,
    quality="everyday", evidence="all",  # learned from labelled photos that show plants beside animals
))
