"""Every command: one-line refusals before any work, help with defaults, --help without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import cli, commands


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--features", "/nonexistent", "--output", "m"], "image-tagger train: --features: no such"),
    (["train", "--features", "/tmp", "--output", "m", "--epochs", "0"], "image-tagger train: --epochs must be >= 1"),
    (["evaluate", "--model", "/nonexistent", "--features", "/tmp", "--output", "r"],
     "image-tagger evaluate: --model: no such model directory"),
    (["evaluate", "--features", "/tmp", "--output", "r", "--zero_shot"], "image-tagger evaluate: --zero_shot needs"),
    (["report", "--input", "/nonexistent", "--html", "r.html"], "image-tagger report: --input: no such folder"),
    (["report", "--input", "/tmp", "--html", "r.html"], "image-tagger report: --input /tmp holds no tag run"),
    (["train", "--feature", "x", "--output", "m"], "image-tagger train: unknown option --feature; did you mean --features?"),
    (["quality", "--presets", "nope"], "image-tagger quality: --presets: unknown"),
    (["trian"], "image-tagger: unknown command 'trian'; did you mean train?"),
])
def test_mistakes_are_refused_in_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message, message
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["tag", "extract-features"])
def test_image_job_help_reads_stage_declarations_without_their_model_handlers(command):
    """Option groups come from the stage registry and pipeline/flags.py; neither Beam nor the
    handlers (torch, onnxruntime) are imported until a job builds its graph."""
    code = (f"import sys\nfrom pipeline import cli\ntry:\n    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'apache_beam', 'onnxruntime', 'transforms.handlers.tagger') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--min_score" in done.stdout or command == "extract-features"
    assert "--backbone" in done.stdout and done.stdout.strip().endswith("[]")


@pytest.mark.parametrize("command", ["train", "evaluate", "report", "demo"])
def test_help_shows_every_default_and_imports_no_torch(command):
    code = (f"import sys\nfrom pipeline import cli\ntry:\n    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'LIGHT')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("LIGHT"), "--help must not import torch"
    helped = [a for a in getattr(commands, f"{command}_parser")()._actions if a.help and a.option_strings != ["-h", "--help"]]
    assert all(a.help for a in helped)
    for action in helped:
        if action.default not in (None, False) and action.required is False:
            assert f"(default: {action.default})" in " ".join(done.stdout.split()), action.dest


def test_tag_help_marks_required_options_and_shows_only_its_own(capsys):
    with pytest.raises(SystemExit):
        cli.main(["extract-features", "--help"])
    features = capsys.readouterr().out
    assert "--ingest_only" not in features and "--skip_existing " not in features and "--output" in features
    with pytest.raises(SystemExit):
        cli.main(["tag", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--input and --output are required" in text and "(default: 64)" in text and "--ingest_only" in text


@pytest.mark.parametrize("name", ["train", "learn", "evaluate", "report", "runs", "demo"])
def test_every_command_option_is_declared_once_in_a_flags_group(name):
    """One option system: each command's flags are its Flags groups' fields, as the Beam jobs'."""
    parser = getattr(commands, f"{name}_parser")()
    declared = {f"--{f.name}" for group in parser.groups for f in group.flag_fields()}
    flags = {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}  # noqa: SLF001
    assert flags == declared


@pytest.mark.parametrize(("module", "argv", "expected"), [
    ("pipeline.quality.by_kind", ["--workdirr", "x"], "unknown option --workdirr; did you mean --workdir?"),
    ("pipeline.quality.everyday", [], "--output is required"),
    ("pipeline.quality.everyday", ["--output", "x", "--leave_out", "dogs"], "argument --leave_out: invalid choice"),
    ("pipeline.quality.cross_fit", ["--split", "half"], "argument --split: invalid choice"),
    ("pipeline.flex_template", ["--comprae"], "unknown option --comprae; did you mean --compare?"),
])
def test_the_tools_beside_the_commands_use_the_same_option_system(module, argv, expected, tmp_path, monkeypatch):
    """#34: the measurement and template tools declare Flags groups too, and refuse in one line
    before writing anything."""
    import importlib

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        importlib.import_module(module).main(argv)
    message = str(info.value)
    assert message.startswith(f"python -m {module}: {expected}") and "\n" not in message, message
    assert not list(tmp_path.iterdir())


def test_no_command_writes_its_own_argument_parser():
    """Every parser is commands.Parser over Flags groups; argparse itself only where the Flags
    machinery builds its namespaces."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    allowed = {"pipeline/commands.py", "pipeline/flags.py", "pipeline/training/extract_features.py"}
    found = {str(p.relative_to(root)) for folder in ("pipeline", "transforms") for p in (root / folder).rglob("*.py")
             if "ArgumentParser(" in p.read_text() or ".add_argument(" in p.read_text()}
    assert found - {"transforms/core/options.py"} <= allowed, found


def test_defaults_shared_with_the_code_that_uses_them_are_written_once():
    import inspect

    from transforms.stages.taggernet import build_taggernet
    from transforms.stages.zero_shot import METHODS, ZeroShotFlags

    built = inspect.signature(build_taggernet).parameters
    net = commands.TaggerNetFlags()
    assert (net.hidden, net.dropout) == (built["hidden"].default, built["dropout"].default)
    evaluate = commands.EvaluateFlags()
    assert (evaluate.zero_shot_method, evaluate.conse_top_t) == (ZeroShotFlags().zero_shot_method, ZeroShotFlags().conse_top_t)
    choices = next(a.choices for a in commands.evaluate_parser()._actions if a.dest == "zero_shot_method")  # noqa: SLF001
    assert tuple(choices) == METHODS
    assert commands.LearnNetFlags().hidden < net.hidden, "learn's smaller net overrides train's"


def test_several_values_arrive_as_a_tuple_and_are_checked_in_one_line(tmp_path):
    parser = commands.learn_parser()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("")
    args = parser.parse_args(["--corrections", str(first), str(first), "--output", str(tmp_path / "m")])
    assert commands.LearnFlags.from_options(args).corrections == (str(first), str(first))
    with pytest.raises(SystemExit) as info:
        parser.check(parser.parse_args(["--corrections", str(first), str(second), "--output", str(tmp_path / "m")]))
    assert str(info.value) == f"image-tagger learn: --corrections: no such file: {second}"
    with pytest.raises(SystemExit) as info:
        parser.check(parser.parse_args(["--output", str(tmp_path / "m")]))
    assert str(info.value) == "image-tagger learn: --corrections is required (see --help)"
