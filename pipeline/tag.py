"""The tag job: python -m pipeline.tag --input INPUT --output OUTPUT [Beam options]."""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline import commands
from pipeline.checks import check_flags, check_list_access, check_tag_options
from pipeline.flags import IoFlags
from pipeline.options import all_options
from pipeline.run_output import check_output
from pipeline.runner import configure_logging, is_local, run_job
from pipeline.weights import fetch_for_job
from transforms.core.launch import LaunchError


def run(argv: list[str] | None = None) -> dict[str, int]:
    """Build and run the tag job; returns the run's counters (inputs, tagged, failed, ...)."""
    argv = list(argv if argv is not None else sys.argv[1:])
    if commands.wants_help(argv):
        commands.tag_help()
        raise SystemExit(0)
    try:
        options, tag = checked(argv)
        check_output(tag, ("tags",))
        check_list_access(tag, IoFlags.from_options(tag).input)
        fetch_for_job(tag, is_local(options))
    except LaunchError as exc:
        raise SystemExit(f"image-tagger tag: {exc}") from None
    configure_logging(tag)
    options.view_as(SetupOptions).save_main_session = False
    from pipeline.graph import tag_images  # Beam's model code and torch: only for a real run

    return run_job(options, tag_images, tag)


def checked(argv: list[str], command: argparse.ArgumentParser | None = None) -> tuple[PipelineOptions, SimpleNamespace]:
    """The job's options, each checked (LaunchError names the first wrong one; an unknown flag is
    matched against ``command``'s flags too). It looks only at whether --input exists and holds
    something, and writes nothing, so a command that passes options on to the job can refuse
    them first."""
    check_flags(argv, extra=command)
    options = PipelineOptions(argv)
    tag = all_options(options)
    check_tag_options(tag)
    return options, tag


JOB_SETS = ("--input", "--output")  # job options a command that runs the job sets itself


def parse_with_job_options(parser: commands.Parser, argv: list[str] | None,
                           sets: tuple[str, ...] = JOB_SETS) -> tuple[argparse.Namespace, list[str]]:
    """A command's own options, checked, and the rest: options for the tag job it runs, checked
    as the job checks them, so a wrong one is refused at launch, before anything is written.
    The job options the command ``sets`` itself are refused too: given, they would be overridden."""
    args, extra = parser.parse_known_args(argv)
    parser.check(args)
    extra = [a for a in extra if a != "--"]  # an optional separator before the job's options
    taken = sorted({a.split("=", 1)[0] for a in extra} & set(sets))
    if taken:
        raise SystemExit(f"{parser.prog}: {taken[0]} is set by this command for each job it runs")
    job = ["--input", __file__, "--output", __file__ + ".unused", *extra]  # stand-ins: never read or written
    try:
        checked(job, command=parser)
    except LaunchError as exc:
        raise SystemExit(f"{parser.prog}: {exc}") from None
    return args, extra


def main() -> None:
    run()


if __name__ == "__main__":
    main()
