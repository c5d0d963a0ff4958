"""The options the quality measurements share (the key's figures, the photo set, by kind),
declared once as a Flags group, as every other command's are (transforms/core/options.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from transforms.core.options import Flags, option


@dataclass(frozen=True)
class MeasureFlags(Flags):
    GROUP: ClassVar[str] = "measure"

    workdir: str | None = option(None, "Where photos, fits and outputs go, kept and reused (default: a temporary folder removed at the end).")
    json: str | None = option(None, "Also write the figures to this JSON file.")
    show: bool = option(False, "List every wrong tag (image-tagger quality: every photo's tags, wrong ones marked ✗).")
