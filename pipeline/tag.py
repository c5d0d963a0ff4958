"""The tag job: python -m pipeline.tag --input INPUT --output OUTPUT [Beam options]."""

from __future__ import annotations

import argparse
import logging
import sys

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline.graph import tag_images
from pipeline.options import ImageOptions, TagOptions, all_options
from pipeline.runner import run_job


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
        print_help("python -m pipeline.tag", "Tag images in bulk: CNN tags, COCO objects, "
                   "word-vector expansion, Parquet out.", (ImageOptions, TagOptions))
        raise SystemExit(0)
    options = PipelineOptions(argv)
    tag = all_options(options)
    if not tag.input or not tag.output:
        raise SystemExit("--input and --output are required (see --help)")
    options.view_as(SetupOptions).save_main_session = False
    return run_job(options, tag_images, tag)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    run()


if __name__ == "__main__":
    main()
