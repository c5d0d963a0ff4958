"""Fit the per-source score calibration (transforms/knowledge/calibration.py) on the labelled photos.

    python -m pipeline.quality --fit transforms/data/calibration.json

Every candidate is gathered once with its photo's kind and half (gather), then fitted
(fit_sources): the shipped fit on both halves of the photo set, a measurement's fit on one half
(pipeline/quality/cross_fit.py) or without one kind (pipeline/quality/by_kind.py). The tagger's
hierarchy model, the detector's agreement and person models and the pose model's person map are
fitted on the photo set (pipeline/quality/photo_set.py, judged with WordNet; the 19-photo key's
tune photos judged by the key): every candidate word and every raw box, with the features the
stage computes, and a logistic regression of "is it right". The one-feature Platt maps (group
words for zero-shot, boxes without ImageNet probabilities, zero-shot cosines) come from the
key's tune photos, in every fit: one tag job with raw scores and low floors, and ConSE cosines
computed directly (the job's zero-shot score also mixes in hypernym and tag evidence), judged
against the hand-written key. The key's report photos are never read here. The backbone runs in
exact fp32 (--precision fp32), so the fit does not depend on the path `--precision auto` picks on
the machine that fits.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.quality.key import accepted_words, load_key, norm, run_preset, vocabulary_path
from transforms.knowledge.calibration import logit
from transforms.knowledge.samples import sample_photos
from transforms.stages.detector import PERSON
from transforms.stages.detector import SOURCE as DETECTOR
from transforms.stages.pose import calibration_key as pose_key
from transforms.stages.tagger import SOURCE as TAGGER
from transforms.stages.tagger import imagenet_table_data

RAW = ["--precision", "fp32", "--calibration", "none", "--min_score", "0.02", "--top_k", "50", "--detection_threshold", "0.1",
       "--no_detection_cross_check", "--expansion_per_tag", "0", "--worn_words", "",
       "--everyday_model", "none", "--pose_model", "none"]  # each source's own claims, none merged into another's


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


MIN_PERSON_BOXES = 8  # right and wrong person verdicts each, below which no person map is fitted
Rightness = Callable[[str], "bool | None"]  # is this word right for the photo? (None: not judged)


EVERY_FIT = "every"  # the half of the key's candidates: its tune photos are in every fit's one-feature maps


@dataclass(frozen=True)
class Candidates:
    """What one model is fitted on: features [n, f], right? [n], and the kind of photo [n] and
    half of the photo set [n] of every candidate, so that a fit can leave one kind of photo out
    (pipeline/quality/by_kind.py) or learn from one half (pipeline/quality/cross_fit.py)."""

    features: np.ndarray
    right: np.ndarray
    kinds: np.ndarray
    halves: np.ndarray
    words: np.ndarray | None = None  # the word each candidate is, where a model weighs words (the tagger's)

    @classmethod
    def empty(cls, width: int) -> Candidates:
        return cls(np.zeros((0, width)), np.zeros(0, dtype=int), np.zeros(0, dtype=object), np.zeros(0, dtype=object))

    def add(self, features: np.ndarray, right: list[bool], kinds: list[str], halves: list[str],
            words: list[str] | None = None) -> Candidates:
        def joined(mine: np.ndarray | None, theirs: list[str] | None) -> np.ndarray | None:
            if theirs is None:
                return mine
            return np.concatenate([np.zeros(0, dtype=object) if mine is None else mine, np.asarray(theirs, dtype=object)])

        return Candidates(np.concatenate([self.features, features]), np.concatenate([self.right, np.asarray(right, dtype=int)]),
                          np.concatenate([self.kinds, np.asarray(kinds, dtype=object)]),
                          np.concatenate([self.halves, np.asarray(halves, dtype=object)]), joined(self.words, words))

    def chosen(self, leave_out: str | None = None, half: str | None = None) -> Candidates:
        """Those of ``half`` (None: both) not of kind ``leave_out``."""
        keep = (self.kinds != leave_out) & ((half is None) | (self.halves == half) | (self.halves == EVERY_FIT))
        return Candidates(self.features[keep], self.right[keep], self.kinds[keep], self.halves[keep],
                          None if self.words is None else self.words[keep])


Where = tuple[str, str]  # a photo's kind and half


def hierarchy_candidates(paths: list[str], right: list[Rightness], probs: np.ndarray, where: list[Where]) -> Candidates:
    """Every tagger word candidate on each photo (given its ImageNet probabilities and a judge of
    words); words a photo does not judge are left out."""
    from transforms.stages.tagger import ImageNetTagTable

    table = ImageNetTagTable.embedded()
    rows, cols, _, features = table.candidates(probs)
    verdicts = [right[r](table.names[c]) for r, c in zip(rows, cols, strict=True)]
    judged = np.array([v is not None for v in verdicts], dtype=bool)
    kept = np.asarray(where, dtype=object).reshape(-1, 2)[rows][judged]  # each candidate's (kind, half)
    return Candidates.empty(features.shape[1]).add(features[judged], [v for v in verdicts if v is not None],
                                                   kept[:, 0].tolist(), kept[:, 1].tolist(),
                                                   [table.names[c] for c in cols[judged]])


def detector_candidates(paths: list[str], right: list[Rightness], probs: np.ndarray,
                        where: list[Where]) -> tuple[Candidates, Candidates]:
    """The best box of each label YOLOX offers the job (raw score at least the default
    --detection_threshold) on each photo: the agreement features of the other labels' boxes, and
    the raw scores of the person boxes, each with right? and the photo's kind; labels a photo
    does not judge are left out. One box per label and photo, as a verdict judges the label on
    the photo: a group photo's eight person boxes would weigh eight times its one verdict."""
    from transforms.handlers.detector import DetectorHandler
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.stages.detector import AGREEMENT_FEATURES, DetectorConfig, agreement_features

    model = DetectorHandler(DetectorConfig(cross_check=False)).load_model()
    boxes = Candidates.empty(len(AGREEMENT_FEATURES))
    person = Candidates.empty(1)
    for path, judge, row, (kind, half) in zip(paths, right, probs, where, strict=True):
        with open(path, "rb") as f:
            objects = model([decode_image(f.read(), DecodeConfig())[0]])[0]
        best: dict[str, dict] = {}
        for o in objects:
            if o["label"] not in best or o["score"] > best[o["label"]]["score"]:
                best[o["label"]] = o
        for o in best.values():
            verdict = judge(o["label"])
            if verdict is None:
                continue
            if o["label"] == PERSON:
                person = person.add(np.array([[float(o["score"])]]), [bool(verdict)], [kind], [half])
            else:
                boxes = boxes.add(agreement_features([o], row), [bool(verdict)], [kind], [half])
    return boxes, person


def pose_candidates(paths: list[str], right: list[Rightness], where: list[Where]) -> Candidates:
    """The pose model's raw person score on each photo, with whether a person tag is right on it
    (photos not judged for people are left out)."""
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.models.pose_files import embedded
    from transforms.models.pose_model import PoseModel
    from transforms.stages.pose import MOVENET, PoseConfig

    model = PoseModel(*embedded(MOVENET), PoseConfig())
    out = Candidates.empty(1)
    for path, judge, (kind, half) in zip(paths, right, where, strict=True):
        verdict = judge(PERSON)
        if verdict is not None:
            with open(path, "rb") as f:
                score = model.scores([decode_image(f.read(), DecodeConfig())[0]])[0]
            out = out.add(np.array([[score]]), [bool(verdict)], [kind], [half])
    return out


def enough_people(candidates: Candidates) -> bool:
    """Whether a person map may be fitted: enough right and wrong verdicts both."""
    right = int(candidates.right.sum())
    return min(right, len(candidates.right) - right) >= MIN_PERSON_BOXES


def logistic(features: np.ndarray, right: np.ndarray, names: tuple[str, ...], strength: float = 1.0) -> dict:
    """Logistic regression of correctness on several features: {weights, b, n, positives}
    (``strength``: scikit-learn's C, the inverse of the L2 penalty)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=strength, max_iter=1000).fit(features, right)
    return {"weights": [float(w) for w in model.coef_[0]], "b": float(model.intercept_[0]),
            "features": list(names), "n": int(len(right)), "positives": int(right.sum())}


WORD_MIN_CANDIDATES = 25  # judged candidates of a word, from which the hierarchy model gives it a bias of its own
HIERARCHY_STRENGTH = 0.1  # the hierarchy model's C: a word's bias is only what its candidates insist on


def hierarchy_model(candidates: Candidates) -> dict:
    """The tagger's hierarchy model: FEATURES, and a bias for each word with at least
    WORD_MIN_CANDIDATES candidates in the fit (transforms/stages/tagger.py word_columns), but
    none for what every person wears: such a word is right wherever people are, which the
    ImageNet evidence does not show (a bias would write "clothing" on a retina), and the worn
    stage writes it at the photo's person chance."""
    from collections import Counter

    from transforms.stages.tagger import FEATURES, word_columns
    from transforms.stages.worn import WornFlags

    worn = set(WornFlags().words())
    found = [] if candidates.words is None else candidates.words.tolist()
    words = sorted(w for w, n in Counter(found).items() if n >= WORD_MIN_CANDIDATES and w not in worn)
    inputs = np.column_stack([candidates.features, word_columns(found, words)]) if words else candidates.features
    return {**logistic(inputs, candidates.right, FEATURES, HIERARCHY_STRENGTH), "words": words}


def conse_candidates(photos: dict[str, str], key: dict, kinds: dict[str, str]) -> Candidates:
    """ConSE cosine standardised over the vocabulary, and applies?, for every word on every photo
    that the word-vector score answers (not the words the ImageNet hierarchy answers)."""
    from transforms.knowledge.calibration import standardise_rows
    from transforms.stages.zero_shot import ZeroShotConfig, ZeroShotModel, conse_scores

    model = ZeroShotModel(ZeroShotConfig(vocabulary_path(), calibration="none"))
    out = Candidates.empty(1)
    every = imagenet_probs(list(photos.values()))
    for (name, _path), probs in zip(photos.items(), every, strict=True):
        cos = standardise_rows(conse_scores(probs[None], model.seen, model.vocab), model.known)[0]
        accepted = accepted_words(key["photos"][name])
        answered = [(float(s), norm(word) in accepted) for word, s, answers
                    in zip(model.words, cos, model.conse_answers().tolist(), strict=True) if answers]
        out = out.add(np.array([[s] for s, _ in answered]).reshape(-1, 1), [r for _, r in answered], [kinds[name]] * len(answered),
                      [EVERY_FIT] * len(answered))
    return out


def photo_set_candidates(folder: str, key: dict, half: str | None = None) -> dict[str, Candidates]:
    """The tagger's word candidates, the detector's boxes and the pose model's scores on every
    photo a fit may learn from (photo_set.fit_photos; of ``half``, None: both), each with its photo's kind and half:
    judged with WordNet against the photo's noun, or, on the 19-photo key's tune photos, by the
    key's hand-written lists, which also name the other things a photo shows."""
    from pipeline.quality import photo_set

    judge = photo_set.Judge()
    paths: list[str] = []
    right: list[Rightness] = []
    where: list[Where] = []
    for photo in photo_set.fit_photos(photo_set.collect(folder), half):
        entry = key["photos"].get(photo.name.removeprefix("samples/")) if photo.name.startswith("samples/") else None
        paths.append(photo.path)
        right.append(functools.partial(photo_set.verdict, judge=judge, photo=photo) if entry is None else
                     functools.partial(lambda word, accepted: norm(word) in accepted, accepted=accepted_words(entry)))
        where.append((photo.kind, photo.split))
    probs = imagenet_probs(paths)
    boxes, person = detector_candidates(paths, right, probs, where)
    return {"hierarchy": hierarchy_candidates(paths, right, probs, where), "boxes": boxes,
            "person": person, "pose": pose_candidates(paths, right, where)}


def key_kinds(key: dict) -> dict[str, str]:
    """The kind of photo of each of the key's photos, by the photo set's noun of it."""
    from pipeline.quality import photo_set

    judge, nouns = photo_set.Judge(), photo_set.key()["samples"]
    return {name: judge.kind(nouns[name]) for name in key["photos"]}


def gather(workdir: str, half: str | None = None) -> dict[str, Candidates]:
    """Every candidate of every model the calibration fits (on the photo set's ``half`` only, or
    None: both), each with its photo's kind and half: read once, fitted many times (with every
    photo, one half, or leaving one kind out)."""
    key = load_key()
    kinds = key_kinds(key)
    tune = [n for n, p in key["photos"].items() if p["split"] == "tune"]
    photos = {n: str(p) for n, p in sample_photos(everything=True).items() if n in tune}
    rows = run_preset(RAW, photos, workdir, [], vocabulary=False)  # zero-shot is fitted apart, below
    groups = set(imagenet_table_data()["groups"])
    out = {k: Candidates.empty(1) for k in ("group", DETECTOR)}
    for name, row in rows.items():
        accepted = accepted_words(key["photos"][name])
        for t in row["tags"]:
            kind = DETECTOR if t["source"] == DETECTOR else "group" if t["name"] in groups else None
            if kind is not None and t["source"] in (TAGGER, DETECTOR) and t["origin"] is None:  # not a box's group
                out[kind] = out[kind].add(np.array([[float(t["score"])]]), [norm(t["name"]) in accepted], [kinds[name]],
                                          [EVERY_FIT])
    out["conse"] = conse_candidates(photos, key, kinds)
    out.update(photo_set_candidates(os.path.join(workdir, "photo_set"), key, half))
    return out


def fit_sources(candidates: dict[str, Candidates], leave_out: str | None = None, half: str | None = None) -> dict[str, dict]:
    """Every source's calibration from the gathered candidates of ``half`` (None: both halves),
    without the photos of kind ``leave_out`` (None: every kind). Person boxes get their own map only when the fit saw
    enough people, right and wrong: a map fitted without people must not veto them, so they
    keep the detector's plain map instead."""
    from transforms.stages.detector import AGREEMENT_FEATURES
    from transforms.stages.tagger import HIERARCHY_KEY

    c = {name: cands.chosen(leave_out, half) for name, cands in candidates.items()}

    def one(name: str, feature: str) -> dict:
        return platt(c[name].features[:, 0].tolist(), c[name].right.astype(bool).tolist(), feature)

    sources = {
        "tagger:imagenet_tags:group": one("group", "logit"),
        "detector:yolox_nano": one("detector", "logit"),
        "zero_shot:conse": one("conse", "z"),
        HIERARCHY_KEY: hierarchy_model(c["hierarchy"]),
        "detector:yolox_nano:agreement": logistic(c["boxes"].features, c["boxes"].right, AGREEMENT_FEATURES),
    }
    if enough_people(c["person"]):
        sources["detector:yolox_nano:person"] = one("person", "logit")
    if enough_people(c["pose"]):  # else the pose stage is off: a map fitted without people must not veto them
        sources[pose_key()] = one("pose", "logit")
    return sources


def write(out_path: str, sources: dict[str, dict], leave_out: str | None = None, half: str | None = None) -> dict:
    """The calibration file of these sources (what transforms/knowledge/calibration.py reads)."""
    tune = sorted(n for n, p in load_key()["photos"].items() if p["split"] == "tune")
    data = {
        "about": "Per tag source: Platt scaling p = sigmoid(a*x + b) (x = logit(score) for feature 'logit', "
                 "the cosine standardised over the image's vocabulary for 'z'), or a logistic model over "
                 "the listed features (weights); fitted by `python -m pipeline.quality --fit` on the photo set "
                 "and the 19-photo key's tune photos, never its report photos.",
        "fitted_on": tune + [f"photo_set:{half or 'both halves'}"] + ([f"leaving out: {leave_out}"] if leave_out else []),
        "sources": sources,
    }
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return data


def fit(out_path: str, workdir: str) -> dict:
    data = write(out_path, fit_sources(gather(workdir)))
    for k, v in data["sources"].items():
        if "weights" in v:
            print(f"{k:<22} logistic over {', '.join(v['features'])}: n={v['n']} right={v['positives']}")
            continue
        half = (-v["b"] / v["a"]) if v["a"] else math.nan
        raw = 1 / (1 + math.exp(-half)) if v["feature"] == "logit" else half
        print(f"{k:<22} a={v['a']:.3f} b={v['b']:.3f} n={v['n']} right={v['positives']}  "
              f"p=0.5 at {v['feature']} {raw:.3f}")
    return data
