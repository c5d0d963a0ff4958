"""How the pose model runs fastest on a CPU: TensorFlow.js's graph run op by op in torch (the
reader, transforms/models/tfjs_graph.py) against the same graph traced to ONNX and run on
onnxruntime (what the pose stage loads), on the bundled photos, one thread each, same run.
Also checks the two agree.

    .venv/bin/python benchmarks/pose_runtime.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import onnxruntime as ort
    import torch

    from pipeline.commands import Parser  # one-line refusals, as every command's
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.knowledge.samples import sample_photos
    from transforms.models.pose_files import embedded
    from transforms.models.pose_model import traced
    from transforms.models.tfjs_graph import GraphModel
    from transforms.stages.detector import letterbox
    from transforms.stages.pose import MOVENET

    parser = Parser("benchmarks/pose_runtime.py", __doc__ or "")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model_json, weights = embedded(MOVENET)
    torch.set_num_threads(args.threads)
    graph = GraphModel(model_json, weights)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    session = ort.InferenceSession(str(traced(model_json, weights, MOVENET)), options, providers=["CPUExecutionProvider"])
    images = [decode_image(p.read_bytes(), DecodeConfig())[0] for p in sample_photos().values()]
    xs = [letterbox(im.convert("RGB"), MOVENET.side, fill=0, grow=False)[0].astype(np.int32)[None] for im in images]

    def eager(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return graph(torch.from_numpy(x)).numpy()

    def onnx(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"pixels": x})[0]

    worst = max(float(np.abs(eager(x) - onnx(x)).max()) for x in xs)
    timings = {}
    for name, run in (("torch, op by op", eager), ("onnxruntime, traced", onnx)):
        per_round = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for x in xs:
                run(x)
            per_round.append((time.perf_counter() - start) / len(xs) * 1000)
        timings[name] = statistics.median(per_round)
        print(f"{name:<22} {timings[name]:6.1f} ms/photo (median of {args.repeats} rounds over {len(xs)} photos, "
              f"{args.threads} thread{'s' if args.threads > 1 else ''})")
    print(f"traced / op by op speed: {timings['torch, op by op'] / timings['onnxruntime, traced']:.2f}x; "
          f"largest output difference {worst:.1e}")


if __name__ == "__main__":
    main()
