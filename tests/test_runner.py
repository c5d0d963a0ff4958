"""Running a job: the failure threshold, the progress line, per-stage figures, logging."""

from __future__ import annotations

import io
import logging
import os

import pytest

from pipeline import tag
from pipeline.progress import Reporter, estimate_inputs, line
from pipeline.runner import check_error_rate
from tests.conftest import read_table
from transforms.core import progress


def test_a_run_of_missing_files_fails_loudly_but_writes_everything(tmp_path, photos, capsys):
    listing = tmp_path / "in.txt"
    missing = [str(tmp_path / f"gone-{i}.jpg") for i in range(3)]
    listing.write_text("\n".join([str(photos["chelsea"]), *missing]) + "\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--detector", "none", "--expansion_per_tag", "0"])
    message = str(exc.value)
    assert "3 of 4 inputs failed (75% > --max_error_rate 0.5)" in message and "\n" not in message
    assert len(read_table(out, "tags")) == 1 and len(read_table(out, "errors")) == 3, "nothing is lost"
    counters = tag.run(["--input", str(listing), "--output", str(tmp_path / "out2"), "--allow_local_paths", "--detector", "none",
                        "--expansion_per_tag", "0", "--max_error_rate", "0.8"])
    assert counters["failed"] == 3
    assert "stages (Beam RunInference metrics)" in capsys.readouterr().out


def test_error_rate_counts_skipped_images_as_done():
    check_error_rate({"inputs": 2, "failed": 2, "skipped_existing": 8}, 0.5, "out")
    with pytest.raises(SystemExit):
        check_error_rate({"inputs": 2, "failed": 2}, 0.5, "out")
    check_error_rate({}, 0.0, "out")  # an empty input is no failure


def test_progress_line_counts_failures_and_estimates_time():
    text = line({"inputs": 120, "tagged": 90, "failed": 10, "failed.fetch.not_found": 7,
                 "failed.decode.corrupt": 3}, 10.0, 200)
    assert "read 120/200" in text and "done 100 (tagged 90, failed 10: fetch.not_found 7, decode.corrupt 3)" in text
    assert "10.0 img/s" in text and "ETA 0:00:10" in text
    assert "ETA" not in line({"tagged": 5}, 1.0, None)
    assert "starting" not in text
    assert "read 0/200  done 0" in line({}, 5.0, 200) and "starting" in line({}, 5.0, 200), "start-up says why nothing moves"


def test_the_eta_follows_the_recent_pace_not_the_start_up():
    from pipeline.progress import Pace

    pace = Pace()
    for t in range(0, 60, 5):  # a minute of model loading: nothing done
        assert pace.add(float(t), 0) is None
    rates = [pace.add(60.0 + t, 10 * t) for t in range(5, 120, 5)]  # then 10 images/s
    assert rates[-1] == 10.0
    text = line({"inputs": 2000, "tagged": 1150}, 180.0, 2000, rates[-1])
    assert "ETA 0:01:25" in text, text  # 850 left at 10/s, not at the 6.4/s average since start


def test_estimate_inputs_of_local_lists_and_globs(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\nx.jpg\n\ny.jpg\n")
    (tmp_path / "b.csv").write_text("id,uri\n1,x\n2,y\n3,z\n")
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(b"x")
    assert estimate_inputs(str(tmp_path / "a.txt")) == 2
    assert estimate_inputs(str(tmp_path / "b.csv")) == 3
    assert estimate_inputs(str(tmp_path / "*.jpg")) == 4
    assert estimate_inputs("gs://bucket/list.txt") is None


def test_workers_report_through_files_and_the_reporter_prints(tmp_path):
    stream = io.StringIO()
    with Reporter(total=3, interval=0.05, stream=stream) as reporter:
        progress.record("inputs", 3)
        progress.record("tagged", 2)
        progress.record("failed")
        progress.record("failed.fetch.not_found")
        progress.flush()
        reporter.print_line()
    assert "read 3/3" in stream.getvalue() and "fetch.not_found 1" in stream.getvalue()
    assert progress.ENV not in __import__("os").environ
    progress.record("tagged")  # with no reporter, recording is a no-op


def test_logging_is_info_by_default_and_quiet_on_request(tmp_path, photos):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "o1"), "--allow_local_paths", "--detector", "none"])
    assert logging.getLogger().level == logging.INFO
    tag.run(["--input", str(listing), "--output", str(tmp_path / "o2"), "--allow_local_paths", "--detector", "none", "--quiet"])
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize("mode", [[], ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]],
                         ids=["in-process", "multi-processing"])
def test_ctrl_c_stops_a_local_run_promptly_and_the_next_run_cleans_up(tmp_path, http_server, photos, mode):
    import signal
    import subprocess
    import sys
    import time

    base, routes = http_server

    def slow(req):
        time.sleep(0.2)
        body = photos["chelsea"].read_bytes()
        req.send_response(200)
        req.send_header("Content-Type", "image/png")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    for i in range(400):
        routes[f"/{i}.png"] = slow
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(f"{base}/{i}.png\n" for i in range(400)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.tag", "--input", str(listing), "--output", str(out),
           "--allow_private_networks", "--detector", "none", "--progress_interval", "1", *mode]
    # A terminal sends Ctrl-C to the whole process group: the job and every worker it started.
    temp = tmp_path / "tmp"  # the job's temp folders: Beam's own is removed on Ctrl-C too
    temp.mkdir()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (out / "_staging").exists():  # wait until it is writing
            time.sleep(0.2)
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted; stopped" in err
    assert "Traceback" not in err and "terminate called" not in err, err[-3000:]
    time.sleep(0.5)
    left = subprocess.run(["ps", "-o", "pid,ppid,stat,cmd", "-s", str(proc.pid)], capture_output=True, text=True).stdout
    alive = [ln for ln in left.splitlines()[1:] if ln.split()[2][0] != "Z"]  # zombies are dead, awaiting init
    assert not alive, f"workers are gone: {left}"
    assert stopped_after < 5, f"Ctrl-C took {stopped_after:.1f} s"
    assert not (out / "_lock.json").exists(), "Ctrl-C releases the output"
    assert not (out / "_runs").exists(), "an interrupted run publishes nothing"
    assert not list(temp.glob("beam-pipeline-temp*")), "no temp folder left behind"
    leftover = out / "_staging" / "20200101T000000Z-dead00" / "tags"
    leftover.mkdir(parents=True, exist_ok=True)
    (leftover / "part-00000-of-00001.parquet").write_text("x")
    listing.write_text(f"{photos['coffee']}\n")
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--detector", "none"])
    assert not (out / "_staging").exists(), "the next run removes what the killed one staged"


def test_a_normal_run_logs_the_projects_lines_only(tmp_path, photos):
    import subprocess
    import sys

    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n{photos['coffee']}\n")
    cmd = [sys.executable, "-m", "pipeline.cli", "tag", "--input", str(listing), "--output", str(tmp_path / "o"),
           "--allow_local_paths", "--progress_interval", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    logged = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(logged) <= 5, logged
    assert all(ln.startswith(("INFO pipeline", "INFO transforms")) for ln in logged), logged
    summary = done.stdout.splitlines()
    assert summary[0].split() == ["inputs", "2"] and any(ln.startswith("output") for ln in summary)
    assert any("image-tagger report --input" in ln for ln in summary)
    numbers = [ln for ln in summary if ln.split()[0] in ("inputs", "tagged", "failed")]
    assert len({len(ln) for ln in numbers}) == 1, "counts end in one column"


def test_a_job_whose_graph_fails_to_build_leaves_no_temp_folder(tmp_path, photos, monkeypatch):
    """Beam removes a pipeline's local temp folder only when it runs it; a graph that fails
    while it is built must not leave one behind (nor the output's lock)."""
    import tempfile

    from pipeline import graph, tag

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def broken(pipeline, job_options, workers):
        raise RuntimeError("the graph could not be built")

    monkeypatch.setattr(graph, "tag_images", broken)
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['coffee']}\n")
    with pytest.raises(RuntimeError, match="could not be built"):
        tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", "--ingest_only"])
    assert not list(temp.glob("beam-pipeline-temp*"))
    assert not (tmp_path / "out" / "_lock.json").exists()
