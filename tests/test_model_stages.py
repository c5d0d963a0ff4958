"""Model stages: backbone features, the everyday ImageNet tagger, and error isolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transforms.core.model_handler import ElementModelHandler
from transforms.core.records import new_element
from transforms.handlers.backbone import BackboneHandler
from transforms.handlers.tagger import ImageNetTaggerHandler
from transforms.ingest.decode import DecodeConfig, decode_image
from transforms.stages.backbone import BackboneConfig, center_crop_array
from transforms.stages.tagger import (
    FEATURES,
    HIERARCHY_KEY,
    ImageNetTagTable,
    TaggerConfig,
    group_scores,
    imagenet_table_data,
)


@pytest.fixture(scope="module")
def lite0():
    handler = BackboneHandler(BackboneConfig(precision="fp32", device="cpu"))
    return handler, handler.load_model()


def _element(path) -> dict:
    img, w, h = decode_image(path.read_bytes(), DecodeConfig())
    return {**new_element(str(path)), "image": img, "width": w, "height": h}


def test_center_crop_shape_and_content():
    img = Image.new("RGB", (400, 300), (10, 20, 30))
    arr = center_crop_array(img)
    assert arr.shape == (224, 224, 3) and arr.dtype == np.uint8
    assert tuple(arr[112, 112]) == (10, 20, 30)


def test_lite0_features_and_imagenet_classes_on_real_photos(lite0, photos):
    handler, model = lite0
    batch = [_element(photos[n]) for n in ("chelsea", "coffee")]
    out = handler.run_inference(batch, model)
    assert out[0]["features"].shape == (1280,) and out[0]["features"].dtype == np.float32
    assert np.isclose(out[0]["imagenet_probs"].sum(), 1.0, atol=1e-3)
    assert 281 <= int(np.argmax(out[0]["imagenet_probs"])) <= 285  # a domestic cat class
    assert int(np.argmax(out[1]["imagenet_probs"])) == 967  # espresso


def test_resnet50_without_weights_gives_the_features_its_declaration_says(photos):
    """The torch model itself (the CPU's ONNX export of it has its own tests in test_backbone_onnx)."""
    from transforms.stages.backbone import SPECS, TorchBackbone

    config = BackboneConfig(name="resnet50", weights="none", device="cpu")
    handler = BackboneHandler(config)
    out = handler.run_inference([_element(photos["coffee"])], TorchBackbone(config))
    assert out[0]["features"].shape == (SPECS["resnet50"].feature_dim,) == (2048,)
    assert out[0]["imagenet_probs"].shape == (1000,)


def test_each_backbone_is_declared_once_and_every_branch_reads_the_declaration():
    """#34: name, features, mean/std, default weights and what pins them live in one BackboneSpec."""
    from pipeline.flags import defaults
    from transforms.stages.backbone import (
        BACKBONES,
        SPECS,
        BackboneFlags,
        TorchBackbone,
        backbone_config,
        setup_key,
    )

    assert tuple(SPECS) == BACKBONES and BackboneFlags.flag_fields()[0].metadata["choices"] == BACKBONES
    for spec in SPECS.values():
        assert spec.weights_source and spec.licence and spec.pins
        cfg = backbone_config(defaults(backbone=spec.name))
        assert cfg.weights == spec.default_weights, "--backbone_weights embedded means the spec's default"
    lite = TorchBackbone(BackboneConfig(device="cpu"))
    assert lite.mean_std == (list(SPECS["efficientnet_lite0"].mean), list(SPECS["efficientnet_lite0"].std))
    assert lite.feature_dim == 1280
    assert setup_key(BackboneConfig()) != setup_key(BackboneConfig(name="resnet50", weights="imagenet"))


def test_tag_table_groups_sum_their_classes():
    table = ImageNetTagTable.embedded()
    probs = np.zeros((1, 1000), np.float32)
    probs[0, 281], probs[0, 282], probs[0, 967] = 0.4, 0.3, 0.2  # tabby, tiger cat, espresso
    scores = dict(zip(table.names, table.scores(probs)[0], strict=False))
    assert scores["cat"] == pytest.approx(0.7)
    assert scores["tabby"] == pytest.approx(0.4)
    assert scores["coffee"] == pytest.approx(0.2) and scores["drink"] == pytest.approx(0.2)
    assert scores["animal"] == pytest.approx(0.7)
    assert scores["dog"] == 0


def test_big_groups_count_their_top_members_only():
    """Probability an unfamiliar picture spreads thinly over 398 animal classes is no animal."""
    membership = np.zeros((1000, 1), np.float32)
    membership[:398, 0] = 1.0
    diffuse = np.full((1, 1000), 1 / 1000, np.float32)
    assert group_scores(diffuse, membership)[0, 0] == pytest.approx(0.005)
    peaked = np.zeros((1, 1000), np.float32)
    peaked[0, [281, 282, 283]] = 0.3
    assert group_scores(peaked, membership)[0, 0] == pytest.approx(0.9)


def test_the_table_holds_named_wordnet_nodes_between_class_and_group():
    table = ImageNetTagTable.embedded()
    probs = np.zeros((1, 1000), np.float32)
    probs[0, 950] = 0.8  # orange
    scores = dict(zip(table.names, table.scores(probs)[0], strict=True))
    assert scores["orange"] == scores["citrus"] == scores["edible fruit"] == scores["fruit"] == pytest.approx(0.8)
    assert "placental" not in table.names and "entity" not in table.names, "jargon and top nodes stay unnamed"


def test_a_class_whose_pictures_show_more_than_its_name_is_named_by_what_they_show():
    """ImageNet's moped pictures are motorcycles, its missile and projectile pictures rockets of
    every kind (a space launch is no weapon), its palace pictures grand buildings of any sort."""
    table = ImageNetTagTable.embedded()
    classes = imagenet_table_data()["classes"]

    def named(name: str) -> set[str]:
        probs = np.zeros((1, 1000), np.float32)
        probs[0, classes.index(name)] = 0.9
        return {t["name"] for t in table.decode(probs, "none", top_k=20, min_score=0.5)[0]}

    assert {"motorcycle", "vehicle"} <= named("moped") and not named("moped") & {"moped", "motorbike"}
    for name in ("missile", "projectile"):
        assert {"rocket", "vehicle"} <= named(name) and not named(name) & {name, "weapon"}
    assert "building" in named("palace") and "palace" not in named("palace")
    assert not named("solar dish") & {"solar dish", "reflector"}
    assert {"rifle", "weapon"} <= named("rifle"), "other classes keep their own name and ancestors"


def test_decoding_writes_the_specific_name_with_its_ancestors_most_specific_first():
    table = ImageNetTagTable.embedded()
    probs = np.zeros((1, 1000), np.float32)
    probs[0, 950] = 0.8  # orange
    tags = table.decode(probs, "none", top_k=10, min_score=0.5)[0]
    names = [t["name"] for t in tags]
    assert names[0] == "orange" and {"citrus", "fruit"} <= set(names), "fruit never stands alone for an orange"
    assert all(t["source"] == "tagger" and t["score"] == pytest.approx(0.8) for t in tags)
    assert [t["name"] for t in table.decode(probs, "none", top_k=2, min_score=0.5)[0]] == names[:2]


def test_mass_spread_over_siblings_never_names_a_leaf_and_trusts_the_ancestor_more():
    """A donkey seen as twenty dog breeds: no breed is written, and the embedded calibrated
    model gives their common ancestor more chance than any one breed."""
    table = ImageNetTagTable.embedded()
    spread = np.zeros((1, 1000), np.float32)
    spread[0, 151:171] = 0.045  # twenty dog breeds, 0.9 in all
    tags = {t["name"] for t in table.decode(spread, "embedded", top_k=10, min_score=0.5)[0]}
    assert not tags & {table.names[j] for j in range(len(table.names)) if table.size[j] == 1}, "no breed"
    _, cols, chances = table.chances(spread, "embedded")
    chance = dict(zip((table.names[c] for c in cols), chances, strict=True))
    assert chance["dog"] > max(chance[table.names[c]] for c in cols if table.size[c] == 1)


def test_the_hierarchy_models_word_bias_moves_that_word_alone(tmp_path):
    """A word the fit saw often wrong (its bias) is less likely at the same evidence; every
    other word's chance is the one the features alone give."""
    table = ImageNetTagTable.embedded()
    probs = np.zeros((1, 1000), np.float32)
    probs[0, 281] = 0.9  # tabby: tabby, cat, feline, mammal, animal...
    base = {"weights": [1.0, 0.0, 0.0, 0.0], "b": 0.0, "features": list(FEATURES)}
    chances = {}
    for name, extra in (("plain", {}), ("biased", {"weights": [1.0, 0.0, 0.0, 0.0, -9.0], "words": ["cat"]})):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"sources": {HIERARCHY_KEY: {**base, **extra}}}))
        chances[name] = {t["name"]: t["score"] for t in table.decode(probs, str(path), top_k=20, min_score=0.0)[0]}
    assert chances["plain"]["cat"] > 0.5 and chances["biased"]["cat"] < 0.01
    assert {k: v for k, v in chances["biased"].items() if k != "cat"} == pytest.approx(
        {k: v for k, v in chances["plain"].items() if k != "cat"})


def test_a_calibration_table_without_a_hierarchy_model_keeps_raw_summed_scores(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"sources": {}}))
    probs = np.zeros((1, 1000), np.float32)
    probs[0, 281] = 0.7  # tabby
    tags = ImageNetTagTable.embedded().decode(probs, str(path), top_k=3, min_score=0.5)[0]
    assert [t["name"] for t in tags][0] == "tabby" and all(t["score"] == pytest.approx(0.7) for t in tags)


def test_tagger_handler(lite0, photos):
    handler, model = lite0
    feats = handler.run_inference([_element(photos["chelsea"])], model)
    tagger = ImageNetTaggerHandler(TaggerConfig(top_k=5, min_score=0.1))
    out = tagger.run_inference(feats, tagger.load_model())
    assert "cat" in [t["name"] for t in out[0]["tags"]]


class _Fragile(ElementModelHandler):
    stage_name = "fragile"

    def load_model(self):
        return None

    def infer(self, batch, model):
        if any(e["uri"] == "bad" for e in batch):
            raise RuntimeError("boom")
        return [{**e, "ok": True} for e in batch]


def test_one_bad_element_does_not_fail_its_batch():
    batch = [new_element("a"), new_element("bad"), new_element("c")]
    out = _Fragile(None).run_inference(batch, None)
    assert [e.get("ok") for e in out] == [True, None, True]
    assert out[1]["error"]["stage"] == "model" and "boom" in out[1]["error"]["error_message"]


def test_a_failed_element_leaves_the_graph_at_its_stage_and_no_later_stage_sees_it(tmp_path):
    """#34: one dead-letter path. A model stage's failures split off right after it, as fetch
    and decode split theirs; the stage after it never receives them."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.graph import run_stages
    from pipeline.runner import make_pipeline
    from transforms.core.registry import Stage

    class _Witness(_Fragile):
        stage_name = "witness"

        def infer(self, batch, model):
            assert all(e["uri"] != "bad" for e in batch), "a failed element reached a later stage"
            return [{**e, "seen": True} for e in batch]

    first = Stage(name="fragile", reads=("image",), writes=("ok",), build="unused:build")
    second = Stage(name="witness", reads=("ok",), writes=("seen",), build="unused:build")
    with make_pipeline(PipelineOptions([])) as p:
        elements = p | beam.Create([new_element("a"), new_element("bad"), new_element("c")])
        done, failed = run_stages(elements, [(first, _Fragile(None)), (second, _Witness(None))])
        assert len(failed) == 2
        assert_that(done | beam.Map(lambda e: (e["uri"], e["seen"])), equal_to([("a", True), ("c", True)]),
                    label="done")
        assert_that(failed[0] | beam.Map(lambda e: (e["uri"], e["error"]["stage"])), equal_to([("bad", "model")]),
                    label="failed at the first stage")
        assert_that(failed[1], equal_to([]), label="nothing failed at the second")


def test_device_resolution_on_a_cpu_machine():
    import torch

    from transforms.core.devices import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_bf16_keeps_the_fp32_top5_on_real_photos(photos):
    tops = {}
    for precision in ("fp32", "bf16"):
        handler = BackboneHandler(BackboneConfig(precision=precision, device="cpu"))
        out = handler.run_inference([_element(p) for p in photos.values()], handler.load_model())
        tops[precision] = [set(np.argsort(-e["imagenet_probs"])[:5]) for e in out]
    assert tops["fp32"] == tops["bf16"]


class _Lossy(ElementModelHandler):
    stage_name = "lossy"

    def load_model(self):
        return None

    def infer(self, batch, model):
        return batch[:-1]  # loses the last element


def test_a_handler_that_loses_elements_fails_them_instead_of_passing_them_on():
    batch = [new_element("a"), new_element("b")]
    out = _Lossy(None).run_inference(batch, None)
    assert len(out) == 2 and all(e["error"]["error_type"] == "model_error" for e in out)


def test_one_threads_policy_for_every_model(monkeypatch):
    from transforms.core import threads
    from transforms.stages.taggernet import MLPTaggerConfig

    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.worker_threads(0, 1) == 8 and threads.worker_threads(0, 4) == 2
    assert threads.worker_threads(3, 4) == 3 and threads.worker_threads(0, 16) == 1
    assert MLPTaggerConfig("m", "b", torch_threads=2).torch_threads == 2, "TaggerNet honours --torch_threads"
    first = threads.configure_process(threads.worker_threads(0, 1))
    assert threads.configure_process(first + 5) == first, "set once per process, never fought over"
    from threadpoolctl import threadpool_info

    assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas"), \
        "numpy's BLAS keeps to one thread: its spinning threads would take the cores of the models"


def test_batch_size_metric_never_pickles_the_batch(monkeypatch, photos):
    import pickle

    from transforms.core.model_handler import ElementModelHandler

    img, w, h = decode_image(photos["coffee"].read_bytes(), DecodeConfig())
    batch = [{**new_element("u"), "image": img, "features": np.zeros(1280, np.float32), "data": b"x" * 10}]

    def refuse(*args, **kwargs):
        raise AssertionError("pickled a batch just to measure it")

    monkeypatch.setattr(pickle, "dumps", refuse)
    size = ElementModelHandler(None).get_num_bytes(batch)
    assert size == img.size[0] * img.size[1] * 3 + 1280 * 4 + 10 + len("u") + 32


def test_a_learned_word_another_source_wrote_keeps_both_sources():
    """#34, point 1: the learned stage dropped its own entry for a word the tagger had written (a
    learned "hand tool" at 1.00 was lost under the tagger's 0.61), so the row named one source."""
    import numpy as np
    import torch

    from transforms.core.records import to_tags_row
    from transforms.handlers.learned import LearnedTaggerHandler
    from transforms.stages.taggernet import LoadedTagger, MLPTaggerConfig

    handler = object.__new__(LearnedTaggerHandler)
    handler._config = MLPTaggerConfig(model_dir="unused", backbone="b", top_k=5, min_score=0.5)
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2) * 10)
        net.bias.zero_()
    model = LoadedTagger(net, {"role": "adds", "vocabulary": ["hand tool", "painting"], "thresholds": [0.5, 0.5],
                               "calibration": {"a": 1.0, "b": 0.0}})
    tagger = {"name": "hand tool", "score": 0.61, "source": "tagger", "origin": None}
    [out] = handler.infer([{"uri": "u", "image_id": "i", "width": 1, "height": 1, "tags": [tagger],
                            "features": np.array([1.0, -1.0], np.float32)}], model)
    row = to_tags_row(out, "v")
    [hand_tool] = [t for t in row["tags"] if t["name"] == "hand tool"]
    assert hand_tool["source"] == "learned" and hand_tool["sources"] == ["learned", "tagger"]
    assert hand_tool["score"] > 0.61 and "painting" not in [t["name"] for t in row["tags"]]


def test_a_model_loads_once_per_configuration_across_a_jobs_shards():
    """The shards of one local job build a pipeline each: inside across_shards() a handler of the
    same configuration reuses the loaded model; outside it, every load is a load."""
    from transforms.core.kept import across_shards

    loads: list[str] = []

    class Counting(ElementModelHandler):
        def load_model(self):
            loads.append(self._config)
            return object()

    with across_shards():
        first, again = Counting("a").load_model(), Counting("a").load_model()
        other = Counting("b").load_model()
    assert first is again and other is not first and loads == ["a", "b"]
    Counting("a").load_model()
    Counting("a").load_model()
    assert loads == ["a", "b", "a", "a"], "no reuse outside a sharded job"


def test_batch_sizes_come_from_options_through_beams_own_model_handler():
    """#34: Beam's ModelHandler keeps min/max batch sizes for BatchElements; no copy of its own."""
    from apache_beam.ml.inference.base import ModelHandler

    from pipeline.flags import defaults
    from transforms.handlers import backbone

    handler = backbone.build(defaults(backbone_batch_size=12))
    assert handler.batch_elements_kwargs() == {"min_batch_size": 6, "max_batch_size": 12}
    assert type(handler).batch_elements_kwargs is ModelHandler.batch_elements_kwargs
    assert _Fragile(None).batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 64}
