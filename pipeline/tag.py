"""The tag job: python -m pipeline.tag --input INPUT --output OUTPUT [Beam options]."""

from __future__ import annotations

import argparse
import sys

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline.checks import LaunchError, check_flags, check_tag_options
from pipeline.graph import tag_images
from pipeline.options import ImageOptions, TagOptions, all_options
from pipeline.run_output import check_output
from pipeline.runner import RunOptions, configure_logging, run_job


def print_help(prog: str, description: str, option_classes: tuple) -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description + " Any standard Beam option (--runner, --direct_num_workers, "
        "--project, ...) is accepted too.",
    )
    for cls in option_classes:
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's own hook for option classes
    parser.print_help()


def run(argv: list[str] | None = None) -> dict[str, int]:
    """Build and run the tag job; returns the run's counters (inputs, tagged, failed, ...)."""
    argv = list(argv if argv is not None else sys.argv[1:])
    if "-h" in argv or "--help" in argv:
        print_help("image-tagger tag", "Tag images in bulk: CNN tags, COCO objects, "
                   "word-vector expansion, Parquet out.", (ImageOptions, TagOptions, RunOptions))
        raise SystemExit(0)
    try:
        check_flags(argv)
        options = PipelineOptions(argv)
        tag = all_options(options)
        check_tag_options(tag)
        check_output(tag, ("tags",))
    except LaunchError as exc:
        raise SystemExit(f"image-tagger tag: {exc}") from None
    configure_logging(tag)
    options.view_as(SetupOptions).save_main_session = False
    return run_job(options, tag_images, tag)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
