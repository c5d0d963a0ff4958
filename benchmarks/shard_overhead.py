"""What a shard costs besides its images: the default tag job (every model) over the same photos as
one run and as shards, in one process each (docs/BENCHMARKS.md, issue #36).

python benchmarks/shard_overhead.py [--images 60] [--shard_size 10]

Per-shard start-up = (sharded wall - one-run wall) / (shards - 1): the pipeline built and run
again, the run's lock, manifest and commit; the models load once for all shards
(transforms/core/kept.py across_shards). Seconds per image come from two one-run sizes
(the whole list and its first half), so the start-up cancels out. The share of a default shard
is the per-shard cost over AUTO_SHARD_SIZE times the seconds per image.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.flags import AUTO_SHARD_SIZE  # noqa: E402
from transforms.knowledge.samples import sample_photos  # noqa: E402


def photos(folder: Path, n: int) -> tuple[Path, Path]:
    """``n`` distinct JPEGs cut from the dev packages' sample photos, and a list of them."""
    from PIL import Image

    sources = [Image.open(p).convert("RGB") for p in sample_photos().values()]
    lines = []
    for i in range(n):
        image = sources[i % len(sources)]
        crop = image.crop((i % 7, i % 5, image.width - i % 11, image.height - i % 3))
        path = folder / f"photo{i:04d}.jpg"
        crop.save(path, quality=90)
        lines.append(str(path))
    listing, half = folder / "list.txt", folder / "half.txt"
    listing.write_text("".join(line + "\n" for line in lines))
    half.write_text("".join(line + "\n" for line in lines[: n // 2]))
    return listing, half


def wall(listing: Path, out: Path, shard_size: int) -> float:
    cmd = [sys.executable, "-m", "pipeline.tag", "--input", str(listing), "--output", str(out),
           "--allow_local_paths", "--quiet", "--shard_size", str(shard_size)]
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.monotonic() - start


def main() -> None:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    parser = Parser("benchmarks/shard_overhead.py", __doc__ or "")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--shard_size", type=int, default=10)
    args = parser.parse_args()
    if args.images < 2 * args.shard_size or args.shard_size < 1:
        parser.error("--images must hold at least two shards of --shard_size >= 1")
    shards = -(-args.images // args.shard_size)
    with tempfile.TemporaryDirectory() as tmp:
        listing, half = photos(Path(tmp), args.images)
        halved = wall(half, Path(tmp) / "half", args.images)  # a shard as large as the list: one run
        one = wall(listing, Path(tmp) / "one", args.images)
        sharded = wall(listing, Path(tmp) / "sharded", args.shard_size)
    per_shard = (sharded - one) / (shards - 1)
    per_image = (one - halved) / (args.images - args.images // 2)
    print(f"one run      {one:7.1f} s  (half the list {halved:.1f} s: {per_image:.3f} s per image)")
    print(f"{shards} shards  {sharded:7.1f} s  -> {per_shard:.2f} s per extra shard")
    print(f"share of a default shard ({AUTO_SHARD_SIZE} inputs at {per_image:.3f} s each): "
          f"{per_shard / (AUTO_SHARD_SIZE * per_image):.3%}")


if __name__ == "__main__":
    main()
