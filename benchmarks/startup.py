"""Worker start-up of a one-image tag job: this tree against a baseline commit, in one run.

    python benchmarks/startup.py [--baseline REF] [--runs 3]

Each tree (this one, and REF checked out as a git worktree) tags one photo with the default
job, ``--runs`` times, alternating trees; the first run of each warms its caches (the export,
int8 graph, guard verdict and timing of ``--precision auto`` are cached by content since issue
#23, so later starts of a worker reuse them). Printed per tree: the median job wall time and
the median of the stages' model load times (the job's own summary: Beam's RunInference
load_model metric), and their ratios baseline/this tree.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = re.compile(r"^\s+(\w+)\s+load\s+([\d.]+) s", re.M)
WALL = re.compile(r"^wall\s+([\d.]+) s", re.M)


def photo() -> str:
    sys.path.insert(0, str(ROOT))
    from transforms.knowledge.samples import sample_photos

    return str(sample_photos()["chelsea"])


def one_job(tree: Path, listing: Path, out: Path) -> tuple[float, float]:
    """(job wall seconds, summed model load seconds) of one one-image job run from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-m", "pipeline.tag", "--input", str(listing), "--output", str(out),
                           "--allow_local_paths", "--overwrite"], cwd=tree, env=env, capture_output=True,
                          text=True, check=True)
    text = done.stdout + done.stderr
    loads = [float(seconds) for _, seconds in LOAD.findall(text)]
    wall = WALL.search(text)
    assert loads and wall, f"no summary in the job's output:\n{text[-2000:]}"
    return float(wall.group(1)), sum(loads)


def main(argv: list[str] | None = None) -> None:
    from pipeline.commands import Parser  # one-line refusals, as every command's

    parser = Parser("benchmarks/startup.py", __doc__ or "")
    parser.add_argument("--baseline", default="3c008ac", help="Commit to compare against (default: 3c008ac).")
    parser.add_argument("--runs", type=int, default=3, help="Measured runs per tree, after one warm-up.")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    baseline = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        listing = work / "in.txt"
        listing.write_text(photo() + "\n")
        trees = {"baseline " + args.baseline: baseline, "this tree": ROOT}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for run in range(args.runs + 1):
            for name, tree in trees.items():
                result = one_job(tree, listing, work / f"out-{name.split()[0]}")
                if run:  # run 0 warms the caches
                    times[name].append(result)
                print(f"[startup] run {run} {name}: wall {result[0]:.1f} s, model load {result[1]:.2f} s", flush=True)
        medians = {name: (statistics.median(w for w, _ in ts), statistics.median(load for _, load in ts))
                   for name, ts in times.items()}
        print("\n| tree | job wall (median) | model load (median) |\n|---|---|---|")
        for name, (wall, load) in medians.items():
            print(f"| {name} | {wall:.1f} s | {load:.2f} s |")
        (base_wall, base_load), (wall, load) = medians.values()
        print(f"\nbaseline / this tree: job wall {base_wall / wall:.2f}x, model load {base_load / load:.2f}x")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
