"""The stage registry: order, working size, field dropping, options, schema and legend all
derive from what each stage declares."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.flags import defaults
from pipeline.options import decode_config
from transforms.core.registry import (
    REGISTRY,
    Stage,
    colours,
    needed_after,
    ordered,
    register,
    registered,
    tag_sources,
    tags_schema,
    working_size,
)


def _off(o, num_workers=1):
    return None


def _stage(name, reads=(), writes=(), **kw):
    return Stage(name=name, reads=tuple(reads), writes=tuple(writes), build="tests.test_stage:_off", **kw)


def test_a_stage_that_reads_every_tag_source_runs_after_each_stage_that_writes_one():
    writer = _stage("w", reads=["features"], writes=["tags:w"])
    late = _stage("late", reads=["tags:*"], writes=["tags:late"])
    other = _stage("o", reads=["image"], writes=["features"])
    assert [s.name for s in ordered([late, writer, other])] == ["o", "w", "late"]


def test_graph_order_follows_declared_fields():
    names = [s.name for s in registered()]
    assert names == ["fingerprint", "backbone", "tagger", "detector", "zero_shot", "expansion", "embedding",
                     "learned", "everyday", "pose", "worn", "review"]
    a, b, c = _stage("a", writes=["x"]), _stage("b", reads=["x"], writes=["y"]), _stage("c", reads=["y"])
    assert [s.name for s in ordered([c, b, a])] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cycle"):
        ordered([_stage("p", reads=["q"], writes=["p"]), _stage("q", reads=["p"], writes=["q"])])


def test_working_size_is_what_the_enabled_stages_need(tmp_path):
    stages = registered()
    o = defaults(detector="yolox_nano", detector_size=416)
    assert working_size(stages, o) == (256, 416)
    o.detector_size = 320  # the backbone's 256 short side still decides the decode size
    assert working_size(stages, o) == (256, 320)
    o.detector = "fasterrcnn_resnet50_fpn_v2"  # torchvision resizes the short side to 800
    assert working_size(stages, o) == (800, 256)  # the pose model's 256 px long side
    config = decode_config(o, stages)
    assert (config.min_short_side, config.keep_data) == (800, True)  # the fingerprint reads the bytes
    backbone_only = [REGISTRY["backbone"]]
    assert decode_config(o, backbone_only).keep_data is False


def test_heavy_fields_are_dropped_after_their_last_reader():
    stages = registered()
    index = {s.name: i for i, s in enumerate(stages)}
    assert "data" not in needed_after(stages, index["fingerprint"])
    assert "image" in needed_after(stages, index["backbone"])  # the detector still needs pixels
    assert "image" in needed_after(stages, index["detector"])  # the pose model reads them last
    assert "image" not in needed_after(stages, index["pose"])
    assert "features" in needed_after(stages, index["expansion"])  # --embeddings reads them


def test_schema_legend_and_sources_come_from_the_stages():
    schema = tags_schema()
    assert {"content_sha256", "phash", "embedding"} <= set(schema.names)
    assert schema.field("embedding").type == pa.list_(pa.float16())
    assert tag_sources() == ("tagger", "detector", "zero_shot", "expansion", "learned", "everyday", "pose", "worn",
                             "review")
    assert set(colours()) == set(tag_sources())


def test_a_new_stage_needs_only_its_module_and_one_line(monkeypatch, tmp_path, photos, capsys):
    """docs/ARCHITECTURE.md's worked example: tests/ocr_stage.py plus one line in MODULES, and
    the options, launch checks, graph order, decoder size, schema, legend and quality follow."""
    from pipeline import commands, tag
    from pipeline.quality import key
    from transforms.core import registry

    monkeypatch.setattr(registry, "MODULES", (*registry.MODULES, "tests.ocr_stage"))
    registry.registered.cache_clear()
    try:
        stages = registered()
        names = [s.name for s in stages]
        assert names.index("ocr") > names.index("fingerprint")
        # #34: registered after review, OCR still runs before it (review reads every tag source),
        # so a reviewer's rejection reaches OCR's tags too.
        assert names.index("ocr") < names.index("review")
        from transforms.handlers.review import apply
        from transforms.knowledge.corrections import Correction

        read = {"tags": [{"name": "exit", "score": 0.9, "source": "ocr", "origin": None}]}
        assert apply(read, Correction("u", "i", "c", rejected=("exit",)))["tags"] == []
        commands.tag_help()
        assert "--ocr_languages" in capsys.readouterr().out
        listing = tmp_path / "in.txt"
        listing.write_text(f"{photos['chelsea']}\n")
        with pytest.raises(SystemExit, match=r"--ocr_languages: unknown \['xx'\]"):
            tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--ocr_languages", "xx"])
        assert not (tmp_path / "out").exists()
        o = defaults(detector="yolox_nano", detector_size=416)
        assert working_size(stages, o)[1] == 1024
        assert "text" in tags_schema().names and "ocr" in tag_sources()
        assert registry.colours()["ocr"] == "#8c564b" and "ocr" in registry.quality_sources("everyday")
        rows = {"p": {"tags": [{"name": "cat", "score": 0.9, "source": "ocr", "origin": None}]}}
        truth = {"photos": {"p": {"accepted": ["cat"], "expected": ["cat"], "vocabulary": []}}}
        counts = key.judge(rows, truth, ["p"])
        assert (counts["ocr"].written, counts["ocr"].found, counts["expected"].found) == (1, 1, 1)
        with pytest.raises(ValueError, match="registered twice"):
            register(_stage("ocr", reads=["other"]))
    finally:
        REGISTRY.pop("ocr", None)
        registry.registered.cache_clear()


def test_every_stage_declares_a_consistent_contract():
    for stage in registered():
        assert stage.reads or stage.writes
        for column in stage.columns:
            assert column.name in stage.writes, (stage.name, column.name)
        if stage.tag_source:
            assert f"tags:{stage.tag_source}" in stage.writes


def test_every_field_a_stage_reads_is_one_ingest_or_a_stage_writes():
    """Reads order the graph (registry.ordered): a misspelt read would drop an ordering edge
    silently, so each names a field decode gives or another stage declares it writes."""
    from transforms.core.registry import EVERY_TAG, PIXELS

    stages = registered()
    for stage in stages:
        written = {f for other in stages if other is not stage for f in other.writes}
        for field in stage.reads:
            assert field in PIXELS or field == EVERY_TAG or field in written, (stage.name, field)


def test_the_report_shows_a_source_no_stage_declares():
    from pipeline.report import OTHER, _card

    card = _card({"uri": "u", "width": 1, "height": 1, "objects": [],
                  "tags": [{"name": "x", "score": 0.9, "source": "ocr", "origin": None}]}, "")
    [tag] = card["tags"]
    assert tag["colour"] == OTHER and tag["name"] == "x", "an unknown source gets the neutral colour, not a KeyError"


def test_source_names_are_written_once_in_their_stage_declaration():
    """#34: a tag source's name is its stage module's SOURCE; no other module types it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    typed = re.compile(r"""["']source["']\]?\s*(?::|==|!=)\s*["'](\w+)["']""")
    found = [f"{path.relative_to(root)}: {m.group(0)}" for folder in ("transforms", "pipeline")
             for path in sorted((root / folder).rglob("*.py")) for m in typed.finditer(path.read_text())]
    assert found == []
    for stage in registered():
        if stage.tag_source:
            module = __import__(f"transforms.stages.{stage.name}", fromlist=["SOURCE"])
            assert module.SOURCE == stage.tag_source == stage.name
