"""The backbone on onnxruntime: fp32 and static int8 CPU paths, an accuracy guard, and ``auto``.

Why: on CPU, onnxruntime runs the exported backbone faster than torch, and its static int8
graph (per-channel weights, activations calibrated on real photos, VNNI kernels) faster still
(measured in docs/BENCHMARKS.md). The torch module is exported at load (nothing is downloaded
or shipped), and the int8 graph is cached in the artifact cache by the fp32 graph's hash, the
onnxruntime version and the calibration photos.

int8 moves the class probabilities a little, so it is checked before use, on real photos held
out from its calibration: every photo's fp32 top-1 class must be in the int8 top 5 and the
reverse (the ImageNet top-5 agreement); the largest probability shift is logged too. What
decides whether the shifts matter is ``make quality --precision int8`` (docs/BENCHMARKS.md).
``--precision auto`` takes the fastest path that passes, timed on this worker's CPU, and
leaves the exact fp32 graph only for a path at least ``SPEEDUP_TO_SWITCH`` faster, so that
machine noise does not flip outputs from run to run.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transforms.core.artifacts import cache_dir, sha256_of
from transforms.core.threads import onnx_session_options, parallel_map

CALIBRATION_PHOTOS = ("coffee", "camera", "motorcycle", "motorcycle_right", "china", "coins", "grass",
                      "hubble", "luispedro", "quokka")  # the tune half of pipeline/quality/data/quality_key.json
MIN_CALIBRATION_PHOTOS = 4
# 7-bit weights: x86 CPUs without VNNI multiply uint8 x int8 with a saturating 16-bit add
# (vpmaddubsw), which 8-bit weights overflow (top-5 agreement 0.78 on an AVX2-only EPYC);
# onnxruntime documents reduce_range for them. Always on: one int8 graph on every CPU.
REDUCE_RANGE = True
INT8_ON_GPU = "--precision int8 is a CPU path (onnxruntime); on a GPU use bf16 or fp32"
NO_INT8_PHOTOS = ("--precision int8 calibrates on sample photos of installed packages (scikit-image, "
                  f"scikit-learn, imgaug, mahotas), and fewer than {MIN_CALIBRATION_PHOTOS} are installed here")
SPEEDUP_TO_SWITCH = 1.25
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardResult:
    passed: bool
    photos: int
    top5_agreement: float  # share of photos whose top-1 classes sit in each other's top 5
    max_shift: float  # largest change of any class probability
    reason: str = ""


def export(body, head, mean: Sequence[float], std: Sequence[float]) -> bytes:
    """ONNX bytes of uint8 NHWC pixels -> (features, ImageNet logits or zeros) for a torch backbone."""
    import torch

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = body, head
            self.register_buffer("mean", torch.tensor(list(mean)).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(list(std)).view(1, 3, 1, 1))

        def forward(self, pixels):
            x = (pixels.permute(0, 3, 1, 2).float() - self.mean) / self.std
            features = self.body(x)
            logits = self.head(features) if self.head is not None else features[:, :0]
            return features, logits

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, not removed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Exported().eval(), (torch.zeros(2, 224, 224, 3, dtype=torch.uint8),), buffer,  # type: ignore[arg-type]
            input_names=["pixels"], output_names=["features", "logits"], opset_version=17, dynamo=False,
            dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
        )
    return buffer.getvalue()


def session(model: bytes | str, threads: int = 1):
    import onnxruntime as ort

    return ort.InferenceSession(model, onnx_session_options(threads), providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


class OnnxBackbone:
    """Callable like features.TorchBackbone: uint8 NHWC batch -> (features, probs or None). A batch
    is split into ``threads`` parts run side by side (transforms/core/threads.py)."""

    def __init__(self, model: bytes | str, threads: int, has_head: bool, precision: str, path: str | None = None):
        self.session = session(model)
        self.threads = threads
        self.has_head = has_head
        self.precision = precision
        self.path = path or precision  # provenance written in each row: fp32, or int8:<graph sha256>

    def _run(self, pixels: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"pixels": np.ascontiguousarray(pixels)})

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        parts = parallel_map(self._run, np.array_split(pixels, min(self.threads, len(pixels))), self.threads)
        features, logits = (np.concatenate(outputs) for outputs in zip(*parts, strict=True))
        return features, (softmax(logits) if self.has_head else None)


def calibration_split(photos: dict[str, Path]) -> tuple[list[Path], list[Path]]:
    """(calibration photos, guard photos): the quality key's tune half calibrates, the rest guard."""
    calibrate = [p for n, p in photos.items() if n in CALIBRATION_PHOTOS]
    guard = [p for n, p in photos.items() if n not in CALIBRATION_PHOTOS]
    return calibrate, guard


def int8_photos() -> tuple[list[Path], list[Path]] | None:
    """(calibration photos, guard photos) from installed packages, or None when too few are
    installed for int8 (transforms/knowledge/samples.py)."""
    from transforms.knowledge.samples import sample_photos

    calibrate, guard = calibration_split(sample_photos(everything=True))
    return (calibrate, guard) if len(calibrate) >= MIN_CALIBRATION_PHOTOS and guard else None


def quantize(fp32: bytes | str, fp32_sha256: str, calibration: Callable[[], list[np.ndarray]], tag: str) -> Path:
    """The static int8 graph of ``fp32`` (its bytes or file; QDQ, per-channel int8 weights,
    uint8 activations, MinMax ranges over the ``calibration()`` inputs, only computed on a
    cache miss), cached by content: the fp32 graph's sha256, ``tag`` and onnxruntime's version.
    A cached graph is used only when it matches the sha256 recorded beside it; a truncated or
    damaged one is rebuilt."""
    import onnxruntime

    digest = hashlib.sha256(f"{fp32_sha256}|{tag}|{onnxruntime.__version__}|rr{REDUCE_RANGE:d}".encode()).hexdigest()[:20]

    def build(out: Path) -> None:  # a cache miss only: the quantization tools take a second to import
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter(calibration())

            def get_next(self):
                item = next(self.items, None)
                return None if item is None else {"pixels": item[None]}

        plain, prepared = out.with_name("fp32.onnx"), out.with_name("pre.onnx")
        plain.write_bytes(fp32 if isinstance(fp32, bytes) else Path(fp32).read_bytes())
        quant_pre_process(str(plain), str(prepared))
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=REDUCE_RANGE)

    return cached_file(f"backbone-int8-{digest}.onnx", build)


def cached_file(name: str, build: Callable[[Path], None]) -> Path:
    """``cache_dir()/onnx/<name>``, made by ``build(path)`` on a miss. Built beside the target
    (same filesystem, so os.replace is atomic: no EXDEV when the temp folder is a tmpfs); the
    checksum is written first, so a file without a matching checksum (truncated, damaged) is
    never trusted and is rebuilt."""
    target = cache_dir() / "onnx" / name
    checksum = target.with_name(target.name + ".sha256")
    if _intact(target, checksum):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time per file (worker threads and processes alike): the others wait, then
    # find it built, so a checksum never pairs with another builder's file.
    with open(target.with_name(f".{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _intact(target, checksum):
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            out = Path(tmp) / name
            build(out)
            sums = Path(tmp) / "sha256"
            sums.write_text(sha256_of(out))
            os.replace(sums, checksum)
            os.replace(out, target)
    return target


def recorded_sha256(path: str | os.PathLike) -> str:
    """The sha256 ``cached_file`` recorded beside a file it returned (and verified on return)."""
    return Path(f"{path}.sha256").read_text().strip()


def recall(name: str) -> dict | None:
    """A decision ``remembered`` earlier, or None."""
    try:
        return json.loads((cache_dir() / "onnx" / name).read_text())
    except (OSError, ValueError):
        return None


def remembered(name: str, compute: Callable[[], dict]) -> dict:
    """A small decision (a guard result, the path ``auto`` timed fastest) kept as JSON in
    ``cache_dir()/onnx/<name>``: computed once per content key, read back on later starts."""
    known = recall(name)
    if known is not None:
        return known
    path = cache_dir() / "onnx" / name
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: worker threads of one process may remember the same key at once.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(value))
    os.replace(partial, path)
    return value


@functools.lru_cache(maxsize=1)
def cpu_signature() -> str:
    """This machine's CPU as timings depend on it: architecture, model, flags, cores, onnxruntime."""
    import onnxruntime

    try:
        with open("/proc/cpuinfo") as f:
            info = [line for line in f.read().splitlines() if line.startswith(("model name", "flags"))][:2]
    except OSError:
        info = []
    text = "|".join([platform.machine(), platform.processor(), *info, str(os.cpu_count()), onnxruntime.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _intact(model: Path, checksum: Path) -> bool:
    try:
        return model.is_file() and checksum.read_text().strip() == sha256_of(model)
    except OSError:
        return False


def guard(reference: OnnxBackbone, candidate: OnnxBackbone, pixels: np.ndarray) -> GuardResult:
    """Does ``candidate`` tell the same classes as ``reference`` on these held-out photos?"""
    _, p_ref = reference(pixels)
    _, p_new = candidate(pixels)
    if p_ref is None or p_new is None:
        return GuardResult(False, len(pixels), 0.0, 1.0, "the backbone has no ImageNet head to compare")
    top_ref, top_new = np.argsort(-p_ref, 1)[:, :5], np.argsort(-p_new, 1)[:, :5]
    agree = float(np.mean([a[0] in b and b[0] in a for a, b in zip(top_ref, top_new, strict=True)]))
    shift = float(np.abs(p_ref - p_new).max())
    reason = "" if agree == 1.0 else f"top-5 agreement {agree:.2f} < 1"
    return GuardResult(not reason, len(pixels), agree, shift, reason)


def ms_per_image(model: Callable[[np.ndarray], object], pixels: np.ndarray, repeats: int = 3,
                 clock: Callable[[], float] = time.perf_counter) -> float:
    model(pixels)  # warm-up: first-run allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = clock()
        model(pixels)
        times.append(clock() - start)
    return float(np.median(times)) / len(pixels) * 1000


def fastest(candidates: Mapping[str, Callable[[np.ndarray], object]], pixels: np.ndarray,
            clock: Callable[[], float] = time.perf_counter) -> tuple[str, dict[str, float]]:
    """The candidate to use: 'fp32' unless another is SPEEDUP_TO_SWITCH times faster."""
    timings = {name: ms_per_image(model, pixels, clock=clock) for name, model in candidates.items()}
    best = min(timings, key=lambda n: timings[n])
    if "fp32" in timings and timings["fp32"] < SPEEDUP_TO_SWITCH * timings[best]:
        best = "fp32"
    return best, timings
