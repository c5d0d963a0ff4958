"""How a run was made, kept in its manifest: input, options, versions, and what it wrote.

A run manifest (transforms/output/runs.py) says which files a run published; its ``lineage``
says how (the input, the options that differ from the defaults, model_version, the package
version and git commit, when known) and its ``counts`` what came of it (rows per table, dead
letters per stage and error type). Both are read back by ``image-tagger runs``, so both are
validated as plain data with bounded sizes, like every other field a job reads back.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping

MAX_LINEAGE = 65536  # characters of the lineage as JSON
MAX_KEY = 200
SCALARS = (str, int, float, bool, type(None))


def valid_lineage(lineage: object) -> bool:
    """A dict of short string keys to scalars or dicts of scalars (the options), small overall."""
    if not isinstance(lineage, dict) or len(json.dumps(lineage)) > MAX_LINEAGE:
        return False

    def flat(d: dict) -> bool:
        return all(isinstance(k, str) and len(k) <= MAX_KEY and isinstance(v, SCALARS) for k, v in d.items())

    return all(isinstance(k, str) and len(k) <= MAX_KEY and (isinstance(v, SCALARS) or (isinstance(v, dict) and flat(v)))
               for k, v in lineage.items())


def valid_counts(counts: object) -> bool:
    """Table or "errors:stage/type" -> a count of rows."""
    return isinstance(counts, dict) and len(counts) <= 1000 and all(
        isinstance(k, str) and len(k) <= MAX_KEY and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in counts.items())


def count_rows(files: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Rows per table of the files a run publishes, and its dead letters by stage and error type."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    counts: Counter[str] = Counter()
    for table, paths in files.items():
        counts[table] += 0
        for path in paths:
            with FileSystems.open(path) as f:
                parquet = pq.ParquetFile(f)
                counts[table] += parquet.metadata.num_rows
                if table == "errors" and parquet.metadata.num_rows:
                    kinds = parquet.read(columns=["stage", "error_type"]).to_pydict()
                    counts.update(f"errors:{s}/{t}" for s, t in zip(kinds["stage"], kinds["error_type"], strict=True))
    return dict(counts)


def code_version() -> dict[str, str | None]:
    """The installed package's version, and the git commit of its source tree when it is a
    checkout (an editable install); None where unknown, never an error."""
    from importlib import metadata

    try:
        version: str | None = metadata.version("image-tagger")
    except metadata.PackageNotFoundError:
        version = None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = None
    if os.path.isdir(os.path.join(root, ".git")):
        try:  # "-dirty" when the checkout has changes the commit does not hold
            done = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty", "--abbrev=40"],
                                  capture_output=True, text=True, timeout=5, check=False)
            commit = done.stdout.strip() if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"package_version": version, "git_commit": commit}


def non_default_options(options) -> dict[str, str | int | float | bool | None]:
    """The options a run was given that differ from their defaults, as plain scalars."""
    chosen = options.get_all_options(drop_default=True, retain_unknown_options=False)
    return {k: v if isinstance(v, SCALARS) else str(v) for k, v in sorted(chosen.items()) if v is not None}
