"""`make demo`: tag the real sample photos with the embedded models (and zero-shot words from
the shipped everyday vocabulary) and print what came out.

python -m pipeline.demo --output demo_out [Beam options]
"""

from __future__ import annotations

import os

import pyarrow.parquet as pq

from pipeline import commands, report, tag
from transforms.core.records import ERRORS
from transforms.knowledge.samples import sample_photos
from transforms.output import runs
from transforms.stages.tagger import SOURCE as TAGGER


def write_input_list(output: str) -> str:
    photos = sample_photos()
    if not photos:
        raise SystemExit("no sample photos found: run `make setup` first")
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, commands.DEMO_LIST)
    with open(path, "w") as f:
        for p in photos.values():
            f.write(f"{p}\n")
        f.write(os.path.join(output, "does-not-exist.jpg") + "\n")  # shows a dead letter
    return path


def describe(output: str, per_image: int = 8) -> str:
    lines = []
    for path in sorted(runs.committed_files(output, "tags")):
        for row in pq.read_table(path).to_pylist():
            tags = ", ".join(
                f"{t['name']} {t['score']:.2f}" + ("" if t["source"] == TAGGER else f" [{t['source']}]")
                for t in row["tags"][:per_image]
            )
            lines.append(f"{os.path.basename(row['uri']):<22} {row['width']}x{row['height']}  {tags}")
    for path in sorted(runs.committed_files(output, ERRORS)):
        for row in pq.read_table(path).to_pylist():
            lines.append(f"{os.path.basename(row['uri']):<22} ERROR {row['stage']}/{row['error_type']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = commands.demo_parser()
    args, beam_args = tag.parse_with_job_options(parser, argv, ("--input",))  # checked before the list is written
    input_list = write_input_list(args.output)
    from pipeline.quality.key import vocabulary_path  # the everyday vocabulary: zero-shot tags too

    tag.run(["--input", input_list, "--output", args.output, "--overwrite", "--allow_local_paths", "--vocabulary", vocabulary_path(), *beam_args])
    print()
    print(describe(args.output))
    print(f"\nParquet written under {os.path.abspath(args.output)}")
    html_path = os.path.join(args.output, "report.html")
    report.main(["--input", args.output, "--html", html_path, "--allow_local_paths"])
    print(f"Open the contact sheet: {os.path.abspath(html_path)}")


if __name__ == "__main__":
    main()
