"""Fit the per-source score calibration (transforms/knowledge/calibration.py) on the *tune* photos.

    python -m pipeline.quality --fit transforms/data/calibration.json

The tagger's hierarchy model and the detector's agreement model are fitted on the tune half of
the 300-photo set (pipeline/quality/photo_set.py, judged with WordNet; photos of the 19-photo key are
judged by the key instead, and only its tune photos are used) and the key's tune photos: every
candidate word and every raw box, with the features the stage computes, and a logistic
regression of "is it right". The one-feature Platt maps (group words for zero-shot,
boxes without ImageNet probabilities, zero-shot cosines) come from the key's tune photos: one tag
job with raw scores and low floors, and ConSE cosines computed directly (the job's zero-shot
score also mixes in hypernym and tag evidence), judged against the hand-written key. Report
photos are never read here. The
backbone runs in exact fp32 (--precision fp32), so the fit does not depend on the path
`--precision auto` picks on the machine that fits.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable

import numpy as np

from pipeline.quality.key import accepted_words, load_key, norm, run_preset, vocabulary_path
from transforms.knowledge.calibration import logit
from transforms.knowledge.samples import sample_photos
from transforms.stages.tagger import imagenet_table_data

RAW = ["--precision", "fp32", "--calibration", "none", "--min_score", "0.02", "--top_k", "50", "--detection_threshold", "0.1",
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


def imagenet_probs(paths: list[str]) -> np.ndarray:
    """[photos, 1000]: the job's exact fp32 backbone on each photo, decoded as the job decodes."""
    from transforms.core.records import Element
    from transforms.handlers.backbone import BackboneHandler
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.stages.backbone import BackboneConfig

    handler = BackboneHandler(BackboneConfig(precision="fp32"))
    backbone = handler.load_model()
    out = []
    for start in range(0, len(paths), 16):
        images: list[Element] = []
        for path in paths[start:start + 16]:
            with open(path, "rb") as f:
                images.append({"image": decode_image(f.read(), DecodeConfig())[0]})
        out += [e["imagenet_probs"] for e in handler.infer(images, backbone)]
    return np.stack(out)


Rightness = Callable[[str], "bool | None"]  # is this word right for the photo? (None: not judged)


def hierarchy_candidates(paths: list[str], right: list[Rightness], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, right?) of every tagger word candidate on each photo (given its ImageNet
    probabilities and a judge of words); words a photo does not judge are left out."""
    from transforms.stages.tagger import ImageNetTagTable

    table = ImageNetTagTable.embedded()
    rows, cols, _, features = table.candidates(probs)
    verdicts = [right[r](table.names[c]) for r, c in zip(rows, cols, strict=True)]
    judged = np.array([v is not None for v in verdicts], dtype=bool)
    return features[judged], np.asarray([v for v in verdicts if v is not None], dtype=int)


def detector_candidates(paths: list[str], right: list[Rightness],
                        probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float], list[bool]]:
    """Every box YOLOX offers the job (raw score at least the default --detection_threshold) on
    each photo, as (agreement features, right?) of the boxes of other labels and (raw scores,
    right?) of the person boxes; boxes a photo does not judge are left out."""
    from transforms.handlers.detector import DetectorHandler
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.stages.detector import AGREEMENT_FEATURES, PERSON, DetectorConfig, agreement_features

    model = DetectorHandler(DetectorConfig(cross_check=False)).load_model()
    features, verdicts = [np.zeros((0, len(AGREEMENT_FEATURES)))], []
    person_scores, person_right = [], []
    for path, judge, row in zip(paths, right, probs, strict=True):
        with open(path, "rb") as f:
            objects = model([decode_image(f.read(), DecodeConfig())[0]])[0]
        for o in objects:
            verdict = judge(o["label"])
            if verdict is None:
                continue
            if o["label"] == PERSON:
                person_scores.append(float(o["score"]))
                person_right.append(bool(verdict))
            else:
                features.append(agreement_features([o], row))
                verdicts.append(verdict)
    return np.concatenate(features), np.asarray(verdicts, dtype=int), person_scores, person_right


def logistic(features: np.ndarray, right: np.ndarray, names: tuple[str, ...]) -> dict:
    """Logistic regression of correctness on several features: {weights, b, n, positives}."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000).fit(features, right)
    return {"weights": [float(w) for w in model.coef_[0]], "b": float(model.intercept_[0]),
            "features": list(names), "n": int(len(right)), "positives": int(right.sum())}


def conse_candidates(photos: dict[str, str], key: dict) -> tuple[list[float], list[bool]]:
    """(ConSE cosine standardised over the vocabulary, applies?) for every word on every photo
    that the word-vector score answers (not the words the ImageNet hierarchy answers)."""
    from transforms.knowledge.calibration import standardise_rows
    from transforms.stages.zero_shot import ZeroShotConfig, ZeroShotModel, conse_scores

    model = ZeroShotModel(ZeroShotConfig(vocabulary_path(), calibration="none"))
    scores, correct = [], []
    every = imagenet_probs(list(photos.values()))
    for (name, _path), probs in zip(photos.items(), every, strict=True):
        cos = standardise_rows(conse_scores(probs[None], model.seen, model.vocab), model.known)[0]
        accepted = accepted_words(key["photos"][name])
        for word, s, answers in zip(model.words, cos, model.conse_answers().tolist(), strict=True):
            if answers:
                scores.append(float(s))
                correct.append(norm(word) in accepted)
    return scores, correct


def hierarchy_models(folder: str, key: dict) -> dict[str, dict]:
    """The tagger's hierarchy model and the detector's agreement model, fitted on the photo
    set's tune half (judged with WordNet against each photo's noun) and the 19-photo key's tune
    photos (judged by its hand-written lists, which also name the other things a photo shows)."""
    from pipeline.quality import photo_set
    from transforms.stages.detector import AGREEMENT_FEATURES
    from transforms.stages.tagger import FEATURES, HIERARCHY_KEY

    judge = photo_set.Judge()
    samples = sample_photos(everything=True)
    tune_key = {n: p for n, p in key["photos"].items() if p["split"] == "tune"}
    paths: list[str] = []
    right: list[Rightness] = []
    for photo in photo_set.collect(folder):
        name = photo.name.removeprefix("samples/")
        if photo.split == "tune" and name not in key["photos"]:  # key photos are judged by the key
            paths.append(photo.path)
            right.append(functools.partial(photo_set.verdict, judge=judge, photo=photo))
    for name, entry in sorted(tune_key.items()):
        paths.append(str(samples[name]))
        right.append(functools.partial(lambda word, accepted: norm(word) in accepted, accepted=accepted_words(entry)))
    probs = imagenet_probs(paths)
    boxes, box_right, person_scores, person_right = detector_candidates(paths, right, probs)
    return {HIERARCHY_KEY: logistic(*hierarchy_candidates(paths, right, probs), FEATURES),
            "detector:yolox_nano:agreement": logistic(boxes, box_right, AGREEMENT_FEATURES),
            "detector:yolox_nano:person": platt(person_scores, person_right, "logit")}


def fit(out_path: str, workdir: str) -> dict:
    key = load_key()
    tune = [n for n, p in key["photos"].items() if p["split"] == "tune"]
    photos = {n: str(p) for n, p in sample_photos(everything=True).items() if n in tune}
    rows = run_preset(RAW, photos, workdir, [], vocabulary=False)  # zero-shot is fitted apart, below
    groups = set(imagenet_table_data()["groups"])
    samples: dict[str, tuple[list[float], list[bool]]] = {k: ([], []) for k in ("group", "detector")}
    for name, row in rows.items():
        accepted = accepted_words(key["photos"][name])
        for t in row["tags"]:
            kind = "detector" if t["source"] == "detector" else "group" if t["name"] in groups else None
            if kind is not None and t["source"] in ("tagger", "detector"):
                samples[kind][0].append(float(t["score"]))
                samples[kind][1].append(norm(t["name"]) in accepted)
    sources = {
        "tagger:imagenet_tags:group": platt(*samples["group"], feature="logit"),
        "detector:yolox_nano": platt(*samples["detector"], feature="logit"),
        "zero_shot:conse": platt(*conse_candidates(photos, key), feature="z"),
        **hierarchy_models(os.path.join(workdir, "photo_set"), key),
    }
    data = {
        "about": "Per tag source: Platt scaling p = sigmoid(a*x + b) (x = logit(score) for feature 'logit', "
                 "the cosine standardised over the image's vocabulary for 'z'), or a logistic model over "
                 "the listed features (weights); fitted by `python -m pipeline.quality --fit` on tune photos only.",
        "fitted_on": sorted(photos) + ["photo_set:tune"],
        "sources": sources,
    }
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    for k, v in sources.items():
        if "weights" in v:
            print(f"{k:<22} logistic over {', '.join(v['features'])}: n={v['n']} right={v['positives']}")
            continue
        half = (-v["b"] / v["a"]) if v["a"] else math.nan
        raw = 1 / (1 + math.exp(-half)) if v["feature"] == "logit" else half
        print(f"{k:<22} a={v['a']:.3f} b={v['b']:.3f} n={v['n']} right={v['positives']}  "
              f"p=0.5 at {v['feature']} {raw:.3f}")
    return data
