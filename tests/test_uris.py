"""One rule tells a local path from a URI (transforms/core/uris.py), the same as Beam's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from transforms.core import uris

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("path", "expected"), [
    ("gs://bucket/a.jpg", "gs"), ("HTTPS://example.org/a.jpg", "https"), ("file:///tmp/a.jpg", "file"),
    ("s3://b/k", "s3"), ("  gs://b/x", "gs"), ("/data/photos/a.jpg", None), ("photos/a.jpg", None),
    ("photos/odd://name.jpg", None), ("C:\\photos\\a.jpg", None), ("http:/example.org/a.jpg", None), ("", None),
])
def test_scheme_is_beams_rule(path, expected):
    assert uris.scheme(path) == expected
    beam = FileSystems.get_scheme(path)
    assert (beam.lower() if beam else None) == expected


def test_no_module_tells_paths_from_uris_by_hand():
    spelled = re.compile(r'"://" (not )?in ')
    found = [f"{p.relative_to(ROOT)}:{i}" for p in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("transforms/**/*.py")]
             for i, line in enumerate(p.read_text().splitlines(), 1) if spelled.search(line)]
    assert found == [], "use transforms.core.uris.scheme"
