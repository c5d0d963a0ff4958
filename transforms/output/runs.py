"""An output folder as a dataset this tool owns run by run: layout, manifests, commit, recovery.

Layout (each table one folder, so pandas, DuckDB, pyarrow and BigQuery read it in one call):

    OUTPUT/tags/[PARTITION/]part-<run_id>-SSSSS-of-NNNNN.parquet
    OUTPUT/errors/[PARTITION/]part-<run_id>-SSSSS-of-NNNNN.parquet
    OUTPUT/_runs/<run_id>.json      one manifest per run: the files it published, what it replaced
    OUTPUT/_staging/<run_id>/...    Beam's shards while the run writes (readers ignore ``_`` names)
    OUTPUT/_lock.json               the run that holds the output (transforms/output/lock.py)

Crash safety: a run's shards are written under ``_staging`` and published by ``commit``, which
writes the manifest (status ``committing``, every rename and deletion planned) before moving
anything, renames the staged shards into place, and only then deletes the files the run
replaces. Each step is idempotent, so ``recover`` (run by the next job under the lock) rolls a
killed commit forward; a run killed before its manifest existed published nothing and its
staging folder is removed. Earlier runs' files are deleted only when a committed manifest
supersedes them, and only files named in a manifest are ever read or deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from apache_beam.io.filesystems import FileSystems

from transforms.core import faults, uris
from transforms.core.artifacts import exists, write_temp
from transforms.output import lineage
from transforms.output.partition import PARTITION

log = logging.getLogger(__name__)

RUNS = "_runs"
STAGING = "_staging"
TABLES = ("tags", "errors", "features")  # the table folders a job of this tool writes
OWNED = (RUNS, STAGING, *TABLES)  # never followed as symbolic links (check_layout)
SHARD = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")
RUN_ID = re.compile(r"^\d{8}T\d{6}(\d{6})?Z-[A-Za-z0-9]{1,32}$")  # older outputs: no microseconds
MODES = ("new", "skip_existing", "overwrite")
STATUSES = ("committing", "committed")
_PUBLISHED = re.compile(r"(.+)-(\d{5})-of-(\d{5})\.parquet")


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable by start time to the microsecond (two runs in one second keep their order),
    unique across hosts: 20261202T011045123456Z-3fa9c1."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def join(*parts: str) -> str:
    return FileSystems.join(parts[0].rstrip("/"), *[p for p in parts[1:] if p])


def table_dir(output: str, table: str, partition: str = "") -> str:
    return join(output, table, partition)


def staging_prefix(output: str, run_id: str, table: str) -> str:
    """Beam's file sink writes ``<prefix>-SSSSS-of-NNNNN.parquet`` and its temp folder beside it."""
    return join(output, STAGING, run_id, table, "part")


def manifest_path(output: str, run_id: str) -> str:
    return join(output, RUNS, run_id + ".json")


@dataclass
class Manifest:
    """What one run published (``files``: table -> final paths) and replaced (``supersedes``)."""

    run_id: str
    mode: str
    partition: str = ""
    tables: tuple[str, ...] = ("tags", "errors")
    status: str = "committing"  # -> committed (the publish point)
    started: str = ""
    committed: str = ""
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    # Paths are relative to the output folder, so an output copied elsewhere stays readable.
    files: dict[str, list[str]] = field(default_factory=dict)
    renames: list[list[str]] = field(default_factory=list)  # [staged, final]
    supersedes: list[str] = field(default_factory=list)  # earlier runs' files it replaces (until deleted)
    lineage: dict = field(default_factory=dict)  # how it was made (transforms/output/lineage.py)
    counts: dict = field(default_factory=dict)  # rows it published, per table and dead-letter kind

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """A manifest read back from disk is data to validate, never paths to trust: ValueError
        unless every field has its type and every path is one this tool writes inside OUTPUT."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        data["tables"] = tuple(data.get("tables", ("tags", "errors")))
        known = set(cls.__dataclass_fields__)
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        manifest.validate()
        return manifest

    def validate(self) -> None:
        _expect(isinstance(self.run_id, str) and bool(RUN_ID.match(self.run_id)), f"run_id {self.run_id!r}")
        _expect(self.mode in MODES, f"mode {self.mode!r}")
        _expect(self.status in STATUSES, f"status {self.status!r}")
        _expect(isinstance(self.partition, str) and (not self.partition or bool(PARTITION.match(self.partition))),
                f"partition {self.partition!r}")
        _expect(all(t in TABLES for t in self.tables), f"tables {self.tables!r}")
        _expect(all(isinstance(v, str) for v in (self.started, self.committed, self.host)), "started/committed/host")
        _expect(isinstance(self.pid, int), "pid")
        _expect(isinstance(self.files, dict) and all(t in self.tables for t in self.files), "files")
        for table, names in self.files.items():
            _expect(isinstance(names, list) and all(self._published(n, table, own=True) for n in names),
                    f"files of {table}")
        _expect(isinstance(self.renames, list) and all(self._rename_ok(r) for r in self.renames), "renames")
        _expect(lineage.valid_lineage(self.lineage), "lineage")
        _expect(lineage.valid_counts(self.counts), "counts")
        _expect(isinstance(self.supersedes, list)
                and all(any(self._published(n, t, own=False) for t in TABLES) for n in self.supersedes), "supersedes")

    def _published(self, name: object, table: str, own: bool) -> bool:
        """``table/[partition/]part-<run id>-SSSSS-of-NNNNN.parquet``: this run's, or (own=False) any run's."""
        if not isinstance(name, str):
            return False
        prefix = "/".join(p for p in (table, self.partition) if p) + "/part-"
        if not name.startswith(prefix) or not name.endswith(".parquet"):
            return False
        match = _PUBLISHED.fullmatch(name[len(prefix):])
        if match is None:
            return False
        return bool(RUN_ID.match(match.group(1))) and (not own or match.group(1) == self.run_id)

    def _rename_ok(self, pair: object) -> bool:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            return False
        staged, final = pair
        parts = staged.split("/")
        return (len(parts) == 4 and parts[:2] == [STAGING, self.run_id] and parts[2] in self.tables
                and bool(SHARD.match(parts[3])) and self._published(final, parts[2], own=True))


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"{what} is not one this tool writes")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - a missing folder or bucket prefix matches nothing
        return []


def write_atomically(path: str, text: str) -> None:
    """A whole file or none: local files via a temp file and os.replace in the same folder;
    object stores publish an object only when its upload completes."""
    if not uris.scheme(path):
        tmp = write_temp(os.path.dirname(path) or ".", os.path.basename(path), text)
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return
    with FileSystems.create(path, mime_type="application/json") as f:
        f.write(text.encode("utf-8"))


def write_manifest(output: str, manifest: Manifest) -> None:
    write_atomically(manifest_path(output, manifest.run_id), json.dumps(asdict(manifest), indent=1))


def read_manifests(output: str) -> list[Manifest]:
    """Every run manifest under ``output``, oldest first. A manifest that cannot be parsed, or
    that names a path this tool would not write, is a launch error (the output's ownership would
    be unknown), never silently skipped and never acted on."""
    check_layout(output)
    found = []
    for path in _match(join(output, RUNS, "*.json")):
        with FileSystems.open(path) as f:
            text = f.read().decode("utf-8", errors="replace")
        try:
            manifest = Manifest.from_json(text)
            if path.rsplit("/", 1)[-1] != manifest.run_id + ".json":
                raise ValueError(f"it names run {manifest.run_id}")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"run manifest {path} is not one this tool wrote ({exc}); move it away to continue") from None
        found.append(manifest)
    return sorted(found, key=lambda m: m.run_id)


def check_layout(output: str) -> None:
    """The folders this tool owns in a local output are never symbolic links (a link would carry
    reads, renames and deletions outside OUTPUT): ValueError naming the link."""
    if uris.scheme(output):
        return
    from transforms.output.lock import LOCK

    for name in (*OWNED, LOCK):
        if os.path.islink(os.path.join(output, name)):
            raise ValueError(f"{os.path.join(output, name)} is a symbolic link; this tool never follows links "
                             "inside its output: replace it with a real folder or choose a new --output")


def check_links(output: str) -> None:
    """check_layout, and no symbolic link anywhere inside the folders this tool owns."""
    check_layout(output)
    if not uris.scheme(output):
        for name in OWNED:
            _walk(os.path.join(output, name))


def inside(output: str, path: str) -> bool:
    """Whether a local ``path`` really lies inside ``output`` (links and .. resolved)."""
    root = os.path.realpath(output)
    return os.path.realpath(path).startswith(root.rstrip(os.sep) + os.sep)


def _guard(output: str, *targets: str) -> None:
    """Refuse, loudly, to rename, delete or remove anything outside a local output."""
    if uris.scheme(output):
        return
    for target in targets:
        if not inside(output, target):
            raise ValueError(f"refusing to touch {target}: it lies outside {output}")


def committed_files(output: str, table: str, partition: str | None = None,
                    manifests: Iterable[Manifest] | None = None) -> list[str]:
    """The files of ``table`` that committed runs published (optionally in one partition), less
    those a committed run replaces: what the report, --skip_existing and training read. Files no
    manifest lists are never read."""
    done = [m for m in (manifests if manifests is not None else read_manifests(output)) if m.status == "committed"]
    replaced = {f for m in done for f in m.supersedes}
    return paths(output, (f for m in done if partition is None or m.partition == partition
                          for f in m.files.get(table, []) if f not in replaced))


def paths(output: str, names: Iterable[str]) -> list[str]:
    """Manifest entries (relative to the output) as paths."""
    return [join(output, n) for n in names]


def iter_file_batches(path: str, columns: list[str] | None = None, batch_rows: int = 1024) -> Iterator:
    """Record batches of one Parquet file through a seekable file of Beam's filesystems (local or
    gs://), never loaded whole. A missing file raises: a manifest promised it."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=columns)


def iter_file_rows(path: str, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of one Parquet file, batch by batch (``iter_file_batches``)."""
    for batch in iter_file_batches(path, columns):
        yield from batch.to_pylist()


def _final_name(run_id: str, table: str, partition: str, staged: str) -> str:
    match = SHARD.match(staged.rsplit("/", 1)[-1])
    if not match:
        raise ValueError(f"unexpected staged file {staged}")
    return "/".join(p for p in (table, partition, f"part-{run_id}-{match.group(1)}-of-{match.group(2)}.parquet") if p)


def _staged_name(run_id: str, table: str, staged: str) -> str:
    return "/".join((STAGING, run_id, table, staged.rsplit("/", 1)[-1]))


def _rows(path: str) -> int:
    import pyarrow.parquet as pq

    with FileSystems.open(path) as f:
        return pq.ParquetFile(f).metadata.num_rows


def _rename(output: str, src: str, dst: str) -> None:
    _guard(output, src, dst)
    if not uris.scheme(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
    FileSystems.rename([src], [dst])


def _delete(output: str, files: list[str]) -> None:
    _guard(output, *files)
    present = [p for p in files if exists(p)]
    if present:
        FileSystems.delete(present)


def _remove_tree(output: str, path: str) -> None:
    if not uris.scheme(path):
        import shutil

        if os.path.islink(path) or not os.path.isdir(path):
            return  # never followed: check_layout refuses links in the folders we own
        _guard(output, path)
        shutil.rmtree(path, ignore_errors=True)
        return
    _delete(output, _match(join(path, "**")))


def _step(name: str) -> None:
    """A named point in the commit; the crash-safety test kills the process at each one."""
    faults.step(f"commit:{name}")


def plan_commit(output: str, manifest: Manifest) -> Manifest:
    """Fill the manifest's renames and published files from what the run staged. Empty shards
    are left out, except one when the table would otherwise have no file (a folder readers can
    open, with the schema)."""
    earlier = read_manifests(output)
    published = {}
    for table in manifest.tables:
        staged = _match(staging_prefix(output, manifest.run_id, table) + "-*.parquet")
        kept = [s for s in staged if _rows(s)]
        remaining = set(committed_files(output, table, manifests=earlier)) - set(paths(output, manifest.supersedes))
        if not kept and staged and not remaining:
            kept = staged[:1]
        finals = [_final_name(manifest.run_id, table, manifest.partition, s) for s in kept]
        manifest.renames.extend([_staged_name(manifest.run_id, table, s), f] for s, f in zip(kept, finals, strict=True))
        manifest.files[table] = finals
        published[table] = kept
    manifest.counts = lineage.count_rows(published)
    return manifest


def finish_commit(output: str, manifest: Manifest) -> None:
    """The idempotent half of a commit. Renames, then the publish point (the manifest turns
    ``committed`` in one atomic write: readers switch from the old file set to the new one),
    then the clean-up of what it replaces (earlier manifests pruned, files deleted)."""
    if manifest.status != "committed":
        for i, (staged, final) in enumerate(manifest.renames):
            if exists(join(output, staged)):
                _rename(output, join(output, staged), join(output, final))
            _step(f"rename{i}")
        manifest.status, manifest.committed = "committed", _now()
        write_manifest(output, manifest)
        _step("published")
    if manifest.supersedes:
        gone = set(manifest.supersedes)
        for other in read_manifests(output):
            if other.run_id == manifest.run_id or not gone & _listed(other):
                continue
            other.files = {t: [f for f in fs if f not in gone] for t, fs in other.files.items()}
            if any(other.files.values()):
                write_manifest(output, other)
            else:
                _delete(output, [manifest_path(output, other.run_id)])
        _step("pruned")
        _delete(output, paths(output, manifest.supersedes))
        _step("deleted")
        manifest.supersedes = []
        write_manifest(output, manifest)
    _remove_tree(output, join(output, STAGING, manifest.run_id))
    if not uris.scheme(output):
        with contextlib.suppress(OSError):
            os.rmdir(join(output, STAGING))  # only when empty


def _listed(m: Manifest) -> set[str]:
    return {f for files in m.files.values() for f in files}


def read_manifest(output: str, run_id: str) -> Manifest | None:
    path = manifest_path(output, run_id)
    if not exists(path):
        return None
    with FileSystems.open(path) as f:
        return Manifest.from_json(f.read().decode("utf-8"))


def plan_run(output: str, run_id: str, mode: str, partition: str = "",
             tables: tuple[str, ...] = ("tags", "errors")) -> Manifest:
    """The manifest a run starts from: what it will replace when it commits. ``overwrite``
    replaces every committed file of its partition; ``skip_existing`` replaces the partition's
    earlier dead letters, which the run carries forward unless it retried their inputs."""
    if mode not in MODES:
        raise ValueError(f"unknown output mode {mode!r}")
    manifest = Manifest(run_id=run_id, mode=mode, partition=partition, tables=tables, started=_now())
    earlier = [m for m in read_manifests(output) if m.status == "committed" and m.partition == partition]
    if mode == "overwrite":
        manifest.supersedes = [f for m in earlier for files in m.files.values() for f in files]
    elif mode == "skip_existing":
        manifest.supersedes = [f for m in earlier for f in m.files.get("errors", [])]
    return manifest


def commit(output: str, manifest: Manifest) -> Manifest:
    """Publish a run whose shards are all staged (see the module docstring). Safe to call again
    for the same run (a retried bundle): a committed run is left as it is."""
    done = read_manifest(output, manifest.run_id)
    if done is not None:
        if done.status != "committed":
            finish_commit(output, done)
        return done
    plan_commit(output, manifest)
    _step("planned")
    write_manifest(output, manifest)
    _step("manifest")
    finish_commit(output, manifest)
    log.info("committed run %s: %s", manifest.run_id,
             ", ".join(f"{len(v)} {k} files" for k, v in manifest.files.items()))
    return manifest


def recover(output: str, active_run: str = "") -> list[str]:
    """Under the lock: roll forward every commit a killed run left half done, and remove staging
    folders of runs that never reached their manifest. Returns what was done, one line each."""
    done = []
    manifests = {m.run_id: m for m in read_manifests(output)}
    for m in manifests.values():
        if m.status == "committing" or m.supersedes:
            finish_commit(output, m)
            done.append(f"finished the interrupted commit of run {m.run_id}")
    for run_id in staged_runs(output):
        if run_id != active_run:
            _remove_tree(output, join(output, STAGING, run_id))
            done.append(f"removed the unpublished files of interrupted run {run_id}")
    for line in done:
        log.info("%s", line)
    return done


def staged_runs(output: str) -> list[str]:
    """Run ids with a folder under ``_staging`` (anything else there is not ours: left alone)."""
    root = join(output, STAGING)
    if not uris.scheme(output):
        names = os.listdir(root) if os.path.isdir(root) and not os.path.islink(root) else []
    else:
        prefix = root.rstrip("/") + "/"
        names = [p[len(prefix):].split("/", 1)[0] for p in _match(join(root, "**")) if p.startswith(prefix)]
    return sorted({n for n in names if RUN_ID.match(n)})


def foreign_files(output: str, tables: Iterable[str], manifests: list[Manifest]) -> list[str]:
    """Files inside our table folders that no manifest lists (someone else's, or an older
    layout): never read nor deleted, but they would mix into what readers of the folder see."""
    ours = set(paths(output, (f for m in manifests for f in (*_listed(m), *m.supersedes))))
    found = []
    for table in tables:
        for path in _match(join(output, table, "**")) if uris.scheme(output) else _walk(join(output, table)):
            if path not in ours:
                found.append(path)
    return found


def _walk(folder: str) -> list[str]:
    """Every file below ``folder``; a symbolic link anywhere below it is a ValueError."""
    paths: list[str] = []
    for root, dirs, names in os.walk(folder):
        for n in (*dirs, *names):
            if os.path.islink(os.path.join(root, n)):
                raise ValueError(f"{os.path.join(root, n)} is a symbolic link; this tool never follows links "
                                 "inside its output: remove it or choose a new --output")
        paths.extend(os.path.join(root, n) for n in names)
    return sorted(paths)
