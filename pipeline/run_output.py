"""What a job may do with its --output: launch checks, the lock, recovery and the run's plan.

Order at launch: every check that can refuse runs first and writes nothing; then the lock is
taken, a killed run's half-done commit is rolled forward (transforms/output/runs.py), and the run's
manifest is planned. The lock is released when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

from pipeline.flags import IoFlags, TagJobFlags
from transforms.core import uris
from transforms.core.artifacts import exists
from transforms.core.launch import LaunchError
from transforms.output import lock as output_lock
from transforms.output import model_folder, runs
from transforms.output.partition import check_partition

log = logging.getLogger(__name__)
GLOB_CHARS = "*?[]{}"


def mode(o) -> str:
    """new, overwrite or skip_existing (the tag job's; the feature job has no --skip_existing)."""
    overwrite = IoFlags.from_options(o).overwrite
    skip = hasattr(o, "skip_existing") and TagJobFlags.from_options(o).skip_existing
    if overwrite and skip:
        raise LaunchError("--overwrite and --skip_existing exclude each other: replace the output, or add to it")
    if overwrite:
        return "overwrite"
    return "skip_existing" if skip else "new"


def _check_writable(output: str) -> None:
    """A local output must be (or be creatable as) a writable directory."""
    if os.path.islink(output) and not os.path.exists(output):
        raise LaunchError(f"--output {output} is a dangling symbolic link")
    if os.path.isfile(output):
        raise LaunchError(f"--output {output} is an existing file; give a directory or prefix")
    probe = os.path.abspath(output)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise LaunchError(f"--output {output}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LaunchError(f"--output {output}: {probe} is not writable")


def _inside_input(output: str, pattern: str) -> bool:
    """Would the input glob match files this job writes into the output?"""
    if uris.scheme(pattern) or not any(c in pattern for c in GLOB_CHARS):  # a list, or one file
        return False
    base = os.path.abspath(output)
    pattern = os.path.abspath(pattern)
    probes = [os.path.join(base, "tags", "part-x.parquet"), os.path.join(base, "errors", "part-x.parquet"),
              os.path.join(base, runs.RUNS, "x.json"), os.path.join(base, "_lock.json")]
    regex = re.compile(_glob_regex(pattern))
    return any(regex.fullmatch(p) for p in probes)


def _as_glob(pattern: str) -> str:
    return os.path.join(pattern, "**") if not uris.scheme(pattern) and os.path.isdir(pattern) else pattern


def _glob_regex(pattern: str) -> str:
    """A glob as Beam's local filesystem reads it: ``*`` and ``?`` stay within a folder, ``**``
    crosses folders."""
    parts = re.split(r"(\*\*|\*|\?|\[[^]]*\])", pattern)
    out = []
    for part in parts:
        if part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            out.append("[" + part[1:-1].replace("!", "^", 1) + "]")
        else:
            out.append(re.escape(part))
    return "".join(out)


def check_output(o, tables: tuple[str, ...]) -> str:
    """Launch checks of --output for a job writing ``tables`` (plus errors); returns the mode."""
    io_flags = IoFlags.from_options(o)
    output = io_flags.output
    if any(c in output for c in GLOB_CHARS):
        raise LaunchError(f"--output {output} contains glob characters (*?[]{{}}), which Beam's "
                          "file sink would read as a pattern; choose another name")
    if not uris.scheme(output):
        _check_writable(output)
    elif output.startswith("gs://") and not output.endswith("/") and exists(output):
        raise LaunchError(f"--output {output} is an existing object; give a prefix ending in /")
    if io_flags.input and _inside_input(output, _as_glob(io_flags.input)):
        raise LaunchError(f"--output {output} lies inside --input {io_flags.input}: the job would read its "
                          "own outputs as images; write somewhere else")
    if model_folder.holds_model(output):
        raise LaunchError(f"--output {output} holds a model (its {model_folder.MANIFEST}); give the runs a folder "
                          "of their own")
    partition = io_flags.partition
    try:
        check_partition(partition)
        runs.check_links(output)
        manifests = runs.read_manifests(output)
        foreign = runs.foreign_files(output, (*tables, "errors"), manifests)
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    chosen = mode(o)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise LaunchError(f"--output {output} holds files this tool did not write ({foreign[0]}{more}); "
                          "they would mix into the table folders: move them or choose a new folder")
    # Every manifest counts, a killed run's half-done commit too: the next run finishes it.
    if manifests and chosen == "new":
        raise LaunchError(f"--output {output} already holds {len(manifests)} run(s); pass --skip_existing "
                          "to add only images not yet tagged, --overwrite to replace them, or choose a new folder")
    if manifests and any(bool(m.partition) != bool(partition) for m in manifests):
        raise LaunchError(f"--output {output}: its runs {'use' if not partition else 'do not use'} "
                          "--partition; one output is either partitioned or not")
    return chosen


@contextlib.contextmanager
def open_run(o, tables: tuple[str, ...], run_mode: str | None = None) -> Iterator[runs.Manifest]:
    """Hold the output for one run: lock, recovery, the planned manifest; always unlocked.
    ``run_mode`` replaces the flags' mode (a list's later shards add to what the first wrote)."""
    run_id = runs.new_run_id()
    io_flags = IoFlags.from_options(o)
    output = io_flags.output
    try:
        _, replaced = output_lock.acquire(output, run_id, io_flags.break_lock)
    except output_lock.OutputBusyError as exc:
        raise SystemExit(f"image-tagger: {exc}") from None
    try:
        if replaced is not None:
            log.warning("took over the lock of %s, which is gone", replaced.describe())
        runs.recover(output, active_run=run_id)
        yield runs.plan_run(output, run_id, run_mode or mode(o), io_flags.partition, (*tables, "errors"))
    finally:
        output_lock.release(output, run_id)
