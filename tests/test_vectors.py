"""Word vector sources: the embedded GloVe, word2vec/GloVe text and binary files, phrases."""

from __future__ import annotations

import numpy as np
from gensim.models import KeyedVectors

from transforms.knowledge.vectors import candidate_words, load_vectors, phrase_vector


def _small_kv() -> KeyedVectors:
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["cat", "dog", "car"], np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]], np.float32))
    return kv


def test_embedded_glove_is_real():
    kv = load_vectors()
    assert kv.vector_size == 50 and len(kv.index_to_key) == 400_000
    assert kv.similarity("cat", "dog") > kv.similarity("cat", "car")
    assert load_vectors() is kv, "loaded once per process"


def test_file_formats_round_trip(tmp_path):
    kv = _small_kv()
    w2v_text, w2v_bin, glove, native = (tmp_path / n for n in ("v.vec", "v.bin", "g.txt", "v.kv"))
    kv.save_word2vec_format(str(w2v_text), binary=False)
    kv.save_word2vec_format(str(w2v_bin), binary=True)
    kv.save(str(native))
    glove.write_text("".join(f"{w} {' '.join(map(str, kv[w]))}\n" for w in kv.index_to_key))
    for path in (w2v_text, w2v_bin, glove, native):
        loaded = load_vectors(str(path))
        assert loaded.index_to_key == ["cat", "dog", "car"], path
        assert np.allclose(loaded["dog"], kv["dog"], atol=1e-5), path


def test_phrases_average_known_words_and_oov_is_none():
    kv = _small_kv()
    v = phrase_vector(kv, "cat car")
    assert np.allclose(v, [0.5, 0, 0.5])
    assert phrase_vector(kv, "zebra unicorn") is None
    assert np.allclose(phrase_vector(kv, "cat-zebra"), [1, 0, 0])


def test_candidate_words_are_plain_and_unit_norm():
    words, matrix = candidate_words(load_vectors(), 1000)
    assert len(words) == 1000 and all(w.isalpha() or "-" in w or "'" in w for w in words)
    assert "city" in words and "," not in words
    assert not {"the", "every", "someone"} & set(words), "stopwords are never expansion words"
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=1e-5)
