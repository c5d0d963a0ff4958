"""The Flex Template's metadata is generated from the flag declarations (pipeline/flex_template.py),
and every template example in the repository passes its parameters' checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline import flex_template
from pipeline.flags import defaults

ROOT = Path(__file__).resolve().parents[1]
# Placeholders of the examples, longest first, replaced by values a user would put there.
SAMPLE = {"{{{{ ds }}}}": "2026-12-03", "{{ ds }}": "2026-12-03", "$(date -u +%F)": "2026-12-03", "{BUCKET}": "my-bucket",
          "$BUCKET": "my-bucket", "$IMAGE": "us-docker.pkg.dev/p/r/image-tagger:latest", "BUCKET": "my-bucket"}


def _beam_options() -> set[str]:
    from apache_beam.options.pipeline_options import PipelineOptions

    return set(PipelineOptions([]).get_all_options(retain_unknown_options=False))


def _params() -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(flex_template.PATH.read_text())["parameters"]}


def _filled(text: str) -> str:
    for placeholder, sample in SAMPLE.items():
        text = text.replace(placeholder, sample)
    return text


def _check(name: str, value: str, params: dict[str, dict]) -> None:
    if name in params:
        assert any(re.fullmatch(r, value) for r in params[name]["regexes"]), (name, value)
    else:
        assert name in _beam_options(), f"{name} is neither a template parameter nor a Beam option"


def test_the_committed_metadata_is_what_the_flags_declare():
    assert flex_template.PATH.read_text() == flex_template.text(), "run python -m pipeline.flex_template"


def test_every_parameter_is_a_flag_and_its_default_passes_its_own_check():
    flags = vars(defaults())
    params = _params()
    assert {"input", "output", "partition", "skip_existing", "detector_weights"} <= set(params)
    for name, p in params.items():
        assert name in flags, name
        default = flags[name]
        if default not in (None, "", False):
            text = str(default).lower() if isinstance(default, bool) else str(default)
            assert any(re.fullmatch(r, text) for r in p["regexes"]), (name, text)
    assert re.fullmatch(params["skip_existing"]["regexes"][0], "true")
    assert "isOptional" not in params["input"] and params["partition"]["isOptional"]


def test_the_readme_example_passes_the_templates_checks():
    readme = _filled((ROOT / "README.md").read_text())
    pairs = [pair for line in re.findall(r"--parameters (\S+)", readme) for pair in line.split(",")]
    assert pairs, "the README shows a template run"
    params = _params()
    for pair in pairs:
        name, value = pair.split("=", 1)
        _check(name, value.strip('"'), params)
    names = {p.split("=", 1)[0] for p in pairs}
    assert {"partition", "skip_existing"} <= names, "the example appends day by day to one partitioned output"


@pytest.mark.parametrize("path", ["templates/schedule/launch_body.json", "templates/schedule/airflow_dag.py"])
def test_the_scheduled_launches_pass_the_templates_checks(path):
    text = _filled((ROOT / path).read_text())
    pairs = re.findall(r'"(\w+)":\s*f?"([^"]*)"', text[text.index('"parameters"'):text.index('"environment"')])
    assert pairs
    params = _params()
    for name, value in pairs:
        _check(name, value, params)
