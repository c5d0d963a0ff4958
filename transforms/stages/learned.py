"""Learned stage: the words a reviewer taught TaggerNet (pipeline/training/learn.py), written next
to the embedded tagger's with source ``learned``. On when ``--tagger_model`` names a model learned
from corrections; its score is the model's Platt-calibrated chance that the word is right."""

from __future__ import annotations

from transforms.core.registry import Stage, register

SOURCE = "learned"  # its tag source, named here once: other modules import it

STAGE = register(Stage(
    name=SOURCE, reads=("features", "tags:expansion"), writes=(f"tags:{SOURCE}", f"likely:{SOURCE}"),
    build="transforms.handlers.learned:build", tag_source=SOURCE, colour="#17becf", bench_batch=64,
))
