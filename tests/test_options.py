"""One source for every default: each flag is a field of one Flags group (transforms/core/options.py)
and each runtime config's default is read from that field; this walks every flag and field."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pipeline.commands import FeatureOptions
from pipeline.flags import IMAGE_GROUPS, TAG_GROUPS, RunFlags, defaults
from pipeline.options import ImageOptions, TagOptions
from pipeline.runner import RunOptions
from pipeline.training.datasets import DatasetFlags
from transforms.core.options import Flags
from transforms.core.registry import registered
from transforms.ingest.decode import DecodeConfig, DecodeFlags
from transforms.ingest.http_client import HttpConfig
from transforms.knowledge.calibration import ScoringFlags
from transforms.knowledge.vectors import VectorFlags
from transforms.stages.backbone import BackboneConfig, BackboneFlags
from transforms.stages.detector import DetectorConfig, DetectorFlags
from transforms.stages.expansion import ExpansionConfig, ExpansionFlags
from transforms.stages.tagger import TaggerConfig, TaggerFlags
from transforms.stages.zero_shot import ZeroShotConfig, ZeroShotFlags

# (runtime config, its field) <- (flag group, the flag): the config's default must be the flag's.
RUNTIME_DEFAULTS = [
    (DecodeConfig, "max_pixels", DecodeFlags, "max_pixels"),
    (BackboneConfig, "name", BackboneFlags, "backbone"),
    (BackboneConfig, "weights", BackboneFlags, "backbone_weights"),
    (BackboneConfig, "device", BackboneFlags, "device"),
    (BackboneConfig, "precision", BackboneFlags, "precision"),
    (BackboneConfig, "torch_threads", BackboneFlags, "torch_threads"),
    (TaggerConfig, "top_k", TaggerFlags, "top_k"),
    (TaggerConfig, "min_score", ScoringFlags, "min_score"),
    (TaggerConfig, "calibration", ScoringFlags, "calibration"),
    (DetectorConfig, "name", DetectorFlags, "detector"),
    (DetectorConfig, "weights", DetectorFlags, "detector_weights"),
    (DetectorConfig, "threshold", DetectorFlags, "detection_threshold"),
    (DetectorConfig, "max_objects", DetectorFlags, "max_objects"),
    (DetectorConfig, "min_score", ScoringFlags, "min_score"),
    (DetectorConfig, "size", DetectorFlags, "detector_size"),
    (ZeroShotConfig, "method", ZeroShotFlags, "zero_shot_method"),
    (ZeroShotConfig, "top_k", ZeroShotFlags, "zero_shot_top_k"),
    (ZeroShotConfig, "top_t", ZeroShotFlags, "conse_top_t"),
    (ZeroShotConfig, "min_score", ScoringFlags, "min_score"),
    (ZeroShotConfig, "word_vectors", VectorFlags, "word_vectors"),
    (ExpansionConfig, "method", ExpansionFlags, "expansion_method"),
    (ExpansionConfig, "per_tag", ExpansionFlags, "expansion_per_tag"),
    (ExpansionConfig, "mutual_k", ExpansionFlags, "expansion_mutual_k"),
    (ExpansionConfig, "word_vectors", VectorFlags, "word_vectors"),
]


def _groups() -> list[type[Flags]]:
    stages = [s.options for s in registered() if s.options is not None]
    return [*IMAGE_GROUPS, *TAG_GROUPS, RunFlags, DatasetFlags, *stages]


def _actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    for cls in (FeatureOptions, ImageOptions, TagOptions, RunOptions):
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's own hook for option classes
    return [a for a in parser._actions if a.option_strings]  # noqa: SLF001


def _default(cls: type, name: str):
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field.default


def test_every_flag_is_one_field_of_one_group_and_defaults_to_it():
    owners: dict[str, list[type[Flags]]] = {}
    for group in _groups():
        for field in group.flag_fields():
            owners.setdefault(field.name, []).append(group)
    actions = _actions()
    assert {a.dest for a in actions} == set(owners), "a flag added by hand, or a field never added"
    for action in actions:
        (group,) = owners[action.dest]  # exactly one declaration
        assert action.default == _default(group, action.dest), action.dest
        assert action.help == group.__dataclass_fields__[action.dest].metadata["help"]


@pytest.mark.parametrize("config,field,group,flag", RUNTIME_DEFAULTS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_runtime_configs_take_their_defaults_from_the_flags(config, field, group, flag):
    assert _default(config, field) == _default(group, flag)


def test_options_are_read_back_typed_and_booleans_take_values():
    parser = argparse.ArgumentParser(add_help=False)
    for cls in (ImageOptions, TagOptions, RunOptions):
        cls._add_argparse_args(parser)  # noqa: SLF001
    o = parser.parse_args(["--max_per_host", "3", "--fetch_threads", "7", "--embeddings",
                           "--ignore_robots_opt_out=true", "--allow_local_paths", "false", "--detector_size", "320"])
    http = HttpConfig.from_options(o)
    assert (http.max_per_host, http.fetch_concurrency, http.ignore_robots_opt_out) == (3, 7, True)
    assert HttpConfig.from_options(parser.parse_args([])) == HttpConfig()
    assert DetectorFlags.from_options(o).working_size() == (0, 320)
    assert vars(o)["embeddings"] is True and vars(o)["allow_local_paths"] is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--quiet=maybe"])


def test_defaults_refuse_a_name_that_is_no_flag():
    assert defaults(top_k=2).top_k == 2
    with pytest.raises(TypeError, match="topk"):
        defaults(topk=2)
