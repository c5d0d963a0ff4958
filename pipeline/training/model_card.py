"""model_card.md beside a trained TaggerNet: what it was trained on, how well it did, what it is
for and where it fails; written by ``pipeline.training.train`` from what it just measured."""

from __future__ import annotations


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(config: dict, metrics: dict, features: str, model_dir: str) -> str:
    """The card; its commands name this model's real folders, so they run as written."""
    vocab = config["vocabulary"]
    validation = metrics["validation"]
    keys = [k for k in ("mAP", "averaged_precision", "CF1", "OF1", "P@3", "R@3", "top3_accuracy") if k in validation]
    shown = ", ".join(vocab[:40]) + (f", ... ({len(vocab)} in all)" if len(vocab) > 40 else "")
    lines = [
        "# Model card: TaggerNet",
        "",
        "An MLP over frozen backbone features that scores every label of its vocabulary (sigmoid",
        "outputs, binary cross-entropy, Adam), as in *Image Tagging*; trained by `image-tagger train`.",
        "",
        "## Data",
        f"- Features: `{features}` (backbone `{config['backbone']}`, {config['feature_dim']}-d).",
        f"- Images: train {metrics['images']['train']}, validation {metrics['images']['val']}, "
        f"test {metrics['images']['test']} (the test split is never used for training or model choice).",
        f"- Labels ({len(vocab)}): {shown}.",
        f"- Held out for zero-shot evaluation: {', '.join(config.get('holdout_tags') or []) or 'none'}.",
        "",
        "## Training",
        f"- Hidden {config['hidden']}, dropout {config['dropout']}; best epoch {metrics['best_epoch']} of "
        f"{metrics['epochs_run']} (early stopping on validation "
        f"{'mAP' if metrics['params'].get('early_stopping_metric') == 'mAP' else 'top-k accuracy, ties by mAP'}).",
        "- Per-label decision thresholds maximise F1 on validation (config.json `thresholds`).",
        f"- Parameters: {', '.join(f'{k}={v}' for k, v in sorted(metrics['params'].items()))}.",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(validation[k])} |" for k in keys],
        "",
        f"Test-split figures: `image-tagger evaluate --model {model_dir} --features {features} "
        f"--output {model_dir.rstrip('/')}/test_report`.",
        "",
        "## Intended use",
        "Bulk tagging of photos like the training images with the labels above, through",
        f"`image-tagger tag --input IMAGES --output OUTPUT --tagger_model {model_dir}`. Scores are per-label "
        "sigmoid outputs; the",
        "per-label thresholds turn them into decisions.",
        "",
        "## Limitations",
        "- It knows only its labels, and only as the training annotations used them; photos unlike",
        "  the training set (other domains, drawings, medical or satellite images) get unreliable scores.",
        f"- It runs only on features of the backbone it was trained with (`{config['backbone']}`); the",
        "  tag job refuses any other.",
        "- Labels inherit the biases of their annotators and of the photo collection.",
        "- Metrics above are on the validation split that chose the epoch and the thresholds, so",
        "  they are optimistic; report test-split figures.",
        "",
    ]
    return "\n".join(lines)
