"""A measure's or benchmark's working folder: the one its --workdir names (kept, so later runs reuse
its photos, corpora and features), else a temporary folder removed when it ends (photos, corpora,
features and job outputs run to hundreds of megabytes)."""

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
