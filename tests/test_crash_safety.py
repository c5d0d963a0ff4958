"""No run, crash or kill at any instant loses a row an earlier run wrote (transforms/output/runs.py).

The real job runs in its own process (a fresh child of tests/zygote.py) and is killed with SIGKILL: at every named step of its commit
(inside the rename window included) and at 6 random instants (50 under ``-m slow``); after each kill, every row of
every completed run must still be readable, and a final run must account for every input of
every list exactly once.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import noise_images
from tests.zygote import Zygote
from transforms.core.records import image_id_for
from transforms.output import runs

ROOT = Path(__file__).resolve().parents[1]


def _images(folder: Path, n: int) -> list[str]:
    return noise_images(folder, n)


def _list(path: Path, uris: list[str]) -> str:
    path.write_text("".join(u + "\n" for u in uris))
    return str(path)


def _cmd(listing: str, out: Path, *extra: str) -> list[str]:
    return ["pipeline.tag", "--input", listing, "--output", str(out), "--ingest_only", "--allow_local_paths",
            "--num_shards", "2", "--max_error_rate", "1", "--quiet", *extra]


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    """Every run of this module is a fresh child of one process that imported Beam and torch once
    (tests/zygote.py): a run costs its work, not a Python start."""
    jobs = ["pipeline.tag", "pipeline.graph", "pipeline.training.learn", "pipeline.training.train",
            "pipeline.training.extract_features", "pipeline.quality.calibrate", "torch.optim", "scipy.stats",
            "sklearn.metrics", "torch._inductor"]  # the modules and what they import only once running
    server = Zygote(jobs, tmp_path_factory.mktemp("zygote"))
    yield server
    server.close()


def _run(zygote: Zygote, cmd: list[str], kill_at: str | None = None, kill_after: float | None = None) -> int:
    """``cmd`` (MODULE ARGS...) as ``python -m`` runs it; SIGKILL at the named step ``kill_at``
    (transforms/core/faults.py) or ``kill_after`` seconds in. Returns its exit code."""
    code, err = zygote.run(cmd[0], cmd[1:], kill_at=kill_at, kill_after=kill_after)
    assert code in (0, -signal.SIGKILL), err[-2000:]
    return code


def _ids(out: Path, table: str) -> list[str]:
    """What a reader of the output gets: the committed files, each readable and complete."""
    files = runs.committed_files(str(out), table)
    return [i for f in files for i in pq.read_table(f, columns=["image_id"]).column("image_id").to_pylist()]


def _folder_ids(out: Path, table: str) -> set[str]:
    """What pandas/DuckDB reading the table folder get."""
    files = sorted((out / table).glob("**/*.parquet"))
    return set(pa.concat_tables([pq.read_table(f, columns=["image_id"]) for f in files])
               .column("image_id").to_pylist()) if files else set()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    images = _images(tmp / "imgs", 24)
    missing = [str(tmp / "imgs" / f"gone{i}.jpg") for i in range(3)]
    lists = [
        _list(tmp / "a.txt", images[:12] + missing[:1]),
        _list(tmp / "b.txt", images[8:20] + missing[1:2]),
        _list(tmp / "c.txt", images[16:] + missing[2:] + images[:4]),
    ]
    return tmp, lists


def _inputs(listing: str) -> set[str]:
    return {image_id_for(line) for line in Path(listing).read_text().split()}


def _check(out: Path, kept: set[str], errors_or_tags: set[str]) -> None:
    tags = _ids(out, "tags")
    assert len(tags) == len(set(tags)), "an image tagged twice"
    assert kept <= set(tags), f"lost {len(kept - set(tags))} tags rows of completed runs"
    assert kept <= _folder_ids(out, "tags")
    errors = set(_ids(out, "errors"))
    assert errors_or_tags <= set(tags) | errors, "a dead letter of a completed run vanished"


@pytest.mark.parametrize("mode", ["--skip_existing", "--overwrite"])
def test_a_kill_at_every_commit_step_loses_nothing(corpus, zygote, tmp_path, mode):
    _, (a, b, _) = corpus
    out = tmp_path / "out"
    assert _run(zygote, _cmd(a, out)) == 0
    before = set(_ids(out, "tags"))
    assert len(before) == 12
    steps = ["planned", "manifest", "rename0", "published", "pruned", "deleted"]  # rename0: mid-window
    for step in steps:
        code = _run(zygote, _cmd(b, out, mode), kill_at=f"commit:{step}")
        assert code == -signal.SIGKILL, step
        tags = set(_ids(out, "tags"))
        if mode == "--skip_existing" or tags == before:
            assert before <= tags, f"killed at {step}: rows of the earlier run are gone"
        else:  # --overwrite: the old set may go only once the new one is complete and published
            assert tags == _inputs(b) - {image_id_for(u) for u in Path(b).read_text().split() if "gone" in u}
        assert before <= _folder_ids(out, "tags") or mode == "--overwrite"
    # The next run finishes the interrupted commit and the work.
    assert _run(zygote, _cmd(b, out, "--skip_existing")) == 0
    tags, errors = set(_ids(out, "tags")), set(_ids(out, "errors"))
    expected = _inputs(b) | (_inputs(a) if mode == "--skip_existing" else set())
    assert tags | errors == expected and not tags & errors
    assert not (out / runs.STAGING).exists()
    assert sorted(p.name for p in out.iterdir()) == ["_runs", "errors", "tags"]


@pytest.mark.parametrize("kills", [6, pytest.param(50, marks=pytest.mark.slow)])
def test_random_kills_lose_nothing(corpus, zygote, tmp_path, kills):
    """6 random kills in the default run (every commit step is killed by the test above), the
    full 50 under the slow marker."""
    _, lists = corpus
    out = tmp_path / "out"
    start = time.monotonic()
    assert _run(zygote, _cmd(lists[0], out)) == 0
    duration = time.monotonic() - start
    kept = set(_ids(out, "tags"))
    accounted = set(_ids(out, "errors")) | kept
    rng = random.Random(7)
    completed = 0
    for i in range(kills):
        listing = lists[i % len(lists)]
        code = _run(zygote, _cmd(listing, out, "--skip_existing"), kill_after=rng.uniform(0.3, 1.1) * duration)
        if code == 0:  # it finished before the kill: its rows are now owed too
            completed += 1
            kept = set(_ids(out, "tags"))
            accounted |= _inputs(listing)
        _check(out, kept, accounted)
    assert _run(zygote, _cmd(lists[0], out, "--skip_existing")) == 0
    for listing in lists[1:]:
        assert _run(zygote, _cmd(listing, out, "--skip_existing")) == 0
    tags, errors = _ids(out, "tags"), _ids(out, "errors")
    every = set().union(*(_inputs(x) for x in lists))
    assert len(tags) == len(set(tags)) and set(tags) | set(errors) == every
    assert len(errors) == len(set(errors)) == 3 and not set(tags) & set(errors)
    assert completed < kills, "some runs were killed"


def test_a_kill_anywhere_in_learns_publish_leaves_a_whole_model_or_a_refusal(zygote, tmp_path, photos):
    """Hostile round 4, class 5: a learn killed between writing model.pt and config.json once left
    new weights under the old vocabulary, used as if whole. Kill at every publish step: the tag
    job's launch check sees the old model, the new one, or refuses in one line; rerun, it is whole."""
    import hashlib
    import json

    from pipeline.training import learn
    from transforms.core.launch import LaunchError
    from transforms.stages.tagger import check_model_folder
    from transforms.stages.taggernet import load_taggernet

    images = tmp_path / "imgs"
    images.mkdir()
    pictures = []
    for name in ("chelsea", "coffee"):
        base = Image.open(photos[name]).convert("RGB")
        for i in range(6):
            path = images / f"{name}{i}.jpg"
            base.crop((3 * i, 3 * i, base.width - 3 * i, base.height - 3 * i)).save(path, quality=80 + i)
            pictures.append((name, str(path)))

    def review(path: Path, word: dict[str, str], time_: str) -> str:
        lines = []
        for name, uri in pictures:
            sha = hashlib.sha256(Path(uri).read_bytes()).hexdigest()
            lines.append(json.dumps({"uri": uri, "image_id": sha, "content_sha256": sha, "reviewed": True,
                                     "time": time_, "added": [word[name]] if name in word else []}) + "\n")
        path.write_text("".join(lines))
        return str(path)

    model = tmp_path / "model"
    first = review(tmp_path / "a.jsonl", {"chelsea": "pet"}, "2026-12-01T00:00:00Z")
    learn.main(["--corrections", first, "--output", str(model), "--allow_local_paths", "--quiet", "--min_label_count", "3"])
    second = review(tmp_path / "b.jsonl", {"chelsea": "pet", "coffee": "mug"}, "2026-12-02T00:00:00Z")
    cmd = ["pipeline.training.learn", "--corrections", second, "--output", str(model),
           "--quiet", "--min_label_count", "3"]  # every feature is reused: no extraction, no access needed
    seen = set()
    for step in ("model:staged", "model:rename0", "model:published"):
        assert _run(zygote, cmd, kill_at=step) == -signal.SIGKILL, step
        try:
            check_model_folder(str(model))
        except LaunchError as exc:
            assert "\n" not in str(exc) and "again" in str(exc)
            seen.add("refused")
            assert step != "model:published", "the publish point is past: the new model is whole"
            continue
        net, config = load_taggernet(str(model))
        assert net.net[-1].out_features == len(config["vocabulary"]), f"{step}: weights of another vocabulary"
        seen.add(tuple(config["vocabulary"]))
        assert step != "model:rename0", "new weights under the old config must be refused"
    assert seen == {("pet",), "refused", ("mug", "pet")}
    assert _run(zygote, cmd) == 0
    check_model_folder(str(model))
    assert load_taggernet(str(model))[1]["vocabulary"] == ["mug", "pet"]
    assert not (model / "_staging").exists()
