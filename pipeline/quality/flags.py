"""The options the quality measurements share (the key's figures, the photo set, by kind),
declared once as a Flags group, as every other command's are (transforms/core/options.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option


@dataclass(frozen=True)
class MeasureFlags(Flags):
    GROUP: ClassVar[str] = "measure"

    workdir: str | None = option(None, "Where photos, fits and outputs go, kept and reused (default: a temporary folder removed at the end).")
    json: str | None = option(None, "Also write the figures to this JSON file.")
    show: bool = option(False, "List every wrong tag (image-tagger quality: every photo's tags, wrong ones marked ✗).")

    def check(self) -> None:
        """Refused before minutes of measuring: a --workdir that is a file, a --json that is a
        folder or lies in none."""
        if self.workdir and os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            raise LaunchError(f"--workdir {self.workdir} is a file; give a folder")
        if self.json and os.path.isdir(self.json):
            raise LaunchError(f"--json {self.json} is a folder; name the file")
        if self.json and not os.path.isdir(os.path.dirname(os.path.abspath(self.json))):
            raise LaunchError(f"--json: no such folder: {os.path.dirname(os.path.abspath(self.json))}")
