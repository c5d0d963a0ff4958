"""Command-line options of our jobs (everything else is a standard Beam option).

Beam parses every PipelineOptions subclass into one namespace, so each flag is defined
once: ImageOptions holds what every image job shares (input/output, fetching, decoding,
backbone); TagOptions adds the tag job's tagger, detector and word-vector options.
"""

from __future__ import annotations

from types import SimpleNamespace

from apache_beam.options.pipeline_options import PipelineOptions

from transforms import calibration
from transforms.decode import DecodeConfig
from transforms.detect import DETECTORS, DetectorConfig
from transforms.expand import METHODS as EXPANSION_METHODS
from transforms.expand import ExpansionConfig
from transforms.features import BACKBONES, BackboneConfig, BackboneHandler
from transforms.http_client import HttpConfig
from transforms.mlp_tagger import MLPTaggerConfig, MLPTaggerHandler
from transforms.tagger import ImageNetTaggerHandler, TaggerConfig
from transforms.vectors import EMBEDDED
from transforms.write import CODECS as PARQUET_CODECS
from transforms.zero_shot import METHODS as ZERO_SHOT_METHODS
from transforms.zero_shot import ZeroShotConfig


def all_options(options: PipelineOptions) -> SimpleNamespace:
    """Every parsed option (ours and Beam's) as one namespace: what the job builders read."""
    return SimpleNamespace(**options.get_all_options(retain_unknown_options=False))


class ImageOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        io = parser.add_argument_group("input and output")
        io.add_argument(
            "--input",
            help="Glob of image files (local or gs://), or a URI list: .txt (one per line), "
            ".csv/.tsv (a 'uri' or 'url' column), .jsonl (objects with 'uri'/'url'), .parquet "
            "('uri'/'url' column). URIs may be local paths, gs:// or http(s)://.",
        )
        io.add_argument(
            "--output",
            help="Directory or gs:// prefix; the tag job writes tags-*.parquet and errors-*.parquet "
            "there, the feature job features-*.parquet and errors-*.parquet.",
        )
        io.add_argument(
            "--num_shards", type=int, default=0,
            help="Output shards per table (0: let the runner decide). Fix it for backfills.",
        )
        io.add_argument(
            "--parquet_codec", choices=PARQUET_CODECS, default="zstd",
            help="Compression of the Parquet outputs (zstd: small and fast to read everywhere).",
        )
        io.add_argument(
            "--skip_existing", default=None,
            help="Glob of earlier outputs (e.g. gs://b/tags/dt=*/tags-*.parquet): inputs whose "
            "image_id already has a row there, or in --output, are skipped (a scalable anti-join), "
            "and rows already in --output are kept, so reruns and resumed backfills never "
            "duplicate or lose an image.",
        )

        fetch = parser.add_argument_group("fetching")
        fetch.add_argument("--fetch_threads", type=int, default=16,
                           help="Concurrent fetches per worker.")
        fetch.add_argument("--fetch_batch_size", type=int, default=32,
                           help="URIs handed to the fetch pool at once (bounds in-flight memory).")
        fetch.add_argument("--max_bytes", type=int, default=20 * 1024 * 1024,
                           help="Largest accepted image body in bytes (too_large beyond).")
        fetch.add_argument("--connect_timeout", type=float, default=5.0,
                           help="HTTP connect timeout, seconds.")
        fetch.add_argument("--read_timeout", type=float, default=10.0,
                           help="HTTP timeout waiting for the next bytes, seconds.")
        fetch.add_argument("--total_timeout", type=float, default=30.0,
                           help="Deadline per image covering retries, redirects and the body, seconds.")
        fetch.add_argument("--max_attempts", type=int, default=3,
                           help="HTTP attempts per image; only transient failures (connection "
                           "errors, timeouts, 408, 429, 5xx) are retried, with jittered backoff.")
        fetch.add_argument("--retry_backoff", type=float, default=0.5,
                           help="Base of the exponential retry backoff, seconds.")
        fetch.add_argument("--max_redirects", type=int, default=5, help="Redirect hops followed.")
        fetch.add_argument("--http_user_agent", default="image-tagger/0.1",
                           help="User-Agent header for http(s) fetches.")
        fetch.add_argument("--allow_private_networks", action="store_true", default=False,
                           help="Let web URLs reach loopback/private/link-local addresses (the SSRF "
                           "guard refuses them by default).")
        fetch.add_argument("--ignore_robots_opt_out", action="store_true", default=False,
                           help="Fetch images whose X-Robots-Tag says noai/noimageai (skipped by default).")

        decode = parser.add_argument_group("decoding")
        decode.add_argument("--decode_threads", type=int, default=0,
                            help="Images decoded at once per worker (0: one per core).")
        decode.add_argument("--max_pixels", type=int, default=100_000_000,
                            help="Refuse images whose declared width x height exceeds this "
                            "(decompression_bomb), before allocating.")

        model = parser.add_argument_group("models")
        model.add_argument("--backbone", choices=BACKBONES, default="efficientnet_lite0",
                           help="Feature extractor. efficientnet_lite0 is embedded (offline); "
                           "resnet50 is the paper's backbone (torchvision).")
        model.add_argument("--backbone_weights", default="embedded",
                           help="'embedded' (efficientnet_lite0's packaged weights), 'imagenet' "
                           "(torchvision download), 'none' (random init), or a local/gs:///https:// "
                           "state_dict file.")
        model.add_argument("--backbone_weights_sha256", default=None,
                           help="Expected sha256 of a --backbone_weights file.")
        model.add_argument("--backbone_batch_size", type=int, default=8,
                           help="Backbone batch size (batches form between half and this size; 4 to "
                           "8 is fastest on small CPUs, raise it on GPUs).")
        model.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                           help="Where torch models run; auto picks cuda when the worker has a GPU.")
        model.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                           help="auto: bf16 autocast on GPUs and CPUs with native bf16, else fp32.")
        model.add_argument("--torch_threads", type=int, default=0,
                           help="Torch intra-op threads per worker process (0: cores / workers).")


class TagOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        model = parser.add_argument_group("tagger")
        model.add_argument("--tagger_model", default=None,
                           help="Model directory from pipeline.train (local or gs://): tag with the "
                           "trained TaggerNet instead of the embedded ImageNet everyday tagger.")
        model.add_argument("--top_k", type=int, default=5, help="Most tagger tags per image.")
        model.add_argument("--min_score", type=float, default=0.5,
                           help="Smallest calibrated score of any written tag (tagger, detector, "
                           "expansion, zero-shot): the estimated chance the tag is right.")
        model.add_argument("--calibration", default=calibration.EMBEDDED,
                           help="Per-source score calibration: 'embedded' (fitted by pipeline.quality "
                           "--fit on the tuning photos), a JSON file (local/gs://), or 'none' (raw "
                           "scores).")

        det = parser.add_argument_group("object detection")
        det.add_argument("--detector", choices=DETECTORS, default="yolox_nano",
                         help="Object detector: yolox_nano (COCO-80 ONNX, embedded offline), a "
                         "torchvision detector, or none.")
        det.add_argument("--detector_weights", default="embedded",
                         help="'embedded' (yolox_nano's packaged file), 'coco' (torchvision "
                         "download), 'none' (random init), or a local/gs:///https:// file.")
        det.add_argument("--detector_weights_sha256", default=None,
                         help="Expected sha256 of --detector_weights (yolox_nano: checked against "
                         "the published file by default).")
        det.add_argument("--detection_threshold", type=float, default=0.35,
                         help="Raw candidate floor before calibration (objectness x class for YOLOX); "
                         "kept objects must also reach --min_score once calibrated.")
        det.add_argument("--detection_class_min_scores", default="",
                         help="Per-class calibrated minimum scores overriding --min_score, e.g. "
                         "'person=0.6,bird=0.7'.")
        det.add_argument("--no_detection_cross_check", action="store_true",
                         help="Keep weak boxes that a confident whole-image tag contradicts (by "
                         "default a weak 'person' box on an image tagged 'monkey' is dropped).")
        det.add_argument("--max_objects", type=int, default=20, help="Most objects kept per image.")
        det.add_argument("--detector_batch_size", type=int, default=8,
                         help="Largest detector batch (sized apart from the backbone's).")

        zs = parser.add_argument_group("zero-shot tagging")
        zs.add_argument("--vocabulary", default=None,
                        help="File of words/phrases, one per line (local or gs://): every image gets "
                        "its best-ranked entries as tags with source zero_shot.")
        zs.add_argument("--zero_shot_method", choices=ZERO_SHOT_METHODS, default="auto",
                        help="conse (probability-weighted seen-label vectors), fast0tag (the learned "
                        "linear map in --tagger_model), auto (fast0tag when the model has one).")
        zs.add_argument("--zero_shot_top_k", type=int, default=3, help="Most zero-shot tags per image.")
        zs.add_argument("--zero_shot_min_score", type=float, default=None,
                        help="Smallest calibrated score of a zero-shot tag (default: --min_score).")
        zs.add_argument("--conse_top_t", type=int, default=10,
                        help="ConSE: how many top seen labels form the image's semantic vector.")

        words = parser.add_argument_group("word vectors and expansion")
        words.add_argument("--word_vectors", default=EMBEDDED,
                           help=f"'{EMBEDDED}' (embedded GloVe 6B 50-d), a .kv / word2vec .bin / "
                           "word2vec or GloVe text file (local, gs://, https://), or "
                           "gensim-data:NAME.")
        words.add_argument("--word_vectors_sha256", default=None,
                           help="Expected sha256 of a --word_vectors file.")
        words.add_argument("--expansion_method", choices=EXPANSION_METHODS, default="precise",
                           help="precise: the WordNet synonyms and hypernyms a tag implies, kept when "
                           "they agree with the whole image; nearest: the paper's nearest words by "
                           "cosine (mostly siblings and other senses: see docs/QUALITY.md).")
        words.add_argument("--expansion_per_tag", type=int, default=2,
                           help="Words added per tag (the paper: 2); 0 disables expansion.")
        words.add_argument("--expansion_min_similarity", type=float, default=None,
                           help="precise: smallest cosine of a word with the image's evidence vector "
                           "(default 0.3); nearest: with the tag (default 0.5).")
        words.add_argument("--expansion_min_origin_score", type=float, default=None,
                           help="Expand only tags scoring at least this (default: precise 0.7, since "
                           "an implied word repeats its origin's error; nearest 0).")
        words.add_argument("--expansion_vocab_size", type=int, default=None,
                           help="Expansion words come from this many most frequent words "
                           "(default: precise 60000, nearest 50000).")
        words.add_argument("--expansion_mutual_k", type=int, default=30,
                           help="Keep an expansion word only if the tag is among its k nearest words "
                           "(drops hub words near everything); 0 disables.")


def http_config(o: ImageOptions) -> HttpConfig:
    return HttpConfig(
        max_bytes=o.max_bytes,
        connect_timeout_s=o.connect_timeout,
        read_timeout_s=o.read_timeout,
        total_timeout_s=o.total_timeout,
        max_attempts=o.max_attempts,
        backoff_s=o.retry_backoff,
        max_redirects=o.max_redirects,
        user_agent=o.http_user_agent,
        allow_private_networks=o.allow_private_networks,
        respect_robots=not o.ignore_robots_opt_out,
        pool_size=o.fetch_threads,
    )


def decode_config(o: ImageOptions) -> DecodeConfig:
    return DecodeConfig(max_pixels=o.max_pixels)


def backbone_config(o: ImageOptions, num_workers: int = 1) -> BackboneConfig:
    weights = o.backbone_weights
    if o.backbone == "resnet50" and weights == "embedded":
        weights = "imagenet"
    return BackboneConfig(
        name=o.backbone,
        weights=weights,
        weights_sha256=o.backbone_weights_sha256,
        device=o.device,
        precision=o.precision,
        torch_threads=o.torch_threads,
        num_workers=num_workers,
    )


def backbone_handler(o: ImageOptions, num_workers: int = 1) -> BackboneHandler:
    """Batches of half to full --backbone_batch_size: tiny batches waste the vector units."""
    size = max(1, o.backbone_batch_size)
    return BackboneHandler(backbone_config(o, num_workers), min_batch_size=max(1, size // 2), max_batch_size=size)


def tagger_config(o: TagOptions) -> TaggerConfig:
    return TaggerConfig(top_k=o.top_k, min_score=o.min_score, calibration=o.calibration)


def class_min_scores(spec: str) -> tuple[tuple[str, float], ...]:
    """'person=0.6,bird=0.7' -> (('person', 0.6), ('bird', 0.7)); refused at launch if malformed."""
    pairs = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        label, sep, value = item.rpartition("=")
        try:
            pairs.append((label.strip(), float(value)))
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise SystemExit(f"--detection_class_min_scores: expected LABEL=SCORE, got {item!r}")
    return tuple(pairs)


def tagger_handler(o: TagOptions, num_workers: int = 1):
    """The trained TaggerNet when --tagger_model is given, else the embedded ImageNet tagger."""
    if o.tagger_model:
        return MLPTaggerHandler(
            MLPTaggerConfig(o.tagger_model, backbone_config(o).version(), o.top_k, num_workers)
        )
    return ImageNetTaggerHandler(tagger_config(o))


def expansion_config(o: TagOptions) -> ExpansionConfig:
    return ExpansionConfig(
        method=o.expansion_method,
        per_tag=o.expansion_per_tag,
        min_similarity=o.expansion_min_similarity,
        vocab_limit=o.expansion_vocab_size,
        min_origin_score=o.expansion_min_origin_score,
        mutual_k=o.expansion_mutual_k,
        word_vectors=o.word_vectors,
        word_vectors_sha256=o.word_vectors_sha256,
    )


def detector_config(o: TagOptions, num_workers: int = 1) -> DetectorConfig:
    weights = o.detector_weights
    if o.detector != "yolox_nano" and weights == "embedded":
        weights = "coco"
    return DetectorConfig(
        name=o.detector,
        weights=weights,
        weights_sha256=o.detector_weights_sha256,
        threshold=o.detection_threshold,
        max_objects=o.max_objects,
        min_score=o.min_score,
        class_min_scores=class_min_scores(o.detection_class_min_scores),
        calibration=calibration.for_source(o.calibration, f"detector:{o.detector}"),
        cross_check=not o.no_detection_cross_check,
        device=o.device,
        torch_threads=o.torch_threads,
        num_workers=num_workers,
    )


def zero_shot_config(o: TagOptions) -> ZeroShotConfig:
    return ZeroShotConfig(
        vocabulary=o.vocabulary,
        method=o.zero_shot_method,
        top_k=o.zero_shot_top_k,
        min_score=o.min_score if o.zero_shot_min_score is None else o.zero_shot_min_score,
        top_t=o.conse_top_t,
        calibration=o.calibration,
        word_vectors=o.word_vectors,
        word_vectors_sha256=o.word_vectors_sha256,
        model_dir=o.tagger_model,
    )
