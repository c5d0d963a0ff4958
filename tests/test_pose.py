"""The pose stage (transforms/stages/pose.py, transforms/handlers/pose.py, transforms/models/):
the person rule, its launch checks, the model's files, and the model on real photos."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from pipeline import tag
from tests.conftest import read_table
from transforms.core import registry
from transforms.core.artifacts import ArtifactError
from transforms.knowledge.calibration import Platt
from transforms.models import pose_files
from transforms.stages.pose import (
    COLUMN,
    MOVENET,
    PORTRAIT,
    PORTRAIT_CHANCE,
    SOURCE,
    PoseConfig,
    decide,
    face_share,
    likeness_of,
    person_boxes,
    person_word,
)


def _tag(name: str, score: float, source: str) -> dict:
    return {"name": name, "score": score, "source": source, "origin": None}


ROW = [_tag("person", 0.8, "detector"), _tag("people", 0.7, "everyday"), _tag("scuba diver", 0.6, "tagger"),
       _tag("dog", 0.9, "tagger"), _tag("clothing", 0.6, "tagger")]
BOXES = [{"label": "person", "score": 0.8, "box": [0, 0, 1, 1]}, {"label": "dog", "score": 0.9, "box": [0, 0, 1, 1]}]


def test_below_the_veto_no_source_writes_a_person_word_or_box():
    tags, boxes = decide(ROW, BOXES, [0.1], 0.6, PoseConfig())  # the raw score decides, whatever the chance
    assert [t["name"] for t in tags] == ["dog", "clothing"]
    assert [b["label"] for b in boxes or []] == ["dog"]


def test_a_person_word_a_source_is_sure_of_survives_the_veto():
    sure = [_tag("person", 0.99, "everyday"), _tag("clothing", 0.6, "tagger")]
    tags, boxes = decide(sure, BOXES, [0.1], 0.05, PoseConfig())
    assert tags == sure and boxes == BOXES, "MoveNet misses a face filling the frame; the head is sure"
    tags, _ = decide(sure, BOXES, [0.1], 0.05, replace(PoseConfig(), spares=1.01))
    assert [t["name"] for t in tags] == ["clothing"], "1.01 spares none"


def test_a_sure_word_outlives_the_veto_only_beside_a_likely_person_box():
    """Two witnesses against the pose model: on swans, held out of the everyday head's fit, the
    head said "person" at 0.99 beside a coin-flip person box (0.57), and MoveNet saw no one."""
    sure = [_tag("person", 0.99, "everyday"), _tag("water", 0.9, "everyday")]
    weak = [{"label": "person", "score": 0.57, "box": [0.1, 0.1, 0.4, 0.6]}, BOXES[1]]
    tags, boxes = decide(sure, weak, [0.15], 0.17, PoseConfig())
    assert [t["name"] for t in tags] == ["water"] and boxes == [BOXES[1]]
    assert decide(sure, [], [0.15], 0.17, PoseConfig())[0] == sure[1:], "no person box at all"
    assert decide(sure, weak, [0.15], 0.17, replace(PoseConfig(), spare_box=0.5)) == (sure, weak)
    assert decide(sure, weak, [0.15], 0.17, replace(PoseConfig(), spare_box=0.0)) == (sure, weak), "0: the word alone"
    assert decide(sure, None, [0.15], 0.17, PoseConfig())[0] == sure, "without the detector, the word alone"
    assert decide(sure, weak, [0.3], 0.4, PoseConfig()) == (sure, weak), "above the veto nothing changes"


def test_between_veto_and_floor_the_other_sources_decide():
    tags, boxes = decide(ROW, BOXES, [0.3, 0.2], 0.5, PoseConfig())
    assert tags == ROW and boxes == BOXES


def test_people_needs_a_second_person_the_pose_model_sees():
    tags, boxes = decide(ROW, BOXES, [0.5, 0.08, 0.01], 0.6, PoseConfig())  # one person: an astronaut
    assert [t["name"] for t in tags] == [t["name"] for t in ROW if t["name"] != "people"]
    assert boxes == BOXES, "the one person keeps its box"
    tags, _ = decide(ROW, BOXES, [0.5], 0.6, PoseConfig())
    assert "people" not in [t["name"] for t in tags], "a model that found one person saw no second"
    sure = [_tag("people", 0.99, "everyday")]
    assert decide(sure, None, [0.5, 0.01], 0.6, PoseConfig())[0] == sure, "a sure source keeps its group"
    tags, _ = decide(ROW, BOXES, [0.5, 0.08], 0.6, replace(PoseConfig(), group_veto=0.0))
    assert tags == ROW, "--pose_group_veto 0 vetoes no group"


def test_a_likeness_of_a_person_vetoes_person_words_unless_a_source_is_sure():
    tags, boxes = decide(ROW, BOXES, [0.5, 0.4], 0.9, PoseConfig(), likeness=0.5)  # a statue on its plinth
    assert [t["name"] for t in tags] == ["dog", "clothing"] and [b["label"] for b in boxes or []] == ["dog"]
    assert decide(ROW, BOXES, [0.5, 0.4], 0.7, PoseConfig(), likeness=0.1) == (ROW, BOXES), "below the likeness veto"
    sure = [_tag("person", 0.99, "detector")]
    assert decide(sure, None, [0.5], 0.9, PoseConfig(), likeness=0.5)[0] == sure, "a sure source keeps its person"
    tags, _ = decide([], None, [0.6], 0.99, PoseConfig(), likeness=0.5)
    assert [t["name"] for t in tags] == ["person"], "the pose model writes on a likeness only when it is sure"
    tags, _ = decide(ROW, None, [0.5, 0.4], 0.9, replace(PoseConfig(), likeness_veto=1.01), likeness=1.0)
    assert [t["name"] for t in tags] == [*(t["name"] for t in ROW), "person"], "1.01 vetoes nothing"


def test_a_big_face_without_hips_or_knees_in_view_is_a_portrait_of_the_person_written():
    person = [_tag("person", 0.96, "detector")]
    tags, _ = decide(person, None, [0.5], 0.6, PoseConfig(), face=0.3)
    assert tags[-1] == {"name": PORTRAIT, "score": pytest.approx(0.96 * PORTRAIT_CHANCE), "source": SOURCE, "origin": None}
    assert decide(person, None, [0.5], 0.6, PoseConfig(), face=0.1)[0] == person, "a face too small"
    assert decide([], None, [0.5], 0.6, PoseConfig(), face=0.3)[0] == [], "no person word, no portrait"
    assert decide(person, None, [0.5], 0.6, PoseConfig(), likeness=0.5, face=0.3)[0] == [], "a statue's face"
    weak = [_tag("person", 0.55, "detector")]
    assert decide(weak, None, [0.5], 0.6, PoseConfig(), face=0.3)[0] == weak, "never below the job's floor"
    assert decide(person, None, [0.5], 0.6, replace(PoseConfig(), portrait_face=1.01), face=1.0)[0] == person


def test_the_face_share_is_the_faces_width_on_the_photo_and_0_with_legs_in_view():
    person = np.zeros(56, np.float32)
    person[0:15] = [0.3, 0.40, 0.9, 0.28, 0.45, 0.9, 0.28, 0.35, 0.9, 0.3, 0.50, 0.8, 0.3, 0.30, 0.2]  # nose, eyes, ears
    assert face_share(person, 256, 256) == pytest.approx(0.50 - 0.35), "the right ear is out of view"
    assert face_share(person, 512, 256) == pytest.approx(0.15), "a wide photo fills the square's width"
    assert face_share(person, 256, 512) == pytest.approx(0.30), "a tall one fills half of it"
    person[11 * 3 + 2] = 0.5  # a hip in view: a figure, not a portrait
    assert face_share(person, 256, 256) == 0.0


def test_the_likeness_is_imagenets_probability_of_a_statue_on_its_plinth():
    from transforms.stages.tagger import ImageNetTagTable

    probs = np.full(1000, 0.5 / 999, dtype=np.float32)
    probs[ImageNetTagTable.embedded().classes_of("pedestal")] = 0.5
    assert likeness_of(probs) == pytest.approx(0.5) and likeness_of(None) == 0.0


def test_from_its_floor_the_pose_model_writes_person_at_its_chance():
    tags, _ = decide([_tag("dog", 0.9, "tagger")], None, [0.5], 0.93, PoseConfig())
    assert tags[-1] == {"name": "person", "score": 0.93, "source": SOURCE, "origin": None}
    assert person_word("Person") and person_word("people") and person_word("scuba diver") and not person_word("dog")


def test_it_runs_after_every_stage_that_writes_a_person_word_and_before_worn_and_review():
    order = [s.name for s in registry.registered()]
    for writer in ("tagger", "detector", "zero_shot", "expansion", "learned", "everyday"):
        assert order.index(writer) < order.index(SOURCE), writer
    assert order.index(SOURCE) < order.index("worn") < order.index("review")


def _people(*rows: tuple[float, tuple[float, float, float, float]]) -> np.ndarray:
    """A model output: one row per person, (raw person score, (y_min, x_min, y_max, x_max))."""
    out = np.zeros((MOVENET.people, 56), np.float32)
    for i, (score, box) in enumerate(rows):
        out[i, MOVENET.person_column], out[i, MOVENET.box_columns:MOVENET.box_columns + 4] = score, box
    return out


class _Model:
    """A pose model stand-in: fixed outputs, one per photo."""

    def __init__(self, outputs: list[np.ndarray]):
        self.outputs = outputs

    def __call__(self, images: list) -> list[np.ndarray]:
        return self.outputs[:len(images)]


def test_the_handler_writes_the_calibrated_chance_and_applies_the_rule():
    from PIL import Image

    from transforms.handlers.pose import PoseHandler

    handler = PoseHandler(replace(PoseConfig(), calibration=Platt(a=1.0, b=0.0, feature="logit")))
    image = Image.new("RGB", (256, 256))
    detected = [{"label": "person", "score": 0.8, "box": [0.0, 0.0, 0.5, 1.0]}]
    batch = [{"image": image, "tags": list(ROW), "objects": list(BOXES)}, {"image": image, "tags": [], "objects": detected}]
    low, high = handler.infer(batch, _Model([_people((0.05, (0, 0, 1, 1))),
                                             _people((0.95, (0, 0, 1, 0.5)), (0.9, (0, 0.5, 1, 1)), (0.3, (0, 0, 1, 1)))]))
    assert low[COLUMN] == pytest.approx(0.05) and not any(person_word(t["name"]) for t in low["tags"])
    assert [o["label"] for o in low["objects"]] == ["dog"]
    assert high[COLUMN] == pytest.approx(0.95) and high["tags"][0]["source"] == SOURCE
    # the left person is the detector's box; the right one is added; the third is under the floor
    assert [(o["score"], o["box"]) for o in high["objects"]] == [(0.8, [0.0, 0.0, 0.5, 1.0]),
                                                                  (pytest.approx(0.9), [0.5, 0.0, 1.0, 1.0])]


def test_person_boxes_undo_the_top_left_paste():
    people = _people((0.9, (0.1, 0.2, 0.5, 0.6)), (0.9, (0.5, 0.5, 0.9, 0.9)))
    [wide] = person_boxes(people[:2], np.array([0.9, 0.9]), 512, 256, 0.85)  # shrunk by 2: fills 256 x 128
    assert wide["box"] == pytest.approx([0.2, 0.2, 0.6, 1.0]), "the second lies in the black below the photo"
    [small] = person_boxes(people[:1], np.array([0.9]), 128, 64, 0.85)  # never enlarged: fills 128 x 64
    assert small["box"] == pytest.approx([0.4, 0.4, 1.0, 1.0])
    assert person_boxes(people[:1], np.array([0.5]), 128, 64, 0.85) == [], "under the floor"


def test_the_pose_model_never_writes_below_the_jobs_floor():
    from pipeline.flags import defaults
    from transforms.stages.pose import pose_config

    assert pose_config(defaults()).min_score == 0.85
    assert pose_config(defaults(min_score=0.9)).min_score == 0.9, "--min_score bounds every written tag"
    assert pose_config(defaults(pose_model="none")) is None and pose_config(defaults(calibration="none")) is None


@pytest.mark.parametrize(("flags", "message"), [
    (["--pose_veto", "-0.1"], "--pose_veto must be between 0 and 1"),
    (["--pose_group_veto", "1.5"], "--pose_group_veto must be between 0 and 1"),
    (["--pose_veto_spares", "2"], "--pose_veto_spares must be between 0 and 1.01, got 2.0"),
    (["--pose_spare_box", "-0.1"], "--pose_spare_box must be between 0 and 1.01, got -0.1"),
    (["--pose_min_score", "1.5"], "--pose_min_score must be between 0 and 1"),
    (["--pose_likeness_veto", "1.5"], "--pose_likeness_veto must be between 0 and 1.01, got 1.5"),
    (["--pose_model_sha256", "a" * 64], "--pose_model_sha256 checks a --pose_model file, not 'embedded'"),
    (["--pose_model", "/no/such/model.json"], "--pose_model: no such file: /no/such/model.json"),
])
def test_a_wrong_pose_option_is_refused_at_launch_in_one_line(tmp_path, photos, flags, message):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    with pytest.raises(SystemExit) as exc:
        tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", *flags])
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


# --- the model's files -------------------------------------------------------------------------

GRAPH = {"format": "graph-model",
         "modelTopology": {"node": [{"name": "x", "op": "Placeholder", "attr": {}}, {"name": "w", "op": "Const", "attr": {}},
                                    {"name": "y", "op": "Mul", "input": ["x", "w"], "attr": {}}]},
         "weightsManifest": [{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [], "dtype": "float32"}]}],
         "signature": {"inputs": {"x": {"name": "x:0"}}, "outputs": {"y": {"name": "y:0"}}}}
WEIGHTS = np.array(2.0, np.float32).tobytes()


def _package(path, members: dict[str, bytes], link: str | None = None) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    from transforms.core.artifacts import sha256_of

    return sha256_of(path)


@pytest.fixture()
def package(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    model_json = json.dumps(GRAPH).encode()
    members = {"package/m.json": model_json, "package/m.bin": WEIGHTS}
    sha = _package(tmp_path / "p.tgz", members)
    spec = replace(MOVENET, package_url=str(tmp_path / "p.tgz"), package_sha256=sha, members=tuple(members),
                   sha256=pose_files.model_sha256(model_json, WEIGHTS))
    return spec, model_json


def test_the_embedded_model_is_read_out_of_its_package_and_cached_by_its_digest(package, tmp_path):
    spec, model_json = package
    assert pose_files.embedded(spec) == (model_json, WEIGHTS)
    cached = tmp_path / "cache" / f"{spec.sha256}.pose"
    assert cached.exists() and pose_files.embedded_cached(spec)
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x00")  # damaged: read from the package again
    assert pose_files.embedded(spec) == (model_json, WEIGHTS)
    (tmp_path / "p.tgz").write_bytes(b"not the package")
    cached.unlink()
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        pose_files.embedded(spec)


def test_a_package_member_that_is_a_link_is_refused(package, tmp_path):
    spec, model_json = package
    sha = _package(tmp_path / "q.tgz", {"package/m.json": model_json}, link="package/m.bin")
    with pytest.raises(ValueError, match="package/m.bin in the pose package is not a regular file"):
        pose_files.embedded(replace(spec, package_url=str(tmp_path / "q.tgz"), package_sha256=sha))


def test_a_model_json_reads_only_plain_weight_files_beside_it(tmp_path):
    model_json = json.dumps(GRAPH).encode()
    (tmp_path / "model.json").write_bytes(model_json)
    (tmp_path / "m.bin").write_bytes(WEIGHTS)
    sha = pose_files.model_sha256(model_json, WEIGHTS)
    assert pose_files.from_source(str(tmp_path / "model.json"), sha, MOVENET) == (model_json, WEIGHTS)
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        pose_files.from_source(str(tmp_path / "model.json"), "0" * 64, MOVENET)
    outside = dict(GRAPH, weightsManifest=[{"paths": ["../m.bin"], "weights": GRAPH["weightsManifest"][0]["weights"]}])
    (tmp_path / "model.json").write_text(json.dumps(outside))
    with pytest.raises(ValueError, match="only plain file names beside it"):
        pose_files.from_source(str(tmp_path / "model.json"), None, MOVENET)


# --- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movenet(pose_model_files):
    """The embedded pose model's files, and the model traced."""
    from transforms.models.pose_model import PoseModel

    return pose_model_files, PoseModel(*pose_model_files, PoseConfig())


def test_people_score_high_and_photos_without_people_low(movenet, photos):
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.knowledge import calibration
    from transforms.stages.pose import calibration_key

    _, model = movenet
    platt = calibration.for_source("embedded", calibration_key())
    assert platt is not None, "the shipped calibration maps the pose score"
    people, free = ("astronaut", "camera", "grace_hopper"), ("chelsea", "coffee", "rocket", "motorcycle")
    images = [decode_image(photos[n].read_bytes(), DecodeConfig())[0] for n in (*people, *free)]
    raw = dict(zip((*people, *free), model.scores(images), strict=True))
    chance = dict(zip(raw, platt(np.asarray(list(raw.values()))).tolist(), strict=True))
    assert all(chance[n] >= 0.5 for n in people), chance
    assert all(raw[n] < PoseConfig().veto and chance[n] < 0.1 for n in free), raw


def test_the_traced_graph_matches_the_graph_run_op_by_op(movenet, photos):
    import torch
    from PIL import Image

    from transforms.models.tfjs_graph import GraphModel
    from transforms.stages.detector import letterbox

    (model_json, weights), model = movenet
    image = Image.open(photos["astronaut"]).convert("RGB")
    canvas, _ = letterbox(image, MOVENET.side, fill=0, grow=False)
    with torch.inference_mode():
        eager = GraphModel(model_json, weights)(torch.from_numpy(canvas.astype(np.int32)[None])).numpy()[0]
    np.testing.assert_allclose(model.people(image), eager, atol=1e-4)
    assert eager[:, MOVENET.person_column].max() > 0.3 and eager.shape == (MOVENET.people, 56)


def test_a_tag_run_writes_the_pose_column_and_can_turn_the_stage_off(tmp_path, photos):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['grace_hopper']}\n{photos['coffee']}\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "on"), "--allow_local_paths", "--quiet"])
    rows = {r["uri"].rsplit("/", 1)[-1]: r for r in read_table(tmp_path / "on", "tags").to_pylist()}
    hopper, coffee = rows[photos["grace_hopper"].name], rows[photos["coffee"].name]
    assert hopper[COLUMN] > 0.9 and coffee[COLUMN] < 0.05
    assert any(t["name"] == "person" for t in hopper["tags"])
    tag.run(["--input", str(listing), "--output", str(tmp_path / "off"), "--allow_local_paths", "--quiet",
             "--pose_model", "none"])
    assert all(r[COLUMN] is None for r in read_table(tmp_path / "off", "tags").to_pylist())


@pytest.mark.usefixtures("photo_set_packages")
def test_a_statue_of_a_person_is_no_person_and_a_photo_of_one_is(tmp_path, photos):
    """MoveNet and the detector see a person in GCompris' Statue of Liberty; ImageNet sees its
    plinth. Grace Hopper's photo is a portrait; the cameraman, seen to his knees, is not."""
    from pipeline.quality import photo_set

    [data] = [v for k, v in photo_set.rcc_photos("categorization.rcc").items() if k.endswith("/statueOfLiberty.webp")]
    statue = tmp_path / "statueOfLiberty.webp"
    statue.write_bytes(data)
    listing = tmp_path / "in.txt"
    listing.write_text(f"{statue}\n{photos['grace_hopper']}\n{photos['camera']}\n")

    def people(output: str, *flags: str) -> dict[str, list[str]]:
        tag.run(["--input", str(listing), "--output", str(tmp_path / output), "--allow_local_paths", "--quiet", *flags])
        return {r["uri"].rsplit("/", 1)[-1]: [t["name"] for t in r["tags"] if person_word(t["name"]) or t["name"] == PORTRAIT]
                + [o["label"] for o in r["objects"] or [] if o["label"] == "person"]
                for r in read_table(tmp_path / output, "tags").to_pylist()}

    default = people("default")
    hopper, camera = default[photos["grace_hopper"].name], default[photos["camera"].name]
    assert default[statue.name] == [] and "person" in hopper and "person" in camera, default
    assert PORTRAIT in hopper and PORTRAIT not in camera, default
    assert "person" in people("off", "--pose_likeness_veto", "1.01")[statue.name], "without the veto, a person"


def test_the_traced_graph_is_cached_per_input_side(pose_model_files, tmp_path, monkeypatch):
    from transforms.models.pose_model import traced

    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path))
    square = traced(*pose_model_files, MOVENET)
    assert traced(*pose_model_files, MOVENET) == square, "traced once"
    assert traced(*pose_model_files, replace(MOVENET, side=192)) != square, "a graph traced at 256 px takes only 256 px"


def test_a_graph_whose_numbers_follow_its_pixels_is_refused_when_traced():
    import torch

    from transforms.models.pose_model import check_trace, export
    from transforms.models.tfjs_graph import GraphError, GraphModel

    # y = x * Fill([1], the sum of x): Fill reads its value as a number, so the tracer bakes in the
    # black photo's sum, 0
    graph = {"format": "graph-model",
             "modelTopology": {"node": [
                 {"name": "x", "op": "Placeholder", "attr": {}}, {"name": "axes", "op": "Const", "attr": {}},
                 {"name": "dims", "op": "Const", "attr": {}},
                 {"name": "total", "op": "Sum", "input": ["x", "axes"], "attr": {}},
                 {"name": "n", "op": "Fill", "input": ["dims", "total"], "attr": {}},
                 {"name": "y", "op": "Mul", "input": ["x", "n"], "attr": {}}]},
             "weightsManifest": [{"paths": ["w.bin"], "weights": [
                 {"name": "axes", "shape": [4], "dtype": "int32"}, {"name": "dims", "shape": [1], "dtype": "int32"}]}],
             "signature": {"inputs": {"x": {"name": "x:0"}}, "outputs": {"y": {"name": "y:0"}}}}
    weights = np.array([0, 1, 2, 3], np.int32).tobytes() + np.array([1], np.int32).tobytes()
    spec = replace(MOVENET, side=4)
    model = GraphModel(json.dumps(graph).encode(), weights)
    assert int(model(torch.ones(1, 4, 4, 3, dtype=torch.int32))[0, 0, 0, 0]) == 48
    with pytest.raises(GraphError, match="its shapes depend on its input"):
        check_trace(model, export(model, spec), spec)
