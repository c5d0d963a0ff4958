"""Metrics against hand-computed cases and scikit-learn where they overlap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_score, recall_score

from pipeline.training.metrics import (
    average_precision,
    best_thresholds,
    class_and_overall,
    evaluate,
    mean_average_precision,
    precision_interval,
    precision_recall_f1_at_k,
    topk_accuracy,
)

Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], bool)
S = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.6, 0.7, 0.9], [0.3, 0.1, 0.2]])


def test_ap_hand_computed():
    # Label 0: ranking 0.9(+) 0.6(+) 0.3 0.1 -> AP 1. Label 2: 0.9(-) 0.4(+) ... -> P at hit = 1/2.
    ap = average_precision(Y, S)
    assert ap[0] == pytest.approx(1.0)
    assert ap[2] == pytest.approx(0.5)


def test_ap_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    y = rng.random((200, 7)) < 0.3
    s = np.round(rng.random((200, 7)), 1)  # many ties
    ours = average_precision(y, s)
    for j in range(7):
        assert ours[j] == pytest.approx(average_precision_score(y[:, j], s[:, j]))
    assert mean_average_precision(y, s) == pytest.approx(average_precision_score(y, s, average="macro"))


def test_labels_without_positives_are_skipped():
    y = np.array([[1, 0], [0, 0]], bool)
    assert np.isnan(average_precision(y, np.array([[0.9, 0.1], [0.2, 0.3]]))[1])
    assert mean_average_precision(y, np.array([[0.9, 0.1], [0.2, 0.3]])) == 1.0


def test_class_and_overall_match_sklearn():
    pred = S >= 0.5
    got = class_and_overall(Y, pred)
    assert got["CP"] == pytest.approx(precision_score(Y, pred, average="macro", zero_division=0))
    assert got["CR"] == pytest.approx(recall_score(Y, pred, average="macro", zero_division=0))
    assert got["OP"] == pytest.approx(precision_score(Y, pred, average="micro", zero_division=0))
    assert got["OR"] == pytest.approx(recall_score(Y, pred, average="micro", zero_division=0))


def test_at_k_hand_computed():
    # top-1 per image: [0], [1], [2], [0] -> hits: 1, 1, 0, 0 = 2; positives 5.
    got = precision_recall_f1_at_k(Y, S, 1)
    assert got["P@1"] == pytest.approx(2 / 4) and got["R@1"] == pytest.approx(2 / 5)
    assert got["F1@1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)


def test_topk_accuracy_ignores_unlabelled_images():
    assert topk_accuracy(Y, S, 1) == pytest.approx(2 / 3)
    assert topk_accuracy(Y, S, 2) == pytest.approx(1.0)


def test_thresholds_maximise_f1_per_label():
    y = np.array([[1], [1], [0], [0]], bool)
    s = np.array([[0.7], [0.45], [0.4], [0.1]])
    assert best_thresholds(y, s)[0] == pytest.approx(0.45)
    assert best_thresholds(np.zeros((2, 1), bool), np.ones((2, 1)))[0] == 0.5


def test_evaluate_has_every_documented_key():
    rng = np.random.default_rng(0)
    wide_y, wide_s = rng.random((20, 8)) < 0.3, rng.random((20, 8))
    keys = set(evaluate(wide_y, wide_s))
    for k in ("mAP", "averaged_precision", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP_top3", "OF1_top3",
              "P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5", "top1_accuracy", "top3_accuracy", "top5_accuracy"):
        assert k in keys


def test_metrics_with_k_at_or_above_the_label_count_are_left_out():
    keys = set(evaluate(Y, S))  # 3 labels: top-3 and top-5 predict everything
    assert {"top1_accuracy", "mAP", "CF1"} <= keys
    assert not {"P@3", "P@5", "top3_accuracy", "top5_accuracy", "CP_top3"} & keys


def test_a_precision_interval_holds_the_estimate_and_narrows_with_more_tags():
    z = 1.6448536269514722  # the normal quantile of a two-sided 90% interval: Wilson's formula by hand
    centre = (15 + z * z / 2) / (19 + z * z)
    half = z * np.sqrt(15 * 4 / 19 + z * z / 4) / (19 + z * z)
    assert precision_interval(15, 19) == pytest.approx((centre - half, centre + half), abs=1e-9)
    few, many = precision_interval(8, 10), precision_interval(800, 1000)
    assert few[0] < 0.8 < few[1] and many[1] - many[0] < few[1] - few[0]
    assert precision_interval(0, 0) is None
