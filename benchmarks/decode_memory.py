"""Peak memory and time of one decode of a wide (16-bit) image against its 8-bit twin (docs/BENCHMARKS.md).

python benchmarks/decode_memory.py [--side 10000]

Writes a side x side grey PNG in 16 bits and the same picture in 8 bits (mostly flat, so both
files are small: what a hostile URL serves under --max_bytes), then decodes each with the job's
decoder (transforms/ingest/decode.py, default working size) in a fresh process and reports peak
RSS and wall time, and the ratios of the 16-bit decode to the 8-bit baseline in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = ("import resource, sys, time; from transforms.ingest.decode import DecodeConfig, decode_image;"
         "data = open(sys.argv[1], 'rb').read(); start = time.perf_counter();"
         "decode_image(data, DecodeConfig(max_pixels=10**9)); seconds = time.perf_counter() - start;"
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)")


def write_pngs(side: int, folder: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    grey = np.zeros((side, side), dtype=np.uint8)
    grey[::100, :] = 200
    paths = {"8-bit": folder / "eight.png", "16-bit": folder / "sixteen.png"}
    Image.fromarray(grey).save(paths["8-bit"], optimize=True)
    Image.fromarray(grey.astype(np.uint16) * 257).save(paths["16-bit"], optimize=True)
    return paths


def measure(path: Path) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    kib, seconds = done.stdout.split()
    return int(kib) / 1024, float(seconds)


def main(argv: list[str] | None = None) -> dict:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    parser = Parser("benchmarks/decode_memory.py", __doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=10000, help="Width and height in pixels.")
    args = parser.parse_args(argv)
    if args.side < 500:
        parser.error("--side must be >= 500")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(args.side, Path(tmp))
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        results = {k: measure(p) for k, p in paths.items()}
    for kind, (mib, seconds) in results.items():
        print(f"{kind:>7}  {sizes[kind] / 1024:8.0f} KiB file  peak RSS {mib:7.0f} MiB  decode {seconds:5.2f} s")
    (m8, s8), (m16, s16) = results["8-bit"], results["16-bit"]
    print(f"16-bit / 8-bit: peak RSS {m16 / m8:.2f}x, decode time {s16 / s8:.2f}x")
    return {"results": results, "rss_ratio": m16 / m8, "time_ratio": s16 / s8}


if __name__ == "__main__":
    main()
