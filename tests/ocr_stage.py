"""A worked example for docs/ARCHITECTURE.md: an OCR stage declared as a real stage module would
be (tests/test_stage.py adds it to the registry's MODULES and follows it everywhere)."""

from __future__ import annotations

import pyarrow as pa

from transforms.core.launch import LaunchError
from transforms.core.registry import Column, Stage, register

LANGUAGES = ("eng", "deu", "fra")


def add_options(group) -> None:
    group.add_argument("--ocr", action="store_true", help="Read text in the images.")
    group.add_argument("--ocr_languages", default="eng", help=f"Comma-separated, of {LANGUAGES}.")


def check(o) -> None:
    unknown = [lang for lang in o.ocr_languages.split(",") if lang not in LANGUAGES]
    if unknown:
        raise LaunchError(f"--ocr_languages: unknown {unknown}; choose from {LANGUAGES}")


def build(o, num_workers: int = 1):
    return None  # a real stage returns its handler (transforms/handlers/ocr.py) when --ocr is on


STAGE = register(Stage(
    name="ocr", reads=("image",), writes=("text", "tags:ocr"), build="tests.ocr_stage:build",
    options=add_options, check=check, size=lambda o: (0, 1024), tag_source="ocr", colour="#8c564b",
    quality="everyday", columns=(Column("text", pa.string(), "recognised text"),),
))
