"""A measure's working folder: the one its --workdir names (kept, so later measures reuse its photos
and features), else a temporary folder removed when the measure ends (photos, features and job
outputs run to hundreds of megabytes)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def working_folder(workdir: str | None, prefix: str) -> Iterator[Path]:
    if workdir:
        yield Path(workdir)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield Path(scratch)
