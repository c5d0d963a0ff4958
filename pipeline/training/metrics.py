"""Multi-label tagging metrics, as the tagging and zero-shot tagging literature defines them.

``y`` is a binary matrix [images, labels], ``s`` a score matrix of the same shape.
- AP of a label: sum over ranks of (recall step) x precision (scikit-learn's definition);
  mAP averages it over labels with at least one positive.
- CP/CR/CF1: per-label precision and recall, averaged over labels; CF1 = 2 CP CR / (CP + CR).
  OP/OR/OF1: the same over all (image, label) decisions pooled.
- P@k / R@k / F1@k: each image predicts its top-k labels; P = hits / (k x images),
  R = hits / positives, pooled over images (the zero-shot tagging papers' convention).
- top-k accuracy: share of images, among those with at least one true label, that have at
  least one true label among their k best-scored labels.
- averaged_precision: the paper's "averaged precision over all the classes": per-label
  precision of a sigmoid tagger at the 0.5 threshold, averaged over labels.
- precision_interval: where a precision measured on few tags is likely to lie.
"""

from __future__ import annotations

import numpy as np


def _safe_div(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def average_precision(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per-label AP, scikit-learn's average_precision_score (NaN for labels without positives)."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y, dtype=bool)
    return np.array([average_precision_score(y[:, j], s[:, j]) if y[:, j].any() else np.nan for j in range(y.shape[1])])


def mean_average_precision(y: np.ndarray, s: np.ndarray) -> float:
    ap = average_precision(y, s)
    return float(np.nanmean(ap)) if np.any(~np.isnan(ap)) else 0.0


def topk_mask(s: np.ndarray, k: int) -> np.ndarray:
    """Binary matrix marking each row's k highest scores."""
    k = min(k, s.shape[1])
    idx = np.argsort(-s, axis=1, kind="mergesort")[:, :k]
    mask = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=1)
    return mask


def class_and_overall(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """CP, CR, CF1 (averaged over labels) and OP, OR, OF1 (pooled) for binary predictions."""
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    tp = (y & pred).sum(0)
    cp = float(_safe_div(tp, pred.sum(0)).mean())
    cr = float(_safe_div(tp, y.sum(0)).mean())
    op = float(_safe_div(tp.sum(), pred.sum()))
    orec = float(_safe_div(tp.sum(), y.sum()))
    return {
        "CP": cp,
        "CR": cr,
        "CF1": float(_safe_div(2 * cp * cr, cp + cr)),
        "OP": op,
        "OR": orec,
        "OF1": float(_safe_div(2 * op * orec, op + orec)),
    }


def precision_recall_f1_at_k(y: np.ndarray, s: np.ndarray, k: int) -> dict[str, float]:
    y = np.asarray(y, dtype=bool)
    hits = (topk_mask(s, k) & y).sum()
    p = float(_safe_div(hits, k * y.shape[0]))
    r = float(_safe_div(hits, y.sum()))
    return {f"P@{k}": p, f"R@{k}": r, f"F1@{k}": float(_safe_div(2 * p * r, p + r))}


def topk_accuracy(y: np.ndarray, s: np.ndarray, k: int) -> float:
    y = np.asarray(y, dtype=bool)
    labelled = y.any(1)
    if not labelled.any():
        return 0.0
    hit = (topk_mask(s, k) & y).any(1)
    return float(hit[labelled].mean())


def averaged_precision(y: np.ndarray, s: np.ndarray, threshold: float = 0.5) -> float:
    return class_and_overall(y, s >= threshold)["CP"]


def evaluate(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, float]:
    """Every metric the evaluation report carries, keyed by its documented name."""
    y = np.asarray(y, dtype=bool)
    thresholds = np.full(y.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
    out = {"mAP": mean_average_precision(y, s), "averaged_precision": averaged_precision(y, s)}
    out.update(class_and_overall(y, s >= thresholds[None, :]))
    labels = y.shape[1]
    # A k at or above the number of labels predicts every label: such metrics say nothing.
    if labels > 3:
        out.update({f"{k}_top3": v for k, v in class_and_overall(y, topk_mask(s, 3)).items()})
    for k in (3, 5):
        if k < labels:
            out.update(precision_recall_f1_at_k(y, s, k))
    for k in (1, 3, 5):
        if k < labels:
            out[f"top{k}_accuracy"] = topk_accuracy(y, s, k)
    out["images"] = int(y.shape[0])
    out["labels"] = int(y.shape[1])
    return out


def best_thresholds(y: np.ndarray, s: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label decision threshold maximising F1 on (validation) data; 0.5 without positives."""
    y = np.asarray(y, dtype=bool)
    grid = np.linspace(0.05, 0.95, 19) if grid is None else grid
    pred = s[None, :, :] >= grid[:, None, None]  # [thresholds, images, labels]
    tp = (pred & y[None]).sum(1)
    f1 = _safe_div(2 * tp, pred.sum(1) + y.sum(0)[None])
    best = grid[np.argmax(f1, axis=0)]
    return np.where(y.sum(0) > 0, best, 0.5)


INTERVAL = 0.9  # confidence of the precision intervals learn and the quality reports print


def precision_interval(right: int, written: int, confidence: float = INTERVAL) -> tuple[float, float] | None:
    """Where a precision measured on few tags is likely to lie: the Wilson interval (None when
    nothing was written)."""
    if not written:
        return None
    from scipy.stats import binomtest

    ci = binomtest(right, written).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)
