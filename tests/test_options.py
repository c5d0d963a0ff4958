"""One source for every default: each flag a config dataclass reads takes its default from that
dataclass (pipeline/options.py and each stage's add_options), and this walks every one."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pipeline.commands import FeatureOptions
from pipeline.options import ImageOptions, TagOptions
from pipeline.runner import RunOptions
from transforms.ingest.decode import DecodeConfig
from transforms.ingest.http_client import HttpConfig
from transforms.stages.backbone import BackboneConfig
from transforms.stages.detector import DetectorConfig
from transforms.stages.expansion import ExpansionConfig
from transforms.stages.tagger import TaggerConfig
from transforms.stages.zero_shot import ZeroShotConfig

CONFIGS = (HttpConfig, DecodeConfig, BackboneConfig, TaggerConfig, DetectorConfig, ZeroShotConfig, ExpansionConfig)


def _actions() -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser()
    for cls in (FeatureOptions, ImageOptions, TagOptions, RunOptions):
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's own hook for option classes
    return {a.dest: a for a in parser._actions if a.option_strings}  # noqa: SLF001


def _default(cls, name: str):
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_flag_a_config_reads_defaults_to_the_configs_field(cls):
    actions = _actions()
    names = {f.name for f in dataclasses.fields(cls)}
    flags = cls.FLAGS or {n: n for n in names}  # an empty map: every field is its own flag
    assert flags, cls
    for flag, field in flags.items():
        assert field in names, (cls.__name__, field)
        assert flag in actions, (cls.__name__, flag)
        assert actions[flag].default == _default(cls, field), (cls.__name__, flag)


def test_http_config_is_read_back_from_the_options_by_name():
    actions = _actions()
    options = argparse.Namespace(**{dest: a.default for dest, a in actions.items()})
    assert HttpConfig.from_options(options) == HttpConfig()
    options.connect_timeout, options.ignore_robots_opt_out = 2.5, True
    fetched = HttpConfig.from_options(options)
    assert (fetched.connect_timeout, fetched.ignore_robots_opt_out) == (2.5, True)
