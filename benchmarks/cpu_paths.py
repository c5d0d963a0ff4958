"""Which CPU path is fastest for each model, and what int8 costs in agreement.

    .venv/bin/python benchmarks/cpu_paths.py [--repeats 15]

On the bundled real photos (transforms/knowledge/samples.py), with the worker's threads:
- backbone (EfficientNet-Lite0, batch 8): torch fp32, torch bf16 autocast, onnxruntime fp32 and
  static int8 (the product's paths, transforms/stages/backbone_onnx.py), the onnxruntime ones both
  with all threads inside one run and split across images (transforms/core/threads.py); int8's
  top-5 agreement and largest probability shift against fp32 on the held-out photos.
- detector (YOLOX-Nano, 416 px): all threads inside one image vs one thread per image with
  images side by side; a static int8 graph (opset raised to 13 for per-channel weights, the
  9 head output convolutions kept in float, MinMax on the tune photos and their mirror images)
  and its agreement with fp32: boxes of the same label with IoU >= 0.8, both ways.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ms_per_image(fn, n_images: int, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / n_images * 1000


def backbone(repeats: int, threads: int) -> None:
    from transforms.stages import backbone_onnx as bo
    from transforms.stages.backbone import BackboneConfig, TorchBackbone, calibration_crops, load_backbone

    photos = bo.int8_photos()
    assert photos is not None, bo.NO_INT8_PHOTOS
    _, held = photos
    pixels = np.stack([calibration_crops(p.read_bytes())[0] for p in held])[:8]
    fp32_torch = TorchBackbone(BackboneConfig(precision="fp32", device="cpu"))
    bf16_torch = TorchBackbone(BackboneConfig(precision="bf16", device="cpu"))
    graph = bo.export(fp32_torch.body, fp32_torch.head, *fp32_torch.mean_std)
    int8 = load_backbone(BackboneConfig(precision="int8", device="cpu"))
    assert isinstance(int8, bo.OnnxBackbone)
    inside = bo.OnnxBackbone(graph, 1, True, "fp32")
    inside.session = bo.session(graph, threads)  # one run uses every thread
    split = bo.OnnxBackbone(graph, threads, True, "fp32")
    rows = {
        "torch fp32": fp32_torch,
        "torch bf16 autocast": bf16_torch,
        "onnxruntime fp32, threads inside the run": inside,
        "onnxruntime fp32, batch split across threads": split,
        "onnxruntime int8, batch split across threads": int8,
    }
    print(f"\nbackbone, batch {len(pixels)}, {threads} threads, median of {repeats}")
    for name, model in rows.items():
        print(f"  {name:<46} {ms_per_image(lambda m=model: m(pixels), len(pixels), repeats):6.2f} ms/image")
    result = bo.guard(split, int8, pixels)
    print(f"  int8 vs fp32 on {result.photos} held-out photos: top-5 agreement {result.top5_agreement:.2f}, "
          f"largest probability shift {result.max_shift:.3f}")


def _detections(session, x):
    from transforms.stages.detector import decode_yolox, nms

    boxes, scores, labels = decode_yolox(session.run(None, {"images": x})[0][0], 0.35)
    keep = nms(boxes, scores, labels, 0.45)
    return boxes[keep], labels[keep]


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detector(repeats: int, threads: int) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from PIL import Image

    from transforms.core.threads import parallel_map
    from transforms.ingest.decode import DecodeConfig, decode_image
    from transforms.knowledge.samples import sample_photos
    from transforms.stages.backbone_onnx import CALIBRATION_PHOTOS, session
    from transforms.stages.detector import DetectorConfig, letterbox, yolox_path

    def prep(image):
        canvas, _ = letterbox(image)
        return np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)

    photos = {n: decode_image(p.read_bytes(), DecodeConfig())[0] for n, p in sample_photos(everything=True).items()}
    xs = {n: prep(im) for n, im in photos.items()}
    path = yolox_path(DetectorConfig())
    inside, single = session(path, threads), session(path)
    batch = list(xs.values())[:8]
    print(f"\ndetector (YOLOX-Nano 416), {threads} threads, median of {repeats}")
    t_inside = ms_per_image(lambda: [inside.run(None, {"images": x}) for x in batch], len(batch), repeats)
    t_split = ms_per_image(lambda: parallel_map(lambda x: single.run(None, {"images": x}), batch, threads),
                           len(batch), repeats)
    print(f"  {'fp32, threads inside each image':<46} {t_inside:6.2f} ms/image")
    print(f"  {'fp32, one thread per image, side by side':<46} {t_split:6.2f} ms/image")
    with tempfile.TemporaryDirectory() as tmp:
        raised, prepared, quantized = (f"{tmp}/{n}.onnx" for n in ("opset13", "pre", "int8"))
        onnx.save(version_converter.convert_version(onnx.load(path), 13), raised)
        quant_pre_process(raised, prepared)
        graph = onnx.load(prepared)
        feeds = {i: n for n in graph.graph.node for i in n.input}
        head = [n.name for n in graph.graph.node if n.op_type == "Conv" and any(
            feeds.get(o) is not None and feeds[o].op_type in ("Concat", "Sigmoid") for o in n.output)]
        calibration = [x for n in CALIBRATION_PHOTOS if n in photos
                       for x in (xs[n], prep(photos[n].transpose(Image.Transpose.FLIP_LEFT_RIGHT)))]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter(calibration)

            def get_next(self):
                item = next(self.items, None)
                return None if item is None else {"images": item}

        quantize_static(prepared, quantized, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head)
        int8 = session(quantized)
        t_int8 = ms_per_image(lambda: parallel_map(lambda x: int8.run(None, {"images": x}), batch, threads),
                              len(batch), repeats)
        print(f"  {'int8 (per-channel), one thread per image':<46} {t_int8:6.2f} ms/image")
        agree = total = 0
        for x in xs.values():
            a, b = _detections(single, x), _detections(int8, x)
            for (boxes, labels), (other_boxes, other_labels) in ((a, b), (b, a)):
                for box, label in zip(boxes, labels, strict=True):
                    total += 1
                    agree += any(lab == label and _iou(box, o) >= 0.8
                                 for o, lab in zip(other_boxes, other_labels, strict=True))
        print(f"  int8 vs fp32 detections on {len(xs)} photos: {agree} of {total} have a same-label box "
              f"with IoU >= 0.8 ({len(head)} head convolutions kept in float)")


def main() -> None:
    from pipeline.commands import Parser  # one-line refusals, as every command's
    from transforms.core.threads import worker_threads

    p = Parser("benchmarks/cpu_paths.py", __doc__ or "")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    threads = worker_threads()
    backbone(args.repeats, threads)
    detector(args.repeats, threads)


if __name__ == "__main__":
    main()
