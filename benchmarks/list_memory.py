"""Peak memory of the local runner against list length (docs/BENCHMARKS.md).

python benchmarks/list_memory.py [--lines 100000 400000]

Each run is the real tag job (--ingest_only) over a list of N URIs that the default scheme
allow-list refuses (gs:// objects in an untrusted list), so nothing is fetched: what is measured
is what the runner holds per pending input. Reports peak RSS of the job process (and its
children) and the slope in bytes per input between the smallest and largest list.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib(lines: int, work: Path) -> tuple[float, float]:
    listing = work / f"list-{lines}.txt"
    with open(listing, "w") as f:
        for i in range(lines):
            f.write(f"gs://no-such-bucket/photos/{i:09d}.jpg\n")  # refused_scheme: never fetched
    out = work / f"out-{lines}"
    cmd = [sys.executable, "-c",
           "import resource, sys; from pipeline import tag; sys.argv[0] = 'tag';"
           "tag.run(sys.argv[1:]);"
           "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
           "--input", str(listing), "--output", str(out), "--ingest_only", "--max_error_rate", "1", "--quiet"]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    seconds = time.monotonic() - start
    peak_kib = max(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak_kib, children) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 400_000])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.lines:
            mib, seconds = peak_rss_mib(n, Path(tmp))
            results.append((n, mib))
            print(f"{n:>10} inputs  peak RSS {mib:8.1f} MiB  {seconds:6.1f} s")
    (n0, m0), (n1, m1) = results[0], results[-1]
    if n1 > n0:
        print(f"slope: {(m1 - m0) * 1024 * 1024 / (n1 - n0):.0f} bytes per pending input")


if __name__ == "__main__":
    main()
