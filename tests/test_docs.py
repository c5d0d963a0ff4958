"""Every repository path the docs name exists: README, docs/, THIRD_PARTY.md, docstrings and
comments of the code, and the "about" notes of the shipped data files (issue #34, point 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path inside this repository: a top-level folder of ours, then a name (placeholders such as
# <name> or * are not paths and are left out).
PATH = re.compile(r"(?<![\w./-])((?:pipeline|transforms|tests|docs|benchmarks|templates|tools|\.ci)/[\w./-]*\w)")


def _abouts(value) -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in ([v] if k == "about" and isinstance(v, str) else _abouts(v))]
    return [t for v in value for t in _abouts(v)] if isinstance(value, list) else []


def texts() -> dict[str, str]:
    out = {str(p.relative_to(ROOT)): p.read_text() for p in
           [ROOT / "README.md", ROOT / "THIRD_PARTY.md", *ROOT.glob("docs/*.md"), *ROOT.glob("pipeline/**/*.py"),
            *ROOT.glob("transforms/**/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py")]}
    for p in [*ROOT.glob("pipeline/**/*.json"), *ROOT.glob("transforms/data/*.json")]:
        out[str(p.relative_to(ROOT))] = "\n".join(_abouts(json.loads(p.read_text())))
    return out


def test_every_repository_path_the_docs_name_exists():
    missing = sorted({(m.group(1).rstrip("."), name) for name, text in texts().items() for m in PATH.finditer(text)
                      if not any(c in m.group(1) for c in "*<>{}") and not (ROOT / m.group(1).rstrip(".")).exists()})
    assert missing == [], missing


def test_the_check_sees_a_stale_path():
    assert PATH.findall("see pipeline/output.py and (transforms/stages.py).") == ["pipeline/output.py",
                                                                                    "transforms/stages.py"]
    assert not (ROOT / "pipeline/output.py").exists()


def test_the_readme_promises_zero_shot_tags_only_with_a_vocabulary():
    """#35, row 5: a default run writes no zero-shot tag (it needs --vocabulary); the opening
    lines said every record has them."""
    opening = (ROOT / "README.md").read_text().split("## Commands", 1)[0]
    for sentence in re.split(r"(?<=[.;])\s", opening):
        if "zero-shot" in sentence.lower():
            assert "--vocabulary" in sentence or "vocabulary" in sentence, sentence


def test_ci_and_make_test_fetch_every_package_the_photo_set_reads():
    ci = (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "make photo-packages" in ci
    assert re.search(r"^test: .*photo-packages", makefile, re.M)
    assert re.search(r"^photo-packages:.*\n\t\$\(BIN\)/python -m pipeline\.quality\.photo_packages$", makefile, re.M)


def test_a_missing_photo_package_is_named_for_the_skip(monkeypatch, tmp_path):
    from pipeline.quality import photo_set

    assert photo_set.missing_packages() == [], "this machine has every package (make photo-packages)"
    monkeypatch.setattr(photo_set, "RCC_DIR", tmp_path / "absent")
    assert photo_set.missing_packages() == ["gcompris-qt-data"]
