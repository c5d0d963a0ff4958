"""The tag job: python -m pipeline.tag --input INPUT --output OUTPUT [Beam options]."""

from __future__ import annotations

import logging
import sys

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from pipeline.graph import tag_images
from pipeline.options import TagOptions
from pipeline.runner import counters, is_local, make_pipeline, num_local_workers, run_and_wait, summary


def run(argv: list[str] | None = None) -> dict[str, int]:
    """Build and run the tag job; returns the run's counters (inputs, tagged, failed, ...)."""
    options = PipelineOptions(argv if argv is not None else sys.argv[1:])
    tag = options.view_as(TagOptions)
    if not tag.input or not tag.output:
        raise SystemExit("--input and --output are required (see --help)")
    options.view_as(SetupOptions).save_main_session = False
    pipeline = make_pipeline(options)
    tag_images(pipeline, tag, num_local_workers(options))
    result, seconds = run_and_wait(pipeline)
    totals = counters(result)
    if is_local(options):
        print(summary(totals, seconds))
    return totals


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    run()


if __name__ == "__main__":
    main()
