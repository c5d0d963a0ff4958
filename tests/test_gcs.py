"""GCS for real: the tag job with its input list, images, detector weights, word vectors,
vocabulary and output all on gs://, through google-cloud-storage and Beam's GCS filesystem,
against gcp-storage-emulator on 127.0.0.1."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline import tag
from tests.gcs_emulator import use_anonymous_gcs_if_emulated
from transforms.knowledge.vectors import load_vectors
from transforms.models import pose_files
from transforms.stages.detector import YOLOX_SHA256, DetectorConfig, yolox_path
from transforms.stages.pose import MOVENET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def emulator():
    port = _free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen([str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("gcp-storage-emulator did not start")
    old = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    os.environ["GOOGLE_CLOUD_PROJECT"] = "test-project"
    assert use_anonymous_gcs_if_emulated()
    from google.cloud import storage

    client = storage.Client(project="test-project")
    client.create_bucket("tagger-test")
    try:
        yield client.bucket("tagger-test")
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _glove_text(words: int) -> bytes:
    kv = load_vectors()
    lines = [f"{w} {' '.join(f'{x:.5f}' for x in kv.vectors[i])}" for i, w in enumerate(kv.index_to_key[:words])]
    return ("\n".join(lines) + "\n").encode()


def _read_gcs_table(pattern: str) -> pa.Table:
    files = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    assert files, pattern
    tables = []
    for f in files:
        with FileSystems.open(f) as fh:
            tables.append(pq.read_table(io.BytesIO(fh.read())))
    return pa.concat_tables(tables)


def test_tag_job_entirely_on_gcs(emulator, photos, pose_model_files, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path / "cache"))
    bucket = emulator
    uris = []
    for name in ("chelsea", "coffee", "grace_hopper"):
        blob = f"images/{photos[name].name}"
        bucket.blob(blob).upload_from_filename(str(photos[name]))
        uris.append(f"gs://tagger-test/{blob}")
    bucket.blob("images/broken.jpg").upload_from_string(b"<html>no</html>")
    uris += ["gs://tagger-test/images/broken.jpg", "gs://tagger-test/images/missing.jpg"]
    bucket.blob("lists/day1.csv").upload_from_string("id,uri\n" + "".join(f"{i},{u}\n" for i, u in enumerate(uris)))
    bucket.blob("models/yolox_nano.onnx").upload_from_filename(yolox_path(DetectorConfig()))
    bucket.blob("vectors/glove-20k.txt").upload_from_string(_glove_text(20000))
    bucket.blob("vocab/everyday.txt").upload_from_string(b"animal\npet\ndrink\nbeverage\nperson\nvehicle\n")
    pose_json, pose_weights = pose_model_files
    bucket.blob("models/pose/model.json").upload_from_string(pose_json)
    for name in pose_files.weight_names(pose_json):
        bucket.blob(f"models/pose/{name}").upload_from_string(pose_weights)

    out = "gs://tagger-test/tagged/"
    args = ["--input", "gs://tagger-test/lists/day1.csv", "--output", out, "--partition", "dt=2026-11-29",
            "--allowed_schemes", "gs",
            "--detector_weights", "gs://tagger-test/models/yolox_nano.onnx",
            "--detector_weights_sha256", YOLOX_SHA256,
            "--pose_model", "gs://tagger-test/models/pose/model.json", "--pose_model_sha256", MOVENET.sha256,
            "--word_vectors", "gs://tagger-test/vectors/glove-20k.txt",
            "--vocabulary", "gs://tagger-test/vocab/everyday.txt",
            "--zero_shot_min_score", "0", "--num_shards", "2"]
    start = time.monotonic()
    counters = tag.run(args)
    assert time.monotonic() - start < 120, "no 27 s credential discovery per process"
    rows = _read_gcs_table(out + "tags/dt=2026-11-29/*.parquet").to_pylist()
    errors = _read_gcs_table(out + "errors/dt=2026-11-29/*.parquet").to_pylist()
    assert counters["inputs"] == 5 and len(rows) == 3 and len(errors) == 2
    assert sorted(e["error_type"] for e in errors) == ["not_an_image", "not_found"]
    by_name = {r["uri"].rsplit("/", 1)[-1]: r for r in rows}
    assert "cat" in {t["name"] for t in by_name["chelsea.png"]["tags"]}
    assert "person" in {o["label"] for o in by_name["grace_hopper.jpg"]["objects"]}
    assert any(t["source"] == "zero_shot" for t in by_name["coffee.png"]["tags"])
    assert any("expansion" in t["sources"] for t in by_name["grace_hopper.jpg"]["tags"]), "the tie box's garment"
    assert "gs://tagger-test/vectors/glove-20k.txt" in by_name["coffee.png"]["model_version"]
    cached = sorted(p.suffix for p in (tmp_path / "cache").iterdir() if p.is_file())  # onnx/: derived graphs
    assert cached == [".bin", ".json", ".onnx", ".txt", ".version", ".version", ".version"], \
        "gs:// artifacts are cached; the unchecksummed ones are versioned"
    assert by_name["grace_hopper.jpg"]["pose_person"] > 0.9, "the pose model read from gs://"

    # A rerun of the partition with --skip_existing tags nothing and keeps every row.
    with pytest.raises(SystemExit, match="already holds"):
        tag.run(args)
    again = tag.run([*args, "--skip_existing"])
    assert again.get("tagged", 0) == 0 and again["skipped_existing"] == 3
    rows_after = _read_gcs_table(out + "tags/dt=2026-11-29/*.parquet").to_pylist()
    assert len(_read_gcs_table(out + "errors/dt=2026-11-29/*.parquet")) == 2, "retried, still dead letters"
    assert not list(bucket.list_blobs(prefix="tagged/_staging/")) and not bucket.blob("tagged/_lock.json").exists()
    assert sorted(r["image_id"] for r in rows_after) == sorted(r["image_id"] for r in rows)
    assert np.all([r["uri"].startswith("gs://") for r in rows_after])
