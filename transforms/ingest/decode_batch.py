"""The decode step of the Beam graph: batches from the fetch window -> one decoded element per
image, or a dead letter (the decoding itself: transforms/ingest/decode.py)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from transforms.core.records import ERRORS, Element
from transforms.core.threads import worker_threads
from transforms.ingest.decode import DecodeConfig, decode_element


class DecodeBatch(beam.DoFn):
    """DoFn over the fetch stage's batches: decodes them on a thread pool (Pillow releases the GIL
    while decoding and resizing, so N cores decode N images at once), then emits one element
    per image, or a dead letter to ERRORS."""

    def __init__(self, config: DecodeConfig, threads: int = 0):
        self._config = config
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=worker_threads(self._threads))

    def process(self, batch: list[Element]) -> Iterable:
        assert self._pool is not None
        for out in self._pool.map(lambda e: decode_element(e, self._config), batch):
            yield beam.pvalue.TaggedOutput(ERRORS, out) if "error" in out else out

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
