"""Every flag of our image jobs, declared without importing Beam: ``--help`` answers from here
in well under 2 s, and the Beam option classes (pipeline/options.py, pipeline/runner.py) add the
same flags to Beam's parser. Defaults come from the config dataclasses (HttpConfig,
DecodeConfig, each stage's config)."""

from __future__ import annotations

from transforms.core.records import CODECS as PARQUET_CODECS
from transforms.core.registry import add_options as add_stage_options
from transforms.ingest.decode import DecodeConfig
from transforms.ingest.http_client import HttpConfig

HTTP = HttpConfig()  # the fetch flags' defaults


def flag(value: str) -> bool:
    """A boolean option that also takes a value (Flex Templates pass --name=true)."""
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")



def image_flags(parser) -> None:
    """What every image job shares: input/output, fetching, decoding, and the backbone."""
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--input",
        help="Required. A folder (every image below it), a glob of image files (local or "
        "gs://), or a URI list: .txt (one per line), .csv/.tsv (a 'uri' or 'url' column), .jsonl (objects with 'uri'/'url'), .parquet "
        "('uri'/'url' column). URIs may be local paths, gs:// or http(s)://.",
    )
    io.add_argument(
        "--output",
        help="Directory or gs:// prefix the job owns: the tag job writes OUTPUT/tags/ and "
        "OUTPUT/errors/ (the feature job OUTPUT/features/), each a folder of Parquet files that "
        "pandas, DuckDB, pyarrow and BigQuery read as one table, plus a manifest per run in "
        "OUTPUT/_runs/. An output that already holds runs needs --overwrite (or, for the tag "
        "job, --skip_existing). Required.",
    )
    io.add_argument(
        "--num_shards", type=int, default=0,
        help="Output shards per table and run (0: let the runner decide).",
    )
    io.add_argument(
        "--parquet_codec", choices=PARQUET_CODECS, default="zstd",
        help="Compression of the Parquet outputs (zstd: small and fast to read everywhere).",
    )
    io.add_argument(
        "--overwrite", type=flag, nargs="?", const=True, default=False,
        help="Replace what earlier runs wrote to this output (or to --partition): their files "
        "are deleted only after this run's files are all in place.",
    )
    io.add_argument(
        "--partition", default="",
        help="Hive-style partition of this run inside the output, e.g. dt=2026-11-29: files go "
        "to OUTPUT/tags/dt=2026-11-29/ and readers get a dt column (scheduled backfills).",
    )
    io.add_argument(
        "--break_lock", type=flag, nargs="?", const=True, default=False,
        help="Take the output's lock even though another run holds it (only when that run is "
        "known to be gone, e.g. a failed remote job).",
    )

    fetch = parser.add_argument_group("fetching")
    fetch.add_argument("--fetch_concurrency", "--fetch_threads", dest="fetch_concurrency", type=int,
                       default=HTTP.fetch_concurrency, help="Requests in flight per worker at all times (a continuous "
                       "window: each image moves on as soon as it arrives).")
    fetch.add_argument("--max_per_host", type=int, default=None,
                       help="Most requests in flight to one host per worker. Each host's window "
                       "adapts (starts at 4, grows while it answers well, halves on 429/503, "
                       "Retry-After, timeouts, resets or rising latency); by default it may grow "
                       "to the whole --fetch_concurrency window.")
    fetch.add_argument("--max_host_rate", type=float, default=HTTP.max_host_rate,
                       help="Requests per second started to one host per worker (0: no limit).")
    fetch.add_argument("--fetch_batch_size", type=int, default=32,
                       help="Fetched images handed to the decoder at once (decoded in parallel).")
    fetch.add_argument("--max_bytes", type=int, default=HTTP.max_bytes,
                       help="Largest accepted image body in bytes (too_large beyond).")
    fetch.add_argument("--connect_timeout", type=float, default=HTTP.connect_timeout,
                       help="HTTP connect timeout, seconds.")
    fetch.add_argument("--read_timeout", type=float, default=HTTP.read_timeout,
                       help="HTTP timeout waiting for the next bytes, seconds.")
    fetch.add_argument("--total_timeout", type=float, default=HTTP.total_timeout,
                       help="Deadline per image covering retries, redirects and the body, seconds.")
    fetch.add_argument("--max_attempts", type=int, default=HTTP.max_attempts,
                       help="HTTP attempts per image; only transient failures (connection "
                       "errors, timeouts, 408, 429, 5xx) are retried, with jittered backoff.")
    fetch.add_argument("--retry_backoff", type=float, default=HTTP.retry_backoff,
                       help="Base of the exponential retry backoff, seconds.")
    fetch.add_argument("--max_redirects", type=int, default=HTTP.max_redirects, help="Redirect hops followed.")
    fetch.add_argument("--http_user_agent", default=HTTP.http_user_agent,
                       help="User-Agent header for http(s) fetches.")
    fetch.add_argument("--allow_private_networks", action="store_true", default=HTTP.allow_private_networks,
                       help="Let web URLs reach loopback/private/link-local addresses (the SSRF "
                       "guard refuses them by default).")
    fetch.add_argument("--allowed_schemes", default="",
                       help="URI schemes a URI list may name, comma-separated from http, https, "
                       "file, gs, s3, azfs, hdfs (default: http,https for a list; a glob of images "
                       "allows its own scheme). Local files and cloud objects are read with this "
                       "machine's permissions and credentials: allow them for lists you trust.")
    fetch.add_argument("--allow_local_paths", type=flag, nargs="?", const=True, default=False,
                       help="Let a URI list name local paths and file:// URIs (adds file to "
                       "--allowed_schemes). Relative paths resolve against the list's folder.")
    fetch.add_argument("--allowed_roots", default="",
                       help="Comma-separated folders local reads must stay inside (after resolving "
                       ".. and symbolic links); default: anywhere, once file is allowed.")
    fetch.add_argument("--ignore_robots_opt_out", action="store_true", default=HTTP.ignore_robots_opt_out,
                       help="Fetch images whose X-Robots-Tag says noai/noimageai (skipped by default).")

    decode = parser.add_argument_group("decoding")
    decode.add_argument("--decode_threads", type=int, default=0,
                        help="Images decoded at once per worker (0: one per core).")
    decode.add_argument("--max_pixels", type=int, default=DecodeConfig.max_pixels,
                        help="Refuse images whose declared width x height exceeds this "
                        "(decompression_bomb), before allocating.")

    add_stage_options(parser, shared=True)  # the backbone's (every image job has one)


def tag_flags(parser) -> None:
    """The tag job's own options, then every other registered stage's options, each in its own group."""
    io = parser.add_argument_group("tag job")
    io.add_argument(
        "--skip_existing", type=flag, nargs="?", const=True, default=False,
        help="Add to an output that already holds runs: inputs whose image_id has a row in any "
        "of its partitions are skipped (a scalable anti-join); earlier runs' files are never "
        "moved or rewritten, and earlier dead letters are retried. Resumes a killed run.",
    )
    io.add_argument("--ingest_only", action="store_true", default=False,
                    help="Fetch and decode only, no models: one tags row per image (uri, image_id, "
                    "width, height, empty tags and objects) and the dead-letter table. Checks a "
                    "URL list before paying for inference.")
    add_stage_options(parser, shared=False)


def run_flags(parser) -> None:
    """How a run reports and when it counts as failed (every job)."""
    run = parser.add_argument_group("run")
    run.add_argument("--max_error_rate", type=float, default=0.5,
                     help="Exit non-zero when more than this share of the inputs ends as dead "
                     "letters (all outputs are still written). 1 never fails a run.")
    run.add_argument("--progress_interval", type=float, default=5.0,
                     help="Seconds between progress lines on local runs (0: none).")
    run.add_argument("--quiet", action="store_true", default=False,
                     help="Log warnings only and print no progress lines.")
    run.add_argument("--log_level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                     help="Log level (INFO shows a Dataflow job's id and console URL).")
