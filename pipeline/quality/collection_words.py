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

from pipeline.quality.photo_set import MIN_PHOTO_BYTES, PHOTO_SUFFIXES, RCC_DIR, read_rcc


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
    contents: dict[str, dict[str, bytes]] = {}
    for word, sources in words().items():
        for rcc, patterns in sources.items():
            if rcc not in contents:
                path = RCC_DIR / rcc
                if not path.is_file():
                    raise FileNotFoundError(f"{path} is missing: apt-get install gcompris-qt-data")
                contents[rcc] = read_rcc(path)
            for inner, data in sorted(contents[rcc].items()):
                if not inner.lower().endswith(PHOTO_SUFFIXES) or len(data) < MIN_PHOTO_BYTES:
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest in seen or not any(fnmatch.fnmatch(inner, p) for p in patterns):
                    continue
                seen.add(digest)
                target = dest / f"{rcc[:-4]}{inner.replace('/', '__')}"
                target.write_bytes(data)
                out.append(LabelledPhoto(f"{rcc[:-4]}{inner}", str(target), word))
    return out
