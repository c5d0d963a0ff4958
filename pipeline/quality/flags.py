"""The options the quality measurements share (the key's figures, the photo set, by kind),
declared once as a Flags group, as every other command's are (transforms/core/options.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option

if TYPE_CHECKING:
    from pipeline.commands import Parser


@dataclass(frozen=True)
class MeasureFlags(Flags):
    GROUP: ClassVar[str] = "measure"

    workdir: str | None = option(None, "Where photos, fits and outputs go (default: a temp dir; reused when given).")
    json: str | None = option(None, "Also write the figures to this JSON file.")
    show: bool = option(False, "List every wrong tag (image-tagger quality: every photo's tags, wrong ones marked ✗).")


JOB_SETS = ("--input", "--output")  # job options every measurement sets itself


def parse_with_job_options(parser: Parser, argv: list[str] | None,
                           sets: tuple[str, ...] = JOB_SETS) -> tuple[argparse.Namespace, list[str]]:
    """The tool's own options, checked, and the rest: options for the tag job it runs, checked
    as the job checks them, so a wrong one is refused at launch, before any photo is written.
    The job options the tool ``sets`` itself are refused too: given, they would be overridden."""
    from pipeline import tag
    from pipeline.checks import check_flags

    args, extra = parser.parse_known_args(argv)
    parser.check(args)
    taken = sorted({a.split("=", 1)[0] for a in extra} & set(sets))
    if taken:
        raise SystemExit(f"{parser.prog}: {taken[0]} is set by this tool for each job it runs")
    job = ["--input", __file__, "--output", __file__ + ".unused", *extra]  # stand-ins: never read or written
    try:
        check_flags(job, extra=parser)  # an unknown flag is matched against the tool's flags too
        tag.checked(job)
    except LaunchError as exc:
        raise SystemExit(f"{parser.prog}: {exc}") from None
    return args, extra
