"""Does a batched YOLOX-Nano run faster on CPU? The embedded ONNX graph has a fixed batch of 1;
this script makes the batch dimension dynamic (the input and output dims, and the three
Reshape targets [1, 85, -1] -> [0, 85, -1], 0 copying the batch), checks that batch-8 outputs
equal batch-1 outputs on the bundled photos, and times both.

    .venv/bin/python benchmarks/yolox_batch.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def dynamic_batch(path: str) -> bytes:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    changed = 0
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.int64 and arr.tolist() == [1, 85, -1]:
            init.CopyFrom(numpy_helper.from_array(np.array([0, 85, -1], np.int64), init.name))
            changed += 1
    assert changed == 3, f"expected the 3 YOLOX head reshapes, found {changed}"
    del graph.value_info[:]  # shapes inferred for batch 1 would contradict a larger batch
    return model.SerializeToString()


def main() -> None:
    import onnxruntime as ort

    from pipeline.commands import Parser  # one-line refusals, as every command's
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.knowledge.samples import sample_photos
    from transforms.stages.detector import DetectorConfig, letterbox, yolox_path

    parser = Parser("benchmarks/yolox_batch.py", __doc__ or "")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    path = yolox_path(DetectorConfig())
    single = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    batched = ort.InferenceSession(dynamic_batch(path), options, providers=["CPUExecutionProvider"])
    images = [decode_image(p.read_bytes(), DecodeConfig())[0] for p in sample_photos().values()][:8]
    xs = [np.ascontiguousarray(letterbox(im)[0][:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
          for im in images]
    batch = np.concatenate(xs)
    reference = [single.run(None, {"images": x})[0][0] for x in xs]
    out = batched.run(None, {"images": batch})[0]
    diff = max(float(np.abs(out[i] - reference[i]).max()) for i in range(len(xs)))
    print(f"batch-{len(xs)} vs batch-1 outputs: max abs difference {diff:g}")
    one, eight = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for x in xs:
            single.run(None, {"images": x})
        one.append((time.perf_counter() - t) / len(xs) * 1000)
        t = time.perf_counter()
        batched.run(None, {"images": batch})
        eight.append((time.perf_counter() - t) / len(xs) * 1000)
    print(f"ms per image, {args.threads} threads, median of {args.repeats}: batch 1 {statistics.median(one):.2f} "
          f"(min {min(one):.2f}), batch {len(xs)} {statistics.median(eight):.2f} (min {min(eight):.2f}); "
          f"ratio {statistics.median(one) / statistics.median(eight):.2f}")


if __name__ == "__main__":
    main()
