"""Labelled datasets for training: MIRFLICKR-25k in its published layout, or any labelled list.

Each reader yields examples ``{"uri", "labels", "split"}`` with split in train/val/test.

MIRFLICKR-25k layout (as the two official archives unpack):
  DIR/mirflickr/im1.jpg .. im25000.jpg
  DIR/mirflickr/meta/tags/tags1.txt ..      (user tags, one per line)
  DIR/annotations/<label>.txt, <label>_r1.txt   (1-based image numbers; README.txt ignored)
Label sets: ``annotated24`` (the 24 potential-label concepts), ``annotated38`` (plus the 14
``_r1`` "relevant" subsets), ``user_tags`` (user tags used at least ``min_tag_count`` times).
Splits follow the paper: the last ``test_fraction`` of the images by number are the test set
(im20001..im25000 for the full set), and a deterministic ``val_fraction`` of the rest, by a
hash of the image id, is validation.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from transforms.core.artifacts import filesystems, read_bytes
from transforms.core.launch import LaunchError, at_least, in_unit_range, json_object, need_file, utf8_text
from transforms.core.options import Flags, option

Example = dict

ANNOTATED_24 = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor",
    "lake", "male", "night", "people", "plant_life", "portrait", "river", "sea", "sky",
    "structures", "sunset", "transport", "tree", "water",
)  # fmt: skip
LABEL_SETS = ("annotated24", "annotated38", "user_tags")


@dataclass(frozen=True)
class DatasetFlags(Flags):
    """The feature job's labelled dataset."""

    GROUP: ClassVar[str] = "dataset"

    dataset: str = option("mirflickr", "mirflickr: MIRFLICKR-25k layout under --data_dir; list: --labels file.",
                          choices=("mirflickr", "list"))
    data_dir: str | None = option(None, "MIRFLICKR-25k root (local or gs://).")
    labels: str | None = option(None, "Labelled list: CSV/TSV (uri|url, tags|labels, optional split) or JSONL.")
    label_set: str = option("annotated24", "MIRFLICKR labels: the 24 annotated concepts, the 38 with _r1, or "
                            "user tags.", choices=LABEL_SETS)
    min_tag_count: int = option(50, "user_tags: keep tags used at least this often.")
    test_fraction: float = option(0.2, "Share of images held out for testing (MIRFLICKR: the last by number).")
    val_fraction: float = option(0.2, "Share of the remaining images used for validation.")

    def check(self) -> None:
        if self.dataset == "mirflickr" and not self.data_dir:
            raise LaunchError("--dataset mirflickr needs --data_dir")
        if self.dataset == "list" and not self.labels:
            raise LaunchError("--dataset list needs --labels FILE")
        need_file("--labels", self.labels, set())
        at_least("--min_tag_count", self.min_tag_count, 1)
        in_unit_range("--test_fraction", self.test_fraction)
        in_unit_range("--val_fraction", self.val_fraction)
SPLITS = ("train", "val", "test")
_IMAGE = re.compile(r"im(\d+)\.jpg$")


def _read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", errors="replace")


def _exists(path: str) -> bool:
    return filesystems().exists(path)


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from a key, for deterministic splits."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def assign_split(number: int, total: int, key: str, test_fraction: float, val_fraction: float) -> str:
    if number > round(total * (1 - test_fraction)):
        return "test"
    return "val" if hash_fraction(key) < val_fraction else "train"


def _annotation_dir(data_dir: str) -> str:
    for candidate in ("annotations", "mirflickr25k_annotations_v080", ""):
        path = filesystems().join(data_dir, candidate) if candidate else data_dir
        if _exists(filesystems().join(path, "sky.txt")):
            return path
    raise FileNotFoundError(f"no MIRFLICKR annotations (sky.txt) under {data_dir}/annotations")


def read_mirflickr(
    data_dir: str,
    label_set: str = "annotated24",
    min_tag_count: int = 50,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
) -> list[Example]:
    """Examples for every image of a MIRFLICKR-25k directory, labelled by ``label_set``."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"label_set must be one of {LABEL_SETS}")
    image_dir = filesystems().join(data_dir, "mirflickr")
    matches = filesystems().match([filesystems().join(image_dir, "im*.jpg")])[0].metadata_list
    numbers = sorted(int(m.group(1)) for m in (_IMAGE.search(x.path) for x in matches) if m)
    if not numbers:
        raise FileNotFoundError(f"no mirflickr/im*.jpg under {data_dir}")
    labels: dict[int, list[str]] = {n: [] for n in numbers}
    if label_set == "user_tags":
        tag_dir = filesystems().join(image_dir, "meta", "tags")
        per_image = {}
        for n in numbers:
            path = filesystems().join(tag_dir, f"tags{n}.txt")
            text = _read_text(path) if _exists(path) else ""
            per_image[n] = sorted({t.strip().lower() for t in text.splitlines() if t.strip()})
        counts = Counter(t for tags in per_image.values() for t in tags)
        keep = {t for t, c in counts.items() if c >= min_tag_count}
        labels = {n: [t for t in tags if t in keep] for n, tags in per_image.items()}
    else:
        ann_dir = _annotation_dir(data_dir)
        names = list(ANNOTATED_24)
        if label_set == "annotated38":
            names += [f"{n}_r1" for n in ANNOTATED_24 if _exists(filesystems().join(ann_dir, f"{n}_r1.txt"))]
        for name in names:
            path = filesystems().join(ann_dir, f"{name}.txt")
            if not _exists(path):
                continue
            for line in _read_text(path).split():
                if line.isdigit() and int(line) in labels:
                    labels[int(line)].append(name)
    total = max(numbers)
    return [
        {
            "uri": filesystems().join(image_dir, f"im{n}.jpg"),
            "labels": sorted(set(labels[n])),
            "split": assign_split(n, total, f"im{n}", test_fraction, val_fraction),
        }
        for n in numbers
    ]


def _parse_tags(value) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip().lower() for v in value if str(v).strip()]
    text = str(value or "").strip()
    if text.startswith("["):
        return _parse_tags(json.loads(text))
    return [t.strip().lower() for t in re.split(r"[;|,]", text) if t.strip()]


def _jsonl_rows(text: str, path: str) -> Iterator[dict]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        yield json_object(line, f"{path}:{number}")


def _delimited_rows(text: str, delimiter: str, path: str) -> Iterator[dict]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise ValueError(f"{path}:{reader.line_num}: not a CSV/TSV row ({exc})") from None


def read_labelled_list(
    path: str, test_fraction: float = 0.2, val_fraction: float = 0.2
) -> list[Example]:
    """Examples from a CSV/TSV (columns uri|url, tags|labels, optional split) or JSONL file.

    Tags in CSV are separated by ';', '|' or ',' (or a JSON list); a missing split is assigned
    deterministically from a hash of the uri.
    """
    text = utf8_text(read_bytes(path), path, "a labelled list (CSV, TSV or JSONL)")
    if path.lower().endswith((".jsonl", ".ndjson", ".json")):
        rows: Iterable[dict] = _jsonl_rows(text, path)
    else:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
        rows = _delimited_rows(text, delimiter, path)
    examples = []
    for row in rows:
        row = {k.strip().lower(): v for k, v in row.items() if k}
        uri = (row.get("uri") or row.get("url") or "").strip()
        if not uri:
            continue
        split = (row.get("split") or "").strip().lower()
        if split not in SPLITS:
            h = hash_fraction(uri)
            split = "test" if h < test_fraction else ("val" if h < test_fraction + (1 - test_fraction) * val_fraction else "train")
        examples.append({"uri": uri, "labels": sorted(set(_parse_tags(row.get("tags", row.get("labels"))))), "split": split})
    if not examples:
        raise ValueError(f"{path}: no rows with a uri/url")
    return examples
