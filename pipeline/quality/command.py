"""`image-tagger quality` / `python -m pipeline.quality`: the key's figures, and --fit.

Apart from the key (pipeline/quality/key.py) so that the calibration fit, which reads the key,
and the command, which runs the fit, import each other in one direction only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from pipeline.commands import Parser
from pipeline.quality.flags import MeasureFlags
from pipeline.quality.key import PRESETS, as_json, evaluate, load_key, show, table
from pipeline.tag import parse_with_job_options
from pipeline.workdir import working_folder
from transforms.core.launch import LaunchError
from transforms.core.options import Flags, option


@dataclass(frozen=True)
class QualityFlags(Flags):
    GROUP: ClassVar[str] = "quality"

    split: str = option("both", "Photos to report (both: the report and tune halves apart).",
                        choices=("report", "tune", "all", "both"))
    presets: str = option("default,ranking,paper", f"Comma-separated, of {list(PRESETS)}.")
    fit: str | None = option(None, "Fit the per-source calibration on the labelled photos (never the key's report half) and write it here (then "
                             "pass it to the tag job as --calibration).", metavar="CALIBRATION_JSON")

    def chosen(self) -> list[str]:
        return [p.strip() for p in self.presets.split(",") if p.strip()]

    def check(self) -> None:
        unknown = [p for p in self.chosen() if p not in PRESETS]
        if unknown:
            raise LaunchError(f"--presets: unknown {unknown}; choose from {list(PRESETS)}")


def quality_parser() -> Parser:
    return Parser("image-tagger quality", "Precision and recall of the written tags per source on labelled "
                  "real photos (docs/QUALITY.md); extra options go to the tag job.", (QualityFlags, MeasureFlags))


def main(argv: list[str] | None = None) -> None:
    parser = quality_parser()
    args, extra = parse_with_job_options(parser, argv)  # the rest go to the tag job
    presets = QualityFlags.from_options(args).chosen()
    splits = ["report", "tune"] if args.split == "both" else [args.split]
    with working_folder(args.workdir, "quality-") as workdir:
        if args.fit:
            from pipeline.quality.calibrate import fit

            fit(args.fit, str(workdir / "fit"))
            print(f"(the presets below use the embedded calibration; pass --calibration {args.fit} "
                  "to evaluate another file)")
        out = evaluate(presets, splits, str(workdir), extra)
    key = load_key()
    if args.show:
        for preset, rows in out["rows"].items():
            print(f"\n== {preset}\n{show(rows, key)}")
    print()
    print(table(out["results"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(as_json(out["results"]), f, indent=1)
