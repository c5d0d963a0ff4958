"""What a reviewer's corrections teach TaggerNet: a simulated reviewer on real labelled photos.

    python benchmarks/corrections_bench.py --workdir /tmp/cb [--ks 5 10 20] [--seeds 0 1 2]
        [--habits ticked adds half] [--words 4]

The photos are pipeline/quality/collection_words.py's: 8 words a collection uses that the
embedded models have no word for (landmark, hand tool, painting, ...), 300+ photos. For each k,
a simulated reviewer corrects k photos per word (fewer where a word has under k + 5 photos),
with one of three habits: ``ticked`` adds the word and marks every photo all right; ``adds``
only adds the word (filter the sheet, add a word to every picture it shows), no ticks; ``half``
adds the word and ticks every other photo.
``image-tagger learn`` trains on that export (features reused from one feature run), then the
real tag job runs with ``--tagger_model`` on every photo the reviewer did not see. Printed per k:
the learned words' precision and recall on those held-out photos (a learned tag is right when it
is the photo's word), per word and overall, and the embedded sources' precision on the same
photos with and without the learned model (judged by the photo set's WordNet judge where the
photo has a noun sense there), and how often the embedded job wrote the collection word itself;
and per word, what learn printed (its held-out precision) beside what the tag run then wrote.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.quality import collection_words, photo_set  # noqa: E402
from pipeline.quality.key import run_preset  # noqa: E402
from transforms.core.records import image_id_for, sources_of  # noqa: E402

HELD_OUT_MIN = 5  # photos per word never shown to the reviewer
EMBEDDED = ("tagger", "detector", "expansion")


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tag(paths: list[str], out: Path, extra: list[str]) -> dict[str, dict]:
    """The default tag job (plus ``extra``) over ``paths``; rows by uri."""
    if out.exists():
        shutil.rmtree(out)
    return run_preset(["--quiet", *extra], {p: p for p in paths}, str(out), [], vocabulary=False)


def embedded_precision(rows: dict[str, dict], senses: dict[str, str], judge: photo_set.Judge) -> tuple[int, int]:
    """(right, written) over the embedded sources' tags of the photos with a noun sense."""
    right = written = 0
    for uri, row in rows.items():
        if uri not in senses:
            continue
        for t in row.get("tags", []):
            if t["source"] in EMBEDDED:
                written += 1
                right += judge.relation(t["name"], senses[uri]) is not None
    return right, written


HABITS = ("ticked", "adds", "half")


def corrections_for(chosen: list[collection_words.LabelledPhoto], habit: str = "ticked") -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ticks = {"ticked": lambda i: True, "adds": lambda i: False, "half": lambda i: i % 2 == 0}[habit]
    return "".join(json.dumps({"uri": p.path, "image_id": image_id_for(p.path), "content_sha256": _sha(p.path),
                               "accepted": [], "rejected": [], "added": [p.word], "reviewed": ticks(i),
                               "reviewer": "simulated", "time": now}) + "\n" for i, p in enumerate(chosen))


def one_k(k: int, photos: list[collection_words.LabelledPhoto], features: Path, workdir: Path, seed: int,
          senses: dict[str, str], judge: photo_set.Judge, baseline: dict[str, dict], habit: str = "ticked") -> dict:
    from pipeline.training import learn

    rng = random.Random(seed)
    by_word: dict[str, list[collection_words.LabelledPhoto]] = {}
    for p in photos:
        by_word.setdefault(p.word, []).append(p)
    chosen, held = [], []
    for _word, group in sorted(by_word.items()):
        group = sorted(group, key=lambda p: p.name)
        rng.shuffle(group)
        n = max(0, min(k, len(group) - HELD_OUT_MIN))
        chosen += group[:n]
        held += group[n:]
    run = workdir / f"{habit}-k{k}"
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    (run / "corrections.jsonl").write_text(corrections_for(sorted(chosen, key=lambda p: (p.word, p.name)), habit))
    try:
        printed = learn.main(["--corrections", str(run / "corrections.jsonl"), "--output", str(run / "model"),
                              "--features", str(features), "--quiet", "--seed", str(seed)])["words"]
    except SystemExit as exc:  # nothing could be learned: every word's line was printed
        print(exc, flush=True)
        printed = []
    rows = tag([p.path for p in held], run / "tags", ["--tagger_model", str(run / "model")]) if printed else {}
    per_word: dict[str, Counter] = {w: Counter() for w in by_word}
    for p in held:
        learned = {t["name"] for t in rows.get(p.path, {}).get("tags", []) if "learned" in sources_of(t)}
        per_word[p.word]["photos"] += 1
        per_word[p.word]["found"] += p.word in learned
        for w in learned:
            per_word.setdefault(w, Counter())["written"] += 1
            per_word[w]["right"] += w == p.word
    held_rows_before = {p.path: baseline[p.path] for p in held if p.path in baseline}
    before = embedded_precision(held_rows_before, senses, judge)
    after = embedded_precision(rows, senses, judge)
    total = sum(per_word.values(), Counter())
    full = sum((c for w, c in per_word.items() if sum(p.word == w for p in chosen) == k), Counter())
    return {
        "k": k, "habit": habit, "corrected": len(chosen), "held_out": len(held),
        "printed": {w["word"]: {"precision": w["precision"], "written": w["floor"] is not None, "interval": w["interval"]}
                    for w in printed},
        "per_word": {w: {"corrected": sum(1 for p in chosen if p.word == w), **c} for w, c in sorted(per_word.items())},
        "precision": total["right"] / max(1, total["written"]), "recall": total["found"] / max(1, total["photos"]),
        # the words the reviewer corrected k photos of (a word with under k + 5 photos got fewer)
        "precision_full_k": full["right"] / max(1, full["written"]), "recall_full_k": full["found"] / max(1, full["photos"]),
        "words_full_k": sum(sum(p.word == w for p in chosen) == k for w in by_word),
        "embedded_before": before, "embedded_after": after,
        "embedded_names_word": sum(any(t["name"] == p.word for t in held_rows_before.get(p.path, {}).get("tags", []))
                                   for p in held) / max(1, len(held)),
    }


def table(results: list[dict]) -> str:
    lines = ["| habit | k | corrected | held-out | learned precision | learned recall | the same over the words with k "
             "corrected | embedded precision without / with | embedded writes the word |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        (rb, wb), (ra, wa) = r["embedded_before"], r["embedded_after"]
        lines.append(f"| {r['habit']} | {r['k']} | {r['corrected']} | {r['held_out']} | {r['precision']:.2f} | {r['recall']:.2f} | "
                     f"{r['precision_full_k']:.2f}, {r['recall_full_k']:.2f} ({r['words_full_k']} words) | "
                     f"{rb / max(1, wb):.3f} ({wb}) / {ra / max(1, wa):.3f} ({wa}) | {r['embedded_names_word']:.2f} |")
    words = sorted(results[0]["per_word"])
    lines += ["", "| word | " + " | ".join(f"{r['habit']} k={r['k']}: corrected, P (learn printed), R"
                                           for r in results) + " |",
              "|---|" + "---|" * len(results)]
    for w in words:
        cells = []
        for r in results:
            c = r["per_word"][w]
            said = r["printed"].get(w)
            shown = "not learned" if said is None else (f"{said['precision']:.2f}" if said["written"] else "not written")
            if said is not None and said["written"] and said["interval"] and c.get("written"):
                lo, hi = said["interval"]
                wrote = c.get("right", 0) / c["written"]
                shown += f", {lo:.2f}-{hi:.2f}{' (below)' if wrote < lo else ' (above)' if wrote > hi else ''}"
            cells.append(f"{c.get('corrected', 0)}, {c.get('right', 0) / max(1, c.get('written', 0)):.2f} ({shown}), "
                         f"{c.get('found', 0) / max(1, c.get('photos', 0)):.2f} (of {c.get('photos', 0)})")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    below, inside, compared = agreement(results)
    lines += ["", f"of {compared} written words, the tag run's precision lies inside the interval learn printed "
                  f"for {inside}, above it for {compared - inside - below}, below it for {below}"]
    return "\n".join(lines)


def agreement(results: list[dict]) -> tuple[int, int, int]:
    """(words whose tag-run precision falls below learn's printed interval, inside it, words compared)."""
    below = inside = compared = 0
    for r in results:
        for w, said in r["printed"].items():
            c = r["per_word"].get(w, {})
            if said["written"] and said["interval"] and c.get("written"):
                compared += 1
                wrote = c.get("right", 0) / c["written"]
                below += wrote < said["interval"][0]
                inside += said["interval"][0] <= wrote <= said["interval"][1]
    return below, inside, compared


def main(argv: list[str] | None = None) -> list[dict]:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    parser = Parser("benchmarks/corrections_bench.py", __doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="Which photos the reviewer corrects (and training seeds): one run each, all shown.")
    parser.add_argument("--habits", nargs="+", choices=HABITS, default=["ticked"],
                        help="How the simulated reviewer corrects (see the module docstring); one run each.")
    parser.add_argument("--words", type=int, default=0,
                        help="Only the N words with the most photos (0: every word).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.ks):
        parser.error("--ks must be >= 1")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    photos = collection_words.collect(workdir / "photos")
    if args.words:
        keep = {w for w, _ in Counter(p.word for p in photos).most_common(args.words)}
        photos = [p for p in photos if p.word in keep]
    print(f"{len(photos)} photos of {len({p.word for p in photos})} words: "
          f"{dict(Counter(p.word for p in photos))}", flush=True)
    judged = photo_set.collect(workdir / "photo_set")
    sense_by_sha = {_sha(p.path): p.synset for p in judged}
    senses = {p.path: sense_by_sha[_sha(p.path)] for p in photos if _sha(p.path) in sense_by_sha}
    print(f"{len(senses)} of them have a noun sense in the photo set (embedded precision is judged on those)")
    baseline = tag([p.path for p in photos], workdir / "embedded", [])
    from pipeline.training import extract_features

    listing = workdir / "features.jsonl"
    listing.write_text("".join(json.dumps({"uri": p.path, "labels": [p.word], "split": "train"}) + "\n" for p in photos))
    if (workdir / "features").exists():
        shutil.rmtree(workdir / "features")
    extract_features.run(["--dataset", "list", "--labels", str(listing), "--output", str(workdir / "features"),
                          "--allow_local_paths", "--quiet"])
    judge = photo_set.Judge()
    results = []
    for seed in args.seeds:
        run = [{**one_k(k, photos, workdir / "features", workdir, seed, senses, judge, baseline, habit), "seed": seed}
               for habit in args.habits for k in args.ks]
        print(f"\nseed {seed}\n" + table(run), flush=True)
        results += run
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
