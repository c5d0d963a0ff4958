"""TaggerNet: the paper's MLP on CNN features and its model directory (its handler:
transforms/handlers/taggernet.py).

A model directory (local or gs://) is published whole with a manifest of checksums
(transforms/output/model_folder.py) and read back only when its files match it. It holds:
  model.pt         state_dict of TaggerNet (input standardisation included)
  config.json      vocabulary, per-tag thresholds, layer sizes, the backbone it expects
  metrics.json     training history and validation metrics (written by pipeline.training.train)
  curves.png       loss and validation top-k accuracy per epoch
and, when trained, the zero-shot mapping (see transforms/stages/zero_shot.py). A model learned
from a reviewer's corrections (pipeline/training/learn.py) says ``"role": "adds"`` in its
config: it adds its words next to the embedded tagger (the ``learned`` stage) instead of
replacing it, carries a Platt ``calibration``, and keeps the merged corrections in
corrections.jsonl (the ``review`` stage applies them).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.core.artifacts import join, read_bytes

CONFIG = "config.json"
WEIGHTS = "model.pt"
CORRECTIONS = "corrections.jsonl"
LEARNED_ROLE = "adds"  # config["role"] of a model that adds its words to the embedded tagger's


HIDDEN, DROPOUT = 512, 0.5  # the paper's MLP: train's defaults (pipeline/commands.py)


def build_taggernet(feature_dim: int, num_labels: int, hidden: int = HIDDEN, dropout: float = DROPOUT):
    """Standardise -> Linear -> ReLU -> Dropout -> Linear; sigmoid outputs via BCE-with-logits."""
    import torch
    from torch import nn

    class TaggerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(feature_dim))
            self.register_buffer("std", torch.ones(feature_dim))
            self.net = nn.Sequential(
                nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_labels)
            )

        def forward(self, x):
            return self.net((x - self.mean) / self.std)

    return TaggerNet()


# --- model directory I/O (local or any Beam filesystem) ---------------------------------------
def read_config(model_dir: str, verified: bool = True) -> dict:
    """The model's config.json, checked against the folder's manifest (``verified=False`` only
    for a writer deciding whether it may write into the folder again)."""
    from transforms.output.model_folder import ModelFolderError, read_file

    try:
        text = read_file(model_dir, CONFIG) if verified else read_bytes(join(model_dir, CONFIG))
        config = json.loads(text)
    except ModelFolderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any filesystem error means the same to the user
        raise FileNotFoundError(f"{model_dir} is not a trained model directory ({CONFIG}: {exc})") from exc
    if not isinstance(config, dict):
        raise ModelFolderError(f"{model_dir}: {CONFIG} is not a JSON object")
    return config


def adds_to_embedded(model_dir: str | None) -> bool:
    """Whether ``--tagger_model`` names a model learned from corrections (it adds, not replaces)."""
    return model_dir is not None and model_dir != "" and read_config(model_dir).get("role") == LEARNED_ROLE


def taggernet_files(model, config: dict) -> dict[str, bytes]:
    """The weights and config of a model folder, to publish with the writer's other files."""
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return {WEIGHTS: buf.getvalue(), CONFIG: json.dumps(config, indent=1).encode()}


def load_taggernet(model_dir: str) -> tuple[Any, dict]:
    import torch

    from transforms.output.model_folder import read_file

    config = read_config(model_dir)
    model = build_taggernet(config["feature_dim"], len(config["vocabulary"]), config["hidden"], config["dropout"])
    state = torch.load(io.BytesIO(read_file(model_dir, WEIGHTS)), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval(), config


def check_backbone(config: dict, backbone_version: str, model_dir: str) -> None:
    if config.get("backbone") != backbone_version:
        raise ValueError(
            f"the tagger in {model_dir} was trained on backbone {config.get('backbone')!r} but this "
            f"job extracts {backbone_version!r}; run with the same --backbone/--backbone_weights "
            "or retrain on features from this backbone"
        )


def predict_scores(model, features: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return torch.sigmoid(model(torch.from_numpy(np.asarray(features, dtype=np.float32)))).numpy()


def _platt(fit: Any, where: str) -> tuple[float, float]:
    """A stored Platt map's (a, b), checked: finite numbers, never anything else."""
    import math

    if not isinstance(fit, dict):
        raise ValueError(f"{where} is not a Platt map")
    a, b = fit.get("a", 1.0), fit.get("b", 0.0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (a, b)):
        raise ValueError(f"{where}: a and b must be finite numbers")
    return float(a), float(b)


def calibration_maps(config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) per word of a learned model: the word's own map where learn fitted one
    (config "word_calibration"), else the pooled "calibration" (identity when absent)."""
    n = len(config["vocabulary"])
    pooled = _platt(config.get("calibration") or {}, "calibration")
    words = config.get("word_calibration") or [None] * n
    if not isinstance(words, list) or len(words) != n:
        raise ValueError("word_calibration must list one map (or null) per vocabulary word")
    maps = [pooled if fit is None else _platt(fit, f"word_calibration[{j}]") for j, fit in enumerate(words)]
    return np.array([m[0] for m in maps]), np.array([m[1] for m in maps])


def calibrated(scores: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each column's Platt map applied to its logit: the word's chance of being right."""
    from transforms.knowledge.calibration import logit, sigmoid

    return sigmoid(maps[0] * logit(np.asarray(scores, dtype=np.float64)) + maps[1])


class LoadedTagger:
    """What a worker holds (Beam's Shared needs an object it can weakly reference)."""

    def __init__(self, net: Any, config: dict):
        self.net = net
        self.config = config
        self.thresholds = np.asarray(config["thresholds"], dtype=np.float32)
        self.maps = calibration_maps(config) if config.get("role") == LEARNED_ROLE else None
        self.support: dict[str, tuple[np.ndarray, float]] = {}  # the everyday stage's (transforms/handlers/everyday.py)


@dataclass(frozen=True)
class MLPTaggerConfig:
    model_dir: str
    backbone: str  # version string of the job's backbone, checked against the model's
    top_k: int = 5
    num_workers: int = 1
    torch_threads: int = 0  # 0: the worker's share of the cores (transforms/core/threads.py)
    min_score: float = 0.0  # --min_score: no tag below it, whatever its validation threshold


