"""A URI list of any length on the local runner: consecutive shards, each one committed run.

The local runner holds every pending input of a run in memory, so one run over a list of
millions would not fit on a laptop. A local .txt or .jsonl list is taken instead in shards of
--shard_size inputs. Each shard is a run of its own under the output's lock, with its own
manifest, so a kill loses at most the shard in flight. The manifest's lineage names the list
(path, size, mtime) and the byte offset where the shard ended, so a rerun with --skip_existing
seeks past the finished shards instead of reading them again. Earlier rows are matched with
pyarrow over the image_id column (transforms/output/backfill.py ``present_ids``): memory is
bounded by the shard, not by the output. Dataflow and Flink runs stay one distributed run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pipeline.flags import AUTO_SHARD_SIZE, IoFlags, TagJobFlags
from transforms.core import uris
from transforms.core.records import Element
from transforms.ingest.packed import open_list, packing_of, text_bytes
from transforms.ingest.read import (
    count_entries,
    input_kind,
    line_parser,
    list_lines,
)
from transforms.output import runs
from transforms.output.backfill import present_ids

SHARDED_KINDS = ("text", "jsonl")
M_ARENA_MAX = -8  # glibc's mallopt parameter: how many malloc arenas threads may spread over
LINEAGE_KEY = "shard"
TEXT_BYTES = "list_text_bytes"  # a compressed list's length once decompressed: where its offsets end


@dataclass
class Shard:
    """``elements`` of the list between byte offsets ``start`` and ``end``."""

    index: int
    start: int
    end: int
    elements: list[Element] = field(default_factory=list)

    def lineage(self, identity: dict[str, str | int]) -> dict[str, str | int]:
        return {**identity, "index": self.index, "start": self.start, "end": self.end, "inputs": len(self.elements)}


def bound_native_memory() -> None:
    """Each shard's pipeline starts new runner threads; over glibc's default of 8 malloc arenas per
    core, and Arrow's own allocator, the freed memory of every shard fragments a little more, so
    peak memory crept up shard after shard (docs/BENCHMARKS.md). Two arenas, and Arrow's buffers
    from the same system allocator, keep it flat. Best effort: elsewhere than glibc, nothing."""
    import ctypes
    import ctypes.util

    import pyarrow as pa

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(M_ARENA_MAX, 2)
    pa.set_memory_pool(pa.system_memory_pool())


def identity(path: str) -> dict[str, str | int]:
    """What says a list is the one an earlier shard read: its path, size and modification time
    (and a compressed list's text length, which bounds its shards' offsets)."""
    st = os.stat(path)
    ident: dict[str, str | int] = {"list": os.path.abspath(path), "list_bytes": st.st_size, "list_mtime_ns": st.st_mtime_ns}
    if packing_of(path):
        ident[TEXT_BYTES] = text_bytes(path)
    return ident


def read_shards(path: str, size: int, start: int = 0, index: int = 0, column: str = "") -> Iterator[Shard]:
    """Consecutive shards of ``size`` elements (a bad line's dead letter counts as one) from byte
    ``start`` of the list's text on (a JSONL list's URIs under ``column``); only one shard is held at a time."""
    parse = line_parser(input_kind(path), column)
    shard = Shard(index, start, start)
    with open_list(path) as f:
        for raw, end in list_lines(f, path, start):
            shard.elements += [raw] if isinstance(raw, dict) else parse(raw, path)
            shard.end = end
            if len(shard.elements) >= size:
                yield shard
                shard = Shard(shard.index + 1, shard.end, shard.end)
    if shard.elements:
        yield shard


def _offset(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def resume_point(manifests: list[runs.Manifest], ident: dict[str, str | int]) -> tuple[int, int]:
    """(byte offset, shard index) after the furthest committed shard of this same list; (0, 0)
    when there is none. Manifests are read-back data: a record that is not plain, in-range
    integers is ignored."""
    offset, index = 0, 0
    for m in manifests:
        record = m.lineage.get(LINEAGE_KEY) if m.status == "committed" else None
        if not isinstance(record, dict) or any(record.get(k) != v for k, v in ident.items()):
            continue
        end, done = _offset(record.get("end")), _offset(record.get("index"))
        if end is not None and done is not None and offset < end <= int(ident.get(TEXT_BYTES, ident["list_bytes"])):
            offset, index = end, done + 1
    return offset, index


@dataclass
class ShardPlan:
    """How a sharded run goes: the list, the shard size, where it starts, and what the output held
    before it (only those files can hold rows of the list's inputs: the shards are disjoint)."""

    path: str
    size: int
    ident: dict[str, str | int]
    start: int = 0
    index: int = 0
    column: str = ""  # --uri_column: a JSONL list's key
    earlier_tags: list[str] = field(default_factory=list)  # paths
    earlier_errors: set[str] = field(default_factory=set)  # manifest names
    _remaining: int | None = field(default=None, repr=False)

    def remaining(self) -> int:
        """Inputs from where the plan starts to the end of the list (counted once: plan() and the
        progress line both ask)."""
        if self._remaining is None:
            self._remaining = count_entries(self.path, self.start)
        return self._remaining

    def shards(self) -> Iterator[Shard]:
        return read_shards(self.path, self.size, self.start, self.index, self.column)

    def prepare(self, shard: Shard, output: str, skip: bool) -> Callable[[runs.Manifest], int]:
        """The step that readies a shard's run once its manifest is planned: the shard recorded in
        the lineage; with ``skip``, inputs that already have a row dropped, and only the earlier
        dead-letter files that hold one of the shard's inputs replaced (the rest stay as they
        are). Returns the number of inputs skipped."""

        def ready(manifest: runs.Manifest) -> int:
            manifest.lineage[LINEAGE_KEY] = shard.lineage(self.ident)
            if not skip:
                return 0
            ids = [e["image_id"] for e in shard.elements if "error" not in e]
            live = set(runs.committed_files(output, "tags"))
            done = present_ids([f for f in self.earlier_tags if f in live], ids)
            manifest.supersedes = [name for name in manifest.supersedes if name in self.earlier_errors
                                   and present_ids(runs.paths(output, [name]), ids)]
            before = len(shard.elements)
            shard.elements = [e for e in shard.elements if "error" in e or e["image_id"] not in done]
            return before - len(shard.elements)

        return ready


def plan(job_options, local: bool, mode: str) -> ShardPlan | None:
    """The shard plan of a tag run, or None for one run: not local, not a local text/JSONL list,
    or (with --shard_size 0) a list no longer than one shard and nothing to resume."""
    if not local or not hasattr(job_options, "shard_size"):
        return None
    io_flags = IoFlags.from_options(job_options)
    if uris.scheme(io_flags.input) or input_kind(io_flags.input) not in SHARDED_KINDS or not os.path.isfile(io_flags.input):
        return None
    chosen = TagJobFlags.from_options(job_options).shard_size
    ident = identity(io_flags.input)
    shards = ShardPlan(io_flags.input, chosen or AUTO_SHARD_SIZE, ident, column=io_flags.uri_column)
    if mode == "skip_existing":
        manifests = runs.read_manifests(io_flags.output)
        shards.start, shards.index = resume_point(manifests, ident)
        shards.earlier_tags = runs.committed_files(io_flags.output, "tags", manifests=manifests)
        shards.earlier_errors = {f for m in manifests if m.status == "committed" for f in m.files.get("errors", [])}
    if not chosen and not shards.start and shards.remaining() <= AUTO_SHARD_SIZE:
        return None
    return shards
