"""Every command's options, in one light module: ``--help`` answers without importing torch or
Beam's model code, and every command refuses a wrong option, path or value the same way, in
one line with no traceback, before any work.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pipeline.training.datasets import DatasetFlags
from transforms.core import uris
from transforms.core.launch import LaunchError, at_least, in_unit_range, unknown_option
from transforms.core.options import Flags, option
from transforms.knowledge.vectors import VectorFlags
from transforms.stages.taggernet import DROPOUT, HIDDEN
from transforms.stages.zero_shot import METHODS, ZeroShotFlags

if TYPE_CHECKING:
    from transforms.output.runs import Manifest


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, and every option's default shown."""


class Parser(argparse.ArgumentParser):
    """argparse over a command's Flags groups (transforms/core/options.py, as the Beam jobs'):
    refuses in one line (no usage dump), suggests the flag meant, and runs each group's launch
    checks (``check``) in one line too."""

    def __init__(self, prog: str, description: str, groups: tuple[type[Flags], ...] = ()):
        super().__init__(prog=prog, description=description, formatter_class=_Formatter, allow_abbrev=False)
        self.groups = groups
        for group in groups:
            group.add_flags(self)

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

    def check(self, args: argparse.Namespace) -> argparse.Namespace:
        """Every group's launch checks, in order; the first refusal ends the command in one line."""
        for group in self.groups:
            try:
                group.from_options(args).check()
            except LaunchError as exc:
                raise SystemExit(f"{self.prog}: {exc}") from None
        return args


def need_path(option: str, path: str | None, kind: str = "file or folder") -> None:
    """A local input path must exist (gs:// and other remote paths are checked when read)."""
    if path and not uris.scheme(path) and not any(c in path for c in "*?[") and not os.path.exists(path):
        raise LaunchError(f"{option}: no such {kind}: {path}")
    if path and kind == "file" and not uris.scheme(path) and os.path.isdir(path):
        raise LaunchError(f"{option}: {path} is a folder, not a file")


def need_model(option: str, path: str | None) -> None:
    """A TaggerNet model folder, taken only whole: its manifest, files and config (check_model_folder)."""
    need_path(option, path, "model directory")
    if path:
        from transforms.stages.tagger import check_model_folder

        check_model_folder(path, option)


def need_folder(path: str, what: str, holds_model: bool = False) -> None:
    """An --output for ``what`` (a model, metrics, the demo) is a folder, and a model's folder only
    where a model is written: anything else would end mixed with the model's files (metrics.json
    over a model's breaks its manifest)."""
    from transforms.output import model_folder

    if not uris.scheme(path) and os.path.exists(path) and not os.path.isdir(path):
        raise LaunchError(f"--output {path} is a file; give a folder for the {what}")
    if not holds_model and model_folder.holds_model(path):
        raise LaunchError(f"--output {path} holds a model (its {model_folder.MANIFEST}); give the {what} a folder "
                          "of its own")


def output_runs(path: str) -> list[Manifest]:
    """The runs an --output holds, read back as data (a manifest this tool did not write is refused)."""
    from transforms.output import runs

    try:
        return runs.read_manifests(path)
    except ValueError as exc:
        raise LaunchError(f"--output {exc}") from None


def need_own_folder(path: str, what: str, replaces_model: bool = False) -> None:
    """An --output folder for one thing (``what``): ``need_folder``, and never the output of tag or
    feature runs, whose tables the thing's files would sit beside."""
    need_folder(path, what, holds_model=replaces_model)
    held = output_runs(path)
    if held:
        raise LaunchError(f"--output {path} holds {len(held)} tag or feature run(s); give the {what} a folder of its own")


def need_model_target(path: str, writer: str) -> None:
    """train replaces a model train wrote and learn adds to one learn wrote; neither takes the
    other's: a learned model carries the reviewer's corrections, which train would drop."""
    from transforms.core.artifacts import exists, join
    from transforms.stages.taggernet import CONFIG, LEARNED_ROLE, read_config

    need_own_folder(path, "model", replaces_model=True)
    if not exists(join(path, CONFIG)):
        return
    try:
        learned = read_config(path, verified=False).get("role") == LEARNED_ROLE
    except (OSError, ValueError) as exc:  # read back as data: a config that is not one is refused
        raise LaunchError(f"--output {exc}") from None
    if learned != (writer == "learn"):
        maker = "learn" if learned else "train"
        raise LaunchError(f"--output {path} holds a model from image-tagger {maker}, which {writer} would "
                          "overwrite; choose another --output")


def evaluation_metrics(report_dir: str) -> dict:
    """An evaluate --output folder's metrics.json, read back as data: ValueError unless it holds
    a JSON object (a zero-shot one with a table per protocol)."""
    import json

    from transforms.core.artifacts import exists, join, read_bytes

    path = join(report_dir, "metrics.json")
    if not exists(path):
        raise ValueError(f"{report_dir} holds no metrics.json: give an image-tagger evaluate --output folder")
    try:
        metrics = json.loads(read_bytes(path))
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise ValueError(f"{path} is not JSON ({type(exc).__name__})") from None
    if not isinstance(metrics, dict) or ("ZS" in metrics and not all(isinstance(metrics.get(k), dict) for k in ("ZS", "GZS"))):
        raise ValueError(f"{path} is not the metrics image-tagger evaluate writes")
    return metrics


def need(**values: object) -> None:
    """Required options: refused in one line, named as flags."""
    missing = [f"--{name}" for name, value in values.items() if not value]
    if missing:
        raise LaunchError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required (see --help)")


@dataclass(frozen=True)
class TaggerNetFlags(Flags):
    """TaggerNet's optimiser, layers and stopping, at train's sizes (learn's: LearnNetFlags)."""

    GROUP: ClassVar[str] = "TaggerNet"

    lr: float = option(0.001, "Adam learning rate (the paper's).")
    batch_size: int = option(64, "Examples per training step.")
    hidden: int = option(HIDDEN, "Hidden units of the MLP.")
    dropout: float = option(DROPOUT, "Dropout before the output layer.")
    seed: int = option(0, "Random seed (initialisation, shuffling).")
    epochs: int = option(15, "Most training epochs (early stopping may end sooner).")
    patience: int = option(3, "Epochs without a better validation score before stopping.")
    min_label_count: int = option(1, "Labels with fewer training positives are left out of the vocabulary.")

    def check(self) -> None:
        for name in ("epochs", "batch_size", "hidden", "patience", "min_label_count"):
            at_least(f"--{name}", getattr(self, name), 1)
        if not 0 <= self.dropout < 1:
            raise LaunchError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise LaunchError(f"--lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class LearnNetFlags(TaggerNetFlags):
    """learn's sizes: tens of corrected pictures, not thousands of labelled ones."""

    batch_size: int = option(32, "Examples per training step.")
    hidden: int = option(256, "Hidden units of the MLP.")
    epochs: int = option(400, "Most epochs (few images make short epochs; early stopping on the validation "
                         "loss ends sooner).")
    patience: int = option(40, "Epochs without a better validation loss before stopping.")
    min_label_count: int = option(3, "A new word needs this many corrected training images to be learned.")


@dataclass(frozen=True)
class TrainFlags(Flags):
    GROUP: ClassVar[str] = "train"

    features: str = option("", "Required. An extract-features --output folder, or a glob of its Parquet files "
                           "(local or gs://).", required=True)
    output: str = option("", "Required. Model directory to write (local or gs://).", required=True)
    corrections: tuple[str, ...] | None = option(None, "Learn from a reviewer's corrections instead: the same as "
                                                 "image-tagger learn (see its --help).", nargs="+", metavar="FILE")
    weight_decay: float = option(0.0, "Adam weight decay (L2).")
    top_k: int = option(3, "k of the validation top-k accuracy (must be below the number of labels to mean "
                        "anything; otherwise early stopping uses validation mAP).")
    early_stopping_metric: str = option("topk_accuracy", "Validation score early stopping follows (ties broken "
                                        "by mAP).", choices=("topk_accuracy", "mAP"))
    holdout_tags: str | None = option(None, "File of tags (one per line) kept out of training, for zero-shot "
                                      "evaluation.")
    no_zero_shot_mapping: bool = option(False, "Do not learn the Fast0Tag-style feature-to-word-space mapping.")
    mapping_epochs: int = option(30, "Epochs for the zero-shot mapping.")
    quiet: bool = option(False, "No progress bars.")

    def check(self) -> None:
        need(features=self.features, output=self.output)
        need_model_target(self.output, "train")
        need_path("--features", self.features)
        need_path("--holdout_tags", self.holdout_tags, "file")
        at_least("--top_k", self.top_k, 1)
        at_least("--mapping_epochs", self.mapping_epochs, 1)


def train_parser() -> Parser:
    return Parser("image-tagger train", "Train TaggerNet (the paper's MLP: sigmoid outputs, cross-entropy, "
                  "Adam, early stopping) on features written by image-tagger extract-features.",
                  (TrainFlags, TaggerNetFlags, VectorFlags))


@dataclass(frozen=True)
class LearnFlags(Flags):
    GROUP: ClassVar[str] = "learn"

    corrections: tuple[str, ...] = option((), "Required. Corrections JSONL files (local, gs:// or https://); they "
                                          "add to the ones MODEL_DIR already learned from, and the latest decision "
                                          "per picture wins.", nargs="+", metavar="FILE", required=True)
    output: str = option("", "Required. Model directory (local or gs://): written, or updated when it already holds "
                         "a learned model.", required=True)
    features: tuple[str, ...] = option((), "extract-features outputs to reuse features from (matched by "
                                       "content_sha256).", nargs="*", metavar="DIR")
    folds: int = option(5, "Cross-fitting folds: each is scored by a model trained on the others, and the learned "
                        "words' calibration is fitted on those held-out scores.")
    val_fraction: float = option(0.2, "Share of each fold's training pictures used for early stopping.")
    word_calibration_min: int = option(10, "A word with at least this many held-out pictures with it and as many "
                                       "without it gets a calibration map of its own; the others share one map.")
    word_floor_min: int = option(30, "A word with at least this many held-out pictures with it is written from its "
                                 "own floor (the lowest calibrated score where its own held-out tags reach "
                                 "--target_precision); the others from the floor of every word's tags pooled, unless "
                                 "their own tags miss the target there.")
    target_precision: float = option(0.9, "Learned words are written from the lowest calibrated score whose "
                                     "held-out tags reach this precision (and never below --min_score at tag time).")
    no_review_negatives: bool = option(False, "Do not count a picture the same review corrected without word W "
                                       "(while giving W to others) as a negative for W: for reviews that corrected "
                                       "only some words on each picture. Ticks (all right) and struck tags stay "
                                       "negatives.")
    quiet: bool = option(False, "No progress output.")

    def check(self) -> None:
        need(corrections=self.corrections, output=self.output)
        need_model_target(self.output, "learn")
        for path in self.corrections:
            need_path("--corrections", path, "file")
        for path in self.features:
            need_path("--features", path)
        at_least("--folds", self.folds, 2)
        at_least("--word_calibration_min", self.word_calibration_min, 2)
        at_least("--word_floor_min", self.word_floor_min, 2)
        if not 0 < self.val_fraction < 0.5:
            raise LaunchError(f"--val_fraction must be in (0, 0.5), got {self.val_fraction}")
        in_unit_range("--target_precision", self.target_precision)


def learn_parser() -> Parser:
    return Parser("image-tagger learn", "Teach TaggerNet a collection's own words from a reviewer's corrections "
                  "(the contact sheet's Export corrections). Features of the corrected images come from the "
                  "feature job, or are reused by content_sha256. Any other option goes to that feature job "
                  "(e.g. --allow_local_paths for local images, --runner).", (LearnFlags, LearnNetFlags))


@dataclass(frozen=True)
class EvaluateFlags(Flags):
    GROUP: ClassVar[str] = "evaluate"

    model: str | None = option(None, "Model directory written by image-tagger train (required unless --zero_shot "
                               "with ConSE over the backbone's own classes).")
    features: str = option("", "Required. An extract-features --output folder, or a glob.", required=True)
    output: str = option("", "Required. Report directory to write metrics.json to (local or gs://).", required=True)
    split: str = option("test", "Which split to evaluate.", choices=("train", "val", "test"))
    zero_shot: bool = option(False, "Evaluate zero-shot (ZS) and generalised zero-shot (GZS) tagging.")
    unseen_tags: str | None = option(None, "File of unseen tags, one per line.")
    zero_shot_method: str = option(ZeroShotFlags.zero_shot_method, "ConSE (word-vector average of the top-T seen "
                                   "tags) or the learned Fast0Tag mapping.", choices=METHODS)
    conse_top_t: int = option(ZeroShotFlags.conse_top_t, "T of ConSE.")

    def check(self) -> None:
        need(features=self.features, output=self.output)
        need_own_folder(self.output, "metrics")
        need_path("--features", self.features)
        need_model("--model", self.model)
        need_path("--unseen_tags", self.unseen_tags, "file")
        at_least("--conse_top_t", self.conse_top_t, 1)
        if self.zero_shot and not self.unseen_tags:
            raise LaunchError("--zero_shot needs --unseen_tags FILE")
        if not self.zero_shot and not self.model:
            raise LaunchError("--model is required (or --zero_shot)")


def evaluate_parser() -> Parser:
    return Parser("image-tagger evaluate", "Evaluate a TaggerNet model on a split of extracted features "
                  "(P/R/F1@k, mAP), or zero-shot (ZS) and generalised zero-shot (GZS) tagging.",
                  (EvaluateFlags, VectorFlags))


@dataclass(frozen=True)
class ReportFlags(Flags):
    GROUP: ClassVar[str] = "report"

    input: str = option("", "Required. The --output folder of a tag run (local or gs://).", required=True)
    html: str = option("", "Required. Where to write the report (local or gs://).", required=True)
    sample: int = option(200, "Images shown (reservoir-sampled).")
    seed: int = option(0, "Seed of the sample.")
    model: str | None = option(None, "A TaggerNet model directory to show curves and metrics of.")
    evaluation: str | None = option(None, "An image-tagger evaluate --output folder to show its metrics.")
    thumb_size: int = option(240, "Longest side of each thumbnail, pixels.")
    allow_private_networks: bool = option(False, "Let thumbnails of web URIs come from private addresses.")
    allow_local_paths: bool = option(False, "Show thumbnails of local files the rows name (read with your "
                                     "permissions).")
    allowed_schemes: str = option("", "Cloud schemes whose objects thumbnails may read (e.g. gs), with this "
                                  "machine's credentials; web images are always shown.")

    def check(self) -> None:
        from transforms.ingest.access import AccessFlags
        from transforms.output import runs

        need(input=self.input, html=self.html)
        need_path("--input", self.input, "folder")
        need_model("--model", self.model)
        need_path("--evaluation", self.evaluation, "folder")
        if self.evaluation:
            try:
                evaluation_metrics(self.evaluation)
            except ValueError as exc:
                raise LaunchError(f"--evaluation: {exc}") from None
        at_least("--sample", self.sample, 1)
        at_least("--thumb_size", self.thumb_size, 16)
        html_dir = os.path.dirname(os.path.abspath(self.html)) if not uris.scheme(self.html) else ""
        if html_dir and not os.path.isdir(html_dir):
            raise LaunchError(f"--html: no such folder: {html_dir}")
        check_report_target(self.html, self.input)
        AccessFlags(allowed_schemes=self.allowed_schemes).check()
        try:
            runs.check_links(self.input)
            manifests = runs.read_manifests(self.input)
        except ValueError as exc:
            raise LaunchError(str(exc)) from None
        if not manifests:
            raise LaunchError(f"--input {self.input} holds no tag run (no {runs.RUNS}/ manifests)")


HTML_STARTS = (b"<!doctype html", b"<html")  # how a page the report may replace begins


def check_report_target(html: str, output: str) -> None:
    """The report replaces an earlier page, never data: not a file in one of the folders the tag
    output's runs own (its tables, its manifests: a typo there would overwrite rows), nor an
    existing file that is not an HTML page. Other folders, the output's own included, are the user's."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.output.runs import OWNED

    def folder(path: str) -> str:
        return (path.rstrip("/").rsplit("/", 1)[0] if uris.scheme(path) else os.path.dirname(os.path.realpath(path)))

    top = output.rstrip("/") if uris.scheme(output) else os.path.realpath(output)
    where = folder(html)
    if any(where == f"{top}/{name}" or where.startswith(f"{top}/{name}/") for name in OWNED):
        raise LaunchError(f"--html {html} lies inside {where}, a folder the tag output's runs own: write the "
                          f"report beside the tables (e.g. {output.rstrip('/')}/report.html), never among them")
    if not uris.scheme(html) and os.path.isdir(html):
        raise LaunchError(f"--html {html} is a folder: name the page (e.g. {os.path.join(html, 'report.html')})")
    if FileSystems.exists(html):
        try:
            with FileSystems.open(html) as f:
                head = f.read(64).lstrip().lower()
        except OSError as exc:
            raise LaunchError(f"--html {html} cannot be read to see what it is: {exc}") from None
        if not head.startswith(HTML_STARTS):
            raise LaunchError(f"--html {html} is a file that is not an HTML page: the report would replace it; "
                              "give a new name")


def report_parser() -> Parser:
    return Parser("image-tagger report", "A self-contained HTML contact sheet of a tag run: thumbnails, tags "
                  "by source, boxes, a tag chart, the dead letters; optionally model curves and metrics.",
                  (ReportFlags,))


@dataclass(frozen=True)
class RunsFlags(Flags):
    GROUP: ClassVar[str] = "runs"

    json: bool = option(False, "Print the manifests as JSON instead of a table.")


def runs_parser() -> Parser:
    p = Parser("image-tagger runs", "Every run of an output: how it was made (input, options, model_version, "
               "code) and what it wrote (rows, dead letters by kind), oldest first.", (RunsFlags,))
    p.add_argument("output", help="The --output folder of tag or extract-features runs (local or gs://).")
    return p


def check_runs(args: argparse.Namespace) -> None:
    try:
        need_path("OUTPUT", args.output, "folder")
        if not uris.scheme(args.output) and not os.path.isdir(args.output):
            raise LaunchError(f"OUTPUT {args.output} is a file; give the --output folder of tag or feature runs")
    except LaunchError as exc:
        raise SystemExit(f"image-tagger runs: {exc}") from None


DEMO_LIST = "input.txt"  # the demo's URI list, written into its output


@dataclass(frozen=True)
class DemoFlags(Flags):
    GROUP: ClassVar[str] = "demo"

    output: str = option("demo_out", "Output folder (replaced on every demo run).")

    def check(self) -> None:
        """The demo replaces its output on every run: only a folder that is new or holds the
        demo's own runs (their input is the list it writes there), never a file or a model."""
        need_folder(self.output, "demo")
        mine = os.path.realpath(os.path.join(self.output, DEMO_LIST))
        other = [m for m in output_runs(self.output) if os.path.realpath(str(m.lineage.get("input", ""))) != mine]
        if other:
            raise LaunchError(f"--output {self.output} holds runs of another input ({other[0].lineage.get('input')}), "
                              "which the demo would replace; choose another folder")


def demo_parser() -> Parser:
    return Parser("image-tagger demo", "Tag the real photos that ship with the dev packages with the embedded "
                  "models, print the tags and write the contact sheet; extra options go to the tag job.",
                  (DemoFlags,))


class FeatureOptions:
    """Dataset options, parsed before Beam sees the command line: ``--labels`` is also a Dataflow
    option (job labels), so this job takes it for the labelled list instead."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        DatasetFlags.add_flags(parser)


def feature_job_flags() -> tuple:
    """What the feature job declares: its dataset, every image job's flags but the input list's, the run's."""
    from pipeline.flags import feature_flags, run_flags

    return (FeatureOptions._add_argparse_args, feature_flags, run_flags)


def features_help() -> None:
    print_beam_help("image-tagger extract-features", "Extract backbone features of a labelled dataset for "
                    "training. --output is required.", feature_job_flags())


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
