"""The GPU path, checked on a machine with one: the same photos tagged with --device cpu and cuda.

    python benchmarks/device_check.py --photos DIR [--images 256] [--json FILE]

CI has no GPU, so `--device cuda` (pinned-memory copies, bf16 autocast, the detector's CUDA
provider when onnxruntime has one) is only exercised here. In one run:
- tags: the tag job end to end (DirectRunner) over the photos in DIR with --device cpu
  --precision fp32, --device cuda --precision fp32 and --device cuda (auto: bf16); per pair, the
  photos whose tag words differ and the largest score gap on a word both wrote;
- speed: each stage alone over generated photo-like JPEGs (benchmarks/bench.py's floor), and
  the job end to end, on the CPU and on the GPU, as images/s and the ratio GPU/CPU.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench import make_corpus, run_floor  # noqa: E402

# Expansion stays off: it runs on the CPU wherever the job runs, and its GloVe package (80 MB) is
# more than travels to the GPU machine.
NO_EXPANSION = ("--expansion_per_tag", "0")
SETTINGS = {"cpu_fp32": ("--device", "cpu", "--precision", "fp32"),
            "cuda_fp32": ("--device", "cuda", "--precision", "fp32"),
            "cuda_auto": ("--device", "cuda")}


def tag_rows(photos: str, extra: tuple[str, ...]) -> tuple[dict[str, dict[str, float]], float]:
    """{photo: {word: score}} of one tag job over the photos, and its wall seconds."""
    import pyarrow.parquet as pq

    from pipeline import tag
    from transforms.output import runs

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        tag.run(["--input", photos, "--output", out, "--quiet", *NO_EXPANSION, *extra])
        seconds = time.perf_counter() - t
        rows = {Path(r["uri"]).name: {t["name"]: t["score"] for t in r["tags"]}
                for path in runs.committed_files(out, "tags") for r in pq.read_table(path).to_pylist()}
    return rows, seconds


def compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict:
    """How two runs' tags differ: photos with other words, and the largest gap on a shared word."""
    differ = sorted(p for p in a if set(a[p]) != set(b.get(p, {})))
    gaps = [abs(a[p][w] - b[p][w]) for p in a if p in b for w in set(a[p]) & set(b[p])]
    return {"photos": len(a), "photos_with_other_words": len(differ), "examples": {
        p: {"only_first": sorted(set(a[p]) - set(b.get(p, {}))), "only_second": sorted(set(b.get(p, {})) - set(a[p]))}
        for p in differ[:8]}, "largest_score_gap": max(gaps, default=0.0)}


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    p = Parser("benchmarks/device_check.py", __doc__ or "")
    p.add_argument("--photos", required=True, help="a folder of real photos (every file in it is tagged)")
    p.add_argument("--images", type=int, default=256, help="generated photos for the speed figures")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not Path(args.photos).is_dir():
        p.error(f"--photos {args.photos}: no such folder")
    import torch

    if not torch.cuda.is_available():
        p.error("no CUDA GPU is visible: this check needs one")
    result: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    runs = {name: tag_rows(str(Path(args.photos) / "*"), extra) for name, extra in SETTINGS.items()}
    result["tag_seconds"] = {name: round(s, 1) for name, (_, s) in runs.items()}
    result["cpu_fp32 vs cuda_fp32"] = compare(runs["cpu_fp32"][0], runs["cuda_fp32"][0])
    result["cuda_fp32 vs cuda_auto"] = compare(runs["cuda_fp32"][0], runs["cuda_auto"][0])
    print(json.dumps(result, indent=1), flush=True)
    with tempfile.TemporaryDirectory() as corpus:
        paths = make_corpus(Path(corpus), args.images, 1600, 1200, 90)
        floors = {d: run_floor(paths, ("--device", d, *NO_EXPANSION)) for d in ("cpu", "cuda")}
        result["floor_ms_per_image"] = {d: {k: round(v, 2) for k, v in f["per_image_ms"].items()} for d, f in floors.items()}
        result["floor_images_per_s"] = {d: round(f["images"] / f["seconds"], 1) for d, f in floors.items()}
        ends = {}
        for d in ("cpu", "cuda"):
            _, seconds = tag_rows(str(Path(corpus) / "*.jpg"), ("--device", d))
            ends[d] = round(len(paths) / seconds, 1)
        result["job_images_per_s"] = ends
        result["job_ratio_cuda_over_cpu"] = round(ends["cuda"] / ends["cpu"], 2)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
