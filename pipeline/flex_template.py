"""The Dataflow Flex Template's metadata, generated from the tag job's flag declarations.

    python -m pipeline.flex_template            # rewrites templates/dataflow/metadata.json
    python -m pipeline.flex_template --compare  # exit 1 when the file differs from the flags

A flag declared with ``option(..., template=...)`` (transforms/core/options.py) is a template
parameter: its name, help, default and a value pattern its type implies (or the one it names)
come from that one declaration, so the template never restates a flag. tests/test_flex_template.py
keeps the committed file equal to what this writes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.flags import IMAGE_GROUPS, TAG_GROUPS, RunFlags
from transforms.core.options import Flags, option
from transforms.core.registry import registered

PATH = Path(__file__).resolve().parents[1] / "templates" / "dataflow" / "metadata.json"
NAME = "image-tagger"
DESCRIPTION = ("Tag images in bulk: CNN tags, COCO objects with boxes, word-vector expansion and zero-shot tags, "
               "written as Parquet with a dead-letter table.")


def parameters() -> list[dict]:
    """Every template parameter, in the order the job's flag groups are declared."""
    groups: list[type[Flags]] = [*IMAGE_GROUPS, *TAG_GROUPS, RunFlags,
                                 *(s.options for s in registered() if s.options is not None)]
    seen: set[type[Flags]] = set()
    out: list[dict] = []
    for group in groups:
        if group not in seen:
            seen.add(group)
            out.extend(group.template_parameters())
    names = [p["name"] for p in out]
    assert len(names) == len(set(names)), f"a flag is declared twice: {names}"
    return out


def metadata() -> dict:
    return {"name": NAME, "description": DESCRIPTION, "streaming": False, "parameters": parameters()}


def text() -> str:
    return json.dumps(metadata(), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class TemplateFlags(Flags):
    GROUP: ClassVar[str] = "flex_template"

    compare: bool = option(False, "Only compare; exit 1 when the file is stale.")


def main(argv: list[str] | None = None) -> None:
    from pipeline.commands import Parser

    parser = Parser("python -m pipeline.flex_template", __doc__ or "", (TemplateFlags,))
    args = parser.check(parser.parse_args(argv))
    if args.compare:
        if not PATH.is_file() or PATH.read_text() != text():
            sys.exit(f"{PATH} differs from the flag declarations: run python -m pipeline.flex_template")
        print(f"{PATH}: up to date")
        return
    PATH.write_text(text())
    print(f"wrote {PATH} ({len(metadata()['parameters'])} parameters)")


if __name__ == "__main__":
    main()
