"""Fit the per-source score calibration (transforms/calibration.py) on the *tune* photos.

    python -m pipeline.quality --fit transforms/data/calibration.json

Tagger and detector candidates come from one tag job run with raw scores and low floors
(every candidate the model would offer); zero-shot cosines are computed directly with ConSE,
since the job's zero-shot score also mixes in hypernym and tag evidence. Each candidate is
judged against the hand-written key; a one-feature logistic regression (Platt scaling) per
source maps its raw score to the chance it is right. Report photos are never read here. The
backbone runs in exact fp32 (--precision fp32), so the fit does not depend on the path
`--precision auto` picks on the machine that fits.
"""

from __future__ import annotations

import json
import math

import numpy as np

from pipeline.quality import accepted_words, load_key, norm, run_preset, vocabulary_path
from transforms.calibration import logit
from transforms.samples import sample_photos
from transforms.tagger import imagenet_table_data

RAW = ["--precision", "fp32", "--calibration", "none", "--min_score", "0.02", "--top_k", "10", "--detection_threshold", "0.1",
       "--no_detection_cross_check", "--expansion_per_tag", "0"]


def platt(scores: list[float], correct: list[bool], feature: str) -> dict:
    """Logistic regression of correctness on one feature of the score: {a, b, feature, n}."""
    from sklearn.linear_model import LogisticRegression

    x = logit(np.asarray(scores)) if feature == "logit" else np.asarray(scores, dtype=np.float64)
    y = np.asarray(correct, dtype=int)
    if len(set(y)) < 2:
        raise SystemExit(f"cannot calibrate: all {len(y)} candidates are {'right' if y[0] else 'wrong'}")
    model = LogisticRegression(C=1.0).fit(x[:, None], y)
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0]), "feature": feature,
            "n": int(len(y)), "positives": int(y.sum())}


def conse_candidates(photos: dict[str, str], key: dict) -> tuple[list[float], list[bool]]:
    """(ConSE cosine standardised over the vocabulary, applies?) for every word on every photo
    that the word-vector score answers (not the words the ImageNet hierarchy answers)."""
    from transforms.calibration import standardise_rows
    from transforms.decode import DecodeConfig, decode_image
    from transforms.features import BackboneConfig, BackboneHandler
    from transforms.zero_shot import ZeroShotConfig, _ZeroShotModel, conse_scores

    handler = BackboneHandler(BackboneConfig(precision="fp32"))
    backbone = handler.load_model()
    model = _ZeroShotModel(ZeroShotConfig(vocabulary_path(), calibration="none"))
    scores, correct = [], []
    for name, path in photos.items():
        with open(path, "rb") as f:
            image, _, _ = decode_image(f.read(), DecodeConfig())
        probs = handler.infer([{"image": image}], backbone)[0]["imagenet_probs"]
        cos = standardise_rows(conse_scores(probs[None], model.seen, model.vocab), model.known)[0]
        accepted = accepted_words(key["photos"][name])
        for word, s, answers in zip(model.words, cos, model.conse_answers().tolist(), strict=True):
            if answers:
                scores.append(float(s))
                correct.append(norm(word) in accepted)
    return scores, correct


def fit(out_path: str, workdir: str) -> dict:
    key = load_key()
    tune = [n for n, p in key["photos"].items() if p["split"] == "tune"]
    photos = {n: str(p) for n, p in sample_photos(everything=True).items() if n in tune}
    rows = run_preset(RAW, photos, workdir, [], vocabulary=False)  # zero-shot is fitted apart, below
    groups = set(imagenet_table_data()["groups"])
    samples: dict[str, tuple[list[float], list[bool]]] = {k: ([], []) for k in ("class", "group", "detector")}
    for name, row in rows.items():
        accepted = accepted_words(key["photos"][name])
        for t in row["tags"]:
            if t["source"] in ("tagger", "detector"):
                kind = t["source"] if t["source"] == "detector" else ("group" if t["name"] in groups else "class")
                samples[kind][0].append(float(t["score"]))
                samples[kind][1].append(norm(t["name"]) in accepted)
    sources = {
        "tagger:imagenet_tags:class": platt(*samples["class"], feature="logit"),
        "tagger:imagenet_tags:group": platt(*samples["group"], feature="logit"),
        "detector:yolox_nano": platt(*samples["detector"], feature="logit"),
        "zero_shot:conse": platt(*conse_candidates(photos, key), feature="z"),
    }
    data = {
        "about": "Platt scaling per tag source, p = sigmoid(a*x + b), x = logit(score) for feature "
                 "'logit', the cosine standardised over the image's vocabulary for 'z'; fitted by `python -m pipeline.quality --fit` on "
                 "the tune photos of pipeline/data/quality_key.json only.",
        "fitted_on": sorted(photos),
        "sources": sources,
    }
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    for k, v in sources.items():
        half = (-v["b"] / v["a"]) if v["a"] else math.nan
        raw = 1 / (1 + math.exp(-half)) if v["feature"] == "logit" else half
        print(f"{k:<22} a={v['a']:.3f} b={v['b']:.3f} n={v['n']} right={v['positives']}  "
              f"p=0.5 at {v['feature']} {raw:.3f}")
    return data
