"""Zero-shot tagging: ConSE and the Fast0Tag mapping on constructed vectors, phrases and OOV,
the tag job on real photos, and the ZS/GZS evaluation on synthetic data built for transfer."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors

from pipeline import tag
from pipeline.training import evaluate
from pipeline.training.fast0tag import train_fast0tag
from tests.conftest import read_table
from transforms.core.records import FEATURES_SCHEMA
from transforms.handlers.zero_shot import ZeroShotHandler
from transforms.output import model_folder
from transforms.stages.taggernet import build_taggernet, taggernet_files
from transforms.stages.zero_shot import (
    MAPPING,
    ZeroShotConfig,
    conse_scores,
    embed_phrases,
    normalise_rows,
)

EVERYDAY = ["animal", "pet", "drink", "beverage", "vehicle", "building", "person", "food", "plant",
            "sky", "water", "furniture", "clothing", "tool", "toy", "music", "sport", "machine"]


def _kv(words: list[str], vectors: np.ndarray) -> KeyedVectors:
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32))
    return kv


def test_conse_picks_the_probability_weighted_mixture():
    seen = np.eye(3, dtype=np.float32)  # seen labels along the axes
    vocab = normalise_rows(np.array([[0.7, 0.3, 0], [0, 0, 1], [0.3, 0.7, 0]], np.float32))
    probs = np.array([[0.7, 0.3, 0.0]], np.float32)
    scores = conse_scores(probs, seen, vocab, top_t=2)
    assert int(np.argmax(scores[0])) == 0
    # top_t=1 keeps only the best seen label: the pure x-axis direction is then closest to word 0.
    assert conse_scores(probs, seen, vocab, top_t=1)[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_phrases_average_and_oov_is_reported():
    kv = _kv(["tiger", "cat", "dog"], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    vecs, unknown = embed_phrases(kv, ["tiger cat", "dog", "unicorn"])
    assert np.allclose(vecs[0], normalise_rows(np.array([0.5, 0.5, 0])))
    assert unknown == ["unicorn"] and not vecs[2].any()


def _transfer_data(rng, n=1200, dim_word=12, dim_feat=64, seen=30, unseen=6):
    """Labels with random word vectors; features a fixed linear image of the sum of an image's
    label vectors plus noise, so a linear map can recover word space and reach unseen labels."""
    vectors = normalise_rows(rng.normal(size=(seen + unseen, dim_word)))
    labels = rng.random((n, seen + unseen)) < 3 / (seen + unseen)
    labels[labels.sum(1) == 0, rng.integers(0, seen + unseen)] = True
    mix = rng.normal(size=(dim_word, dim_feat))
    features = (labels @ vectors) @ mix + 0.1 * rng.normal(size=(n, dim_feat))
    names = [f"seen{i}" for i in range(seen)] + [f"novel{i}" for i in range(unseen)]
    return features.astype(np.float32), labels, vectors, names


def test_fast0tag_mapping_ranks_unseen_labels():
    rng = np.random.default_rng(0)
    features, labels, vectors, _ = _transfer_data(rng)
    mapping = train_fast0tag(features[:1000, :], labels[:1000, :30], vectors[:30], {}, epochs=20)
    scores = mapping.scores(features[1000:], vectors)[:, 30:]
    y = labels[1000:, 30:]
    keep = y.any(1)
    top1 = np.argmax(scores[keep], axis=1)
    hit = y[keep][np.arange(keep.sum()), top1].mean()
    chance = y[keep].sum(1).mean() / 6
    assert hit > chance + 0.3


def test_zero_shot_evaluation_beats_chance(tmp_path):
    rng = np.random.default_rng(1)
    features, labels, vectors, names = _transfer_data(rng)
    split = np.where(np.arange(len(features)) % 5 == 0, "test", np.where(np.arange(len(features)) % 5 == 1, "val", "train"))
    rows = pa.table({
        "image_id": [f"{i:06d}" for i in range(len(features))],
        "uri": [f"/syn/{i}.jpg" for i in range(len(features))],
        "features": [f.tolist() for f in features],
        "labels": [[names[j] for j in np.flatnonzero(r)] for r in labels],
        "split": split.tolist(),
        "backbone": ["synthetic"] * len(features),
        "content_sha256": [None] * len(features),
    }, schema=FEATURES_SCHEMA)
    (tmp_path / "features").mkdir()
    pq.write_table(rows, tmp_path / "features" / "features-00000-of-00001.parquet")
    vec_file = tmp_path / "vectors.txt"
    vec_file.write_text("".join(f"{w} {' '.join(f'{x:.6f}' for x in v)}\n" for w, v in zip(names, vectors, strict=True)))
    unseen = tmp_path / "unseen.txt"
    unseen.write_text("\n".join(names[30:]) + "\n")
    m = evaluate.main(["--zero_shot", "--unseen_tags", str(unseen), "--features", str(tmp_path / "features" / "*.parquet"),
                       "--output", str(tmp_path / "report"), "--word_vectors", str(vec_file)])
    assert m["method"] == "fast0tag" and len(m["unseen_tags"]) == 6
    zs, gzs = m["ZS"], m["GZS"]
    assert zs["mAP"] >= zs["chance_mAP"] + 0.3
    assert zs["P@3"] >= 1.5 * zs["chance_P@3"]
    assert gzs["mAP"] >= gzs["chance_mAP"] + 0.3
    assert (tmp_path / "report" / "metrics.json").exists()
    # The internally trained model really held the unseen tags out.
    import json

    vocab = json.loads((tmp_path / "report" / "model" / "config.json").read_text())["vocabulary"]
    assert not set(vocab) & set(names[30:])


def test_fast0tag_handler_uses_the_model_mapping(tmp_path):
    rng = np.random.default_rng(2)
    features, labels, vectors, names = _transfer_data(rng, seen=8, unseen=2, dim_feat=16)
    model_dir = str(tmp_path / "model")
    net = build_taggernet(16, 8, hidden=8, dropout=0.0)
    files = taggernet_files(net, {"vocabulary": names[:8], "thresholds": [0.5] * 8, "feature_dim": 16,
                                  "hidden": 8, "dropout": 0.0, "backbone": "synthetic"})
    mapping = train_fast0tag(features, labels[:, :8], vectors[:8], {"word_vectors": "test"}, epochs=10)
    model_folder.publish(model_dir, {**files, MAPPING: mapping.to_bytes()}, "test")
    vec_file = tmp_path / "v.txt"
    vec_file.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in zip(names, vectors, strict=True)))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("novel0\nnovel1\nnot_a_known_word\n")
    handler = ZeroShotHandler(ZeroShotConfig(str(vocab), model_dir=model_dir, word_vectors=str(vec_file),
                                             min_score=-1.0, top_k=3))
    model = handler.load_model()
    assert model.method == "fast0tag"
    batch = [{"uri": str(i), "image_id": str(i), "features": features[i], "tags": []} for i in range(4)]
    out = handler.run_inference(batch, model)
    names_out = {t["name"] for e in out for t in e["tags"]}
    assert names_out <= {"novel0", "novel1"}, "unknown words are never ranked"
    assert all(t["source"] == "zero_shot" for e in out for t in e["tags"])


def test_oov_is_reported_once_per_worker(tmp_path, caplog):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("animal\nqzxvbnmw\n")
    handler = ZeroShotHandler(ZeroShotConfig(str(vocab), min_score=-1.0))
    with caplog.at_level(logging.WARNING):
        model = handler.load_model()
        probs = np.zeros(1000, np.float32)
        probs[281] = 1.0
        for _ in range(3):
            handler.run_inference([{"uri": "u", "image_id": "i", "imagenet_probs": probs, "tags": []}], model)
    assert sum("qzxvbnmw" in r.getMessage() for r in caplog.records) == 1


def test_tag_job_zero_shot_on_real_photos(tmp_path, photos):
    vocab = tmp_path / "everyday.txt"
    vocab.write_text("\n".join(EVERYDAY) + "\n")
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n{photos['coffee']}\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", "--vocabulary", str(vocab),
             "--zero_shot_top_k", "3", "--zero_shot_min_score", "0", "--detector", "none",
             "--expansion_method", "nearest"])  # expands every tagger tag: is a zero-shot one ever?
    rows = {r["uri"]: r for r in read_table(tmp_path / "out", "tags").to_pylist()}
    zero = {uri: [t["name"] for t in r["tags"] if t["source"] == "zero_shot"] for uri, r in rows.items()}
    assert {"animal", "pet"} & set(zero[str(photos["chelsea"])][:3])
    assert {"drink", "beverage"} & set(zero[str(photos["coffee"])][:3])
    seen = 0
    for r in rows.values():
        expansions = [t for t in r["tags"] if t["source"] == "expansion"]
        seen += len(expansions)
        assert all(t["origin"] for t in expansions), "expansion stays distinct"
        zero_only = {t["name"] for t in r["tags"] if set(t.get("sources") or [t["source"]]) == {"zero_shot"}}
        assert not any(t["origin"] in zero_only for t in expansions), "zero-shot tags are not expanded"
    assert seen
    assert "conse@" in rows[str(photos["chelsea"])]["model_version"]


def _vocab_handler(tmp_path, words, **kw):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    handler = ZeroShotHandler(ZeroShotConfig(str(vocab), calibration="none", **kw))
    return handler, handler.load_model()


def test_hypernym_words_score_the_probability_of_every_class_below_them(tmp_path):
    handler, model = _vocab_handler(tmp_path, ["animal", "cat", "vehicle", "drink"], min_score=0.5, top_k=4)
    probs = np.zeros(1000, np.float32)
    probs[281], probs[282] = 0.5, 0.3  # tabby, tiger cat
    out = handler.run_inference([{"uri": "u", "image_id": "i", "imagenet_probs": probs, "tags": []}], model)
    scores = {t["name"]: t["score"] for t in out[0]["tags"]}
    assert scores["animal"] == pytest.approx(0.8) and scores["cat"] >= 0.8 - 1e-6
    assert "vehicle" not in scores and "drink" not in scores


def test_every_vocabulary_word_is_answered_even_if_another_source_wrote_it(tmp_path):
    handler, model = _vocab_handler(tmp_path, ["person", "animal", "furniture", "sky"], min_score=0.5)
    probs = np.full(1000, 1 / 1000, np.float32)
    tags = [{"name": "person", "score": 0.85, "source": "detector", "origin": None}]
    out = handler.run_inference([{"uri": "u", "image_id": "i", "imagenet_probs": probs, "tags": tags}], model)
    zero = [t for t in out[0]["tags"] if t["source"] == "zero_shot"]
    assert [(t["name"], round(t["score"], 2)) for t in zero] == [("person", 0.85)]
    assert out[0]["tags"][0] == tags[0], "the detector's tag stays as it was"


def test_word_vectors_answer_only_words_no_imagenet_class_lies_below(tmp_path):
    handler, model = _vocab_handler(tmp_path, ["animal", "vehicle", "sky", "sport"], min_score=-1.0, top_k=4)
    assert model.conse_answers().tolist() == [False, False, True, True]
    probs = np.zeros(1000, np.float32)
    probs[281] = 1.0  # tabby
    out = handler.run_inference([{"uri": "u", "image_id": "i", "imagenet_probs": probs, "tags": []}], model)
    scores = {t["name"]: t["score"] for t in out[0]["tags"]}
    # vehicle: the exact hierarchy answer (no vehicle class has any probability), not the
    # tabby-to-vehicle cosine; sky and sport: their ConSE cosines with "tabby"
    assert scores["animal"] == pytest.approx(1.0) and scores["vehicle"] == 0.0
    cos = conse_scores(probs[None], model.seen, model.vocab)[0]
    assert scores["sky"] == pytest.approx(float(cos[2]), abs=1e-6) and scores["sky"] != 0.0
