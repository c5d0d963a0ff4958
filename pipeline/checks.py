"""Launch-time checks: a wrong option or a missing file is refused in one line, before any
worker starts or any output is written.

Beam discards options it does not know with a warning (a typo such as ``--detecter none`` would
run with defaults and exit 0); here every flag must belong to this project or to Beam.
"""

from __future__ import annotations

import argparse
import difflib

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.core.launch import LaunchError, at_least, unknown_option
from transforms.core.registry import check_options


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit: one line instead
        raise LaunchError(message)


def _beam_parser() -> argparse.ArgumentParser:
    try:  # Beam's parser knows its value-provider arguments
        from apache_beam.options.pipeline_options import _BeamArgumentParser

        class Parser(_BeamArgumentParser, _Parser):
            pass

        parser: argparse.ArgumentParser = Parser(allow_abbrev=False)
    except ImportError:  # pragma: no cover - another Beam version
        parser = _Parser(allow_abbrev=False)
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # type: ignore[arg-type]  # noqa: SLF001 - Beam's hook
    return parser


def check_flags(argv: list[str], extra: argparse.ArgumentParser | None = None) -> None:
    """Every ``--flag`` must be known to this project (or ``extra``) or to Beam; values must parse."""
    _, unknown = _beam_parser().parse_known_args(argv)
    if extra is not None:
        _, unknown = extra.parse_known_args(unknown)
    flags = [a.split("=", 1)[0] for a in unknown if a.startswith("-")]
    if flags:
        known = [s for p in (_beam_parser(), extra) if p is not None for a in p._actions for s in a.option_strings]
        raise LaunchError(unknown_option(flags[0], known))


def check_not_ignored(argv: list[str], job: str, declare: tuple) -> None:
    """A tag job flag that ``job`` does not declare is refused: Beam parses every project flag for
    every job, so it would be accepted and ignored."""
    from pipeline.flags import flag_names, image_flags, run_flags, tag_flags

    ignored = flag_names(image_flags, tag_flags, run_flags) - flag_names(*declare)
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in ignored:
            raise LaunchError(f"{name} is a tag job option that {job} would ignore (see its --help)")


def check_runner(name: str | None) -> None:
    """--runner must name a runner Beam knows (as Beam resolves it), or a module.Class path that
    imports: a typo would otherwise fail inside Beam with a long traceback."""
    if not name:
        return
    from apache_beam.runners.runner import _RUNNER_MAP

    if name.lower() in _RUNNER_MAP or name.lower() + "runner" in _RUNNER_MAP:
        return
    if "." in name:
        import importlib.util

        module = name.rsplit(".", 1)[0]
        try:
            if importlib.util.find_spec(module) is not None:
                return
        except (ImportError, ValueError):
            pass
    known = sorted({path.rsplit(".", 1)[1] for path in _RUNNER_MAP.values()})
    short = {k.removesuffix("Runner").lower(): k for k in known}
    close = difflib.get_close_matches(name.lower().removesuffix("runner"), list(short), n=1, cutoff=0.6)
    hint = f"; did you mean {short[close[0]]}?" if close else f" (known: {', '.join(known)})"
    raise LaunchError(f"--runner {name}: not a runner Beam knows{hint}")


# Beam's worker counts, which Beam itself takes unchecked (a negative --direct_num_workers ends
# in an IndexError deep in the runner after the output folder is made); 0 is Beam's "decide".
WORKER_COUNTS = ("direct_num_workers", "num_workers", "max_num_workers")


def check_worker_counts(o) -> None:
    for name in WORKER_COUNTS:
        value = getattr(o, name, None)
        if value is not None:
            at_least(f"--{name}", value, 0)


def _check_groups(o, groups) -> None:
    """The groups' own checks, the run's (every job has one) and the shared stages'."""
    from pipeline.flags import RunFlags

    check_runner(getattr(o, "runner", None))
    check_worker_counts(o)
    for group in (*groups, RunFlags):
        group.from_options(o).check()
    check_options(o, shared=True)


def check_feature_options(o, dataset: bool = True) -> None:
    """The feature job: its dataset (unless a command that runs it sets that itself) and every
    image job's groups but --input (the dataset is its input)."""
    from pipeline.flags import IMAGE_GROUPS, IoFlags
    from pipeline.training.datasets import DatasetFlags

    groups = tuple(g for g in IMAGE_GROUPS if g is not IoFlags)
    _check_groups(o, (DatasetFlags, *groups) if dataset else groups)


def check_image_options(o) -> None:
    """What every image job shares: input/output, fetching, access, decoding, backbone, run."""
    from pipeline.flags import IMAGE_GROUPS, IoFlags

    _check_groups(o, IMAGE_GROUPS)
    from transforms.ingest.read import (
        check_header,
        check_lists,
        check_packing,
        check_uri_column,
        first_match,
        first_uris,
        input_kind,
    )

    io_flags = IoFlags.from_options(o)
    pattern, column = io_flags.input, io_flags.uri_column
    try:
        check_uri_column(pattern, column)
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    try:
        check_packing(pattern)
        first = first_match(pattern)
        if input_kind(pattern) in ("csv", "tsv", "parquet"):
            check_header(first, input_kind(pattern), column)
        check_lists(pattern)
        if column and input_kind(pattern) == "jsonl" and not first_uris(first, "jsonl", column=column):
            raise ValueError(f"no line among the first of {first} has a string {column!r} field (--uri_column)")
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise LaunchError(f"--input: {exc}") from exc


def check_list_access(o, pattern: str, first: str | None = None) -> None:
    """A URI list whose first URIs are all local files, run without --allow_local_paths, would
    end as nothing but refused_scheme dead letters: refused at launch, naming the flag."""
    from pipeline.flags import IoFlags
    from pipeline.options import access_policy
    from transforms.core.records import StageError
    from transforms.ingest.access import scheme_of
    from transforms.ingest.read import first_match, first_uris, input_kind

    kind = input_kind(pattern)
    policy = access_policy(o)
    if kind in ("glob", "directory") or "file" in policy.schemes:
        return
    try:
        uris = first_uris(first or first_match(pattern), kind, column=IoFlags.from_options(o).uri_column)
    except (OSError, ValueError):
        return  # the job reports an unreadable list as dead letters
    schemes = set()
    for uri in uris:
        try:
            schemes.add(scheme_of(uri))
        except StageError:
            schemes.add("invalid")
    if uris and schemes == {"file"}:
        raise LaunchError(f"--input {pattern} lists local files ({uris[0]}, ...); a URI list may name web "
                          "images only unless you pass --allow_local_paths (the files are then read with your "
                          "permissions)")



def check_tag_options(o) -> None:
    """The tag job's options: the shared ones, the tag job's groups, then each stage's."""
    from pipeline.flags import TAG_GROUPS

    check_image_options(o)
    for group in TAG_GROUPS:
        group.from_options(o).check()
    check_options(o, shared=False)
