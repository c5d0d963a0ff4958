"""The backbone on onnxruntime: the exported fp32 graph, static int8 with its guard, and auto."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest

from transforms.stages import backbone_onnx as bo
from transforms.stages.backbone import BackboneConfig, TorchBackbone, calibration_crops, load_backbone


@pytest.fixture(scope="module")
def torch_fp32():
    return TorchBackbone(BackboneConfig(precision="fp32", device="cpu"))


@pytest.fixture(scope="module")
def pixels(photos):
    return np.stack([calibration_crops(p.read_bytes())[0] for p in photos.values()])


def test_exported_fp32_graph_computes_what_torch_computes(torch_fp32, pixels):
    graph = bo.export(torch_fp32.body, torch_fp32.head, *torch_fp32.mean_std)
    feats, probs = bo.OnnxBackbone(graph, 2, True, "fp32")(pixels)
    ref_feats, ref_probs = torch_fp32(pixels)
    assert feats.shape == ref_feats.shape == (len(pixels), 1280)
    np.testing.assert_allclose(feats, ref_feats, atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-4)


def test_int8_keeps_the_top5_classes_and_is_cached(tmp_path, monkeypatch, pixels):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    int8 = load_backbone(BackboneConfig(precision="int8", device="cpu"))
    assert isinstance(int8, bo.OnnxBackbone) and int8.precision == "int8"
    (cached,) = (tmp_path / "image-tagger" / "onnx").glob("backbone-int8-*.onnx")
    fp32 = load_backbone(BackboneConfig(precision="fp32", device="cpu"))
    result = bo.guard(fp32, int8, pixels)
    assert result.top5_agreement == 1.0, result
    assert 0.0 < result.max_shift < 0.3  # int8 really is a different computation, but a close one
    stamp = cached.stat().st_mtime_ns
    load_backbone(BackboneConfig(precision="int8", device="cpu"))
    assert cached.stat().st_mtime_ns == stamp, "the second load reuses the cached int8 graph"
    # A truncated cache entry (a crash, a full disk) is never trusted: it is rebuilt.
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 3])
    again = load_backbone(BackboneConfig(precision="int8", device="cpu"))
    assert again.precision == "int8" and cached.read_bytes() == good


def test_int8_cache_works_with_the_temp_folder_on_another_filesystem(tmp_path, monkeypatch):
    import os
    import tempfile

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem apart from the cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TMPDIR", "/dev/shm")
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    int8 = load_backbone(BackboneConfig(precision="int8", device="cpu"))
    assert int8.precision == "int8"
    assert list((tmp_path / "image-tagger" / "onnx").glob("backbone-int8-*.onnx.sha256"))


def test_guard_refuses_a_path_that_tells_other_classes(torch_fp32, pixels):
    graph = bo.export(torch_fp32.body, torch_fp32.head, *torch_fp32.mean_std)
    fp32 = bo.OnnxBackbone(graph, 2, True, "fp32")
    assert bo.guard(fp32, fp32, pixels).passed

    class Shifted:
        def __call__(self, x):
            feats, probs = fp32(x)
            return feats, np.roll(probs, 7, axis=1)  # every class answered as another one

    result = bo.guard(fp32, Shifted(), pixels)  # type: ignore[arg-type]
    assert not result.passed and "top-5 agreement" in result.reason and result.top5_agreement < 0.5


def test_auto_keeps_fp32_unless_another_path_is_clearly_faster():
    """Each path "takes" a fixed time on an injected clock, so the choice never rides on load."""
    now = [0.0]

    def taking(seconds: float):
        def run(x):
            now[0] += seconds
        return run

    x = np.zeros((2, 4), np.uint8)
    choice, timings = bo.fastest({"fp32": taking(0.02), "int8": taking(0.002)}, x, clock=lambda: now[0])
    assert choice == "int8" and timings == pytest.approx({"fp32": 10.0, "int8": 1.0}), "ms per image of 2"
    assert bo.fastest({"fp32": taking(0.02), "bf16": taking(0.018)}, x, clock=lambda: now[0])[0] == "fp32"
    assert bo.fastest({"fp32": taking(0.02), "bf16": taking(0.02 / 1.3)}, x, clock=lambda: now[0])[0] == "bf16"


def test_auto_logs_its_choice_and_tells_the_fp32_classes(caplog, photos, pixels):
    with caplog.at_level(logging.INFO, logger="transforms.stages.backbone"):
        model = load_backbone(BackboneConfig(precision="auto", device="cpu"))
    assert "backbone int8 guard on" in caplog.text and "backbone --precision auto:" in caplog.text
    fp32 = load_backbone(BackboneConfig(precision="fp32", device="cpu"))
    top = [set(np.argsort(-p)[:5]) for p in model(pixels)[1]]
    assert [int(np.argmax(p)) in t for p, t in zip(fp32(pixels)[1], top, strict=True)] == [True] * len(pixels)


def test_auto_falls_back_when_int8_or_the_export_fails(monkeypatch, caplog, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("quantizer exploded")

    monkeypatch.setattr(bo, "quantize", broken)
    with caplog.at_level(logging.INFO, logger="transforms.stages.backbone"):
        model = load_backbone(BackboneConfig(precision="auto", device="cpu"))
    assert "int8 quantization failed (RuntimeError: quantizer exploded)" in caplog.text
    assert getattr(model, "precision", None) in ("fp32", "bf16")
    with pytest.raises(RuntimeError, match="quantizer exploded"):
        load_backbone(BackboneConfig(precision="int8", device="cpu"))
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path))  # no exported graph cached yet
    monkeypatch.setattr(bo, "export", broken)
    model = load_backbone(BackboneConfig(precision="auto", device="cpu"))
    assert isinstance(model, TorchBackbone), "a backbone the exporter cannot trace still runs in torch"
    with pytest.raises(RuntimeError):
        load_backbone(BackboneConfig(precision="fp32", device="cpu"))


def test_a_second_start_reuses_the_exported_graph_the_guard_and_the_choice(monkeypatch, tmp_path, pixels):
    """Worker start-up: what the first start built is cached by content; a later start neither
    exports, nor guards, nor times again, and says which numeric path it runs (provenance)."""
    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path))
    first = load_backbone(BackboneConfig(precision="auto", device="cpu"))
    assert re.fullmatch(r"fp32|int8:[0-9a-f]{12}|torch-bf16", first.path)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "onnx").glob("*.json")) == ["auto", "backbone", "guard"]

    def again(*args, **kwargs):
        raise AssertionError("built again on a later start")

    for name in ("export", "guard", "fastest"):  # quantize only finds its cached graph
        monkeypatch.setattr(bo, name, again)
    second = load_backbone(BackboneConfig(precision="auto", device="cpu"))
    assert second.path == first.path
    assert np.allclose(second(pixels)[1], first(pixels)[1], atol=1e-5)
    assert load_backbone(BackboneConfig(precision="fp32", device="cpu")).path == "fp32"


def test_resnet50_takes_the_same_paths(pixels):
    fp32 = load_backbone(BackboneConfig(name="resnet50", weights="none", precision="fp32", device="cpu"))
    feats, probs = fp32(pixels[:2])
    assert feats.shape == (2, 2048) and probs is not None and probs.shape == (2, 1000)


def test_int8_calibrates_on_the_tune_half_of_the_quality_key_only():
    from pipeline.quality.key import load_key

    tune = {n for n, p in load_key()["photos"].items() if p["split"] == "tune"}
    assert set(bo.CALIBRATION_PHOTOS) == tune, "int8 must never be calibrated on a report photo"


def test_worker_threads_may_remember_the_same_decision_at_once(tmp_path, monkeypatch):
    """DirectRunner's worker threads set up their backbones together: each writes its own
    partial file, so none finds another's renamed away (FileNotFoundError)."""
    import threading

    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path))
    start, errors, values = threading.Barrier(8), [], []

    def worker(i: int) -> None:
        start.wait()
        try:
            values.append(bo.remembered("decision.json", lambda: (time.sleep(0.01), {"choice": "int8"})[1]))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and values == [{"choice": "int8"}] * 8
    assert bo.recall("decision.json") == {"choice": "int8"}
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["decision.json"]  # no partial left


def test_concurrent_builders_of_one_cached_file_build_it_once(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("IMAGE_TAGGER_CACHE", str(tmp_path))
    start, builds, paths = threading.Barrier(6), [], []

    def build(path) -> None:
        builds.append(path)
        time.sleep(0.05)
        path.write_bytes(f"graph {len(builds)}".encode())  # a builder's own bytes

    def worker() -> None:
        start.wait()
        paths.append(bo.cached_file("graph.onnx", build))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(set(paths)) == 1
    assert bo.recorded_sha256(paths[0]) == bo.sha256_of(paths[0])
