"""Run a pipeline with a predictable local default and print a run summary.

Beam 2.77's DirectRunner first tries the Prism runner, which downloads a binary at run
time; offline that costs a failed download before it falls back. For ``DirectRunner``
(or no runner) we go straight to the runner it falls back to, the in-process FnApiRunner,
which honours --direct_running_mode and --direct_num_workers. Ask for Prism explicitly
with ``--runner PrismRunner``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, SetupOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult

from pipeline.flags import IoFlags, RunFlags, run_flags
from transforms.core import uris
from transforms.core.records import NAMESPACE


def is_local(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner in (None, "DirectRunner", "direct", "SwitchingDirectRunner")


def num_local_workers(options: PipelineOptions) -> int:
    direct = options.view_as(DirectOptions)
    if not is_local(options) or direct.direct_running_mode == "in_memory":
        return 1
    return max(1, direct.direct_num_workers or 1)


def make_pipeline(options: PipelineOptions) -> beam.Pipeline:
    if not is_local(options):
        return beam.Pipeline(options=options)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return beam.Pipeline(runner=fn_runner.FnApiRunner(provision_info=provision), options=options)


class RunOptions(PipelineOptions):
    """How a run reports and when it counts as failed (every job; pipeline/flags.py declares it)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        run_flags(parser)


OWN_LOGGERS = ("pipeline", "transforms", "apache_beam.runners.dataflow")  # the job id and console URL
WORKER_RELAY = "apache_beam.runners.portability.local_job_service"


class _OwnLinesOnly(logging.Filter):
    """Below WARNING, pass only this project's lines (and Dataflow's job id and URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == WORKER_RELAY:  # multi_processing workers' own log lines, relayed
            return record.levelno >= logging.ERROR
        return record.levelno >= logging.WARNING or record.name.startswith(OWN_LOGGERS)


def configure_logging(o) -> None:
    """INFO shows this project's lines only; every library's INFO lines (Beam per bundle and per
    type hint, onnxruntime's quantizer) appear at --log_level DEBUG."""
    run = RunFlags.from_options(o)
    level = logging.WARNING if run.quiet else getattr(logging, run.log_level)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if level > logging.DEBUG:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_OwnLinesOnly())


def counters(result: PipelineResult, namespace: str = NAMESPACE) -> dict[str, int]:
    """Committed counter values of ``namespace`` (summed over steps), or {} if unsupported."""
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace))
    except Exception:  # noqa: BLE001 - some runners have no metrics API
        return {}
    totals: dict[str, int] = {}
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals


def summary(totals: dict[str, int], seconds: float, output: str = "", next_step: str = "") -> str:
    """The end-of-run summary: counts (failures by stage/type), throughput, where the output is
    and what to run next. Every number ends in one column."""
    inputs, tagged, failed = totals.get("inputs", 0), totals.get("tagged", 0), totals.get("failed", 0)
    rows: list[tuple[str, str]] = [("inputs", str(inputs)), ("tagged", str(tagged)), ("failed", str(failed))]
    rows += [(f"  {name[len('failed.'):].replace('.', '/', 1)}", str(totals[name]))
             for name in sorted(k for k in totals if k.startswith("failed."))]
    if totals.get("skipped_existing"):
        rows.append(("skipped", f"{totals['skipped_existing']}  (already tagged in earlier runs)"))
    if totals.get("reused_by_content"):
        rows.append(("reused", f"{totals['reused_by_content']}  (the same bytes as an earlier row: copied, no model "
                               "run)"))
    rate = (tagged + failed) / seconds if seconds > 0 else 0.0
    width = max(len(label) for label, _ in rows) + 2
    digits = max(len(value.split()[0]) for _, value in rows)
    lines = [f"{label:<{width}}{value.split(' ', 1)[0]:>{digits}}" + (" " + value.split(" ", 1)[1] if " " in value else "")
             for label, value in rows]
    lines.append(f"{'wall':<{width}}{seconds:.1f} s  ({rate:.1f} images/s)")
    if output:
        lines.append(f"{'output':<{width}}{output}")
    if next_step:
        lines.append(f"{'next':<{width}}{next_step}")
    return "\n".join(lines)


def stage_figures(result: PipelineResult, prefix: str = NAMESPACE + ".") -> str:
    """Per model stage, from Beam's RunInference metrics: model load time, batches, batch size
    and latency. Empty when the runner has no metrics API."""
    try:
        query = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners have no metrics API
        return ""
    stages: dict[str, dict] = {}
    for d in query["distributions"]:
        ns = d.key.metric.namespace
        value = d.committed or d.attempted
        if ns.startswith(prefix) and value is not None and value.count:
            stages.setdefault(ns[len(prefix):], {})[d.key.metric.name] = value
    lines = []
    width = max(map(len, stages), default=0)
    for stage, m in stages.items():
        load = m.get("load_model_latency_milli_secs")
        size = m.get("inference_request_batch_size")
        latency = m.get("inference_batch_latency_micro_secs")
        parts = [f"  {stage:<{width}}"]
        if load is not None:
            parts.append(f"load {load.sum / max(load.count, 1) / 1000:6.2f} s")
        if size is not None:
            parts.append(f"{size.count:>6} batches of {size.sum / size.count:5.1f}")
        if latency is not None:
            per_batch = latency.sum / latency.count / 1000
            per_image = latency.sum / max(size.sum if size is not None else latency.count, 1) / 1000
            parts.append(f"{per_batch:8.1f} ms/batch  {per_image:6.1f} ms/image")
        lines.append("  ".join(parts))
    return ("stages (Beam RunInference metrics)\n" + "\n".join(sorted(lines))) if lines else ""


def run_and_wait(pipeline: beam.Pipeline) -> tuple[PipelineResult, float]:
    start = time.monotonic()
    result = pipeline.run()
    result.wait_until_finish()
    return result, time.monotonic() - start


REQUIREMENTS_CACHE = "beam-requirements-cache"  # Beam's default folder name for it, under the temp folder


@contextlib.contextmanager
def own_temp_folder(pipeline: beam.Pipeline) -> Iterator[str]:
    """The process's temporary files, for one run of ``pipeline``, in a folder of its own that
    goes when the run ends. Beam's job-service submission (PortableRunner, Flink, Spark) makes
    temporary folders it never removes (its environment's and stager's mkdtemp: three per run),
    which a scheduled job would pile up in TMPDIR; Beam's requirements cache stays where Beam
    keeps it by default (set on the pipeline's own options: Beam copies them at construction)."""
    setup = pipeline.options.view_as(SetupOptions)
    if setup.requirements_cache is None:
        setup.requirements_cache = os.path.join(tempfile.gettempdir(), REQUIREMENTS_CACHE)
    folder = tempfile.mkdtemp(prefix="image-tagger-run-")
    before = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = before
        shutil.rmtree(folder, ignore_errors=True)


def check_error_rate(totals: dict[str, int], max_error_rate: float, output: str) -> None:
    """A run that is mostly failures exits non-zero with one line (its outputs are written)."""
    inputs = totals.get("inputs", 0) + totals.get("skipped_existing", 0)  # skipped: already done
    failed = totals.get("failed", 0)
    if inputs and failed / inputs > max_error_rate:
        raise SystemExit(
            f"image-tagger: {failed} of {inputs} inputs failed ({failed / inputs:.0%} > --max_error_rate "
            f"{max_error_rate:g}); every output and dead letter is written under {output}"
        )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: Linux; elsewhere none are found)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _workers_started(count: int, timeout: float, done: threading.Event) -> None:
    """Wait until ``count`` SDK worker processes run below this one (or the run ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done.is_set():
        workers = 0
        for pid in _descendants(os.getpid()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    workers += b"sdk_worker_main" in f.read()
            except OSError:
                continue
        if workers >= count:
            return
        done.wait(0.05)


def run_interruptible(pipeline: beam.Pipeline, output: str, on_stop=None, workers: int = 0) -> tuple[PipelineResult, float]:
    """Run a local pipeline so that Ctrl-C stops it at once and quietly. Beam's in-process runner
    would go on for tens of seconds (its bundle threads keep fetching); a run publishes its
    shards only in its final commit, so an interrupted run leaves earlier runs' files as they
    were, and the next run into the same output removes what it staged. ``on_stop`` runs first
    (it releases the output's lock).

    With ``workers`` SDK worker processes (multi_processing), Ctrl-C would reach them too and
    each would print a traceback: they are started while SIGINT is ignored (an ignored signal
    stays ignored across exec), and the handler, installed once they run, kills them."""
    if threading.current_thread() is not threading.main_thread():
        return run_and_wait(pipeline)

    def handler(signum, frame):
        # Beam's worker-watching threads would report the workers killed below as errors.
        threading.excepthook = lambda args: None
        if on_stop is not None:
            on_stop()
        for pid in _descendants(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        # os._exit skips Beam's own removal of the pipeline's local temp folder (Pipeline.run's finally)
        shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
        print(f"\nimage-tagger: interrupted; stopped. Nothing of earlier runs in {output} was changed; "
              "rerun with --skip_existing to finish.", file=sys.stderr, flush=True)
        os._exit(130)

    previous = signal.getsignal(signal.SIGINT)
    outcome: dict = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["result"] = run_and_wait(pipeline)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            outcome["error"] = exc
        finally:
            done.set()

    signal.signal(signal.SIGINT, signal.SIG_IGN if workers else handler)
    try:
        threading.Thread(target=target, name="pipeline", daemon=True).start()
        if workers:
            _workers_started(workers, 60.0, done)
            signal.signal(signal.SIGINT, handler)
        while not done.wait(0.2):  # short waits: the handler runs between them
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
                  errno.EDQUOT: "the disk quota is exceeded"}


def storage_failure(exc: BaseException) -> str | None:
    """What a full, read-only or over-quota disk reads as, wherever in the chain (or, once Beam
    has wrapped it in another exception, in the message) the OSError sits; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[current.errno]
        current = current.__cause__ or current.__context__
    found = re.search(r"\[Errno (\d+)\]", str(exc))
    return STORAGE_ERRNOS.get(int(found.group(1))) if found else None


def next_step(tables: tuple[str, ...], output: str) -> str:
    if "features" in tables:
        return f"image-tagger train --features {output} --output MODEL_DIR"
    return f"image-tagger report --input {output} --html report.html"


def _run_once(options: PipelineOptions, build, job_options, tables: tuple[str, ...], run_mode: str | None = None,
              prepare=None) -> tuple[dict[str, int], float, PipelineResult, str]:
    """One run of the job into its output: lock, manifest with lineage, build, run, commit.
    ``prepare(manifest)`` readies a shard's run and returns how many inputs it skipped."""
    from pipeline.run_output import open_run
    from transforms.output import lineage
    from transforms.output import lock as output_lock

    io_flags = IoFlags.from_options(job_options)
    output = io_flags.output
    skipped = 0
    with open_run(job_options, tables, run_mode) as manifest:
        given = io_flags.input if uris.scheme(io_flags.input) else os.path.abspath(io_flags.input)
        manifest.lineage = {"input": given, "options": lineage.non_default_options(options), **lineage.code_version()}
        if prepare is not None:
            skipped = prepare(manifest)
        job_options.run_manifest = manifest
        pipeline = make_pipeline(options)
        try:
            build(pipeline, job_options, num_local_workers(options))
        except BaseException:
            shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)  # Beam removes it only when it runs
            raise
        release = lambda: output_lock.release(output, manifest.run_id)  # noqa: E731
        multi = options.view_as(DirectOptions).direct_running_mode == "multi_processing"
        try:
            if is_local(options):
                result, seconds = run_interruptible(pipeline, output, release,
                                                    num_local_workers(options) if multi else 0)
            else:
                with own_temp_folder(pipeline):
                    result, seconds = run_and_wait(pipeline)
        except Exception as exc:
            reason = storage_failure(exc)
            if reason is None:
                raise
            raise SystemExit(f"image-tagger: cannot write {output}: {reason}. Nothing earlier runs wrote "
                             "was changed; make room and rerun with --skip_existing to finish") from None
    totals = counters(result)
    if skipped:
        totals["skipped_existing"] = totals.get("skipped_existing", 0) + skipped
    return totals, seconds, result, manifest.run_id


def _run_shards(options: PipelineOptions, build, job_options, tables: tuple[str, ...], shards,
                mode: str) -> tuple[dict[str, int], float, PipelineResult | None, str]:
    """Every shard of the plan, in order, each its own run; the first in the flags' mode, the
    rest adding to it. Totals are summed over the shards."""
    from pipeline.shards import bound_native_memory
    from transforms.core.kept import across_shards

    bound_native_memory()
    output = IoFlags.from_options(job_options).output
    totals: dict[str, int] = {}
    seconds, result, run_ids = 0.0, None, []  # type: tuple[float, PipelineResult | None, list[str]]
    try:
        with across_shards():
            for shard in shards.shards():
                run_mode = mode if not run_ids and not shards.start else "skip_existing"
                ready = shards.prepare(shard, output, run_mode == "skip_existing")
                job_options.run_shard = shard
                part, took, result, run_id = _run_once(options, build, job_options, tables, run_mode, ready)
                for key, value in part.items():
                    totals[key] = totals.get(key, 0) + value
                seconds += took
                run_ids.append(run_id)
    except KeyboardInterrupt:  # between two shards: every finished shard is committed
        print(f"\nimage-tagger: interrupted; stopped after {len(run_ids)} committed shard(s). Rerun with "
              "--skip_existing to go on from the next one.", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    finally:
        job_options.run_shard = None
    if not run_ids:
        print(f"image-tagger: every shard of {shards.path} is already committed in {output}; nothing to do")
    shown = f"{run_ids[0]} .. {run_ids[-1]}, {len(run_ids)} shards" if len(run_ids) > 1 else "".join(run_ids)
    return totals, seconds, result, shown


def run_job(options: PipelineOptions, build, job_options, tables: tuple[str, ...] = ("tags",),
            then: str | None = None) -> dict[str, int]:
    """Build a job with ``build(pipeline, job_options, num_workers)`` for one run of its output
    (``job_options.run_manifest``, pipeline/run_output.py), or for each shard of a long local
    list (pipeline/shards.py, ``job_options.run_shard``), run it to the end with a progress line
    on local runs, print the summary (inputs, tagged, failed by stage and type, throughput,
    per-stage model figures), return the counters, and exit non-zero when the share of failed
    inputs exceeds --max_error_rate. ``then`` replaces the summary's next step (a caller that
    goes on by itself, as learn does after extracting features)."""
    from pipeline import shards as sharding
    from pipeline.progress import Reporter, estimate_inputs
    from pipeline.run_output import mode

    o = RunFlags.from_options(options.view_as(RunOptions))
    io_flags = IoFlags.from_options(job_options)
    output = io_flags.output
    chosen = mode(job_options)
    plan = sharding.plan(job_options, is_local(options), chosen)
    live = is_local(options) and not o.quiet and o.progress_interval > 0
    total = (plan.remaining() if plan is not None else estimate_inputs(io_flags.input)) if live else None
    reporter = Reporter(total, o.progress_interval) if live else nullcontext()
    result: PipelineResult | None
    with reporter:
        if plan is None:
            totals, seconds, result, run_id = _run_once(options, build, job_options, tables)
        else:
            totals, seconds, result, run_id = _run_shards(options, build, job_options, tables, plan, chosen)
    if totals:
        shown = output if uris.scheme(output) else os.path.abspath(output)
        print(summary(totals, seconds, f"{shown}  (run {run_id})", then if then is not None else next_step(tables, shown)))
        figures = stage_figures(result) if result is not None else ""
        if figures:
            print(figures)
    check_error_rate(totals, o.max_error_rate, output)
    return totals
