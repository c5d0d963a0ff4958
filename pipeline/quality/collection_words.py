"""Photos of words a collection uses that the embedded models have no word for (landmark,
hand tool, painting, wildlife...), for measuring what a reviewer's corrections teach TaggerNet
(benchmarks/corrections_bench.py). The labels are pipeline/quality/data/collection_words.json:
fnmatch patterns over the photos inside Debian's gcompris-qt-data, one word per photo; the
same bytes under two names count once."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pipeline.quality.photo_set import rcc_photos


@dataclass(frozen=True)
class LabelledPhoto:
    name: str  # rcc/inner path, unique
    path: str
    word: str


def words() -> dict[str, dict[str, list[str]]]:
    data = json.loads(resources.files("pipeline.quality").joinpath("data/collection_words.json").read_text())
    return data["words"]


def collect(dest: Path) -> list[LabelledPhoto]:
    """Write every labelled photo under ``dest``; in a fixed order."""
    dest.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    out = []
    contents: dict[str, dict[str, bytes]] = {}  # each resource file read once
    for word, sources in words().items():
        for rcc, patterns in sources.items():
            if rcc not in contents:
                contents[rcc] = rcc_photos(rcc)
            for inner, data in sorted(contents[rcc].items()):
                if not any(fnmatch.fnmatch(inner, p) for p in patterns):
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                target = dest / f"{rcc[:-4]}{inner.replace('/', '__')}"
                target.write_bytes(data)
                out.append(LabelledPhoto(f"{rcc[:-4]}{inner}", str(target), word))
    return out
