"""A self-contained HTML contact sheet of a tagging run (thumbnails embedded, no network needed).

python -m pipeline.report --input OUTPUT --html report.html [--sample 200] [--model MODEL_DIR]

Streams over the committed files of OUTPUT/tags/ (local or gs://) in record batches: counts every tag, and
keeps a reservoir sample of --sample images, so huge outputs need little memory. Shows each
sampled image with its tags coloured by source and its boxes (detector and pose model: a box
shows while either source is on; a box does not record which drew it), filters by tag and by
source, a tag frequency chart, the dead letters grouped by error_type with example URIs, and,
with --model, the training curves and validation metrics of a TaggerNet model directory, with
--evaluation, the test (or zero-shot ZS/GZS) metrics written by pipeline.training.evaluate.
"""

from __future__ import annotations

import base64
import io
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from pipeline.commands import evaluation_metrics
from transforms.core.artifacts import join, read_bytes, write_bytes
from transforms.core.records import ERRORS, StageError, sources_of
from transforms.core.registry import colours, registered, tag_sources
from transforms.ingest.access import WEB, AccessFlags, AccessPolicy
from transforms.ingest.decode import DecodeConfig, decode_image
from transforms.ingest.fetch import fetch_file, uri_kind
from transforms.ingest.http_client import HttpConfig, HttpFetcher
from transforms.output import runs

WEB_ONLY = AccessPolicy()  # thumbnails of web images only: a row's URI is data, not a path to trust
OTHER = "#555"  # a tag source no registered stage declares (e.g. a newer run's)
PLACEHOLDER = "data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="160"><rect width="100%" height="100%" '
    b'fill="#ddd"/><text x="50%" y="50%" text-anchor="middle" font-family="sans-serif" font-size="14" '
    b'fill="#666">image unavailable</text></svg>'
).decode()


def _files(output: str, table: str) -> list[str]:
    return sorted(runs.committed_files(output, table))


def iter_rows(output: str, table: str, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of a table, streamed batch by batch from every file the run manifests list."""
    for path in _files(output, table):
        yield from runs.iter_file_rows(path, columns)


def scan(output: str, sample: int, seed: int = 0) -> dict:
    """One pass: totals, tag frequencies by source, a reservoir sample, dead letters by type."""
    rng = random.Random(seed)
    reservoir: list[dict] = []
    freq: Counter = Counter()
    by_source: dict[str, Counter] = defaultdict(Counter)
    seen = 0
    for row in iter_rows(output, "tags"):
        seen += 1
        for name, tag_sources_ in {t["name"]: sources_of(t) for t in row["tags"]}.items():
            freq[name] += 1  # images, not tags: a word counts once per image
            for source in tag_sources_:
                by_source[name][source] += 1
        if len(reservoir) < sample:
            reservoir.append(row)
        else:
            j = rng.randrange(seen)
            if j < sample:
                reservoir[j] = row
    errors: dict[str, list[tuple[str, str]]] = defaultdict(list)
    counts: Counter = Counter()
    for row in iter_rows(output, ERRORS, ["uri", "stage", "error_type", "error_message"]):
        key = f"{row['stage']}/{row['error_type']}"
        counts[key] += 1
        if len(errors[key]) < 5:
            errors[key].append((row["uri"], row["error_message"]))
    return {"rows": seen, "sample": reservoir, "freq": freq, "by_source": by_source,
            "errors": errors, "error_counts": counts}


THUMB_THREADS = 16  # thumbnails fetched at once (most time is network latency)


def thumbnail(uri: str, fetcher: HttpFetcher, size: int, max_bytes: int,
              policy: AccessPolicy = WEB_ONLY) -> str:
    """A JPEG data URI of the image, or a placeholder when it cannot be fetched or decoded, or
    when ``policy`` refuses its URI (a row's URI is data: local files and cloud objects are
    read only when the user allows them, as in the tag job)."""
    try:
        real = policy.check(uri)
        data = fetcher.fetch(uri)[0] if uri_kind(uri) == "web" else fetch_file(real or uri, max_bytes)
        image, _, _ = decode_image(data, DecodeConfig(min_short_side=1, min_long_side=size))
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except (StageError, OSError, ValueError):
        return PLACEHOLDER


WEAK = 0.5  # tags scoring below this are drawn weaker (dashed, faded): a reviewer looks twice


def _box_labels(objects: list[dict]) -> list[int | None]:
    """Per box (strongest first): None when a stronger box of the same label overlaps it (its
    label shows on hover only), else how many such boxes its own label stands for. A crowd of
    person boxes shows one label, "person 0.91 +4", not five labels on top of each other."""
    def overlap(a: list, b: list) -> bool:
        return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])

    owner: list[int | None] = []
    for i, o in enumerate(objects):
        owner.append(next((j for j in range(i) if owner[j] is None and objects[j]["label"] == o["label"]
                           and overlap(objects[j]["box"], o["box"])), None))
    return [None if owner[i] is not None else sum(1 for k in owner if k == i) for i in range(len(objects))]


def _card(row: dict, thumb: str) -> dict:
    palette = colours()
    tags = [{**t, "sources": sources_of(t), "colour": palette.get(t["source"], OTHER)} for t in row["tags"]]
    objects = []
    found = sorted(row.get("objects") or [], key=lambda o: -float(o["score"]))
    labelled = 0
    for o, more in zip(found, _box_labels(found), strict=True):
        x0, y0, x1, y1 = (float(v) for v in o["box"])
        objects.append({"label": o["label"], "score": float(o["score"]), "left": f"{x0 * 100:.2f}",
                        "top": f"{y0 * 100:.2f}", "width": f"{(x1 - x0) * 100:.2f}", "height": f"{(y1 - y0) * 100:.2f}",
                        "more": more, "label_top": (labelled % 4) * 13})  # labels of different boxes staggered
        labelled += more is not None
    return {"uri": row["uri"], "image_id": row.get("image_id") or "", "sha": row.get("content_sha256") or "",
            "name": row["uri"].rsplit("/", 1)[-1], "width": row["width"],
            "height": row["height"], "thumb": thumb, "tags": tags, "objects": objects,
            "best": max((t["score"] for t in tags), default=0.0)}


def _chart(freq: Counter, by_source: dict, top: int = 30) -> list[tuple[str, dict]]:
    most = freq.most_common(top)
    peak = most[0][1] if most else 1
    return [(name, {"count": count, "width": count / peak * 100,
                    "colour": colours().get(by_source[name].most_common(1)[0][0], OTHER)})
            for name, count in most]


def _metrics_rows(metrics: dict) -> list[tuple[str, str]]:
    return [(k, f"{v:.4f}" if isinstance(v, float) else str(v))
            for k, v in metrics.items() if isinstance(v, (int, float))]


def _evaluation_panel(report_dir: str) -> dict:
    metrics = evaluation_metrics(report_dir)  # checked at launch
    if "ZS" in metrics:  # a zero-shot report: one table per protocol
        tables = [{"heading": f"{k} metric", "rows": _metrics_rows(metrics[k])} for k in ("ZS", "GZS")]
    else:
        tables = [{"heading": "test metric", "rows": _metrics_rows(metrics)}]
    return {"heading": f"Evaluation {report_dir}", "tables": tables, "notes": [], "curves": None}


def _model_panel(model_dir: str) -> dict:
    panel: dict = {"heading": f"Model {model_dir}", "tables": [], "notes": [], "curves": None}
    try:
        panel["curves"] = "data:image/png;base64," + base64.b64encode(read_bytes(join(model_dir, "curves.png"))).decode()
    except Exception:  # noqa: BLE001 - a model without curves still gets its metrics shown
        panel["notes"].append("No curves.png.")
    try:
        metrics = json.loads(read_bytes(join(model_dir, "metrics.json")))
        if "held_out" in metrics:  # learned from corrections (pipeline/training/learn.py)
            panel["notes"].append(f"learned from {metrics['images']['corrected']} corrected pictures, cross-fitted "
                                  f"on {metrics['images']['folds']} folds (best epochs {metrics['best_epochs']})")
            panel["tables"].append({"heading": "held-out metric", "rows": _metrics_rows(metrics["held_out"])})
        else:
            panel["notes"].append(f"best epoch {metrics.get('best_epoch')} of {metrics.get('epochs_run')}")
            panel["tables"].append({"heading": "validation metric", "rows": _metrics_rows(metrics.get("validation", {}))})
    except Exception:  # noqa: BLE001
        panel["notes"].append("No metrics.json.")
    return panel


def render(scan_result: dict, thumbs: list[str], title: str, model_dir: str | None,
           evaluation_dir: str | None = None, review_key: str = "") -> str:
    """The contact sheet from pipeline/templates/report.html.j2 (Jinja2, autoescaped: every value
    from the Parquet files, URIs and tag names included, is escaped)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    panels = ([_model_panel(model_dir)] if model_dir else []) + ([_evaluation_panel(evaluation_dir)] if evaluation_dir else [])
    errors = [(key, count, scan_result["errors"][key]) for key, count in scan_result["error_counts"].most_common()]
    return env.get_template("report.html.j2").render(
        title=title, rows=scan_result["rows"], failed=sum(scan_result["error_counts"].values()),
        cards=[_card(row, thumb) for row, thumb in zip(scan_result["sample"], thumbs, strict=True)],
        sources=[(s, colours().get(s, OTHER)) for s in tag_sources()], weak=WEAK,
        box_sources=[s.tag_source for s in registered() if "objects" in s.writes and s.tag_source],
        chart=_chart(scan_result["freq"], scan_result["by_source"]), errors=errors, panels=panels,
        review_key=review_key or title,
    )


def thumbnail_policy(allow_local_paths: bool = False, allowed_schemes: str = "") -> AccessPolicy:
    """Web thumbnails always; local files with --allow_local_paths; cloud objects by scheme (the
    tag job's access flags, read as for a URI list)."""
    schemes = ",".join(filter(None, (*WEB, allowed_schemes)))
    return AccessFlags(allowed_schemes=schemes, allow_local_paths=allow_local_paths).policy(False, "")


def build_report(output: str, sample: int = 200, seed: int = 0, model_dir: str | None = None,
                 thumb_size: int = 240, allow_private_networks: bool = False, max_bytes: int = 20 << 20,
                 evaluation_dir: str | None = None, policy: AccessPolicy = WEB_ONLY) -> str:
    result = scan(output, sample, seed)
    fetcher = HttpFetcher(HttpConfig(allow_private_networks=allow_private_networks, max_bytes=max_bytes,
                                     fetch_concurrency=THUMB_THREADS))
    uris = [row["uri"] for row in result["sample"]]
    try:
        with ThreadPoolExecutor(THUMB_THREADS) as pool:
            jobs = pool.map(lambda uri: thumbnail(uri, fetcher, thumb_size, max_bytes, policy), uris)
            thumbs = list(tqdm(jobs, total=len(uris), desc="thumbnails", unit="img", file=sys.stderr,
                               disable=not uris))
    finally:
        fetcher.close()
    return render(result, thumbs, f"Tagging run: {output}", model_dir, evaluation_dir, review_key=output)


def main(argv: list[str] | None = None) -> str:
    from pipeline import commands

    parser = commands.report_parser()
    args = parser.check(parser.parse_args(list(argv if argv is not None else sys.argv[1:])))
    policy = thumbnail_policy(args.allow_local_paths, args.allowed_schemes)
    page = build_report(args.input, args.sample, args.seed, args.model, args.thumb_size,
                        args.allow_private_networks, evaluation_dir=args.evaluation, policy=policy)
    write_bytes(args.html, page.encode("utf-8"))
    print(f"report written to {args.html}")
    if "file" not in policy.schemes:
        print("local images are shown as placeholders; pass --allow_local_paths to show them")
    return args.html


if __name__ == "__main__":
    main()
