"""Every command's options, in one light module: ``--help`` answers without importing torch or
Beam's model code, and every command refuses a wrong option, path or value the same way, in
one line with no traceback, before any work.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.training.datasets import DatasetFlags
from transforms.core import uris
from transforms.core.launch import unknown_option
from transforms.knowledge.vectors import EMBEDDED as WORD_VECTORS


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, and every option's default shown."""


class Parser(argparse.ArgumentParser):
    """argparse that refuses in one line (no usage dump) and suggests the flag meant."""

    def __init__(self, prog: str, description: str):
        super().__init__(prog=prog, description=description, formatter_class=_Formatter, allow_abbrev=False)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            flag = message.split(":", 1)[1].split()[0]
            message = unknown_option(flag.split("=", 1)[0], self.flags())
        raise SystemExit(f"{self.prog}: {message}")

    def parse_args(self, args=None, namespace=None):
        """An unknown flag is named (with a suggestion) before argparse's missing-required message."""
        known = set(self.flags())
        for arg in args if args is not None else sys.argv[1:]:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                raise SystemExit(f"{self.prog}: {unknown_option(flag, sorted(known))}")
        return super().parse_args(args, namespace)

    def flags(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings]


def refuse(prog: str, message: str) -> SystemExit:
    return SystemExit(f"{prog}: {message}")


def need_path(prog: str, option: str, path: str | None, kind: str = "file or folder") -> None:
    """A local input path must exist (gs:// and other remote paths are checked when read)."""
    if path and not uris.scheme(path) and not any(c in path for c in "*?[") and not os.path.exists(path):
        raise refuse(prog, f"{option}: no such {kind}: {path}")


def at_least(prog: str, option: str, value, low) -> None:
    if value is not None and value < low:
        raise refuse(prog, f"{option} must be >= {low}, got {value}")


def train_parser() -> Parser:
    p = Parser("image-tagger train", "Train TaggerNet (the paper's MLP: sigmoid outputs, cross-entropy, "
               "Adam, early stopping) on features written by image-tagger extract-features.")
    p.add_argument("--features", required=True, help="An extract-features --output folder, or a glob of "
                   "its Parquet files (local or gs://).")
    p.add_argument("--output", required=True, help="Model directory to write (local or gs://).")
    p.add_argument("--corrections", nargs="+", metavar="FILE", default=None,
                   help="Learn from a reviewer's corrections instead: the same as image-tagger learn (see its --help).")
    p.add_argument("--epochs", type=int, default=15, help="Most training epochs (early stopping may end sooner).")
    mlp_options(p, batch_size=64, hidden=512)
    p.add_argument("--weight_decay", type=float, default=0.0, help="Adam weight decay (L2).")
    p.add_argument("--top_k", type=int, default=3, help="k of the validation top-k accuracy (must be below "
                   "the number of labels to mean anything; otherwise early stopping uses validation mAP).")
    p.add_argument("--patience", type=int, default=3,
                   help="Epochs without a better validation score before stopping.")
    p.add_argument("--early_stopping_metric", choices=("topk_accuracy", "mAP"), default="topk_accuracy",
                   help="Validation score early stopping follows (ties broken by mAP).")
    p.add_argument("--min_label_count", type=int, default=1,
                   help="Labels with fewer training positives are left out of the vocabulary.")
    p.add_argument("--holdout_tags", default=None,
                   help="File of tags (one per line) kept out of training, for zero-shot evaluation.")
    p.add_argument("--word_vectors", default=WORD_VECTORS,
                   help="Word vectors for the zero-shot mapping (same sources as the tag job).")
    p.add_argument("--word_vectors_sha256", default=None, help="Expected sha256 of --word_vectors.")
    p.add_argument("--no_zero_shot_mapping", action="store_true",
                   help="Do not learn the Fast0Tag-style feature-to-word-space mapping.")
    p.add_argument("--mapping_epochs", type=int, default=30, help="Epochs for the zero-shot mapping.")
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    return p


def mlp_options(p: Parser, batch_size: int, hidden: int) -> None:
    """TaggerNet's optimiser and layer options (train's and learn's defaults differ in size)."""
    p.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (the paper's).")
    p.add_argument("--batch_size", type=int, default=batch_size, help="Examples per training step.")
    p.add_argument("--hidden", type=int, default=hidden, help="Hidden units of the MLP.")
    p.add_argument("--dropout", type=float, default=0.5, help="Dropout before the output layer.")
    p.add_argument("--seed", type=int, default=0, help="Random seed (initialisation, shuffling).")


def check_mlp(prog: str, args: argparse.Namespace, counts: tuple[str, ...]) -> None:
    for option in ("epochs", "batch_size", "hidden", "patience", "min_label_count", *counts):
        at_least(prog, f"--{option}", getattr(args, option), 1)
    if not 0 <= args.dropout < 1:
        raise refuse(prog, f"--dropout must be in [0, 1), got {args.dropout}")
    if args.lr <= 0:
        raise refuse(prog, f"--lr must be > 0, got {args.lr}")


def no_pickled_vectors(prog: str, source: str) -> None:
    from transforms.core.launch import LaunchError
    from transforms.knowledge.vectors import refuse_pickle

    try:
        refuse_pickle("--word_vectors", source)
    except LaunchError as exc:
        raise refuse(prog, str(exc)) from None


def check_train(args: argparse.Namespace) -> None:
    prog = "image-tagger train"
    no_pickled_vectors(prog, args.word_vectors)
    need_path(prog, "--features", args.features)
    need_path(prog, "--holdout_tags", args.holdout_tags, "file")
    check_mlp(prog, args, ("top_k", "mapping_epochs"))


def learn_parser() -> Parser:
    p = Parser("image-tagger learn", "Teach TaggerNet a collection's own words from a reviewer's corrections "
               "(the contact sheet's Export corrections). Features of the corrected images come from the "
               "feature job, or are reused by content_sha256. Any other option goes to that feature job "
               "(e.g. --allow_local_paths for local images, --runner).")
    p.add_argument("--corrections", nargs="+", required=True, metavar="FILE",
                   help="Corrections JSONL files (local, gs:// or https://); they add to the ones MODEL_DIR "
                   "already learned from, and the latest decision per picture wins.")
    p.add_argument("--output", required=True, help="Model directory (local or gs://): written, or updated "
                   "when it already holds a learned model.")
    p.add_argument("--features", nargs="*", default=[], metavar="DIR",
                   help="extract-features outputs to reuse features from (matched by content_sha256).")
    p.add_argument("--min_label_count", type=int, default=3,
                   help="A new word needs this many corrected training images to be learned.")
    p.add_argument("--folds", type=int, default=5, help="Cross-fitting folds: each is scored by a model trained "
                   "on the others, and the learned words' calibration is fitted on those held-out scores.")
    p.add_argument("--val_fraction", type=float, default=0.2,
                   help="Share of each fold's training pictures used for early stopping.")
    p.add_argument("--target_precision", type=float, default=0.9,
                   help="Learned words are written from the lowest calibrated score whose held-out tags reach "
                   "this precision (and never below --min_score at tag time).")
    p.add_argument("--no_review_negatives", action="store_true",
                   help="Do not count a picture the same review corrected without word W (while giving W to "
                   "others) as a negative for W: for reviews that corrected only some words on each picture. "
                   "Ticks (all right) and struck tags stay negatives.")
    p.add_argument("--epochs", type=int, default=400, help="Most epochs (few images make short epochs; "
                   "early stopping on the validation loss ends sooner).")
    p.add_argument("--patience", type=int, default=40, help="Epochs without a better validation loss before stopping.")
    mlp_options(p, batch_size=32, hidden=256)
    p.add_argument("--quiet", action="store_true", help="No progress output.")
    return p


def check_learn(args: argparse.Namespace) -> None:
    prog = "image-tagger learn"
    if not uris.scheme(args.output) and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise refuse(prog, f"--output {args.output} is a file; give a model directory")
    for path in args.corrections:
        need_path(prog, "--corrections", path, "file")
    for path in args.features:
        need_path(prog, "--features", path)
    check_mlp(prog, args, ())
    at_least(prog, "--folds", args.folds, 2)
    if not 0 < args.val_fraction < 0.5:
        raise refuse(prog, f"--val_fraction must be in (0, 0.5), got {args.val_fraction}")
    if not 0 <= args.target_precision <= 1:
        raise refuse(prog, f"--target_precision must be between 0 and 1, got {args.target_precision}")


def evaluate_parser() -> Parser:
    p = Parser("image-tagger evaluate", "Evaluate a TaggerNet model on a split of extracted features "
               "(P/R/F1@k, mAP), or zero-shot (ZS) and generalised zero-shot (GZS) tagging.")
    p.add_argument("--model", default=None, help="Model directory written by image-tagger train "
                   "(required unless --zero_shot with ConSE over the backbone's own classes).")
    p.add_argument("--features", required=True, help="An extract-features --output folder, or a glob.")
    p.add_argument("--output", required=True, help="Report directory to write metrics.json to (local or gs://).")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="Which split to evaluate.")
    zs = p.add_argument_group("zero-shot evaluation")
    zs.add_argument("--zero_shot", action="store_true", help="Evaluate zero-shot (ZS) and generalised (GZS) tagging.")
    zs.add_argument("--unseen_tags", default=None, help="File of unseen tags, one per line.")
    zs.add_argument("--zero_shot_method", choices=("auto", "conse", "fast0tag"), default="auto",
                    help="ConSE (word-vector average of the top-T seen tags) or the learned Fast0Tag mapping.")
    zs.add_argument("--conse_top_t", type=int, default=10, help="T of ConSE.")
    zs.add_argument("--word_vectors", default=WORD_VECTORS, help="Word vectors (same sources as the tag job).")
    zs.add_argument("--word_vectors_sha256", default=None, help="Expected sha256 of --word_vectors.")
    return p


def check_evaluate(args: argparse.Namespace) -> None:
    prog = "image-tagger evaluate"
    no_pickled_vectors(prog, args.word_vectors)
    need_path(prog, "--features", args.features)
    need_path(prog, "--model", args.model, "model directory")
    need_path(prog, "--unseen_tags", args.unseen_tags, "file")
    at_least(prog, "--conse_top_t", args.conse_top_t, 1)
    if args.zero_shot and not args.unseen_tags:
        raise refuse(prog, "--zero_shot needs --unseen_tags FILE")


def report_parser() -> Parser:
    p = Parser("image-tagger report", "A self-contained HTML contact sheet of a tag run: thumbnails, tags "
               "by source, boxes, a tag chart, the dead letters; optionally model curves and metrics.")
    p.add_argument("--input", required=True, help="The --output folder of a tag run (local or gs://).")
    p.add_argument("--html", required=True, help="Where to write the report (local or gs://).")
    p.add_argument("--sample", type=int, default=200, help="Images shown (reservoir-sampled).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the sample.")
    p.add_argument("--model", default=None, help="A TaggerNet model directory to show curves and metrics of.")
    p.add_argument("--evaluation", default=None,
                   help="An image-tagger evaluate --output folder to show its metrics.")
    p.add_argument("--thumb_size", type=int, default=240, help="Longest side of each thumbnail, pixels.")
    p.add_argument("--allow_private_networks", action="store_true",
                   help="Let thumbnails of web URIs come from private addresses.")
    p.add_argument("--allow_local_paths", action="store_true",
                   help="Show thumbnails of local files the rows name (read with your permissions).")
    p.add_argument("--allowed_schemes", default="",
                   help="Cloud schemes whose objects thumbnails may read (e.g. gs), with this machine's "
                   "credentials; web images are always shown.")
    return p


def check_report(args: argparse.Namespace) -> None:
    prog = "image-tagger report"
    need_path(prog, "--input", args.input, "folder")
    need_path(prog, "--model", args.model, "model directory")
    need_path(prog, "--evaluation", args.evaluation, "folder")
    at_least(prog, "--sample", args.sample, 1)
    at_least(prog, "--thumb_size", args.thumb_size, 16)
    html_dir = os.path.dirname(os.path.abspath(args.html)) if not uris.scheme(args.html) else ""
    if html_dir and not os.path.isdir(html_dir):
        raise refuse(prog, f"--html: no such folder: {html_dir}")
    from transforms.core.launch import LaunchError
    from transforms.ingest.access import AccessFlags
    from transforms.output import runs

    try:
        AccessFlags(allowed_schemes=args.allowed_schemes).check()
    except LaunchError as exc:
        raise refuse(prog, str(exc)) from None
    try:
        runs.check_links(args.input)
        if not runs.read_manifests(args.input):
            raise refuse(prog, f"--input {args.input} holds no tag run (no {runs.RUNS}/ manifests)")
    except ValueError as exc:
        raise refuse(prog, str(exc)) from None


def runs_parser() -> Parser:
    p = Parser("image-tagger runs", "Every run of an output: how it was made (input, options, model_version, "
               "code) and what it wrote (rows, dead letters by kind), oldest first.")
    p.add_argument("output", help="The --output folder of tag or extract-features runs (local or gs://).")
    p.add_argument("--json", action="store_true", help="Print the manifests as JSON instead of a table.")
    return p


def check_runs(args: argparse.Namespace) -> None:
    need_path("image-tagger runs", "OUTPUT", args.output, "folder")


def quality_parser(presets: list[str]) -> Parser:
    p = Parser("image-tagger quality", "Precision and recall of the written tags per source on labelled "
               "real photos (docs/QUALITY.md); extra options go to the tag job.")
    p.add_argument("--split", choices=("report", "tune", "all", "both"), default="both",
                   help="Photos to report (both: the report and tune halves apart).")
    p.add_argument("--presets", default="default,ranking,paper", help=f"Comma-separated, of {presets}.")
    p.add_argument("--show", action="store_true", help="List every photo's tags, wrong ones marked ✗.")
    p.add_argument("--json", default=None, help="Also write the figures to this JSON file.")
    p.add_argument("--fit", default=None, metavar="CALIBRATION_JSON",
                   help="Fit the per-source calibration on the tune photos and write it here "
                   "(then pass it to the tag job as --calibration).")
    p.add_argument("--workdir", default=None, help="Where outputs go (default: a temp dir).")
    return p


def demo_parser() -> Parser:
    p = Parser("image-tagger demo", "Tag the real photos that ship with the dev packages with the embedded "
               "models, print the tags and write the contact sheet; extra options go to the tag job.")
    p.add_argument("--output", default="demo_out", help="Output folder (replaced on every demo run).")
    return p


class FeatureOptions:
    """Dataset options, parsed before Beam sees the command line: ``--labels`` is also a Dataflow
    option (job labels), so this job takes it for the labelled list instead."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        DatasetFlags.add_flags(parser)


def features_help() -> None:
    from pipeline.flags import image_flags, run_flags

    print_beam_help("image-tagger extract-features", "Extract backbone features of a labelled dataset for "
                    "training. --output is required.", (FeatureOptions._add_argparse_args, image_flags, run_flags))


def print_beam_help(prog: str, description: str, declare: tuple) -> None:
    """--help of a Beam job: our option groups with their defaults (Beam's own are not listed)."""
    parser = argparse.ArgumentParser(prog=prog, formatter_class=_Formatter, description=description +
                                     " Any standard Beam option (--runner, --direct_num_workers, --project, "
                                     "...) is accepted too.")
    for add_flags in declare:  # pipeline/flags.py: no Beam import
        add_flags(parser)
    parser.print_help()


def tag_help() -> None:
    from pipeline.flags import image_flags, run_flags, tag_flags

    print_beam_help("image-tagger tag", "Tag images in bulk: CNN tags, COCO objects, word-vector expansion, "
                    "Parquet out. --input and --output are required.", (image_flags, tag_flags, run_flags))


HELP = {  # command -> prints its --help, importing only what the options need
    "tag": tag_help,
    "extract-features": features_help,
    "train": lambda: train_parser().print_help(),
    "learn": lambda: learn_parser().print_help(),
    "evaluate": lambda: evaluate_parser().print_help(),
    "report": lambda: report_parser().print_help(),
    "runs": lambda: runs_parser().print_help(),
    "demo": lambda: demo_parser().print_help(),
}


def wants_help(argv: list[str]) -> bool:
    return "-h" in argv or "--help" in argv


def main_help(command: str) -> bool:
    """Print ``command``'s help if this module knows it; True when printed."""
    show = HELP.get(command)
    if show is None:
        return False
    show()
    sys.stdout.flush()
    return True
