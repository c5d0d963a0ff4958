"""Where the tag job's CPU goes: py-spy samples every thread of one run; this sums them by stage.

    python benchmarks/profile_job.py [--images 600] [--rate 50] [--out profile.txt] [-- job args]

Generates the benchmark corpus (photo-like 1600x1200 JPEGs, benchmarks/bench.py), runs
``python -m pipeline.tag`` under ``py-spy record --format raw`` (active threads only), and
attributes each sample to the innermost frame that belongs to a known stage module, so time in
onnxruntime, Pillow or numpy counts for the stage that called it. Prints the share of samples
per stage, the top self-time functions, and keeps the raw profile (flamegraph input).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

@functools.lru_cache(maxsize=1)
def stage_rows() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(name, file needles) per row, innermost matching frame first: each registered stage by
    its declaring module and its handler's (so a stage added to the registry has its row), and
    the job's parts that are no stage."""
    import importlib

    from transforms.core.registry import MODULES

    def files(name: str, declared: str, handler: str) -> tuple[str, ...]:
        """The declaring module and its siblings named after it (backbone_onnx), the handler, and
        the model code named after the stage (models/pose_model): a pool thread's stack holds
        only these, not the handler that handed it the images."""
        declared, handler = declared.replace(".", "/"), handler.replace(".", "/")
        return f"{declared}.py", f"{declared}_", f"{handler}.py", f"transforms/models/{name}_"

    declared = [(module, importlib.import_module(module).STAGE) for module in MODULES]
    stages = tuple((s.name, files(s.name, module, s.build.partition(":")[0])) for module, s in declared)
    return (("import / start-up", ("<frozen importlib", "importlib/")),
            ("decode", ("transforms/ingest/decode.py", "transforms/ingest/decode_batch.py")),
            *stages,
            ("read / fetch", ("transforms/ingest/read.py", "transforms/ingest/fetch.py",
                              "transforms/ingest/http_client.py")),
            ("write", ("transforms/output/write.py", "pyarrow/")),
            ("beam (runner, batching, coders)", ("apache_beam/",)))


def stage_of(frames: list[str]) -> str:
    rows = stage_rows()
    for frame in reversed(frames):
        for name, needles in rows:
            if any(n in frame for n in needles):
                return name
    return "other"


# Leaf frames where a thread waits (py-spy in a container reports these threads as active):
# idle pool workers at queue.get, Thread.run of a sleeping thread, lock and condition waits.
WAITS = ("concurrent/futures/thread.py", "threading.py", "queue.py", "selectors.py")


def summarise(raw: Path) -> tuple[Counter, Counter, int]:
    stages: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        if any(w in frames[-1] for w in WAITS):
            continue
        stages[stage_of(frames)] += n
        leaves[frames[-1]] += n
        total += n
    return stages, leaves, total


def main(argv: list[str] | None = None) -> None:
    from benchmarks.bench import make_corpus
    from pipeline.commands import Parser  # one-line refusals, as every command's
    from pipeline.tag import parse_with_job_options
    from pipeline.workdir import working_folder

    p = Parser("benchmarks/profile_job.py", __doc__ or "")
    p.add_argument("--images", type=int, default=600)
    p.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    p.add_argument("--out", default="profile.txt", help="Where the raw py-spy profile goes.")
    p.add_argument("--summarise", default=None, help="Only summarise this raw profile.")
    args, job_args = parse_with_job_options(p, argv)  # the rest go to the tag job, checked first
    if args.summarise:
        return report(Path(args.summarise), args.images)
    out = Path(args.out).resolve()  # py-spy runs in the repository root: the caller's folder is meant
    with working_folder(None, "profile-") as work:
        make_corpus(work / "corpus", args.images, 1600, 1200, 90)
        spy = Path(sys.executable).with_name("py-spy")
        cmd = [str(spy), "record", "--format", "raw", "--rate", str(args.rate), "--output", str(out), "--",
               sys.executable, "-m", "pipeline.tag", "--input", str(work / "corpus" / "*.jpg"),
               "--output", str(work / "out"), "--quiet", *job_args]
        subprocess.run(cmd, check=True, cwd=ROOT)
    report(out, args.images)


def report(raw: Path, images: int) -> None:
    stages, leaves, total = summarise(raw)
    print(f"\n{total} samples of working threads (waits left out), {images} images\n\n"
          "| stage | share of samples |\n|---|---|")
    for name, n in stages.most_common():
        print(f"| {name} | {n / total:.1%} |")
    print("\ntop self time:")
    for frame, n in leaves.most_common(12):
        print(f"  {n / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
