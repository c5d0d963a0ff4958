"""Feature extraction job: labelled images -> Parquet of backbone features, for training.

python -m pipeline.training.extract_features --dataset mirflickr --data_dir DIR --output FEATURES
python -m pipeline.training.extract_features --dataset list --labels FILE --output FEATURES

Reuses the tag job's read/fetch/decode/backbone stages, so it scales the same way on every
runner. Writes FEATURES/features-*.parquet (image_id, uri, features, labels, split, backbone)
and FEATURES/errors-*.parquet.
"""

from __future__ import annotations

import argparse
import functools
import sys
from types import SimpleNamespace

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import commands
from pipeline import options as opt
from pipeline.checks import check_feature_options, check_flags, check_not_ignored
from pipeline.commands import FeatureOptions
from pipeline.flags import IoFlags, flag_names
from pipeline.graph import fetch_and_decode, run_stages
from pipeline.run_output import check_output
from pipeline.runner import configure_logging, run_job
from pipeline.training.datasets import DatasetFlags, read_labelled_list, read_mirflickr
from transforms.core.launch import LaunchError
from transforms.core.records import FEATURES_SCHEMA, new_element, to_feature_row
from transforms.core.registry import builder
from transforms.output.write import WriteOutputs
from transforms.stages import backbone, fingerprint


def examples(o) -> list[dict]:
    d = DatasetFlags.from_options(o)
    if d.dataset == "mirflickr":
        assert d.data_dir, "checked at launch"
        return read_mirflickr(d.data_dir, d.label_set, d.min_tag_count, d.test_fraction, d.val_fraction)
    assert d.labels, "checked at launch"
    try:
        return read_labelled_list(d.labels, d.test_fraction, d.val_fraction)
    except ValueError as exc:
        raise LaunchError(f"--labels: {exc}") from None


def _to_element(example: dict) -> dict:
    return {**new_element(example["uri"]), "labels": example["labels"], "split": example["split"]}


def build(pipeline: beam.Pipeline, o, num_workers: int = 1, *, found: list[dict]):
    """The feature job over ``found``, the dataset's examples as run() read them at launch."""
    handler = builder(backbone.STAGE)(o, num_workers)
    elements = (
        pipeline
        | "Examples" >> beam.Create(found, reshuffle=True)
        | "ToElement" >> beam.Map(_to_element)
    )
    # The fingerprint's content_sha256 lets training warn when one picture sits in two splits.
    handlers = [(fingerprint.STAGE, builder(fingerprint.STAGE)(o, num_workers)), (backbone.STAGE, handler)]
    decoded, dead = fetch_and_decode(elements, o, [s for s, _ in handlers], num_workers)
    embedded, failed = run_stages(decoded, handlers)
    to_row = functools.partial(to_feature_row, backbone=handler.model_version())
    rows = embedded | "ToRow" >> beam.Map(to_row)
    errors = (*dead, *failed) | "AllErrors" >> beam.Flatten()
    io_flags = IoFlags.from_options(o)
    return (rows, errors) | "Write" >> WriteOutputs(io_flags.output, o.run_manifest, io_flags.num_shards,
                                                          "features", FEATURES_SCHEMA, io_flags.parquet_codec)


SET_BY_CALLER = ("--output", "--overwrite")  # with the dataset's flags: what a command running this job sets


def check_passed_on(argv: list[str], command: str) -> None:
    """The options ``command`` passes on to this job, checked at that command's launch, before it
    writes anything: each known, read by this job and in range; the dataset and the output are
    the command's own to set."""
    own = flag_names(FeatureOptions._add_argparse_args) | set(SET_BY_CALLER)  # noqa: SLF001
    for name in (arg.split("=", 1)[0] for arg in argv):
        if name in own:
            raise LaunchError(f"{name} is set by {command} itself")
    check_flags(argv)
    check_not_ignored(argv, "extract-features", commands.feature_job_flags())
    check_feature_options(opt.all_options(PipelineOptions(argv)), dataset=False)


def run(argv: list[str] | None = None, then: str | None = None) -> dict[str, int]:
    argv = list(argv if argv is not None else sys.argv[1:])
    if "-h" in argv or "--help" in argv:
        commands.features_help()
        raise SystemExit(0)
    dataset_parser = argparse.ArgumentParser(add_help=False)
    FeatureOptions._add_argparse_args(dataset_parser)  # noqa: SLF001
    try:
        dataset, beam_argv = dataset_parser.parse_known_args(argv)
        check_flags(beam_argv)
        check_not_ignored(beam_argv, "extract-features", commands.feature_job_flags())
        options = PipelineOptions(beam_argv)
        o = SimpleNamespace(**{**vars(opt.all_options(options)), **vars(dataset)})
        if not IoFlags.from_options(o).output:
            raise LaunchError("--output is required (see --help)")
        if getattr(o, "skip_existing", False):
            raise LaunchError("--skip_existing is for the tag job; a feature set is written whole "
                              "(use --overwrite or a new folder)")
        check_feature_options(o)
        check_output(o, ("features",))
        found = examples(o)  # read once, here: a bad list is refused before the output is made
    except LaunchError as exc:
        raise SystemExit(f"image-tagger extract-features: {exc}") from None
    configure_logging(o)
    return run_job(options, functools.partial(build, found=found), o, ("features",), then)


if __name__ == "__main__":
    run()
