"""Peak memory and time of the local runner against list length (docs/BENCHMARKS.md, issue #36).

python benchmarks/list_memory.py [--lines 100000 1000000 3000000] [--shard_size N] [--existing N]
python benchmarks/list_memory.py --http --lines 20000 100000

Memory: each run is the real tag job (--ingest_only) over a list of N gs:// URIs that the default
scheme allow-list refuses, so nothing is fetched: what is measured is what the runner holds per
pending input (the list is taken shard by shard, pipeline/shards.py). ``--existing N`` first
commits an output of N earlier tags rows (a quarter of the list's URIs among them) and runs with
--skip_existing against it. ``--http``: throughput instead, every URI a tiny PNG on a loopback
server. Prints peak RSS of the job process, wall time, time per 100k inputs, and each as a ratio
to the first size's.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = ("import resource, sys; from pipeline import tag; sys.argv[0] = 'tag';"
       "tag.run(sys.argv[1:]);"
       "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def _uri(i: int, base: str) -> str:
    return f"{base}/photos/{i:09d}.png"


def write_list(path: Path, lines: int, base: str) -> None:
    with open(path, "w") as f:
        for i in range(lines):
            f.write(_uri(i, base) + "\n")


def commit_earlier_rows(out: Path, rows: int, lines: int, base: str) -> None:
    """An output whose one committed run holds ``rows`` tags rows: a quarter of the list's URIs
    (every fourth), the rest URIs the list does not hold; published through the real commit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from transforms.core.records import image_id_for
    from transforms.core.registry import tags_schema
    from transforms.output import runs

    run_id = runs.new_run_id()
    schema = tags_schema()
    staged = runs.staging_prefix(str(out), run_id, "tags") + "-00000-of-00001.parquet"
    os.makedirs(os.path.dirname(staged), exist_ok=True)
    with pq.ParquetWriter(staged, schema) as writer:
        for start in range(0, rows, 100_000):
            ids = range(start, min(rows, start + 100_000))
            uris = [_uri(4 * i if 4 * i < lines else lines + i, base) for i in ids]
            columns = {"uri": uris, "image_id": [image_id_for(u) for u in uris]}
            writer.write_table(pa.table({f.name: columns.get(f.name, pa.nulls(len(uris), f.type)) for f in schema},
                                        schema=schema))
    runs.commit(str(out), runs.Manifest(run_id=run_id, mode="new", tables=("tags", "errors")))


def run_job(listing: Path, out: Path, extra: list[str]) -> tuple[float, float, str]:
    cmd = [sys.executable, "-c", JOB, "--input", str(listing), "--output", str(out), "--ingest_only",
           "--max_error_rate", "1", "--quiet", *extra]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    seconds = time.monotonic() - start
    peak_kib = max(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK"))
    lines = done.stdout.splitlines()
    summary = next((line for line in lines if line.startswith("output")), "")
    skipped = next((line.split()[1] for line in lines if line.startswith("skipped")), "0")
    return peak_kib / 1024, seconds, f"{summary.split('(run', 1)[-1].strip(' )')}; skipped {skipped}"


class _TinyPng(BaseHTTPRequestHandler):
    BODY = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args) -> None:
        pass


def loopback_server() -> tuple[ThreadingHTTPServer, str]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 140, 200)).save(buffer, format="PNG")
    _TinyPng.BODY = buffer.getvalue()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TinyPng)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    parser = Parser("benchmarks/list_memory.py", __doc__ or "")
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--shard_size", type=int, default=0, help="the job's --shard_size (0: its automatic one)")
    parser.add_argument("--existing", type=int, default=0, help="earlier tags rows in the output (--skip_existing)")
    parser.add_argument("--http", action="store_true", help="throughput: tiny PNGs from a loopback server")
    args = parser.parse_args()
    if min(args.lines) < 1 or args.shard_size < 0 or args.existing < 0:
        parser.error("--lines must be >= 1, --shard_size and --existing >= 0")
    server, base = loopback_server() if args.http else (None, "gs://no-such-bucket")
    extra = ["--shard_size", str(args.shard_size)]
    if args.http:
        extra += ["--allow_private_networks"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lines:
            listing, out = Path(tmp) / f"list-{n}.txt", Path(tmp) / f"out-{n}"
            write_list(listing, n, base)
            if args.existing:
                commit_earlier_rows(out, args.existing, n, base)
            mib, seconds, summary = run_job(listing, out, extra + (["--skip_existing"] if args.existing else []))
            per_100k = seconds / n * 100_000
            results.append((n, mib, per_100k))
            m0, t0 = results[0][1], results[0][2]
            print(f"{n:>10} inputs  peak RSS {mib:8.1f} MiB ({mib / m0:4.2f}x)  wall {seconds:8.1f} s  "
                  f"{per_100k:7.1f} s per 100k ({per_100k / t0:4.2f}x)  {summary}",
                  flush=True)
    if server is not None:
        server.shutdown()


if __name__ == "__main__":
    main()
