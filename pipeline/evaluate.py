"""Evaluate a trained TaggerNet on the test split of extracted features.

python -m pipeline.evaluate --model MODEL_DIR --features FEATURES --output REPORT_DIR

Prints the metrics and writes REPORT_DIR/metrics.json (names in pipeline/metrics.py).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from pipeline.metrics import evaluate
from pipeline.train import load_features
from transforms.mlp_tagger import check_backbone, join, load_taggernet, predict_scores, write_bytes


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Model directory written by pipeline.train.")
    p.add_argument("--features", required=True, help="Output directory of pipeline.extract_features.")
    p.add_argument("--output", required=True, help="Report directory (local or gs://).")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    return p.parse_args(argv)


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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(list(argv if argv is not None else sys.argv[1:]))
    model, config = load_taggernet(args.model)
    data = load_features(args.features)
    check_backbone(config, data.backbone, args.model)
    metrics = tagger_metrics(model, config, data, args.split)
    print(format_metrics(metrics))
    write_bytes(join(args.output, "metrics.json"), json.dumps(metrics, indent=1).encode())
    return metrics


if __name__ == "__main__":
    main()
