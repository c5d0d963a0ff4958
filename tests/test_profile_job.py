"""The profile's stage rows come from the stage registry, and a model pool thread's samples count
for the stage whose model it runs."""

from __future__ import annotations

from benchmarks import profile_job
from transforms.core.registry import registered

POOL = "threading.py:1012;concurrent/futures/thread.py:58"  # a model pool thread's outer frames
ORT = "run (onnxruntime/capi/onnxruntime_inference_collection.py:406)"


def test_every_registered_stage_has_a_row():
    names = [name for name, _ in profile_job.stage_rows()]
    assert {s.name for s in registered()} <= set(names)
    assert len(names) == len(set(names))


def test_samples_count_for_the_stage_whose_model_runs():
    def stage(*frames: str) -> str:
        return profile_job.stage_of([POOL, *frames])

    assert stage("people (transforms/models/pose_model.py:95)", ORT) == "pose", "its pool thread, no handler frame"
    assert stage("infer (transforms/handlers/backbone.py:23)", "run (transforms/stages/backbone_onnx.py:80)", ORT) \
        == "backbone"
    assert stage("infer (transforms/handlers/everyday.py:30)", "forward (transforms/handlers/taggernet.py:40)") \
        == "everyday", "TaggerNet's module is no tagger's"
    assert stage("_decode_jpeg (transforms/ingest/decode.py:114)") == "decode"
    assert stage("unknown (somewhere/else.py:1)") == "other"
