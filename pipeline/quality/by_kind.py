"""The photo set by kind of photo, with every model fitted leaving that kind out (issue #33).

    python -m pipeline.quality.by_kind [--workdir DIR] [--json FILE] [tag job options, as --min_score 0.7]

A score that claims a chance of being right has to hold on kinds of photo the fit never saw.
For each kind (people, food, animals, plants, scenes, objects: pipeline/quality/data/photo_set.json,
section ``kinds``), every calibration and decision model is refitted on the photos of the other
kinds only, both halves, as the shipped fits are (pipeline/quality/calibrate.py), the everyday
head is learned again without them (pipeline/quality/everyday.py), and the default job runs with
both on every photo of the kind held out; its figures stand beside a naive top-1 classifier on the
same backbone weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.quality import calibrate, ceiling, everyday, photo_set
from pipeline.quality.cross_fit import FITTED, fitted
from pipeline.quality.flags import MeasureFlags
from pipeline.training.metrics import INTERVAL
from pipeline.workdir import working_folder
from transforms.core.options import Flags, option


def held_out_kind(kind: str, photos: list[photo_set.Photo], candidates: dict[str, calibrate.Candidates],
                  naive: dict[str, list[str]], folder: Path, features: str | None, job: Sequence[str] = ()) -> dict:
    """The figures of the job (the default, or with the ``job`` options) on the photos of one
    kind, calibrated and with an everyday head learned without them."""
    chosen = [p for p in photos if p.kind == kind]
    extra = [*job, *fitted(folder, candidates, photos, features, leave_out=kind)]
    judge = photo_set.Judge()
    figures = photo_set.judge_rows(chosen, photo_set.run_job(chosen, folder / "job", extra), naive, judge)
    loose = photo_set.run_job(chosen, folder / "candidates", [*extra, *photo_set.CANDIDATES])  # every candidate
    scored = photo_set.judge_rows(chosen, loose, {}, judge).by_source
    return {"kind": kind, "nouns": len({p.synset for p in chosen}), **figures.row(),
            "any_right": figures.any_right / max(figures.photos, 1),
            **ceiling.summary(photo_set.judged_tags(chosen, loose, judge)),
            "ece.overall": scored["overall"].ece if "overall" in scored else None, "wrong": figures.wrong}


def measure(workdir: str | None = None, head: bool = True, job: Sequence[str] = ()) -> dict[str, dict]:
    """Each kind's figures, every model fitted without that kind's photos (``head``: with the
    everyday head, learned without them too; ``job``: tag job options, such as --min_score)."""
    with working_folder(workdir, "by-kind-") as folder:
        photos = photo_set.collect(folder / "photos")
        candidates = calibrate.gather(str(folder / "fit"))
        naive = photo_set.naive_top5([p.path for p in photos])
        features = everyday.extract_features(photos, folder) if head else None
        present = [k for k in photo_set.kinds() if any(p.kind == k for p in photos)]
        return {kind: held_out_kind(kind, photos, candidates, naive, folder / kind, features, job) for kind in present}


def table(results: dict[str, dict]) -> str:
    f = photo_set.figure

    lines = ["each kind held out of every fit: the default job on all its photos, beside a naive top-1", "",
             f"| kind | photos | nouns | precision ({INTERVAL:.0%} interval) | noun named | naive top-1 named | on nameable photos: named, naive "
             "| naive top-1 precision "
             "| any right tag | everyday recall | untagged | ECE | person tag where people are shown "
             "| person tag without people |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, r in results.items():
        lines.append(f"| {kind} | {r['photos']} | {r['nouns']} | {f(r['precision.overall'])} "
                     f"({photo_set.spread(r['precision_interval'])}) | {f(r['named_at_level'])} | "
                     f"{f(r['naive_top1_named'])} | {f(r['named_on_nameable'])}, {f(r['naive_top1_named_on_nameable'])} | "
                     f"{f(r['naive_top1_precision'])} | {f(r['any_right'])} | {f(r['everyday_recall'])} | "
                     f"{f(r['untagged'])} | {f(r['ece.overall'])} | {photo_set.people_cells(r)} |")
    return "\n".join([*lines, "", ceiling.table(results)])


@dataclass(frozen=True)
class ByKindFlags(Flags):
    GROUP: ClassVar[str] = "by_kind"

    no_everyday_head: bool = option(False, "Without the everyday head (what it adds).")


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser
    from pipeline.tag import JOB_SETS, parse_with_job_options

    parser = Parser("python -m pipeline.quality.by_kind", __doc__ or "", (ByKindFlags, MeasureFlags))
    args, job = parse_with_job_options(parser, argv, (*JOB_SETS, *FITTED))  # the rest go to the tag job
    results = measure(args.workdir, head=not args.no_everyday_head, job=job)
    print(table(results))
    if args.show:
        for kind, r in results.items():
            print(f"\nwrong tags, {kind}:\n" + "\n".join(r["wrong"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
