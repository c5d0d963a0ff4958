"""Learn a collection's own words from a reviewer's corrections.

    image-tagger learn --corrections corrections.jsonl [more.jsonl] --output MODEL_DIR [--allow_local_paths]

1. The corrections (transforms/knowledge/corrections.py) add to those MODEL_DIR learned from
   before; the latest decision per picture wins. MODEL_DIR/corrections.jsonl keeps the merge.
2. Features of the corrected pictures are reused by content_sha256 (MODEL_DIR's earlier
   feature runs, --features folders); the rest go through the feature job (same Beam job,
   same backbone as tagging) into MODEL_DIR/features-<n>/.
3. TaggerNet learns the words reviewers added (at least --min_label_count training pictures)
   with partial labels: accepted and added words are positives, rejected words negatives, and
   on a picture marked "all right" every other learned word is a negative; anything else is
   unknown and left out of the loss. Adam at lr 0.001, early stopping on the validation loss.
4. Calibration by cross-fitting: the pictures fall into --folds folds by content hash (by group,
   for pictures whose corrections name one: a subject's near copies share a fold); a model
   trained on the other folds (early stopping on a validation share of them) scores each fold,
   and a Platt map fitted on those held-out scores makes a learned word's score its chance of
   being right (a word with --word_calibration_min held-out pictures with and without it gets
   a map of its own), so ``--min_score`` means the same as for every other source. The model written
   is trained on every picture for the folds' median best epoch count, so no correction is
   spent on holding out. Precision first: the learned words are written only from the lowest
   calibrated score at which the held-out tags reach --target_precision (config "thresholds"):
   every word's tags pooled, or the word's own with --word_floor_min held-out pictures of it.

``tag --tagger_model MODEL_DIR`` then adds the learned words (source ``learned``) next to the
embedded tagger, and applies the corrections themselves (source ``review``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from pipeline import commands
from pipeline.training import held_out
from pipeline.training.datasets import hash_fraction
from pipeline.training.train import Dataset, load_features, read_or_refuse, train_taggernet
from transforms.core import uris
from transforms.core.artifacts import exists, join, read_bytes, write_bytes
from transforms.knowledge import corrections as corr
from transforms.knowledge.corrections import Correction
from transforms.output import model_folder
from transforms.stages.taggernet import (
    CORRECTIONS,
    LEARNED_ROLE,
    calibration_maps,
    predict_scores,
    taggernet_files,
)
from transforms.stages.taggernet import calibrated as calibrate_columns


def fold_of(key: str, folds: int) -> int:
    """The fold of a picture's fold key (its content, or its group), fixed by the key alone (so a
    later run keeps it)."""
    return min(int(hash_fraction(key) * folds), folds - 1)


def within_fold_split(keys: list[str], val_fraction: float) -> np.ndarray:
    """train or val for early stopping inside a fold, by another hash of the picture."""
    return np.array(["val" if hash_fraction(f"val:{k}") < val_fraction else "train" for k in keys])


RUNS = "feature_runs.json"  # the feature runs this model directory made, oldest first
FEATURE_RUN = re.compile(r"(?:^|/)(features/\d{3})$")  # MODEL_DIR/features/NNN, stored relative


def feature_runs(model_dir: str) -> list[str]:
    """The feature runs learn made in ``model_dir``: data, each entry a ``features/NNN`` name
    inside it (an older absolute entry is read by that name), never a path elsewhere."""
    path = join(model_dir, RUNS)
    if not exists(path):
        return []
    try:
        names = json.loads(read_bytes(path))
    except ValueError:
        names = None
    found = [FEATURE_RUN.search(n) if isinstance(n, str) else None for n in names] if isinstance(names, list) else [None]
    if not all(found):
        raise SystemExit(f"image-tagger learn: {path} is not one learn wrote (entries must be features/NNN); "
                         "remove it and its features are extracted again")
    return [join(model_dir, m.group(1)) for m in found if m]


def check_access(items: list[Correction], passthrough: list[str]) -> None:
    """Corrections are data: their URIs are read under the same policy as a tag job's URI list
    (web images; local files with --allow_local_paths; cloud objects with --allowed_schemes).
    Refused in one line before any feature is extracted."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import all_options
    from transforms.core.records import StageError
    from transforms.ingest.access import AccessFlags

    policy = AccessFlags.from_options(all_options(PipelineOptions(passthrough))).policy(False, "")
    refused: list[tuple[str, str]] = []  # (uri, reason)
    for c in items:
        try:
            policy.check(c.uri)
        except StageError as exc:
            refused.append((c.uri, str(exc)))
    if refused:
        uri, reason = refused[0]
        count = sum(r == reason for _, r in refused)
        raise SystemExit(f"image-tagger learn: {count} corrected pictures cannot be read ({uri}"
                         f"{' and more' if count > 1 else ''}): {reason}")


def known_features(own: list[str], given: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], str | None]:
    """Feature vectors by content_sha256 and by image_id, and their backbone: from the model's
    own feature runs (one a kill left without files is passed over) and the --features the user
    gave (each must be an extract-features output: a wrong one is refused, never ignored)."""
    vectors: dict[str, np.ndarray] = {}
    backbone = None
    for d in [*own, *given]:
        if d in given:
            data = read_or_refuse("learn", "--features", d, load_features)
        else:
            try:
                data = load_features(d)
            except FileNotFoundError:
                continue
            except ValueError as exc:
                raise SystemExit(f"image-tagger learn: {d}, a feature run of this model: {exc}") from None
        if backbone and data.backbone != backbone:
            raise SystemExit(f"image-tagger learn: {d} holds {data.backbone} features, others {backbone}")
        backbone = data.backbone
        for i, image_id in enumerate(data.image_ids):
            vectors[image_id] = data.features[i]
            content = data.content[i] if i < len(data.content) else None
            if content:
                vectors[content] = data.features[i]
    return vectors, backbone


def extract(missing: list[Correction], model_dir: str, passthrough: list[str], quiet: bool) -> str:
    """Run the feature job over the pictures no feature run has seen; returns its folder."""
    from pipeline.training import extract_features

    runs = feature_runs(model_dir)
    name = f"{len(runs) + 1:03d}"
    folder = join(model_dir, "features")
    target, listing = join(folder, name), join(folder, f"{name}.jsonl")
    lines = [json.dumps({"uri": c.uri, "labels": [], "split": "train"}) for c in missing]
    write_bytes(listing, ("\n".join(lines) + "\n").encode())
    extra = ["--quiet"] if quiet and "--quiet" not in passthrough else []
    # features/NNN is learn's own: a run killed before feature_runs.json listed it is replaced.
    extract_features.run(["--dataset", "list", "--labels", listing, "--output", target, "--overwrite",
                          "--val_fraction", "0", "--test_fraction", "0", *extra, *passthrough],
                         then="learn goes on with these features")
    names = [FEATURE_RUN.search(r).group(1) for r in [*runs, target]]  # type: ignore[union-attr]
    write_bytes(join(model_dir, RUNS), json.dumps(names).encode())
    return target


def partial_labels(items: list[Correction], vocabulary: list[str],
                   review_negatives: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(positives, known) [pictures, words]: see the module docstring, step 3."""
    index = {w: j for j, w in enumerate(vocabulary)}
    y = np.zeros((len(items), len(vocabulary)), dtype=np.float32)
    known = np.zeros_like(y)
    used: dict[str, set[str]] = {}  # review -> the words it gave any picture
    for c in items:
        used.setdefault(c.review, set()).update(c.positives)
    for i, c in enumerate(items):
        if c.reviewed:
            known[i] = 1.0
        for w in used[c.review] if review_negatives else ():
            if w in index:  # corrected in a review that used w, without w: a negative
                known[i, index[w]] = 1.0
        for w in c.positives:
            if w in index:
                y[i, index[w]] = known[i, index[w]] = 1.0
        for w in c.negatives:
            if w in index:
                known[i, index[w]] = 1.0
    return y, known


def added_words(items: list[Correction]) -> list[str]:
    """Every word a reviewer typed in: the candidates to learn."""
    return sorted({w for c in items for w in c.added})


def corrected_features(items: list[Correction], args: argparse.Namespace,
                       passthrough: list[str]) -> tuple[list[Correction], np.ndarray, str]:
    """(the pictures whose features exist, their features, the backbone): reused by content,
    the rest extracted by the feature job into MODEL_DIR."""
    vectors, backbone = known_features(feature_runs(args.output), tuple(args.features))
    missing = [c for c in items if c.key not in vectors and c.image_id not in vectors]
    check_access(missing, passthrough)
    if missing:
        if not args.quiet:
            print(f"extracting features of {len(missing)} corrected pictures ({len(items) - len(missing)} reused)",
                  flush=True)
        extract(missing, args.output, passthrough, args.quiet)
        vectors, backbone = known_features(feature_runs(args.output), tuple(args.features))
    usable = [c for c in items if c.key in vectors or c.image_id in vectors]
    if len(usable) < len(items):
        print(f"image-tagger learn: warning: {len(items) - len(usable)} corrected pictures could not be read "
              "(see the feature run's dead letters) and are left out", file=sys.stderr)
    features = np.stack([vectors[c.key] if c.key in vectors else vectors[c.image_id] for c in usable])
    return usable, features, backbone or ""


SMALL_EPOCHS = 60  # a fold too small to hold a validation share out trains this long


@dataclass
class CrossFit:
    """Each picture's score from a model that never saw it, and each fold model's best epoch."""

    held: np.ndarray
    scored: np.ndarray  # pictures whose fold was held out (a fold too small to split is not)
    best_epochs: list[int]


def trainer(usable: list[Correction], features: np.ndarray, known: np.ndarray, vocabulary: list[str],
            backbone: str, args: argparse.Namespace):
    """fit(rows, epochs=None): TaggerNet on those pictures, with early stopping on their
    validation share, or for a set number of epochs on all of them."""
    keys = [c.key for c in usable]
    inner = within_fold_split(keys, args.val_fraction)

    def fit(rows: np.ndarray, epochs: int | None = None) -> tuple:
        data = Dataset(features=features[rows], labels=[sorted(usable[i].positives) for i in rows],
                       split=np.array(["train"] * len(rows)) if epochs else inner[rows],
                       backbone=backbone, image_ids=[keys[i] for i in rows], content=[keys[i] for i in rows])
        train_args = argparse.Namespace(seed=args.seed, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
                                        weight_decay=0.0, epochs=epochs or args.epochs, batch_size=args.batch_size,
                                        patience=args.patience, quiet=True, top_k=1,
                                        early_stopping_metric="none" if epochs else "loss")
        return train_taggernet(train_args, data, vocabulary, known[rows])

    return fit, inner


def cross_fit(usable: list[Correction], features: np.ndarray, fit, inner: np.ndarray, shape: tuple,
              args: argparse.Namespace) -> CrossFit:
    folds = np.array([fold_of(c.fold_key, args.folds) for c in usable])
    result = CrossFit(np.zeros(shape, dtype=np.float32), np.zeros(len(usable), dtype=bool), [])
    for f in range(args.folds):
        rest = np.flatnonzero(folds != f)
        if not (folds == f).any() or not len(rest):
            continue  # an empty fold, or nothing to train on without it
        if (inner[rest] == "val").any() and (inner[rest] == "train").any():
            model, _, _, best = fit(rest)
            result.best_epochs.append(best)
        else:  # too few pictures to stop early on: a set number of epochs
            model, *_ = fit(rest, SMALL_EPOCHS)
        result.held[folds == f] = predict_scores(model, features[folds == f])
        result.scored |= folds == f
    return result


def main(argv: list[str] | None = None) -> dict:
    argv = list(argv if argv is not None else sys.argv[1:])
    parser = commands.learn_parser()
    if "-h" in argv or "--help" in argv:
        parser.print_help()
        raise SystemExit(0)
    args, passthrough = parser.parse_known_args(argv)
    parser.check(args)
    from pipeline.training import extract_features
    from transforms.core.launch import LaunchError

    try:
        extract_features.check_passed_on(passthrough, "learn")  # before anything is written
    except LaunchError as exc:
        raise SystemExit(f"image-tagger learn: {exc}") from None
    if not uris.scheme(args.output):  # stored paths and later runs must not depend on the working folder
        args.output = os.path.abspath(args.output)
    earlier = [join(args.output, CORRECTIONS)] if exists(join(args.output, CORRECTIONS)) else []
    try:
        merged = corr.read([*earlier, *args.corrections])
    except ValueError as exc:
        raise SystemExit(f"image-tagger learn: {exc}") from None
    items = [c for c in merged.values() if c.positives or c.negatives or c.reviewed]
    if not items:
        raise SystemExit("image-tagger learn: the corrections hold no decision")
    usable, features, backbone = corrected_features(items, args, passthrough)
    candidates = added_words(usable)
    y, known = partial_labels(usable, candidates, not args.no_review_negatives)
    ready, missing = held_out.readiness(candidates, y, known, args.min_label_count)
    for line in missing:
        print(f"  not learned: {line}")
    if not ready:
        raise SystemExit("image-tagger learn: no word can be learned yet (see above: add the word to more pictures, "
                         "and tick or correct pictures that lack it)" if candidates else
                         "image-tagger learn: the corrections add no word to learn (type a missing word on a picture)")
    vocabulary = [candidates[j] for j in ready]
    y, known = y[:, ready], known[:, ready]
    fit, inner = trainer(usable, features, known, vocabulary, backbone, args)
    folds = cross_fit(usable, features, fit, inner, y.shape, args)
    held, scored = folds.held, folds.scored
    platt = held_out.calibrate(held[scored], y[scored], known[scored])
    word_maps = held_out.calibrate_words(held[scored], y[scored], known[scored], args.word_calibration_min)
    calibrated = calibrate_columns(held, calibration_maps({"vocabulary": vocabulary, "calibration": platt,
                                                          "word_calibration": word_maps}))
    figures = held_out.word_figures(vocabulary, calibrated, y, known, scored, args.target_precision,
                                    own_floor_min=args.word_floor_min)
    lines = [f.line(args.target_precision) for f in figures]
    for line in lines:
        print(f"  {line}")
    if all(f.floor is None for f in figures):
        raise SystemExit(f"image-tagger learn: no word reaches held-out precision {args.target_precision:.2f} yet, so "
                         f"no model is written; correct more pictures of each word, and tick pictures that lack it")
    epochs = int(np.median(folds.best_epochs)) if folds.best_epochs else SMALL_EPOCHS
    model, history, _, _ = fit(np.arange(len(usable)), epochs)
    sources = [*earlier, *args.corrections]
    config = {
        "role": LEARNED_ROLE, "vocabulary": vocabulary,
        "thresholds": [held_out.NEVER if f.floor is None else f.floor for f in figures],
        "feature_dim": int(features.shape[1]), "hidden": args.hidden, "dropout": args.dropout,
        "backbone": backbone, "calibration": platt, "word_calibration": word_maps, "trained_at": dt.datetime.now(dt.UTC).isoformat(),
        "corrections": {"files": [{"path": p, "sha256": hashlib.sha256(read_bytes(p)).hexdigest()} for p in sources],
                        "pictures": len(usable), "reviewers": sorted({c.reviewer for c in usable if c.reviewer}),
                        "positives": {w: int(y[:, j].sum()) for j, w in enumerate(vocabulary)}},
    }
    files = taggernet_files(model, config)
    files[CORRECTIONS] = "".join(c.to_json() + "\n" for c in merged.values()).encode()
    metrics = {"best_epochs": folds.best_epochs, "epochs_run": len(history), "history": history,
               "images": {"corrected": len(usable), "folds": args.folds},
               "held_out": held_out.overall(figures), "words": [f.to_dict() for f in figures],
               "not_learned": missing}
    files["metrics.json"] = json.dumps(metrics, indent=1).encode()
    files["model_card.md"] = model_card(config, metrics, lines, args.target_precision).encode()
    model_folder.publish(args.output, files, "learn")
    written = [f.word for f in figures if f.floor is not None]
    print(f"learned {len(written)} of {len(candidates)} words from {len(usable)} corrected pictures "
          f"({', '.join(written[:10])}); model written to {args.output}")
    print(f"next: image-tagger tag --input INPUT --output OUTPUT --tagger_model {args.output}")
    return metrics


def model_card(config: dict, metrics: dict, lines_by_word: list[str], target: float) -> str:
    c = config["corrections"]
    lines = ["# TaggerNet learned from corrections", "",
             f"Learned words ({len(config['vocabulary'])}), with their corrected pictures:", ""]
    lines += [f"- {w}: {n}" for w, n in sorted(c["positives"].items())]
    lines += ["", f"Trained {config['trained_at']} on {c['pictures']} corrected pictures by "
              f"{', '.join(c['reviewers']) or 'unnamed reviewers'}; backbone {config['backbone']}.", "",
              "Corrections used:", ""]
    lines += [f"- {f['path']} (sha256 {f['sha256'][:12]})" for f in c["files"]]
    lines += [f"- {c['labels']['section']} (sha256 {c['labels']['sha256'][:12]})"] if "labels" in c else []
    lines += ["", f"Cross-fitted on {metrics['images']['folds']} folds (best epochs {metrics['best_epochs']}); the "
              f"model is trained on all {metrics['images']['corrected']} pictures for {metrics['epochs_run']} epochs.",
              f"Each word, held out (each fold scored by a model that never saw it; written from the lowest "
              f"calibrated score whose held-out tags reach precision {target:.2f}):", ""]
    lines += [f"- {line}" for line in lines_by_word]
    lines += [f"- not learned: {line}" for line in metrics["not_learned"]]
    lines += ["", "Partial labels: accepted and added words are positives, rejected words negatives; on a picture "
              "marked all right every other learned word is a negative, and a picture the same review corrected "
              "without a word it gave other pictures is a negative for that word (unless --no_review_negatives); "
              "the rest is left out of the loss."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
