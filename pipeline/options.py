"""Command-line options of our jobs (everything else is a standard Beam option).

Beam parses every PipelineOptions subclass into one untyped namespace, so each flag is defined
once, in a typed Flags group (pipeline/flags.py lists them): ImageOptions adds what every image
job shares (input/output, fetching, access, decoding, and the backbone stage's flags); TagOptions
adds the tag job's and every other registered stage's. Code reads the namespace only through
the typed group it needs (``IoFlags.from_options(o).output``).
"""

from __future__ import annotations

from types import SimpleNamespace

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.flags import IoFlags, image_flags, tag_flags
from transforms.core import uris
from transforms.core.registry import reads_data, working_size
from transforms.ingest.access import AccessFlags, AccessPolicy
from transforms.ingest.decode import DecodeConfig, DecodeFlags


def all_options(options: PipelineOptions) -> SimpleNamespace:
    """Every parsed option (ours and Beam's) as one namespace: what the job builders read."""
    return SimpleNamespace(**options.get_all_options(retain_unknown_options=False))


class ImageOptions(PipelineOptions):
    """What every image job shares (pipeline/flags.py declares it)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        image_flags(parser)


class TagOptions(PipelineOptions):
    """The tag job's own options and every other registered stage's (pipeline/flags.py)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        tag_flags(parser)


def access_policy(o) -> AccessPolicy:
    """A list's URIs are untrusted (web only unless opted in); a glob of images, or the
    MIRFLICKR folder the feature job reads, is the user's own choice and allows its scheme."""
    from transforms.ingest.read import input_kind

    dataset = getattr(o, "dataset", None)  # the feature job: its dataset is its input
    if dataset == "list":
        return AccessFlags.from_options(o).policy(False, "")
    pattern = (getattr(o, "data_dir", None) or "") if dataset == "mirflickr" else IoFlags.from_options(o).input
    is_glob = dataset == "mirflickr" or input_kind(pattern) in ("glob", "directory")
    scheme = uris.scheme(pattern) or "file"
    return AccessFlags.from_options(o).policy(is_glob, scheme)


def decode_config(o, stages: list | None = None) -> DecodeConfig:
    """The decoder keeps the smallest image every enabled stage can use at full resolution, and
    the fetched bytes when a stage reads them (both declared by the stages)."""
    stages = stages or []
    short, long_ = working_size(stages, o)
    return DecodeConfig(min_short_side=short, min_long_side=long_, max_pixels=DecodeFlags.from_options(o).max_pixels,
                        keep_data=reads_data(stages))
