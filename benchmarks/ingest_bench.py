"""Ingest against the peer on a simulated web: our fetch + decode vs img2dataset, side by side.

    python benchmarks/ingest_bench.py [--urls 2000] [--hosts 1,4,16] [--tag_urls 1000] [--repeat 3]
                                      [--variants ours,img2dataset,tag_latency,tag_zero,throttled]

The benchmark starts its own web on loopback: one threaded HTTP server on each of
127.0.0.1 .. 127.0.0.N (N "hosts", all on this machine, stopped when it ends). Every URL has a
fixed fate drawn from a seeded RNG: 93% answer after a log-normal latency with a 150 ms median,
5% after 1-2 s, 2% answer 404 or 503; bodies are real photos re-encoded as 640x480 JPEGs.
The servers count requests in flight over time.

- ours: `image-tagger tag --ingest_only` (continuous fetch window, draft decoding), one worker;
- img2dataset: the peer, installed by this script into its own venv (WORKDIR/peer-venv, from
  PyPI; never one of our dependencies), 2 processes x 32 threads, resizing to 256 like its
  default, files output;
- tag_latency / tag_zero: the full tag job on --tag_urls URLs of the simulated web, and on the
  same images served with no latency: is the job model-bound rather than fetch-bound? (on
  the smallest host count given). A job pays the network's latency once more than the zero
  run, at its start (the first answers, a window opening over round trips) and at its end (the
  last slow URLs), about 1.5 s whatever its length; 1000 URLs keep that one-off from standing
  for the rate (docs/BENCHMARKS.md shows 400 too);
- throttled: one host that answers 429 to any request beyond 6 in flight: ours and img2dataset,
  with the share of requests refused, overall and once the first quarter has passed.

Prints images/s (successful images over wall time), CPU seconds per image, peak RSS and the
average requests in flight, and the ratios. With ``--repeat N`` every run is made N times in
interleaved rounds (start-up and shutdown vary by seconds on a small machine): each ratio is
taken within a round, and the median and every round's value are printed.
"""

from __future__ import annotations

import functools
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class CdnServer(ThreadingHTTPServer):
    """A listen backlog like a web server's (nginx: 511), not socketserver's 5: with 5, a burst
    of new connections loses SYNs and waits for the kernel's 1 s retransmit, a stall no real
    CDN causes."""

    request_queue_size = 512


class SimulatedWeb:
    """Loopback servers on 127.0.0.1..N; path /<i>.jpg has a fixed latency and status."""

    def __init__(self, n_urls: int, hosts: int, bodies: list[bytes], latency: bool = True, seed: int = 0,
                 throttle_above: int = 0):
        rng = random.Random(seed)
        self.throttle_above = throttle_above
        self.statuses: list[int] = []  # every answer's status, in order
        self.fates = []
        for _ in range(n_urls):
            r = rng.random()
            if r < 0.02:
                self.fates.append((rng.choice((404, 503)), 0.05))
            elif r < 0.07:
                self.fates.append((200, rng.uniform(1.0, 2.0)))
            else:
                self.fates.append((200, min(3.0, rng.lognormvariate(-1.897, 0.5))))  # median 0.15 s
        if not latency:
            self.fates = [(status, 0.0) for status, _ in self.fates]
        self.bodies = bodies
        self.in_flight = 0
        self.samples: list[int] = []
        self._lock = threading.Lock()
        self.servers = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                try:
                    i = int(self.path.strip("/").split(".")[0])
                    status, delay = web.fates[i]
                except (ValueError, IndexError):
                    status, delay, i = 404, 0.0, 0
                with web._lock:
                    web.in_flight += 1
                    if web.throttle_above and web.in_flight > web.throttle_above:
                        status, delay = 429, 0.0
                    web.statuses.append(status)
                try:
                    time.sleep(delay)
                    body = web.bodies[i % len(web.bodies)] if status == 200 else b""
                    self.send_response(status)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with web._lock:
                        web.in_flight -= 1

            def log_message(self, *args):
                pass

        for h in range(hosts):
            server = CdnServer((f"127.0.0.{h + 1}", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            if self.in_flight:
                self.samples.append(self.in_flight)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.{i % len(self.servers) + 1}:{self.servers[i % len(self.servers)].server_address[1]}"
                f"/{i}.jpg" for i in range(len(self.fates))]

    def reset_counts(self) -> None:
        self.samples = []
        self.statuses = []

    def refused(self) -> tuple[float, float]:
        """Share of answers that were 429: overall, and after the first quarter."""
        if not self.statuses:
            return 0.0, 0.0
        late = self.statuses[len(self.statuses) // 4:]
        return (self.statuses.count(429) / len(self.statuses), late.count(429) / max(len(late), 1))

    def close(self) -> None:
        self._stop.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()


def photo_bodies() -> list[bytes]:
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from transforms.knowledge.samples import sample_photos

    out = []
    for path in sample_photos().values():
        buf = io.BytesIO()
        Image.open(path).convert("RGB").resize((640, 480)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run a command; wall seconds, CPU seconds and peak RSS of it and its children."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "status": status, "stderr": err[-2000:], "children_rss_mib": children.ru_maxrss / 1024}


def count_ours(out: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("tags/*.parquet"))


def run_ours(urls_file: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pipeline.tag", "--input", str(urls_file), "--output", str(out),
           "--allow_private_networks", "--max_error_rate", "1", "--quiet", *extra]
    result = timed(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    result["images"] = count_ours(out)
    return result


def peer_venv(workdir: Path) -> Path:
    venv = workdir / "peer-venv"
    if not (venv / "bin" / "img2dataset").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "img2dataset"], check=True)
    return venv


def run_img2dataset(urls_file: Path, out: Path, workdir: Path) -> dict:
    venv = peer_venv(workdir)
    cmd = [str(venv / "bin" / "img2dataset"), "--url_list", str(urls_file), "--output_folder", str(out),
           "--processes_count", "2", "--thread_count", "32", "--image_size", "256",
           "--output_format", "files", "--input_format", "txt", "--timeout", "10", "--retries", "0",
           "--disallowed_header_directives", "[]", "--enable_wandb", "False"]
    result = timed(cmd)
    result["images"] = len(list(out.rglob("*.jpg")))
    return result


def run_variant(v: str, web: SimulatedWeb, full: Path, few: Path, workdir: Path, label: str, ours_args: list[str]) -> dict:
    web.reset_counts()
    out = workdir / f"out-{label}-{v}"
    if out.exists():  # a rerun in the same --workdir (to reuse the peer's venv) starts clean
        import shutil

        shutil.rmtree(out)
    if v in ("ours", "ours_throttled"):
        r = run_ours(full, out, ["--ingest_only", *ours_args])
    elif v in ("img2dataset", "img2dataset_throttled"):
        r = run_img2dataset(full, out, workdir)
    else:
        r = run_ours(few, out, ours_args)
    r["in_flight"] = sum(web.samples) / len(web.samples) if web.samples else 0.0
    r["refused"], r["refused_late"] = web.refused()
    print(f"  {label:<9} {v:<22} {r['images']:>5} images  {r['images'] / r['wall']:7.1f} images/s  "
          f"cpu {r['cpu']:6.1f} s  peak RSS {r['rss_mib']:6.0f} MiB  in flight {r['in_flight']:5.1f}  "
          f"429s {r['refused']:.1%} (after the first quarter {r['refused_late']:.1%})", flush=True)
    return r


def main() -> None:
    from pipeline.commands import Parser  # one-line refusals, as every command's
    from pipeline.workdir import working_folder

    parser = Parser("benchmarks/ingest_bench.py", __doc__ or "")
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--hosts", default="1,4,16", help="Comma-separated host counts to run.")
    parser.add_argument("--tag_urls", type=int, default=1000)
    parser.add_argument("--variants", default="ours,img2dataset,tag_latency,tag_zero,throttled")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--ours_args", default="", help="Extra options for our runs, e.g. '--fetch_concurrency 128'.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Rounds of every run, interleaved; ratios are taken within a round, the median shown.")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with working_folder(args.workdir, "ingest-bench-") as workdir:
        run(args, workdir)


def run(args, workdir: Path) -> None:
    """Every plan's variants against a simulated web, their table and ratios."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = photo_bodies()
    variants = args.variants.split(",")
    host_counts = [int(h) for h in args.hosts.split(",")]
    ours_args = args.ours_args.split()
    results: dict[tuple[str, str], list[dict]] = {}
    plans = []  # (label, hosts, latency, throttle, variants)
    for hosts in host_counts:
        plans.append((f"{hosts} host{'s' if hosts > 1 else ''}", hosts, True, 0,
                      [v for v in variants if v in ("ours", "img2dataset")]
                      + [v for v in variants if v == "tag_latency" and hosts == min(host_counts)]))
        if "tag_zero" in variants and hosts == min(host_counts):
            plans.append((f"{hosts} host{'s' if hosts > 1 else ''}", hosts, False, 0, ["tag_zero"]))
    if "throttled" in variants:
        plans.append(("429>6", 1, True, 6, ["ours_throttled", "img2dataset_throttled"]))
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_ + 1} of {args.repeat}", flush=True)
        for label, hosts, latency, throttle, wanted in plans:
            if not wanted:
                continue
            web = SimulatedWeb(max(args.urls, args.tag_urls), hosts, bodies, latency=latency, throttle_above=throttle)
            try:
                urls = web.urls()
                full = workdir / f"urls-{hosts}-{latency}.txt"
                full.write_text("\n".join(urls[: args.urls]) + "\n")
                few = workdir / f"urls-tag-{hosts}-{latency}.txt"
                few.write_text("\n".join(urls[: args.tag_urls]) + "\n")
                for v in wanted:
                    results.setdefault((label, v), []).append(run_variant(v, web, full, few, workdir, label, ours_args))
            finally:
                web.close()
    print(f"\nsimulated web: {args.urls} URLs; 93% ~150 ms median, 5% 1-2 s, 2% 404/503; "
          f"429>6: one host refusing beyond 6 requests in flight; {args.repeat} round(s), medians\n")
    print("| web | variant | images | images/s (every round) | CPU ms/image | peak RSS MiB | in flight (mean) | 429s (late) |")
    print("|---|---|---|---|---|---|---|---|")
    for (label, v), runs in results.items():
        mid = functools.partial(median_of, runs)
        every = ", ".join(f"{rate(r):.1f}" for r in runs)
        print(f"| {label} | {v} | {runs[-1]['images']} | {mid(rate):.1f} ({every}) | "
              f"{mid(lambda r: 1000 * r['cpu'] / max(r['images'], 1)):.1f} | {mid(lambda r: r['rss_mib']):.0f} | "
              f"{mid(lambda r: r['in_flight']):.1f} | {mid(lambda r: r['refused']):.1%} ({mid(lambda r: r['refused_late']):.1%}) |")
    print()
    for label in dict.fromkeys(lbl for lbl, _ in results):
        for (a, b), what in RATIOS:
            if (label, a) in results and (label, b) in results:
                ratios = [rate(x) / rate(y) for x, y in zip(results[(label, a)], results[(label, b)], strict=True)]
                every = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"{label}: {what}: {statistics.median(ratios):.2f}" + (f" (rounds: {every})" if len(ratios) > 1 else ""))


RATIOS = [(("ours", "img2dataset"), "ours / img2dataset images/s"),
          (("ours_throttled", "img2dataset_throttled"), "ours / img2dataset images/s"),
          (("tag_latency", "tag_zero"), "tag job, latency-heavy / zero-latency images/s")]


def median_of(runs: list[dict], measure) -> float:
    return statistics.median(measure(r) for r in runs)


def rate(run: dict) -> float:
    """Successful images per second of wall time."""
    return run["images"] / run["wall"]


if __name__ == "__main__":
    main()
