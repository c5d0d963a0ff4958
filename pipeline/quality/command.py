"""`image-tagger quality` / `python -m pipeline.quality`: the key's figures, and --fit.

Apart from the key (pipeline/quality/key.py) so that the calibration fit, which reads the key,
and the command, which runs the fit, import each other in one direction only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from pipeline.quality.key import PRESETS, as_json, evaluate, load_key, show, table


def main(argv: list[str] | None = None) -> None:
    from pipeline import commands

    parser = commands.quality_parser(list(PRESETS))
    args, extra = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"image-tagger quality: --presets: unknown {unknown}; choose from {list(PRESETS)}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="quality-")
    if args.fit:
        from pipeline.quality.calibrate import fit

        fit(args.fit, os.path.join(workdir, "fit"))
        print(f"(the presets below use the embedded calibration; pass --calibration {args.fit} "
              "to evaluate another file)")
    splits = ["report", "tune"] if args.split == "both" else [args.split]
    out = evaluate(presets, splits, workdir, extra)
    key = load_key()
    if args.show:
        for preset, rows in out["rows"].items():
            print(f"\n== {preset}\n{show(rows, key)}")
    print()
    print(table(out["results"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(as_json(out["results"]), f, indent=1)
