"""The stage modules, in registration order (ties in the graph order follow it). Adding a stage:
its module (ending in ``register(Stage(...))``), its tests, and one line here."""

from __future__ import annotations

import importlib

MODULES = (
    "transforms.fingerprint",  # first: the fetched bytes can be dropped right after it
    "transforms.features",
    "transforms.tagger",
    "transforms.detect",
    "transforms.zero_shot",
    "transforms.expand",
    "transforms.embed",
)


def load() -> list:
    """Each listed module's ``STAGE``, in the listed order (whatever order they were imported in)."""
    return [importlib.import_module(module).STAGE for module in MODULES]
