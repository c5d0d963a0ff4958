"""The installed `image-tagger` command: every job is a subcommand with working --help."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pipeline.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("tag", "extract-features", "train", "evaluate", "report", "quality", "demo"):
        assert f"  {name}" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"image-tagger {name}" in capsys.readouterr().out


def test_unknown_command_is_one_line():
    with pytest.raises(SystemExit) as exc:
        main(["tga"])
    assert "unknown command 'tga'" in str(exc.value) and "\n" not in str(exc.value)


def test_the_console_script_is_installed():
    exe = shutil.which("image-tagger") or shutil.which("image-tagger", path=__import__("sys").prefix + "/bin")
    assert exe, "pip install . provides image-tagger"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "extract-features" in out.stdout
