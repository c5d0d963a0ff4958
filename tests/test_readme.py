"""Every README code block is run or checked (issue #35): each command line names only options
its command has; the SQL runs on real outputs (tests/test_write.py runs the querying section's
three, this module the near-duplicate query); the Python one-liner runs; the Flex Template
parameters pass their checks (tests/test_flex_template.py); make demo and make test are what CI runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MODULES = {"pipeline.tag": "tag", "pipeline.report": "report", "pipeline.training.extract_features": "extract-features",
           "pipeline.training.train": "train", "pipeline.training.evaluate": "evaluate", "pipeline.flex_template": None}


def blocks(lang: str = "") -> list[str]:
    return [body for tag, body in re.findall(r"```(\w*)\n(.*?)```", README, re.S) if tag == lang]


def command_lines() -> list[tuple[str, str]]:
    """(command, the line with its continuations joined) for every image-tagger or
    python -m pipeline... line of the README's shell blocks; comments left out."""
    out = []
    for body in blocks():
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split(" # ", 1)[0].strip()
            found = re.search(r"image-tagger ([a-z-]+)|python -m (pipeline[\w.]*)", line)
            if found and not line.startswith("#"):
                command = found.group(1) or MODULES.get(found.group(2), found.group(2))
                if command in COMMANDS:
                    out.append((command, line[found.start():]))
    return out


def known_flags(command: str) -> set[str]:
    from pipeline import commands

    if command in ("tag", "extract-features"):

        from apache_beam.options.pipeline_options import PipelineOptions

        from pipeline.flags import flag_names, image_flags, run_flags, tag_flags

        declare = (image_flags, tag_flags, run_flags) if command == "tag" else commands.feature_job_flags()
        ours = flag_names(*declare)
        return ours | {f"--{name}" for name in PipelineOptions([]).get_all_options(retain_unknown_options=False)} | {"--help"}
    from pipeline.quality.command import quality_parser

    parsers = {"report": commands.report_parser, "learn": commands.learn_parser, "train": commands.train_parser,
               "evaluate": commands.evaluate_parser, "runs": commands.runs_parser, "demo": commands.demo_parser,
               "quality": quality_parser}
    own = {s for a in parsers[command]()._actions for s in a.option_strings}  # noqa: SLF001
    passed_on = {"learn": "extract-features", "quality": "tag", "demo": "tag"}  # their other options go to that job
    return own | (known_flags(passed_on[command]) if command in passed_on else set())


def test_the_readme_shows_every_command():
    shown = {command for command, _ in command_lines()}
    assert {"tag", "report", "learn", "train", "evaluate", "extract-features", "runs", "quality", "demo"} <= shown


def test_every_option_a_readme_command_line_names_exists():
    wrong = []
    for command, line in command_lines():
        known = known_flags(command)
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_]*)", line):
            if flag not in known:
                wrong.append((command, flag, line))
    assert wrong == []


def test_the_readme_python_one_liner_prints_the_detector_weights():
    [snippet] = re.findall(r"-c '([^']+)'", README)
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, cwd=ROOT, check=True)
    path = Path(done.stdout.strip())
    if not path.is_file():
        pytest.skip("the embedded detector weights are installed by make setup")
    assert path.suffix == ".onnx"


def test_the_near_duplicate_query_finds_a_copied_photo(tmp_path, photos, monkeypatch):
    import duckdb

    from pipeline import tag

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        (folder / f"{name}.png").write_bytes(photos[name].read_bytes())
    (folder / "chelsea_copy.png").write_bytes(photos["chelsea"].read_bytes())
    tag.run(["--input", str(folder / "*.png"), "--output", str(tmp_path / "out"), "--detector", "none", "--quiet"])
    [query] = [b for b in blocks("sql") if b.startswith("-- near-duplicate pairs")]
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect()
    *setup, last = [s for s in query.split(";") if s.strip()]
    for statement in setup:
        con.sql(statement)
    pairs = con.sql(last).fetchall()
    assert [(Path(a).name, Path(b).name, d) for a, b, d in pairs] == [("chelsea.png", "chelsea_copy.png", 0)]


def test_every_shell_line_is_shell_syntax():
    for body in blocks():
        for line in body.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#") and re.match(r"\s*(image-tagger|python|make)", line):
                shlex.split(line.split(" # ", 1)[0])  # balanced quotes


def test_the_querying_section_reads_a_partitioned_output_and_one_output_is_partitioned_or_not(tmp_path, photos,
                                                                                               monkeypatch):
    """#35, rows 3 and 8: the README's queries read tags/**/*.parquet, so they work on an output
    whose runs use --partition; adding --partition to an unpartitioned output is refused."""
    import duckdb

    from pipeline import tag

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "chelsea.png").write_bytes(photos["chelsea"].read_bytes())
    out = tmp_path / "out"
    fast = ["--detector", "none", "--quiet"]
    tag.run(["--input", str(folder / "*.png"), "--output", str(out), "--partition", "dt=2026-12-03", *fast])
    section = README.split("### Querying the outputs", 1)[1].split("\n##", 1)[0]
    [top] = [b for b in re.findall(r"```sql\n(.*?)```", section, re.S) if b.startswith("-- top tags")]
    monkeypatch.chdir(tmp_path)
    assert "cat" in [r[0] for r in duckdb.connect().sql(top).fetchall()]
    plain = tmp_path / "plain"
    tag.run(["--input", str(folder / "*.png"), "--output", str(plain), *fast])
    with pytest.raises(SystemExit, match="one output is either partitioned or not"):
        tag.run(["--input", str(folder / "*.png"), "--output", str(plain), "--partition", "dt=1", "--skip_existing",
                 *fast])
