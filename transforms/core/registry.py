"""The stage registry: each model stage declares what it is, once, in its own module.

A stage module ends with ``register(Stage(...))``, naming:
- its command-line options (``options``: a Flags dataclass whose fields are the flags, with
  their defaults, help and range checks), checks across option groups (``check``), and where its
  model handler is built from them (``build``, "module:function", imported only when a job
  builds its graph; the builder returns None when the options turn the stage off);
- the element fields it reads and writes (``reads``/``writes``; a tag source is the field
  ``tags:<source>``, and ``tags:*`` reads every tag source another stage writes), from which the
  graph order, what is dropped when, and whether the decoder keeps the raw bytes are derived;
- the working image size it needs from the decoder (``size``: the smallest short and long
  side, given the options, since a torchvision detector needs more pixels than YOLOX);
- its tag source, the report's colour for it, and what the quality key measures the source's
  recall against (``quality``: the everyday words a person names first, or the vocabulary);
- the Parquet columns it adds to the tags table (``columns``);
- how the benchmark times it alone (``bench_batch``: its handler over decoded photos);
- which of its tags are evidence of their own beside a contradicting word (``evidence``).

MODULES below lists the stage modules: adding a stage is its module, its tests and one line
there. The graph (pipeline/graph.py), the options (pipeline/options.py), the decoder's
working size, the output schema, the report legend and the benchmark floor all read this
registry. docs/ARCHITECTURE.md follows a stage from declaration to Parquet column.
"""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from transforms.core.options import Flags

PIXELS = ("data", "image")  # heavy fields: dropped as soon as no later stage reads them
EVERY_TAG = "tags:*"  # a stage that reads this reads every tag source the others write (the review)


@dataclass(frozen=True)
class Column:
    """A column a stage adds to the tags table (null on rows of runs where it was off)."""

    name: str
    type: pa.DataType
    doc: str


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    build: str  # "module:function" (options, num_workers) -> its ModelHandler, or None when off
    options: type[Flags] | None = None  # its flags, each a field with its default, help and checks
    check: Callable[[Any], None] | None = None  # checks across option groups: raise transforms.core.launch.LaunchError
    size: Callable[[Any], tuple[int, int]] = lambda o: (0, 0)  # (short, long) side it needs, given options
    tag_source: str | None = None
    colour: str = "#7f7f7f"
    columns: tuple[Column, ...] = ()
    bench_batch: int = 8
    quality: str | None = None  # what the quality key measures its recall against: QUALITY
    shared: bool = False  # its options belong to every image job (the backbone), not the tag job only
    evidence: str | None = None  # its tags that are evidence of their own beside a contradicting word
    # (transforms/knowledge/contradictions.py): "all" (boxes), or "module:function" -> those words


QUALITY = ("everyday", "vocabulary")  # the words a person names first | the vocabulary words that apply
REGISTRY: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    if stage.quality not in (None, *QUALITY):
        raise ValueError(f"stage {stage.name!r}: quality must be one of {QUALITY}, not {stage.quality!r}")
    if stage.name in REGISTRY and REGISTRY[stage.name] != stage:
        raise ValueError(f"stage {stage.name!r} is registered twice")
    REGISTRY[stage.name] = stage
    return stage


# The stage modules, in registration order (ties in the graph order follow it). Adding a stage:
# its module (ending in ``register(Stage(...))``), its tests, and one line here.
MODULES = (
    "transforms.stages.fingerprint",  # first: the fetched bytes can be dropped right after it
    "transforms.stages.backbone",
    "transforms.stages.tagger",
    "transforms.stages.detector",
    "transforms.stages.zero_shot",
    "transforms.stages.expansion",
    "transforms.stages.embedding",
    "transforms.stages.learned",
    "transforms.stages.everyday",
    "transforms.stages.pose",  # after every stage that writes a person word: it decides on them
    "transforms.stages.worn",  # after every stage that writes a person word
    "transforms.stages.review",  # last: it reads every tag source
)


@functools.lru_cache(maxsize=1)
def registered() -> tuple[Stage, ...]:
    """Every stage listed in MODULES, in graph order (computed once per process)."""
    return tuple(ordered(importlib.import_module(module).STAGE for module in MODULES))


def reads_field(stage: Stage, field: str) -> bool:
    """Does the stage read this field (``tags:*`` reads every ``tags:<source>``)?"""
    return field in stage.reads or (EVERY_TAG in stage.reads and field.startswith("tags:"))


def ordered(stages: Iterable[Stage]) -> list[Stage]:
    """Graph order from declared fields: a stage runs after every stage that writes a field it
    reads (Kahn's algorithm; registration order breaks ties, so the order is stable)."""
    pending = list(stages)
    done: list[Stage] = []
    while pending:
        for stage in pending:
            writers = [s for s in pending if s is not stage and any(reads_field(stage, f) for f in s.writes)]
            if not writers:
                done.append(stage)
                pending.remove(stage)
                break
        else:
            names = ", ".join(s.name for s in pending)
            raise ValueError(f"stages read each other's fields in a cycle: {names}")
    return done


def imported(reference: str) -> Any:
    """The function a declaration names as "module:function", imported only now."""
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


def builder(stage: Stage) -> Callable[[Any, int], Any]:
    """The stage's handler builder, imported only now: reading a stage's declaration (its
    options, for --help) never imports its handler, Beam's inference machinery or torch."""
    return imported(stage.build)


def enabled(o: Any, num_workers: int = 1) -> list[tuple[Stage, Any]]:
    """(stage, its handler) for every stage the options turn on, in graph order."""
    out = []
    for stage in registered():
        handler = builder(stage)(o, num_workers)
        if handler is not None:
            out.append((stage, handler))
    return out


def working_size(stages: Iterable[Stage], o: Any) -> tuple[int, int]:
    """The smallest (short side, long side) the decoder may give every enabled stage's model."""
    sizes = [s.size(o) for s in stages]
    return (max((a for a, _ in sizes), default=1) or 1, max((b for _, b in sizes), default=1) or 1)


def own_evidence(stages: Iterable[Stage]) -> dict[str, frozenset[str] | None]:
    """Per tag source of the stages that declare it, the words it writes from evidence of their
    own (None: every tag it writes), for the contradiction check."""
    out: dict[str, frozenset[str] | None] = {}
    for s in stages:
        if s.evidence is not None and s.tag_source is not None:
            out[s.tag_source] = None if s.evidence == "all" else frozenset(imported(s.evidence)())
    return out


def reads_data(stages: Iterable[Stage]) -> bool:
    """Whether a stage needs the fetched bytes after decoding (then the decoder keeps them)."""
    return any("data" in s.reads for s in stages)


def needed_after(stages: list[Stage], index: int) -> set[str]:
    """Element keys some stage after ``stages[index]`` still reads."""
    return {f.split(":", 1)[0] for s in stages[index + 1:] for f in s.reads}


def quality_sources(measure: str) -> tuple[str, ...]:
    """The tag sources whose recall the quality key measures against ``measure`` (QUALITY)."""
    return tuple(s.tag_source for s in registered() if s.tag_source and s.quality == measure)


def tag_sources() -> tuple[str, ...]:
    return tuple(s.tag_source for s in registered() if s.tag_source)


def colours() -> dict[str, str]:
    return {s.tag_source: s.colour for s in registered() if s.tag_source}


def columns() -> list[Column]:
    return [c for s in registered() for c in s.columns]


def tags_schema() -> pa.Schema:
    """The tags table: the base columns (records.TAGS_SCHEMA) and every stage's columns."""
    from transforms.core.records import TAGS_SCHEMA, described

    return pa.schema([*TAGS_SCHEMA, *(described(c.name, c.type, c.doc) for c in columns())])


def add_options(parser: argparse.ArgumentParser, shared: bool) -> None:
    """Each stage's options, as its own argument group (``shared``: the image jobs' stages)."""
    for stage in registered():
        if stage.options is not None and stage.shared == shared:
            stage.options.add_flags(parser, stage.name)


def check_options(o: Any, shared: bool) -> None:
    """Each stage's launch checks: its own flags' (``Flags.check``), then its ``check`` hook."""
    for stage in registered():
        if stage.shared != shared:
            continue
        if stage.options is not None:
            stage.options.from_options(o).check()
        if stage.check is not None:
            stage.check(o)
