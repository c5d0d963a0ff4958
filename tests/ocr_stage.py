"""A worked example for docs/ARCHITECTURE.md: an OCR stage declared as a real stage module would
be (tests/test_stage.py adds it to the registry's MODULES and follows it everywhere)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option
from transforms.core.registry import Column, Stage, register

LANGUAGES = ("eng", "deu", "fra")


@dataclass(frozen=True)
class OcrFlags(Flags):
    ocr: bool = option(False, "Read text in the images.")
    ocr_languages: str = option("eng", f"Comma-separated, of {LANGUAGES}.")

    def check(self) -> None:
        unknown = [lang for lang in self.ocr_languages.split(",") if lang not in LANGUAGES]
        if unknown:
            raise LaunchError(f"--ocr_languages: unknown {unknown}; choose from {LANGUAGES}")


def build(o, num_workers: int = 1):
    return None  # a real stage returns its handler (transforms/handlers/ocr.py) when --ocr is on


STAGE = register(Stage(
    name="ocr", reads=("image",), writes=("text", "tags:ocr"), build="tests.ocr_stage:build",
    options=OcrFlags, size=lambda o: (0, 1024), tag_source="ocr", colour="#8c564b",
    quality="everyday", columns=(Column("text", pa.string(), "recognised text"),),
))
