"""A self-contained HTML contact sheet of a tagging run (thumbnails embedded, no network needed).

python -m pipeline.report --input OUTPUT --html report.html [--sample 200] [--model MODEL_DIR]

Streams over the committed files of OUTPUT/tags/ (local or gs://) in record batches: counts every tag, and
keeps a reservoir sample of --sample images, so huge outputs need little memory. Shows each
sampled image with its tags coloured by source and its detector boxes, filters by tag and by
source, a tag frequency chart, the dead letters grouped by error_type with example URIs, and,
with --model, the training curves and validation metrics of a TaggerNet model directory, with
--evaluation, the test (or zero-shot ZS/GZS) metrics written by pipeline.evaluate.
"""

from __future__ import annotations

import base64
import html
import io
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from transforms import runs
from transforms.artifacts import join, read_bytes, write_bytes
from transforms.decode import DecodeConfig, decode_image
from transforms.fetch import fetch_file, uri_kind
from transforms.http_client import HttpConfig, HttpFetcher
from transforms.records import ERRORS, StageError, sources_of
from transforms.stage import colours, tag_sources

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
    errors: dict[str, list[str]] = defaultdict(list)
    counts: Counter = Counter()
    for row in iter_rows(output, ERRORS, ["uri", "stage", "error_type"]):
        key = f"{row['stage']}/{row['error_type']}"
        counts[key] += 1
        if len(errors[key]) < 5:
            errors[key].append(row["uri"])
    return {"rows": seen, "sample": reservoir, "freq": freq, "by_source": by_source,
            "errors": errors, "error_counts": counts}


THUMB_THREADS = 16  # thumbnails fetched at once (most time is network latency)


def thumbnail(uri: str, fetcher: HttpFetcher, size: int, max_bytes: int) -> str:
    """A JPEG data URI of the image, or a placeholder when it cannot be fetched or decoded."""
    try:
        data = fetcher.fetch(uri)[0] if uri_kind(uri) == "web" else fetch_file(uri, max_bytes)
        image, _, _ = decode_image(data, DecodeConfig(min_short_side=1, min_long_side=size))
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except (StageError, OSError, ValueError):
        return PLACEHOLDER


def _card(row: dict, src: str) -> str:
    names = "|".join(html.escape(t["name"].lower()) for t in row["tags"])
    sources = html.escape(" ".join(sorted({s for t in row["tags"] for s in sources_of(t)})))
    tags = "".join(
        f'<span class="tag" data-source="{html.escape(t["source"])}" style="border-color:'
        f'{colours().get(t["source"], OTHER)}" title="{html.escape(t["source"])}'
        + (f' from {html.escape(t["origin"])}' if t.get("origin") else "")
        + f'">{html.escape(t["name"])} <b>{t["score"]:.2f}</b></span>'
        for t in row["tags"]
    )
    boxes = "".join(
        f'<div class="box" style="left:{o["box"][0] * 100:.2f}%;top:{o["box"][1] * 100:.2f}%;'
        f'width:{(o["box"][2] - o["box"][0]) * 100:.2f}%;height:{(o["box"][3] - o["box"][1]) * 100:.2f}%">'
        f'<span>{html.escape(o["label"])} {o["score"]:.2f}</span></div>'
        for o in row.get("objects") or []
    )
    name = html.escape(row["uri"].rsplit("/", 1)[-1])
    return (
        f'<div class="card" data-tags="{names}" data-sources="{sources}" data-uri="{html.escape(row["uri"])}">'
        f'<div class="frame"><img class="thumb" alt="{name}" src="{src}">{boxes}</div>'
        f'<div class="name" title="{html.escape(row["uri"])}">{name} <small>{row["width"]}x{row["height"]}</small></div>'
        f'<div class="tags">{tags}</div></div>'
    )


def _chart(freq: Counter, by_source: dict, top: int = 30) -> str:
    if not freq:
        return "<p>No tags.</p>"
    most = freq.most_common(top)
    peak = most[0][1]
    bars = []
    for name, count in most:
        main = by_source[name].most_common(1)[0][0]
        bars.append(
            f'<div class="bar"><span class="label">{html.escape(name)}</span>'
            f'<span class="fill" style="width:{count / peak * 100:.1f}%;background:{colours().get(main, OTHER)}"></span>'
            f'<span class="count">{count}</span></div>'
        )
    return "".join(bars)


def _errors(scan_result: dict) -> str:
    if not scan_result["error_counts"]:
        return "<p>No dead letters.</p>"
    items = []
    for key, count in scan_result["error_counts"].most_common():
        examples = "".join(f"<li>{html.escape(u)}</li>" for u in scan_result["errors"][key])
        items.append(f'<details class="err"><summary>{html.escape(key)} <b>{count}</b></summary><ul>{examples}</ul></details>')
    return "".join(items)


def _metrics_table(metrics: dict, heading: str) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{cell(v)}</td></tr>"
                   for k, v in metrics.items() if isinstance(v, (int, float)))
    return f'<table class="metrics"><tr><th>{html.escape(heading)}</th><th>value</th></tr>{rows}</table>'


def _evaluation_panel(report_dir: str) -> str:
    metrics = json.loads(read_bytes(join(report_dir, "metrics.json")))
    parts = [f"<h2>Evaluation {html.escape(report_dir)}</h2>"]
    if "ZS" in metrics:  # a zero-shot report: one table per protocol
        parts += [_metrics_table(metrics[k], f"{k} metric") for k in ("ZS", "GZS")]
    else:
        parts.append(_metrics_table(metrics, "test metric"))
    return "".join(parts)


def _model_panel(model_dir: str) -> str:
    parts = [f"<h2>Model {html.escape(model_dir)}</h2>"]
    try:
        png = read_bytes(join(model_dir, "curves.png"))
        parts.append(f'<img class="curves" alt="training curves" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    except Exception:  # noqa: BLE001 - a model without curves still gets its metrics shown
        parts.append("<p>No curves.png.</p>")
    try:
        metrics = json.loads(read_bytes(join(model_dir, "metrics.json")))
        parts.append(f"<p>best epoch {metrics.get('best_epoch')} of {metrics.get('epochs_run')}</p>"
                     + _metrics_table(metrics.get("validation", {}), "validation metric"))
    except Exception:  # noqa: BLE001
        parts.append("<p>No metrics.json.</p>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}
.controls{position:sticky;top:0;background:#fafafa;padding:8px 0;border-bottom:1px solid #ddd;z-index:2}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px;margin-top:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.frame{position:relative;display:inline-block;max-width:100%}
.thumb{display:block;max-width:100%}
.box{position:absolute;border:2px solid #d62728;box-sizing:border-box}
.box span{position:absolute;top:-1px;left:-1px;background:#d62728;color:#fff;font-size:10px;padding:0 2px;white-space:nowrap}
.name{font-size:12px;margin:4px 0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tag{display:inline-block;border:2px solid;border-radius:10px;padding:0 6px;margin:2px;font-size:12px}
.bar{display:flex;align-items:center;font-size:12px;margin:1px 0}
.bar .label{width:140px;text-align:right;padding-right:6px;overflow:hidden;white-space:nowrap}
.bar .fill{height:12px;display:inline-block}.bar .count{padding-left:4px}
.legend span{margin-right:12px}.hidden{display:none!important}
.curves{max-width:100%}.metrics td{padding:1px 8px}
"""

JS = """
const q = document.getElementById('tag-filter');
const boxes = Array.from(document.querySelectorAll('.source-toggle'));
function apply() {
  const want = q.value.trim().toLowerCase();
  const on = new Set(boxes.filter(b => b.checked).map(b => b.value));
  let shown = 0;
  document.querySelectorAll('.card').forEach(card => {
    card.querySelectorAll('.tag').forEach(t => t.classList.toggle('hidden', !on.has(t.dataset.source)));
    card.querySelectorAll('.box').forEach(b => b.classList.toggle('hidden', !on.has('detector')));
    const tags = Array.from(card.querySelectorAll('.tag')).filter(t => on.has(t.dataset.source));
    const names = card.dataset.tags.split('|');
    const okTag = !want || names.some(n => n === want || n.includes(want));
    const okSource = tags.length > 0 || on.size === boxes.length;
    const visible = okTag && okSource;
    card.classList.toggle('hidden', !visible);
    if (visible) shown++;
  });
  document.getElementById('shown').textContent = shown;
}
q.addEventListener('input', apply);
boxes.forEach(b => b.addEventListener('change', apply));
apply();
"""


def render(scan_result: dict, thumbs: list[str], title: str, model_dir: str | None,
           evaluation_dir: str | None = None) -> str:
    cards = "".join(_card(row, src) for row, src in zip(scan_result["sample"], thumbs, strict=True))
    toggles = "".join(
        f'<label class="legend"><input type="checkbox" class="source-toggle" value="{s}" checked> '
        f'<span style="color:{colours().get(s, OTHER)}">&#9632; {s}</span></label>'
        for s in tag_sources()
    )
    failed = sum(scan_result["error_counts"].values())
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p><b>{scan_result["rows"]}</b> images tagged, <b>{failed}</b> dead letters;
showing a sample of <b>{len(scan_result["sample"])}</b> (<span id="shown">{len(scan_result["sample"])}</span> visible).</p>
<div class="controls"><input id="tag-filter" type="search" placeholder="filter by tag, e.g. cat" size="30"> {toggles}</div>
<div class="grid" id="grid">{cards}</div>
<h2>Tag frequency (all {scan_result["rows"]} images)</h2><div class="chart">{_chart(scan_result["freq"], scan_result["by_source"])}</div>
<h2>Dead letters by type</h2><div class="errors">{_errors(scan_result)}</div>
{_model_panel(model_dir) if model_dir else ""}
{_evaluation_panel(evaluation_dir) if evaluation_dir else ""}
<script>{JS}</script></body></html>"""


def build_report(output: str, sample: int = 200, seed: int = 0, model_dir: str | None = None,
                 thumb_size: int = 240, allow_private_networks: bool = False, max_bytes: int = 20 << 20,
                 evaluation_dir: str | None = None) -> str:
    result = scan(output, sample, seed)
    fetcher = HttpFetcher(HttpConfig(allow_private_networks=allow_private_networks, max_bytes=max_bytes,
                                     pool_size=THUMB_THREADS))
    uris = [row["uri"] for row in result["sample"]]
    try:
        with ThreadPoolExecutor(THUMB_THREADS) as pool:
            jobs = pool.map(lambda uri: thumbnail(uri, fetcher, thumb_size, max_bytes), uris)
            thumbs = list(tqdm(jobs, total=len(uris), desc="thumbnails", unit="img", file=sys.stderr,
                               disable=not uris))
    finally:
        fetcher.close()
    return render(result, thumbs, f"Tagging run: {output}", model_dir, evaluation_dir)


def main(argv: list[str] | None = None) -> str:
    from pipeline import commands

    args = commands.report_parser().parse_args(list(argv if argv is not None else sys.argv[1:]))
    commands.check_report(args)
    page = build_report(args.input, args.sample, args.seed, args.model, args.thumb_size,
                        args.allow_private_networks, evaluation_dir=args.evaluation)
    write_bytes(args.html, page.encode("utf-8"))
    print(f"report written to {args.html}")
    return args.html


if __name__ == "__main__":
    main()
