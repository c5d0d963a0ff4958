"""Word vector sources: the embedded GloVe, word2vec/GloVe text and binary files, phrases."""

from __future__ import annotations

import numpy as np
import pytest
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
    w2v_text, w2v_bin, glove, arrays = (tmp_path / n for n in ("v.vec", "v.bin", "g.txt", "v.npz"))
    kv.save_word2vec_format(str(w2v_text), binary=False)
    kv.save_word2vec_format(str(w2v_bin), binary=True)
    np.savez(arrays, words=np.array(kv.index_to_key), vectors=kv.vectors)
    glove.write_text("".join(f"{w} {' '.join(map(str, kv[w]))}\n" for w in kv.index_to_key))
    for path in (w2v_text, w2v_bin, glove, arrays):
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


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("name", ["evil.kv", "evil.pkl", "evil.model", "evil.kv.gz"])
def test_pickled_vectors_are_refused_and_never_loaded(tmp_path, monkeypatch, name, photos):
    """Hostile round 4, class 3: a pickle named as vectors ran its command before the crash."""
    import pickle

    from pipeline import tag

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / name
    evil.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ValueError, match="pickle"):
        load_vectors(str(evil))
    with pytest.raises(SystemExit) as info:
        tag.run(["--input", str(photos["chelsea"]), "--output", str(tmp_path / "out"), "--word_vectors", str(evil)])
    assert "pickle" in str(info.value) and "save_word2vec_format" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out").exists()


def test_an_npz_holding_objects_is_refused_without_unpickling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "v.npz"
    np.savez(evil, words=np.array([_Boom()], dtype=object), vectors=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="not an .npz"):
        load_vectors(str(evil))
    assert not (tmp_path / "PWNED").exists()
