"""`image-tagger`: one installed command, one subcommand per job.

    image-tagger tag --input LIST --output DIR [options]     tag images (the main job)
    image-tagger extract-features ...                        backbone features for training
    image-tagger train ...                                   train TaggerNet (the paper's MLP)
    image-tagger evaluate ...                                test / zero-shot metrics
    image-tagger report --input DIR --html FILE              the contact sheet
    image-tagger runs DIR                                    every run of an output and its lineage
    image-tagger quality                                     tag precision/recall on labelled photos
    image-tagger demo                                        tag the bundled photos

``image-tagger COMMAND --help`` lists a command's options.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "tag": ("pipeline.tag", "run", "Tag images in bulk: tags, objects, zero-shot words, Parquet out."),
    "extract-features": ("pipeline.training.extract_features", "run", "Backbone features of a labelled dataset."),
    "train": ("pipeline.training.train", "main", "Train TaggerNet on extracted features."),
    "learn": ("pipeline.training.learn", "main", "Teach TaggerNet a collection's words from review corrections."),
    "evaluate": ("pipeline.training.evaluate", "main", "Evaluate a model (test split, or zero-shot ZS/GZS)."),
    "report": ("pipeline.report", "main", "Write the HTML contact sheet of a run."),
    "runs": ("pipeline.runs_table", "main", "List an output's runs: input, options, counts, model and code versions."),
    "quality": ("pipeline.quality.command", "main", "Precision and recall per tag source on labelled photos."),
    "demo": ("pipeline.demo", "main", "Tag the real photos that ship with the dev packages."),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: image-tagger COMMAND [options]   (image-tagger COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(argv if argv is not None else sys.argv[1:])
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; choose from {', '.join(COMMANDS)}"
        raise SystemExit(f"image-tagger: unknown command {name!r}{hint}")
    from pipeline import commands

    if commands.wants_help(rest) and commands.main_help(name):  # light: no torch, no model code
        raise SystemExit(0)
    if name == "train" and "--corrections" in rest:  # image-tagger learn, by another name
        name = "learn"
    module, function, _ = COMMANDS[name]
    saved = sys.argv
    sys.argv = [f"image-tagger {name}", *rest]  # argparse names the command in its usage line
    try:
        getattr(importlib.import_module(module), function)(rest)
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
