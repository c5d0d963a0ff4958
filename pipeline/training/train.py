"""Train TaggerNet (the paper's MLP) on extracted features.

python -m pipeline.training.train --features FEATURES --output MODEL_DIR [--epochs 15 --lr 0.001 ...]

Defaults follow the paper: sigmoid outputs with cross-entropy, Adam at lr 0.001, up to 15
epochs, early stopping when validation top-k accuracy stops improving (the best epoch's
weights are kept). Deterministic for a given --seed. Per-tag decision thresholds are chosen
on validation (best F1). Also learns the zero-shot mapping (transforms/stages/zero_shot.py) unless
--no_zero_shot_mapping. Writes the model directory described in transforms/stages/taggernet.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import commands
from pipeline.training.fast0tag import train_fast0tag
from pipeline.training.metrics import best_thresholds, evaluate, mean_average_precision, topk_accuracy
from pipeline.training.model_card import model_card
from transforms.core.artifacts import read_bytes
from transforms.core.launch import utf8_text
from transforms.core.records import FEATURES_SCHEMA
from transforms.knowledge.vectors import load_vectors
from transforms.output import model_folder
from transforms.stages.taggernet import build_taggernet, predict_scores, taggernet_files
from transforms.stages.zero_shot import MAPPING, Fast0TagMapping, embed_phrases


@dataclass
class Dataset:
    features: np.ndarray
    labels: list[list[str]]
    split: np.ndarray
    backbone: str
    image_ids: list[str]
    content: list[str | None]  # content_sha256 per image (empty for features of older runs)

    def matrix(self, vocabulary: list[str]) -> np.ndarray:
        index = {t: j for j, t in enumerate(vocabulary)}
        y = np.zeros((len(self.labels), len(vocabulary)), dtype=np.float32)
        for i, tags in enumerate(self.labels):
            for t in tags:
                if t in index:
                    y[i, index[t]] = 1.0
        return y


T = TypeVar("T")

# What train needs of extract-features' rows: every column but the uri, and content_sha256 (older outputs lack it).
FEATURE_COLUMNS = tuple(n for n in FEATURES_SCHEMA.names if n not in ("uri", "content_sha256"))


def _feature_table(path: str) -> pa.Table:
    """One feature file, checked to be Parquet with the columns train reads (ValueError otherwise)."""
    try:
        table = pq.read_table(io.BytesIO(read_bytes(path)))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path} is not a Parquet file ({exc})") from None
    missing = [c for c in FEATURE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not an extract-features output (no column {', '.join(missing)})")
    return table


def load_features(path: str) -> Dataset:
    """Read FEATURES (an extract-features output folder, or a glob of Parquet files) from any
    filesystem."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.output import runs

    if any(c in path for c in "*?") or path.endswith(".parquet"):
        files = sorted(m.path for m in FileSystems.match([path])[0].metadata_list)
    else:
        files = sorted(runs.committed_files(path, "features"))
    if not files:
        raise FileNotFoundError(f"no feature files in {path} (an extract-features --output, or a glob)")
    tables = [_feature_table(f) for f in files]
    table = pa.concat_tables(tables).sort_by("image_id")  # file order must not change results
    backbones = set(table.column("backbone").to_pylist())
    if len(backbones) != 1:
        raise ValueError(f"features come from several backbones: {sorted(backbones)}")
    feats = np.asarray(table.column("features").to_pylist(), dtype=np.float32)
    return Dataset(
        features=feats,
        labels=table.column("labels").to_pylist(),
        split=np.asarray(table.column("split").to_pylist()),
        backbone=backbones.pop(),
        image_ids=table.column("image_id").to_pylist(),
        content=table.column("content_sha256").to_pylist() if "content_sha256" in table.column_names else [],
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (pipeline/commands.py), checked: a wrong path or value is one line."""
    parser = commands.train_parser()
    return parser.check(parser.parse_args(argv))


def read_tag_list(path: str | None) -> list[str]:
    if not path:
        return []
    return [t.strip().lower() for t in utf8_text(read_bytes(path), path, "a list of tags").splitlines() if t.strip()]


def read_or_refuse(command: str, option: str, path: str, read: Callable[[str], T]) -> T:
    """``read(path)``, or the command refused in one line naming the option and what is wrong
    with the file (missing, unreadable, binary, not what the option takes), before it writes."""
    try:
        return read(path)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"image-tagger {command}: {option} {path}: {exc}") from None


def _seed_everything(seed: int):
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    return np.random.default_rng(seed)


def train_taggernet(args: argparse.Namespace, data: Dataset, vocabulary: list[str],
                    known: np.ndarray | None = None) -> tuple:
    """Train with early stopping; returns (best model, history, validation scores, epoch).

    ``known`` [images, words] marks which labels are known (partial labels, as a reviewer's
    corrections give): unknown ones are left out of the loss instead of counted as negatives.
    Early stopping on "loss" follows the validation loss over the known labels."""
    import torch
    from tqdm import tqdm

    rng = _seed_everything(args.seed)
    y_all = data.matrix(vocabulary)
    m_all = np.ones_like(y_all) if known is None else known.astype(np.float32)
    train, val = data.split == "train", data.split == "val"
    fixed = args.early_stopping_metric == "none"  # a set number of epochs, no validation
    if not val.any() and not fixed:
        raise ValueError("no validation images: extract features with --val_fraction > 0")
    x_tr, y_tr = torch.from_numpy(data.features[train]), torch.from_numpy(y_all[train])
    m_tr, m_va = torch.from_numpy(m_all[train]), torch.from_numpy(m_all[val])
    x_va, y_va = data.features[val], y_all[val]

    model = build_taggernet(data.features.shape[1], len(vocabulary), args.hidden, args.dropout)
    model.mean.copy_(x_tr.mean(0))
    # Floor the scale: near-constant features must not blow up on unseen images.
    spread = x_tr.std(0, correction=1 if len(x_tr) > 1 else 0)  # one picture has no sample spread
    model.std.copy_(spread.clamp_min(max(0.1 * float(spread.mean()), 1e-6)))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")

    def loss_fn(logits, y, mask):
        return (bce(logits, y) * mask).sum() / mask.sum().clamp_min(1.0)

    # Any first epoch beats "none yet" (a validation loss over 1.0 once never did, leaving no state).
    history, best, best_state, best_epoch, stale = [], (-np.inf, -np.inf), None, 0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(x_tr)))
        total = 0.0
        batches = range(0, len(order), args.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", disable=args.quiet, leave=False):
            idx = order[start : start + args.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x_tr[idx]), y_tr[idx], m_tr[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        if fixed:
            history.append({"epoch": epoch, "train_loss": total / len(x_tr)})
            best_epoch, best_state = epoch, {k: v.clone() for k, v in model.state_dict().items()}
            continue
        with torch.inference_mode():
            val_logits = model(torch.from_numpy(x_va))
            val_loss = float(loss_fn(val_logits, torch.from_numpy(y_va), m_va))
        s_va = torch.sigmoid(val_logits).numpy()
        record = {
            "epoch": epoch,
            "train_loss": total / len(x_tr),
            "val_loss": val_loss,
            "val_topk_accuracy": topk_accuracy(y_va, s_va, args.top_k),
            "val_mAP": mean_average_precision(y_va, s_va),
        }
        history.append(record)
        if not args.quiet:
            print(f"epoch {epoch:>2}  loss {record['train_loss']:.4f}  val_loss {val_loss:.4f}  "
                  f"val_top{args.top_k}_acc {record['val_topk_accuracy']:.4f}  val_mAP {record['val_mAP']:.4f}")
        # Primary metric first; validation mAP breaks ties once top-k accuracy saturates.
        primary = {"topk_accuracy": record["val_topk_accuracy"], "mAP": record["val_mAP"],
                   "loss": -val_loss}[args.early_stopping_metric]
        primary_, map_ = (-np.inf if np.isnan(v) else round(v, 6) for v in (primary, record["val_mAP"]))
        score = (primary_, map_)
        if score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= args.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model, history, predict_scores(model, x_va) if len(x_va) else np.zeros((0, len(vocabulary))), best_epoch


def plot_curves(history: list[dict], top_k: int) -> bytes:
    """The paper's Figure 6: loss and validation top-k accuracy per epoch, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    a.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    a.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    a.legend()
    b.plot(epochs, [h["val_topk_accuracy"] for h in history], marker="o", color="tab:green")
    b.set(xlabel="epoch", ylabel=f"top-{top_k} accuracy", title=f"Validation top-{top_k} accuracy")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def warn_shared_content(data: Dataset) -> int:
    """Warn when the same picture (by content_sha256) is in the training or validation split and
    in the test split: test figures would be inflated. Returns how many pictures are shared."""
    held: set[str] = set()
    test: set[str] = set()
    for sha, split in zip(data.content, data.split, strict=False):
        if sha:
            (test if split == "test" else held).add(sha)
    shared = len(held & test)
    if shared:
        print(f"image-tagger train: warning: {shared} picture(s) are in the test split and in training or "
              "validation (same content_sha256, e.g. augmented or re-uploaded copies); test figures will "
              "be optimistic", file=sys.stderr)
    return shared


def vocabulary_of(data: Dataset, min_count: int, holdout: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for tags, split in zip(data.labels, data.split, strict=True):
        if split == "train":
            for t in tags:
                counts[t] = counts.get(t, 0) + 1
    return sorted(t for t, c in counts.items() if c >= min_count and t not in set(holdout))


def learn_mapping(args: argparse.Namespace, data: Dataset, vocabulary: list[str]) -> Fast0TagMapping:
    """Fast0Tag-style linear map from features to word space, on the seen tags of the train split."""
    kv = load_vectors(args.word_vectors, args.word_vectors_sha256)
    label_vectors, unknown = embed_phrases(kv, vocabulary)
    if unknown:
        print(f"zero-shot mapping: {len(unknown)} tags unknown to the word vectors: {', '.join(unknown[:20])}")
    train = data.split == "train"
    meta = {"word_vectors": args.word_vectors, "dim": kv.vector_size, "seen_tags": vocabulary}
    if not args.quiet:
        print(f"training the zero-shot mapping on {int(train.sum())} images, {args.mapping_epochs} epochs",
              flush=True)
    return train_fast0tag(data.features[train], data.matrix(vocabulary)[train], label_vectors, meta,
                          epochs=args.mapping_epochs, seed=args.seed, progress=not args.quiet)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(list(argv if argv is not None else sys.argv[1:]))
    data = read_or_refuse("train", "--features", args.features, load_features)
    holdout = read_or_refuse("train", "--holdout_tags", args.holdout_tags or "", read_tag_list)
    vocabulary = vocabulary_of(data, args.min_label_count, holdout)
    if not vocabulary:
        raise SystemExit("image-tagger train: no labels in the training split")
    if args.top_k >= len(vocabulary):
        fallback = "" if args.early_stopping_metric == "mAP" else "; early stopping follows validation mAP instead"
        print(f"image-tagger train: warning: --top_k {args.top_k} >= {len(vocabulary)} labels, so top-k "
              f"accuracy is always 1.0{fallback}", file=sys.stderr)
        args.early_stopping_metric = "mAP"
    warn_shared_content(data)
    model, history, s_va, best_epoch = train_taggernet(args, data, vocabulary)
    y_va = data.matrix(vocabulary)[data.split == "val"]
    thresholds = best_thresholds(y_va, s_va)
    config = {
        "vocabulary": vocabulary,
        "thresholds": [float(t) for t in thresholds],
        "feature_dim": int(data.features.shape[1]),
        "hidden": args.hidden,
        "dropout": args.dropout,
        "backbone": data.backbone,
        "holdout_tags": holdout,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    files = taggernet_files(model, config)
    if not args.no_zero_shot_mapping:
        files[MAPPING] = learn_mapping(args, data, vocabulary).to_bytes()
    metrics = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "history": history,
        "validation": evaluate(y_va, s_va, thresholds),
        "params": {k: v for k, v in vars(args).items() if k not in ("features", "output")},
        "images": {s: int((data.split == s).sum()) for s in ("train", "val", "test")},
    }
    files["metrics.json"] = json.dumps(metrics, indent=1).encode()
    files["curves.png"] = plot_curves(history, args.top_k)
    files["model_card.md"] = model_card(config, metrics, args.features, args.output).encode()
    model_folder.publish(args.output, files, "train")
    print(f"best epoch {best_epoch}/{len(history)}; validation mAP {metrics['validation']['mAP']:.4f}; "
          f"model written to {args.output}")
    return metrics


if __name__ == "__main__":
    main()
