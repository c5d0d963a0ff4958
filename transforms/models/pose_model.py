"""The pose model on onnxruntime: the TF.js graph run in torch once, traced to ONNX.

Why traced: the graph's input is fixed (one 256 x 256 photo), so every shape it computes is a
constant, and onnxruntime runs the traced graph two to three times as fast as torch runs the
graph op by op on a CPU (docs/BENCHMARKS.md). The traced graph is checked against the graph on
a photo it was not traced on, then cached by the model's digest, the input side, the runner's
source and torch's version, so a worker traces it once per machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from transforms.core.threads import device_session, onnx_session_options, parallel_map
from transforms.models import tfjs_graph
from transforms.models.tfjs_graph import GraphModel
from transforms.stages.backbone_onnx import cached_file
from transforms.stages.detector import letterbox
from transforms.stages.pose import PoseConfig, PoseModelSpec


def export(graph: GraphModel, spec: PoseModelSpec) -> bytes:
    """ONNX bytes of the graph, traced on a black photo (its shapes never depend on the pixels)."""
    import torch

    class Traced(torch.nn.Module):
        def forward(self, pixels: Any) -> Any:
            return graph(pixels)

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes read as Python numbers
        torch.onnx.export(Traced().eval(), (torch.zeros(1, spec.side, spec.side, 3, dtype=torch.int32),), buffer,  # type: ignore[arg-type]
                          input_names=["pixels"], output_names=["people"], opset_version=17, dynamo=False)
    return buffer.getvalue()


def traced(model_json: bytes, weights: bytes, spec: PoseModelSpec) -> Path:
    """The cached ONNX file of the graph, traced on a miss (torch is imported only then)."""
    runner = Path(tfjs_graph.__file__).read_bytes() + Path(__file__).read_bytes()
    traced_for = f"{spec.side}:{importlib.metadata.version('torch')}".encode()  # the input side is traced in
    key = hashlib.sha256(model_json + weights + runner + traced_for).hexdigest()[:24]

    def build(path: Path) -> None:
        graph = GraphModel(model_json, weights)
        onnx = export(graph, spec)
        check_trace(graph, onnx, spec)
        path.write_bytes(onnx)

    return cached_file(f"pose-{spec.name}-{key}.onnx", build)


TRACE_TOLERANCE = 1e-3


def check_trace(graph: GraphModel, onnx: bytes, spec: PoseModelSpec) -> None:
    """The traced graph must answer a photo it was not traced on as the graph does: tracing
    turns every number the graph reads off a tensor into a constant, which is right only where
    those numbers are shapes (a graph whose shapes follow its pixels is refused, never cached)."""
    import onnxruntime as ort
    import torch

    pixels = np.random.default_rng(0).integers(0, 256, (1, spec.side, spec.side, 3), dtype=np.int32)
    with torch.inference_mode():
        eager = graph(torch.from_numpy(pixels)).numpy()
    session = ort.InferenceSession(onnx, onnx_session_options(), providers=["CPUExecutionProvider"])
    gap = float(np.abs(session.run(None, {"pixels": pixels})[0] - eager).max())
    if not gap <= TRACE_TOLERANCE:
        raise tfjs_graph.GraphError(f"the traced graph differs from the graph by {gap:.2g} on a photo it was not "
                                    "traced on: its shapes depend on its input")


class PoseModel:
    """The model's people on photos: keypoints, boxes and person scores, raw."""

    def __init__(self, model_json: bytes, weights: bytes, config: PoseConfig):
        self.spec = config.spec
        self.session, self.threads = device_session(str(traced(model_json, weights, self.spec)), config.device,
                                                    config.torch_threads, config.num_workers)

    def people(self, image: Image.Image) -> np.ndarray:
        """[people, 56]: the model's raw output for one photo, pasted top-left on black at most
        at its own size (an enlarged small portrait is a face filling the frame, which the model
        scores as less of a person: docs/QUALITY.md)."""
        canvas, _ = letterbox(image.convert("RGB"), self.spec.side, fill=0, grow=False)
        return self.session.run(None, {"pixels": canvas.astype(np.int32)[None]})[0][0]

    def __call__(self, images: list[Image.Image]) -> list[np.ndarray]:
        """[people, 56] for each photo."""
        return parallel_map(self.people, images, self.threads)

    def scores(self, images: list[Image.Image]) -> list[float]:
        """Each photo's best person score."""
        return [float(p[:, self.spec.person_column].max()) for p in self(images)]
