"""Run a pipeline with a predictable local default and print a run summary.

Beam 2.77's DirectRunner first tries the Prism runner, which downloads a binary at run
time; offline that costs a failed download before it falls back. For ``DirectRunner``
(or no runner) we go straight to the runner it falls back to, the in-process FnApiRunner,
which honours --direct_running_mode and --direct_num_workers. Ask for Prism explicitly
with ``--runner PrismRunner``.
"""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult


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


def counters(result: PipelineResult, namespace: str = "image_tagger") -> dict[str, int]:
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


def summary(totals: dict[str, int], seconds: float) -> str:
    inputs, tagged, failed = totals.get("inputs", 0), totals.get("tagged", 0), totals.get("failed", 0)
    lines = [
        f"inputs  {inputs:>8}",
        f"tagged  {tagged:>8}",
        f"failed  {failed:>8}",
    ]
    if totals.get("skipped_existing"):
        lines.append(f"skipped {totals['skipped_existing']:>8}  (already tagged in earlier outputs)")
    for name in sorted(k for k in totals if k.startswith("failed.")):
        lines.append(f"  {name[len('failed.'):]:<40} {totals[name]:>6}")
    rate = (tagged + failed) / seconds if seconds > 0 else 0.0
    lines.append(f"wall    {seconds:8.1f} s   ({rate:.1f} images/s)")
    return "\n".join(lines)


def run_and_wait(pipeline: beam.Pipeline) -> tuple[PipelineResult, float]:
    start = time.monotonic()
    result = pipeline.run()
    result.wait_until_finish()
    return result, time.monotonic() - start


def run_job(options: PipelineOptions, build, job_options) -> dict[str, int]:
    """Build a job with ``build(pipeline, job_options, num_workers)``, run it to the end, print
    the summary (inputs, tagged, failed by stage and type, throughput) and return the counters."""
    pipeline = make_pipeline(options)
    build(pipeline, job_options, num_local_workers(options))
    result, seconds = run_and_wait(pipeline)
    totals = counters(result)
    if totals:
        print(summary(totals, seconds))
    return totals
