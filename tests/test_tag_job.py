"""End to end: the tag job on DirectRunner over real photos, generated images and bad input."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from pipeline import tag
from tests.conftest import read_table, send_bytes
from transforms.core.records import ERRORS_SCHEMA, TAGS_SCHEMA, image_id_for
from transforms.core.registry import registered, tags_schema
from transforms.knowledge.calibration import fingerprint
from transforms.stages.tagger import table_fingerprint


def _photo_like(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def job(tmp_path_factory, photos):
    """Run the job once over a mixed input list; yield (uris, tags rows, error rows, counters)."""
    root = tmp_path_factory.mktemp("job")
    uris = [str(photos[n]) for n in ("chelsea", "coffee", "motorcycle", "grace_hopper", "astronaut")]
    big = root / "big.jpg"
    _photo_like(1600, 1200, 1).save(big, quality=90)
    small = root / "small.gif"
    _photo_like(64, 48, 2).convert("P").save(small)
    wide = root / "wide.png"
    _photo_like(3000, 20, 3).save(wide)
    text = root / "readme.jpg"
    text.write_text("this is not an image")
    missing = root / "missing.jpg"
    uris += [str(big), str(small), str(wide), str(text), str(missing)]
    listing = root / "input.txt"
    listing.write_text("\n".join(uris) + "\n\n")
    out = root / "out"
    counters = tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--num_shards", "2"])
    return uris, read_table(out, "tags"), read_table(out, "errors"), counters, root


def _tags(rows, name):
    row = next(r for r in rows if r["uri"].endswith(name))
    return row, {t["name"] for t in row["tags"]}


def test_every_input_ends_in_exactly_one_table(job):
    uris, tags, errors, counters, _ = job
    out_uris = tags.column("uri").to_pylist() + errors.column("uri").to_pylist()
    assert sorted(out_uris) == sorted(uris)
    assert counters["inputs"] == len(uris) == counters["tagged"] + counters["failed"]
    assert tags.num_rows == counters["tagged"] == 8


def test_schemas_are_the_documented_ones(job):
    _, tags, errors, _, _ = job
    assert tags.schema.equals(tags_schema(), check_metadata=False)
    assert tags.schema.names[: len(TAGS_SCHEMA)] == TAGS_SCHEMA.names, "the base columns come first"
    assert errors.schema.equals(ERRORS_SCHEMA, check_metadata=False)


def test_bad_inputs_are_dead_letters_with_clear_types(job):
    _, _, errors, _, _ = job
    by_name = {r["uri"].rsplit("/", 1)[-1]: r for r in errors.to_pylist()}
    assert by_name["readme.jpg"]["stage"] == "decode"
    assert by_name["readme.jpg"]["error_type"] == "not_an_image"
    assert by_name["missing.jpg"]["stage"] == "fetch"
    assert by_name["missing.jpg"]["error_type"] == "not_found"
    assert all(r["image_id"] == image_id_for(r["uri"]) for r in errors.to_pylist())


def test_real_photos_get_correct_everyday_tags(job):
    _, tags, _, _, _ = job
    rows = tags.to_pylist()
    assert "cat" in _tags(rows, "chelsea.png")[1]
    assert {"coffee", "espresso"} & _tags(rows, "coffee.png")[1]
    assert {"motorcycle", "moped"} & _tags(rows, "motorcycle_left.png")[1]


def test_rows_carry_size_ids_versions(job, photos):
    _, tags, _, _, root = job
    rows = {r["uri"]: r for r in tags.to_pylist()}
    chelsea = rows[str(photos["chelsea"])]
    assert (chelsea["width"], chelsea["height"]) == Image.open(photos["chelsea"]).size
    assert (rows[str(root / "big.jpg")]["width"], rows[str(root / "big.jpg")]["height"]) == (1600, 1200)
    assert (rows[str(root / "wide.png")]["width"], rows[str(root / "wide.png")]["height"]) == (3000, 20)
    for uri, row in rows.items():
        assert row["image_id"] == image_id_for(uri)
        assert "backbone=efficientnet_lite0" in row["model_version"]
        assert "glove-6b-50d" in row["model_version"]
        assert "detector=yolox_nano@615e266100c3" in row["model_version"]
        assert f"tagger=imagenet_hierarchy@{table_fingerprint()}" in row["model_version"], "which word table"
        assert f"calibration={fingerprint('embedded')}" in row["model_version"], "which calibration scored it"
        assert re.fullmatch(r"fp32|int8:[0-9a-f]{12}|torch-(fp32|bf16)", row["backbone_path"]), "which numeric path"


def test_detected_objects_are_written_and_merged(job, photos):
    _, tags, _, _, _ = job
    rows = {r["uri"]: r for r in tags.to_pylist()}
    hopper = rows[str(photos["grace_hopper"])]
    assert {"person", "tie"} <= {o["label"] for o in hopper["objects"]}
    assert {"person", "tie"} <= {t["name"] for t in hopper["tags"] if "detector" in t["sources"]}
    for row in rows.values():
        for obj in row["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_expansion_tags_are_marked_and_scored_at_most_their_origin(job):
    _, tags, _, _, _ = job
    seen = 0
    for row in tags.to_pylist():
        scores = {t["name"]: t["score"] for t in row["tags"] if t["source"] in ("tagger", "detector")}
        names = [t["name"] for t in row["tags"]]
        assert len(names) == len(set(names)), "a tag name appears once per image"
        ran = {part.split("=", 1)[0] for part in row["model_version"].split(";")}
        sources = {s.tag_source for s in registered() if s.tag_source and s.name in ran}
        assert {"tagger", "detector", "expansion", "everyday", "worn", "pose"} <= sources, ran  # the default job's
        for t in row["tags"]:
            assert t["source"] in sources, "a source among the stages that ran (the row's model_version)"
            seen += "expansion" in t["sources"]  # the tie box's garment: written by worn too, at the person's chance
            if t["source"] == "expansion":
                assert t["origin"] in scores
                assert t["score"] <= scores[t["origin"]]
            elif t["source"] == "worn":  # what a person wears, at the person's chance
                assert t["origin"] == "person" and t["score"] == max(u["score"] for u in row["tags"] if u["name"] == "person")
            else:
                assert t["origin"] is None
    assert seen > 0


def test_http_inputs_are_fetched(tmp_path, http_server, photos):
    base, routes = http_server
    buf = io.BytesIO()
    Image.open(photos["chelsea"]).convert("RGB").save(buf, "JPEG", quality=90)
    routes["/cat.jpg"] = send_bytes(buf.getvalue())
    listing = tmp_path / "urls.csv"
    listing.write_text(f"id,url\n1,{base}/cat.jpg\n2,{base}/gone.jpg\n")
    out = tmp_path / "out"
    counters = tag.run(["--input", str(listing), "--output", str(out), "--expansion_per_tag", "0",
                        "--allow_private_networks"])
    rows = read_table(out, "tags").to_pylist()
    errors = read_table(out, "errors").to_pylist()
    assert counters["inputs"] == 2
    assert len(rows) == 1 and "cat" in {t["name"] for t in rows[0]["tags"]}
    assert [e["error_type"] for e in errors] == ["http_404"]
    assert "expansion" not in rows[0]["model_version"]


def test_ssrf_guard_is_on_by_default(tmp_path, http_server):
    base, routes = http_server
    routes["/cat.jpg"] = send_bytes(b"never served")
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{base}/cat.jpg\n")
    counters = tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--detector", "none",
                        "--max_error_rate", "1"])
    errors = read_table(tmp_path / "out", "errors").to_pylist()
    assert counters["failed"] == 1
    assert [(e["stage"], e["error_type"]) for e in errors] == [("fetch", "blocked_address")]


def test_ingest_only_writes_one_row_per_image_without_models(tmp_path, photos):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n{photos['coffee']}\n{tmp_path / 'gone.jpg'}\n")
    out = tmp_path / "out"
    counters = tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--ingest_only"])
    rows = read_table(out, "tags").to_pylist()
    assert counters["tagged"] == 2 and len(read_table(out, "errors")) == 1
    assert all(r["tags"] == [] and r["objects"] == [] and r["width"] > 0 for r in rows)
    assert all(r["model_version"] == "" for r in rows), "no model ran"
