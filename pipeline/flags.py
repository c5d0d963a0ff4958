"""Every flag of our image jobs, declared without importing Beam: ``--help`` answers from here
in well under 2 s, and the Beam option classes (pipeline/options.py, pipeline/runner.py) add the
same flags to Beam's parser. Each group is a Flags dataclass (transforms/core/options.py) that
owns its defaults, help and range checks: the job's own groups here, the rest beside the code
that reads them (HttpConfig, AccessFlags, DecodeFlags, ScoringFlags, VectorFlags, each stage's)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

from transforms.core.launch import LaunchError, at_least, in_unit_range
from transforms.core.options import Flags, option
from transforms.core.records import CODECS as PARQUET_CODECS
from transforms.core.registry import add_options as add_stage_options
from transforms.ingest.access import AccessFlags
from transforms.ingest.decode import DecodeFlags
from transforms.ingest.http_client import HttpConfig
from transforms.knowledge.calibration import ScoringFlags
from transforms.knowledge.vectors import VectorFlags
from transforms.output.partition import PARTITION


@dataclass(frozen=True)
class IoFlags(Flags):
    GROUP: ClassVar[str] = "input and output"

    input: str = option("", "Required. A folder (every image below it), a glob of image files (local or "
                        "gs://), or a URI list: .txt (one per line), .csv/.tsv (a 'uri' or 'url' column), "
                        ".jsonl (objects with 'uri'/'url'), .parquet ('uri'/'url' column); a text, CSV or JSONL "
                        "list may be compressed (.gz, .bz2, .xz, .zst). URIs may be local paths, gs:// or "
                        "http(s)://.", template=True, required=True)
    uri_column: str = option("", "The column (CSV, TSV, Parquet; any case) or key (JSONL) of --input's list that "
                             "holds each URI, as image_url or contentUrl (default: 'uri', else 'url').",
                             template=True)
    output: str = option("", "Directory or gs:// prefix the job owns: the tag job writes OUTPUT/tags/ and "
                         "OUTPUT/errors/ (the feature job OUTPUT/features/), each a folder of Parquet files "
                         "that pandas, DuckDB, pyarrow and BigQuery read as one table, plus a manifest per "
                         "run in OUTPUT/_runs/. An output that already holds runs needs --overwrite (or, for "
                         "the tag job, --skip_existing). Required.", template=True, required=True)
    num_shards: int = option(0, "Output shards per table and run (0: let the runner decide).", template=True)
    parquet_codec: str = option("zstd", "Compression of the Parquet outputs (zstd: small and fast to read "
                                "everywhere).", choices=PARQUET_CODECS)
    overwrite: bool = option(False, "Replace what earlier runs wrote to this output (or to --partition): their "
                             "files are deleted only after this run's files are all in place.", template=True)
    partition: str = option("", "Hive-style partition of this run inside the output, e.g. dt=2026-11-29: files go "
                            "to OUTPUT/tags/dt=2026-11-29/ and readers get a dt column (scheduled backfills).", template=PARTITION.pattern)
    break_lock: bool = option(False, "Take the output's lock even though another run holds it (only when that "
                              "run is known to be gone, e.g. a failed remote job).")

    def check(self) -> None:
        if not self.input or not self.output:
            raise LaunchError("--input and --output are required (see --help)")
        at_least("--num_shards", self.num_shards, 0)


AUTO_SHARD_SIZE = 50_000  # inputs per shard when --shard_size is 0 (docs/BENCHMARKS.md, issue #36)


@dataclass(frozen=True)
class TagJobFlags(Flags):
    GROUP: ClassVar[str] = "tag job"

    skip_existing: bool = option(False, "Add to an output that already holds runs: inputs whose image_id has a "
                                 "row in any of its partitions are skipped (a scalable anti-join); earlier runs' "
                                 "files are never moved or rewritten, and earlier dead letters are retried. "
                                 "Resumes a killed run.", template=True)
    skip_existing_key: str = option("image_id", "What --skip_existing compares. image_id (default): the uri, "
                                    "before anything is fetched, so a rerun costs nothing for what is done. content: "
                                    "the fetched bytes' sha256, so a moved or copied archive is downloaded again but "
                                    "never re-tagged: its rows are copied from the earlier row of the same bytes, "
                                    "under the new uri.", choices=("image_id", "content"), template=True)
    ingest_only: bool = option(False, "Fetch and decode only, no models: one tags row per image (uri, image_id, "
                               "width, height, empty tags and objects) and the dead-letter table. Checks a URL "
                               "list before paying for inference.")
    shard_size: int = option(0, "Local runs of a local .txt or .jsonl list: take it in consecutive shards of this "
                             "many inputs, each its own committed run, so memory stays bounded whatever the "
                             "list's length and a rerun with --skip_existing starts at the first unfinished shard. "
                             f"0 (default): shards of {AUTO_SHARD_SIZE} when the list is longer. Dataflow and "
                             "Flink runs are never sharded.")

    def check(self) -> None:
        at_least("--shard_size", self.shard_size, 0)
        if self.skip_existing_key == "content" and (not self.skip_existing or self.ingest_only):
            raise LaunchError("--skip_existing_key content compares the fetched bytes with earlier rows: it needs "
                              "--skip_existing, and the models (not --ingest_only)")


@dataclass(frozen=True)
class RunFlags(Flags):
    """How a run reports and when it counts as failed (every job)."""

    GROUP: ClassVar[str] = "run"

    max_error_rate: float = option(0.5, "Exit non-zero when more than this share of the inputs ends as dead "
                                   "letters (all outputs are still written). 1 never fails a run.")
    progress_interval: float = option(5.0, "Seconds between progress lines on local runs (0: none).")
    quiet: bool = option(False, "Log warnings only and print no progress lines.")
    log_level: str = option("INFO", "Log level (INFO shows a Dataflow job's id and console URL).",
                            choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    def check(self) -> None:
        in_unit_range("--max_error_rate", self.max_error_rate)


IMAGE_GROUPS: tuple[type[Flags], ...] = (IoFlags, HttpConfig, AccessFlags, DecodeFlags)  # every image job
TAG_GROUPS: tuple[type[Flags], ...] = (TagJobFlags, ScoringFlags, VectorFlags)  # the tag job's, besides its stages'


def image_flags(parser, without: tuple[str, ...] = ()) -> None:
    """What every image job shares: input/output, fetching, access, decoding, and the backbone
    (but the flags named in ``without``)."""
    for group in IMAGE_GROUPS:
        group.add_flags(parser, without=without)
    add_stage_options(parser, shared=True)  # the backbone's (every image job has one)


FEATURE_UNREAD = ("input", "uri_column")  # the feature job's images come from its --dataset


def feature_flags(parser) -> None:
    """The feature job's share of every image job's flags: all but the input list's."""
    image_flags(parser, without=FEATURE_UNREAD)


def tag_flags(parser) -> None:
    """The tag job's own options, then every other registered stage's options, each in its own group."""
    for group in TAG_GROUPS:
        group.add_flags(parser)
    add_stage_options(parser, shared=False)


def run_flags(parser) -> None:
    RunFlags.add_flags(parser)


def flag_names(*declare) -> set[str]:
    """Every option string the declarations add to a parser."""
    parser = argparse.ArgumentParser(add_help=False)
    for add in declare:
        add(parser)
    return {s for a in parser._actions for s in a.option_strings}  # noqa: SLF001


def defaults(**values) -> argparse.Namespace:
    """Every image and tag job flag at its default, with ``values`` set: the namespace a job's
    code reads, for tools and tests that build stages without a command line."""
    parser = argparse.ArgumentParser(add_help=False)
    for declare in (image_flags, tag_flags, run_flags):
        declare(parser)
    namespace = parser.parse_args([])
    unknown = set(values) - set(vars(namespace))
    if unknown:
        raise TypeError(f"not a flag: {sorted(unknown)}")
    for name, value in values.items():
        setattr(namespace, name, value)
    return namespace
