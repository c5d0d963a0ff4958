"""Evaluate a trained TaggerNet on the test split of extracted features.

python -m pipeline.training.evaluate --model MODEL_DIR --features FEATURES --output REPORT_DIR
python -m pipeline.training.evaluate --zero_shot --unseen_tags FILE --features FEATURES --output REPORT_DIR
    [--model MODEL_DIR trained with --holdout_tags FILE]

Prints the metrics and writes REPORT_DIR/metrics.json (names in pipeline/training/metrics.py).

Zero-shot protocol (as NUS-WIDE's 925 seen / 81 unseen tags in Fast0Tag, LESA, BiAM): the
unseen tags are held out of training (without --model, a model is trained here with them held
out, into REPORT_DIR/model). ZS ranks only the unseen tags, on test images that have at least
one; GZS ranks seen and unseen tags together, on every labelled test image. Both report
P/R/F1@3, @5 and mAP (per-tag AP averaged over tags), next to the same numbers for a random
ranking (chance).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from pipeline import commands
from pipeline.training import train
from pipeline.training.metrics import evaluate, mean_average_precision, precision_recall_f1_at_k
from pipeline.training.train import load_features, read_or_refuse, read_tag_list
from transforms.core.artifacts import join, write_bytes
from transforms.knowledge.vectors import load_vectors
from transforms.stages.taggernet import check_backbone, load_taggernet, predict_scores
from transforms.stages.zero_shot import conse_scores, embed_phrases, load_mapping


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (pipeline/commands.py), checked: a wrong path or value is one line."""
    parser = commands.evaluate_parser()
    return parser.check(parser.parse_args(argv))


def format_metrics(metrics: dict) -> str:
    return "\n".join(
        f"{k:<22} {v:.4f}" if isinstance(v, float) else f"{k:<22} {v}" for k, v in metrics.items()
    )


def tagger_metrics(model, config: dict, data, split: str) -> dict:
    mask = data.split == split
    if not mask.any():
        raise SystemExit(f"no images in the {split} split")
    y = data.matrix(config["vocabulary"])[mask]
    s = predict_scores(model, data.features[mask])
    return evaluate(y, s, np.asarray(config["thresholds"]))


def _ranking_metrics(y: np.ndarray, s: np.ndarray, rng: np.random.Generator) -> dict:
    keep = y.any(1)
    y, s = y[keep], s[keep]
    out = {"mAP": mean_average_precision(y, s), "images": int(len(y)), "tags": int(y.shape[1])}
    chance = rng.random(s.shape)
    for k in (3, 5):
        out.update(precision_recall_f1_at_k(y, s, k))
        out.update({f"chance_{m}": v for m, v in precision_recall_f1_at_k(y, chance, k).items()})
    out["chance_mAP"] = mean_average_precision(y, chance)
    return out


def zero_shot_metrics(args: argparse.Namespace, data) -> dict:
    """ZS and GZS metrics on the test split, training a held-out model first when none is given."""
    unseen_all = read_or_refuse("evaluate", "--unseen_tags", args.unseen_tags or "", read_tag_list)
    present = {t for tags in data.labels for t in tags}
    unseen = [t for t in unseen_all if t in present]
    if not unseen:
        raise SystemExit("none of the --unseen_tags occur in the features' labels")
    model_dir = args.model
    if model_dir is None:
        model_dir = join(args.output, "model")
        print(f"no --model: training TaggerNet and its zero-shot mapping with {len(unseen)} unseen tags "
              f"held out, into {model_dir}", file=sys.stderr, flush=True)
        train.main(["--features", args.features, "--output", model_dir, "--holdout_tags", args.unseen_tags,
                    "--word_vectors", args.word_vectors]
                   + (["--word_vectors_sha256", args.word_vectors_sha256] if args.word_vectors_sha256 else []))
    model, config = load_taggernet(model_dir)
    leaked = sorted(set(unseen) & set(config["vocabulary"]))
    if leaked:
        raise SystemExit(f"{model_dir} was trained on tags meant to be unseen: {leaked[:10]}; "
                         "retrain with --holdout_tags")
    seen = config["vocabulary"]
    tags = seen + unseen
    kv = load_vectors(args.word_vectors, args.word_vectors_sha256)
    vectors, unknown = embed_phrases(kv, tags)
    test = data.split == "test"
    feats = data.features[test]
    mapping = None
    if args.zero_shot_method in ("auto", "fast0tag"):
        mapping = load_mapping(model_dir, required=args.zero_shot_method == "fast0tag")
    if mapping is not None:
        method, scores = "fast0tag", mapping.scores(feats, vectors)
    else:
        probs = predict_scores(model, feats)
        method, scores = "conse", conse_scores(probs, vectors[: len(seen)], vectors, args.conse_top_t)
    y = data.matrix(tags)[test].astype(bool)
    rng = np.random.default_rng(0)
    u = slice(len(seen), len(tags))
    return {
        "method": method,
        "seen_tags": len(seen),
        "unseen_tags": unseen,
        "unseen_missing_from_data": sorted(set(unseen_all) - present),
        "tags_unknown_to_word_vectors": unknown,
        "ZS": _ranking_metrics(y[:, u], scores[:, u], rng),
        "GZS": _ranking_metrics(y, scores, rng),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(list(argv if argv is not None else sys.argv[1:]))
    data = read_or_refuse("evaluate", "--features", args.features, load_features)
    if args.zero_shot:
        metrics = zero_shot_metrics(args, data)
        for part in ("ZS", "GZS"):
            print(f"[{part}]")
            print(format_metrics(metrics[part]))
        write_bytes(join(args.output, "metrics.json"), json.dumps(metrics, indent=1).encode())
        return metrics
    model, config = load_taggernet(args.model)
    check_backbone(config, data.backbone, args.model)
    metrics = tagger_metrics(model, config, data, args.split)
    print(format_metrics(metrics))
    write_bytes(join(args.output, "metrics.json"), json.dumps(metrics, indent=1).encode())
    return metrics


if __name__ == "__main__":
    main()
