"""`image-tagger runs OUTPUT`: every run of an output, how it was made and what it wrote.

    image-tagger runs OUTPUT [--json]

One row per run manifest (OUTPUT/_runs/*.json), oldest first: its id, status, mode and
partition, when it started and committed, its input, the rows it published (tags, and dead
letters by stage and error type), its model_version and the code that ran it. Manifests are
read through the same validation as every job (transforms/output/runs.py): a manifest this
tool did not write is refused in one line, never shown.
"""

from __future__ import annotations

import json

from transforms.output import runs

UNKNOWN = "-"


def rows(output: str) -> list[dict]:
    """The runs of ``output`` as plain dicts (the manifest's fields), oldest first."""
    from dataclasses import asdict

    return [asdict(m) for m in runs.read_manifests(output)]


def _failed(counts: dict) -> str:
    kinds = sorted(((v, k.removeprefix("errors:")) for k, v in counts.items() if k.startswith("errors:")), reverse=True)
    shown = ", ".join(f"{kind} {n}" for n, kind in kinds[:3])
    more = f", +{len(kinds) - 3} kinds" if len(kinds) > 3 else ""
    return f"{counts.get('errors', 0)}" + (f" ({shown}{more})" if shown else "")


def table(found: list[dict]) -> str:
    lines = ["| run | status | mode | partition | started | committed | input | tagged | failed | model_version | code |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in found:
        lin, counts = m.get("lineage") or {}, m.get("counts") or {}
        code = lin.get("package_version") or UNKNOWN
        if lin.get("git_commit"):
            commit = lin["git_commit"]
            code += f" @ {commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}"
        cells = [m["run_id"], m["status"], m["mode"], m["partition"] or UNKNOWN, m["started"] or UNKNOWN,
                 m["committed"] or UNKNOWN, lin.get("input") or UNKNOWN,
                 str(counts.get("tags", counts.get("features", UNKNOWN))) if counts else UNKNOWN,
                 _failed(counts) if counts else UNKNOWN, lin.get("model_version") or UNKNOWN, code]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    from pipeline import commands

    parser = commands.runs_parser()
    args = parser.check(parser.parse_args(argv))
    commands.check_runs(args)
    try:
        found = rows(args.output)
    except ValueError as exc:
        raise SystemExit(f"image-tagger runs: {exc}") from None
    if args.json:
        print(json.dumps(found, indent=1))
    elif not found:
        print(f"{args.output} holds no runs")
    else:
        print(table(found))
        options = [f"{m['run_id']}: " + " ".join(f"--{k}={v}" for k, v in (m.get("lineage") or {}).get("options", {}).items())
                   for m in found if (m.get("lineage") or {}).get("options")]
        if options:
            print("\noptions that differ from the defaults:\n" + "\n".join(options))
    return found


if __name__ == "__main__":
    main()
