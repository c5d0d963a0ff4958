"""The photo set measured half by half: each half by fits learned on the other (issue #33).

    python -m pipeline.quality.cross_fit [--split report|tune|all] [--show] [--json FILE] [tag job options]

The shipped fits (transforms/data/calibration.json and the everyday head) learn from both halves
of the photo set (pipeline/quality/photo_set.py), so the shipped job is never measured on it.
Instead every fit is learned again on one half, calibration and everyday head alike, and the
default job runs with them on the other half: no photo is measured by a fit that saw its noun
(the halves are split by noun). ``--split all`` does both and reports each half and the two
together, every one of the 632 photos measured out of sample. The shipped fits learn from twice
the photos, so these figures are a floor for them. ``fitted`` is also how pipeline/quality/by_kind.py
leaves a kind out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.quality import calibrate, everyday, photo_set
from pipeline.quality.flags import MeasureFlags
from pipeline.workdir import working_folder
from transforms.core.options import Flags, option

FITTED = ("--calibration", "--everyday_model")  # fitted again for each measurement: not the user's to give
SPLITS = ("tune", "report", "all")


def fitted(folder: Path, candidates: dict[str, calibrate.Candidates], photos: list[photo_set.Photo],
           features: str | None, leave_out: str | None = None, half: str | None = None) -> list[str]:
    """Fit the calibration and learn the everyday head on the photos of ``half`` (None: both)
    without kind ``leave_out``, in ``folder``; the tag job options that use them (``features``
    None: the job without the everyday head)."""
    folder.mkdir(parents=True, exist_ok=True)
    cal = folder / "calibration.json"
    calibrate.write(str(cal), calibrate.fit_sources(candidates, leave_out, half), leave_out, half)
    head = folder / "everyday"
    if features is not None:
        everyday.build(str(head), photos, features, folder, leave_out=leave_out, half=half)
    return ["--calibration", str(cal), "--everyday_model", str(head) if features is not None else "none"]


def measure(workdir: str | None = None, extra: Sequence[str] = (), split: str = "all") -> dict[str, dict]:
    """The job over the photos of ``split`` (all: both halves), each half with fits learned on the
    other, and again with low floors for calibration; figures per split (for all: tune, report
    and over all)."""
    with working_folder(workdir, "cross-fit-") as folder:
        every = photo_set.collect(folder / "photos")
        halves = photo_set.HALVES if split == "all" else (split,)
        learned = None if split == "all" else photo_set.other_half(split)  # the half the fits learn from (None: both)
        candidates = calibrate.gather(str(folder / "fit"), learned)
        features = everyday.extract_features([p for p in every if learned in (None, p.split)], folder)
        rows: dict[str, dict] = {}
        loose: dict[str, dict] = {}
        for half in halves:
            options = [*extra, *fitted(folder / f"fits-{photo_set.other_half(half)}", candidates, every, features,
                                       half=photo_set.other_half(half))]
            chosen = [p for p in every if p.split == half]
            rows |= photo_set.run_job(chosen, folder / f"job-{half}", options)
            loose |= photo_set.run_job(chosen, folder / f"candidates-{half}", [*options, *photo_set.CANDIDATES])
        photos = [p for p in every if p.split in halves]
        naive = photo_set.naive_top5([p.path for p in photos])
        judge = photo_set.Judge()
        return {part: photo_set.figures_of(part, [p for p in photos if part == "all" or p.split == part], rows, loose, naive, judge)
                for part in (SPLITS if split == "all" else (split,))}


@dataclass(frozen=True)
class CrossFitFlags(Flags):
    GROUP: ClassVar[str] = "cross_fit"

    split: str = option("report", "Photos to measure (and run the job on), with fits learned on the other half.",
                        choices=SPLITS)
    reliability: str | None = option(None, "Also draw the split's reliability diagram to this PNG.")


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser
    from pipeline.tag import JOB_SETS, parse_with_job_options

    parser = Parser("python -m pipeline.quality.cross_fit", __doc__ or "", (CrossFitFlags, MeasureFlags))
    args, extra = parse_with_job_options(parser, argv, (*JOB_SETS, *FITTED))  # the rest go to the tag job
    results = measure(args.workdir, extra, args.split)
    result = results[args.split]
    print(photo_set.table(result))
    if args.show:
        print("\nwrong tags:\n" + "\n".join(result["wrong"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.reliability:
        photo_set.plot_reliability(result, args.reliability)
    return results


if __name__ == "__main__":
    main()
