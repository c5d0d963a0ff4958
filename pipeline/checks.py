"""Launch-time checks: a wrong option or a missing file is refused in one line, before any
worker starts or any output is written.

Beam discards options it does not know with a warning (a typo such as ``--detecter none`` would
run with defaults and exit 0); here every flag must belong to this project or to Beam.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.core.launch import LaunchError, at_least, in_unit_range, unknown_option
from transforms.core.registry import registered


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


def check_image_options(o) -> None:
    """What every image job shares: input/output, fetching, decoding, backbone."""
    if not o.input or not o.output:
        raise LaunchError("--input and --output are required (see --help)")
    from transforms.ingest.read import check_header, check_not_empty, first_match, input_kind

    try:
        first = first_match(o.input)
        if input_kind(o.input) in ("csv", "tsv", "parquet"):
            check_header(first, input_kind(o.input))
        check_not_empty(o.input)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise LaunchError(f"--input: {exc}") from exc
    for option, value, low in (
        ("--num_shards", o.num_shards, 0), ("--fetch_concurrency", o.fetch_concurrency, 1),
        ("--max_per_host", o.max_per_host if o.max_per_host is not None else 1, 1),
        ("--max_host_rate", o.max_host_rate, 0),
        ("--fetch_batch_size", o.fetch_batch_size, 1), ("--max_bytes", o.max_bytes, 1),
        ("--max_attempts", o.max_attempts, 1), ("--max_redirects", o.max_redirects, 0),
        ("--decode_threads", o.decode_threads, 0), ("--max_pixels", o.max_pixels, 1),
        ("--retry_backoff", o.retry_backoff, 0),
    ):
        at_least(option, value, low)
    for option, value in (("--connect_timeout", o.connect_timeout), ("--read_timeout", o.read_timeout),
                          ("--total_timeout", o.total_timeout)):
        if value is None or value <= 0:
            raise LaunchError(f"{option} must be > 0 seconds, got {value}")
    for stage in registered():
        if stage.shared and stage.check is not None:
            stage.check(o)
    if getattr(o, "max_error_rate", None) is not None:
        in_unit_range("--max_error_rate", o.max_error_rate)


def check_tag_options(o) -> None:
    """The tag job's options: the shared ones, then each stage's own launch checks."""
    check_image_options(o)
    for stage in registered():
        if not stage.shared and stage.check is not None:
            stage.check(o)
