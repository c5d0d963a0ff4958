"""The 19-photo key: precision and recall of the written tags per source (`make quality`).

    python -m pipeline.quality [--split report|tune|all] [--presets default,paper] [--show]
                               [--json PATH] [--fit CALIBRATION_JSON]

Runs the tag job on the photos of pipeline/quality/data/quality_key.json (real photos shipped in
installed packages, labelled by hand) with the everyday vocabulary, once per preset:
- ``default``: the product's defaults (precise expansion, calibrated scores, --min_score);
- ``ranking``: the default with every image's top-3 vocabulary words written whatever their
  score (``--zero_shot_min_score 0``): measures the zero-shot ranking alone;
- ``paper``: the paper's plain method as the product shipped it before (nearest-word
  expansion, raw scores, tagger cut 0.1, detector 0.35, zero-shot cosine 0.4, no cross-check).

A written tag is correct when the key accepts its name for that photo (case-insensitive,
plural = singular). Precision = correct / written, per source and overall. Recall: of the
``expected`` words (what a person names first: cat, coffee, person...), the share that
source wrote; for zero_shot, of the vocabulary words that apply; overall, of both, by any
source; ``expected``: of the expected words, the share the sources measured by them wrote. ``zs_hit@3``: the share of photos with an applicable vocabulary word that have one
among their (at most 3) zero-shot tags. Photos are split: ``tune`` photos may be used to fit
(``--fit``) and choose defaults, ``report`` photos are only reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources

from pipeline import tag
from transforms.core.records import sources_of
from transforms.core.registry import QUALITY, quality_sources, tag_sources
from transforms.knowledge.samples import sample_photos
from transforms.output import runs
from transforms.stages.expansion import stem

PRESETS = {
    "default": [],
    "ranking": ["--zero_shot_min_score", "0"],  # the default, every image's top-3 words written
    "paper": ["--expansion_method", "nearest", "--calibration", "none", "--min_score", "0.1",
              "--zero_shot_min_score", "0.4", "--no_detection_cross_check"],
}
VOCABULARY = "everyday_vocabulary.txt"


def load_key() -> dict:
    return json.loads(resources.files("pipeline.quality").joinpath("data/quality_key.json").read_text())


def vocabulary_path() -> str:
    return str(resources.files("transforms").joinpath(f"data/{VOCABULARY}"))


def norm(word: str) -> str:
    return " ".join(stem(w) for w in word.lower().replace("-", " ").split())


def accepted_words(truth: dict) -> set[str]:
    """Every word the key accepts for a photo (accepted, expected and vocabulary words), normalised."""
    return {norm(w) for w in truth["accepted"] + truth["expected"] + truth["vocabulary"]}


@dataclass
class Counts:
    written: int = 0
    correct: int = 0
    expected: int = 0
    found: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.correct / self.written if self.written else None

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None


def judge(rows: dict[str, dict], key: dict, names: list[str]) -> dict[str, Counts]:
    """Per source (and 'overall'): written/correct tags and expected/found words over ``names``;
    ``zs_hit@3`` counts photos with an applicable vocabulary word among their zero-shot tags."""
    sources = tag_sources()
    measured = {measure: quality_sources(measure) for measure in QUALITY}
    counts = {s: Counts() for s in (*sources, "overall", "expected", "zs_hit@3")}
    for name in names:
        truth = key["photos"][name]
        accepted = accepted_words(truth)
        tags = rows.get(name, {}).get("tags", [])
        for t in tags:
            ok = norm(t["name"]) in accepted
            for c in (*(counts[s] for s in sources_of(t) if s in counts), counts["overall"]):
                c.written += 1
                c.correct += ok
                if not ok:
                    c.wrong.append(f"{name}:{t['name']}")
        by_source = {s: {norm(t["name"]) for t in tags if s in sources_of(t)} for s in sources}
        everything = set().union(*by_source.values())
        wanted = {"everyday": {norm(w) for w in truth["expected"]}, "vocabulary": {norm(w) for w in truth["vocabulary"]}}
        found = {}
        for measure, words in wanted.items():  # each stage declares which words measure its recall
            from_sources = set().union(*(by_source[s] for s in measured[measure]))
            for s in measured[measure]:
                counts[s].expected += len(words)
                counts[s].found += len(words & by_source[s])
            found[measure] = words & from_sources
        expected, vocab = wanted["everyday"], wanted["vocabulary"]
        counts["expected"].expected += len(expected)
        counts["expected"].found += len(found["everyday"])
        counts["overall"].expected += len(expected) + len(vocab)
        counts["overall"].found += len(expected & everything) + len(found["vocabulary"])
        if vocab:
            counts["zs_hit@3"].expected += 1
            counts["zs_hit@3"].found += bool(found["vocabulary"])
    return counts


def run_preset(preset_args: list[str], photos: dict[str, str], workdir: str, extra: list[str],
               vocabulary: bool = True) -> dict[str, dict]:
    """Tag the photos with one preset (and the everyday vocabulary); photo name -> its tags row."""
    import pyarrow.parquet as pq

    os.makedirs(workdir, exist_ok=True)
    listing = os.path.join(workdir, "input.txt")
    with open(listing, "w") as f:
        f.write("".join(f"{p}\n" for p in photos.values()))
    out = os.path.join(workdir, "out")
    words = ["--vocabulary", vocabulary_path()] if vocabulary else []
    # A scratch output of this tool's own: rerunning into the same --workdir replaces it.
    tag.run(["--input", listing, "--output", out, "--allow_local_paths", "--overwrite", *words, *preset_args, *extra])
    by_path = {str(p): n for n, p in photos.items()}
    rows = {}
    for path in runs.committed_files(out, "tags"):
        for row in pq.read_table(path).to_pylist():
            rows[by_path[row["uri"]]] = row
    return rows


def fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:.2f}"


def table(results: dict[str, dict[str, dict[str, Counts]]]) -> str:
    lines = [f"{'preset':<8} {'split':<7} {'source':<10} {'written':>7} {'correct':>7} {'precision':>9} "
             f"{'expected':>8} {'found':>5} {'recall':>6}"]
    for preset, splits in results.items():
        for split, counts in splits.items():
            for source, c in counts.items():
                if source in ("zs_hit@3", "expected"):
                    lines.append(f"{preset:<8} {split:<7} {source:<10} {'':>7} {'':>7} {'':>9} "
                                 f"{c.expected:>8} {c.found:>5} {fmt(c.recall):>6}")
                else:
                    lines.append(f"{preset:<8} {split:<7} {source:<10} {c.written:>7} {c.correct:>7} "
                                 f"{fmt(c.precision):>9} {c.expected:>8} {c.found:>5} {fmt(c.recall):>6}")
    return "\n".join(lines)


def as_json(results: dict) -> dict:
    return {
        p: {s: {src: {"written": c.written, "correct": c.correct, "precision": c.precision,
                      "expected": c.expected, "found": c.found, "recall": c.recall, "wrong": c.wrong}
                for src, c in counts.items()} for s, counts in splits.items()}
        for p, splits in results.items()
    }


def evaluate(presets: list[str], splits: list[str], workdir: str, extra: list[str] | None = None) -> dict:
    """preset -> split -> source -> Counts, plus the rows under key '_rows'."""
    key = load_key()
    photos = {n: str(p) for n, p in sample_photos(everything=True).items() if n in key["photos"]}
    missing = set(key["photos"]) - set(photos)
    if missing:
        raise SystemExit(f"labelled photos not installed (run `make setup`): {sorted(missing)}")
    results, rows_by_preset = {}, {}
    for preset in presets:
        own = list(extra or []) if preset == "default" else []  # extra options tune the default only
        rows = run_preset(PRESETS[preset], photos, os.path.join(workdir, preset), own)
        rows_by_preset[preset] = rows
        results[preset] = {
            split: judge(rows, key, [n for n, p in key["photos"].items() if split in ("all", p["split"])])
            for split in splits
        }
    return {"results": results, "rows": rows_by_preset}


def show(rows: dict[str, dict], key: dict) -> str:
    lines = []
    for name, row in sorted(rows.items(), key=lambda kv: (key["photos"][kv[0]]["split"], kv[0])):
        truth = key["photos"][name]
        accepted = accepted_words(truth)
        tags = ", ".join(
            f"{'' if norm(t['name']) in accepted else '✗'}{t['name']} {t['score']:.2f} [{t['source'][:3]}]"
            for t in row["tags"]
        )
        lines.append(f"{truth['split']:<6} {name:<17} {tags}")
    return "\n".join(lines)
