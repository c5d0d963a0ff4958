"""TaggerNet end to end on a synthetic MIRFLICKR: feature job -> train -> evaluate -> tag.

The learning assertion: test-split mAP >= 0.75 and at least 0.35 above the label-frequency
baseline (constant scores: AP = the label's prevalence). Measured: 0.99 vs a 0.30 baseline.
The generator and training are seeded and training is deterministic, and the margin is wide,
so the test does not flake.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import tag
from pipeline.training import evaluate, extract_features, train
from tests.conftest import read_table
from tests.synthetic_mirflickr import make_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_dataset(root / "data", n=300, seed=0)
    (root / "data" / "mirflickr" / "im301.jpg").write_text("corrupt")  # a dead letter, not a crash
    counters = extract_features.run(
        ["--dataset", "mirflickr", "--data_dir", str(root / "data"), "--output", str(root / "features")]
    )
    metrics = train.main(["--features", str(root / "features"), "--output", str(root / "model"), "--quiet"])
    report = evaluate.main(["--model", str(root / "model"), "--features", str(root / "features"),
                            "--output", str(root / "report")])
    return root, counters, metrics, report


def test_feature_job_writes_every_image_once(trained):
    root, counters, _, _ = trained
    table = read_table(root / "features", "features")
    errors = read_table(root / "features", "errors").to_pylist()
    assert counters["inputs"] == 301 and table.num_rows == 300
    assert [e["error_type"] for e in errors] == ["not_an_image"]
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["features"]) == 1280 and row["backbone"].startswith("efficientnet_lite0")
    assert set(table.column("split").to_pylist()) == {"train", "val", "test"}


def test_model_directory_is_complete(trained):
    root, _, metrics, _ = trained
    model = root / "model"
    for name in ("model.pt", "config.json", "metrics.json", "curves.png"):
        assert (model / name).stat().st_size > 0, name
    config = json.loads((model / "config.json").read_text())
    assert len(config["thresholds"]) == len(config["vocabulary"]) >= 10
    assert config["backbone"] == "efficientnet_lite0@embedded"
    assert (model / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 15
    card = (model / "model_card.md").read_text()
    for section in ("## Data", "## Training", "## Validation metrics", "## Intended use", "## Limitations"):
        assert section in card
    assert f"| mAP | {metrics['validation']['mAP']:.4f} |" in card
    assert config["vocabulary"][0] in card and "efficientnet_lite0@embedded" in card


def test_tagger_clearly_learns(trained):
    root, _, _, report = trained
    features = train.load_features(str(root / "features"))
    vocab = json.loads((root / "model" / "config.json").read_text())["vocabulary"]
    y = features.matrix(vocab)[features.split == "test"]
    baseline = float(y.mean(0)[y.sum(0) > 0].mean())  # AP of constant scores = prevalence
    assert report["mAP"] >= 0.75
    assert report["mAP"] >= baseline + 0.35
    assert json.loads((root / "report" / "metrics.json").read_text())["mAP"] == report["mAP"]


def test_training_is_deterministic(trained, tmp_path):
    root, _, metrics, _ = trained
    again = train.main(["--features", str(root / "features"), "--output", str(tmp_path / "m"), "--quiet"])
    assert again["history"] == metrics["history"]


def test_tag_job_uses_the_trained_tagger(trained, tmp_path):
    root, _, _, _ = trained
    images = sorted((root / "data" / "mirflickr").glob("im29*.jpg"))[:4]
    listing = tmp_path / "in.txt"
    listing.write_text("\n".join(map(str, images)) + "\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "out"), "--allow_local_paths", "--tagger_model", str(root / "model"),
             "--detector", "none", "--expansion_per_tag", "0"])
    rows = read_table(tmp_path / "out", "tags").to_pylist()
    vocab = set(json.loads((root / "model" / "config.json").read_text())["vocabulary"])
    assert len(rows) == 4
    assert all(t["source"] == "tagger" and t["name"] in vocab for r in rows for t in r["tags"])
    assert any(r["tags"] for r in rows)
    assert all(t["score"] >= 0.5 for r in rows for t in r["tags"]), "--min_score (0.5) holds for TaggerNet too"
    assert "taggernet@" in rows[0]["model_version"]


def test_a_model_refuses_another_backbone(trained, tmp_path):
    root, _, _, _ = trained
    with pytest.raises(ValueError, match="trained on backbone"):
        tag.run(["--input", str(root / "data" / "mirflickr" / "im1.jpg"), "--output", str(tmp_path / "o"), "--allow_local_paths",
                 "--tagger_model", str(root / "model"), "--backbone", "resnet50", "--backbone_weights", "none"])


def test_features_load_in_a_stable_order(trained):
    root, _, _, _ = trained
    a = train.load_features(str(root / "features"))
    assert a.image_ids == sorted(a.image_ids)
    assert np.isfinite(a.features).all()


def test_training_cannot_fool_itself(trained, tmp_path, capsys):
    """Three labels with the default --top_k 3: top-3 accuracy is always 1.0, so early stopping
    follows mAP (with a warning) and no metric with k >= 3 is reported; a picture copied into
    both the test and the training split is warned about."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = trained[0]
    table = pq.read_table(sorted((root / "features" / "features").glob("*.parquet"))[0])
    from collections import Counter

    counts = Counter(t for tags in table.column("labels").to_pylist() for t in tags)
    keep = [t for t, _ in counts.most_common(3)]
    labels = [[t for t in tags if t in keep] or keep[:1] for tags in table.column("labels").to_pylist()]
    table = table.set_column(table.schema.get_field_index("labels"), "labels", pa.array(labels, pa.list_(pa.string())))
    splits = table.column("split").to_pylist()
    shas = table.column("content_sha256").to_pylist()
    assert all(shas), "extract-features records content_sha256"
    test_row, train_row = splits.index("test"), splits.index("train")
    shas[test_row] = shas[train_row]  # the same picture in two splits
    table = table.set_column(table.schema.get_field_index("content_sha256"), "content_sha256", pa.array(shas))
    pq.write_table(table, tmp_path / "three.parquet")
    metrics = train.main(["--features", str(tmp_path / "three.parquet"), "--output", str(tmp_path / "m"), "--quiet"])
    err = capsys.readouterr().err
    assert "--top_k 3 >= 3 labels" in err and "validation mAP" in err
    assert "1 picture(s) are in the test split and in training" in err
    assert not [k for k in metrics["validation"] if k.endswith(("@3", "@5", "top3_accuracy", "top5_accuracy"))]


def test_the_model_cards_evaluate_command_runs_as_written(trained):
    import re
    import shlex

    root = trained[0]
    card = (root / "model" / "model_card.md").read_text()
    command = re.search(r"`(image-tagger evaluate [^`]+)`", card).group(1)
    argv = shlex.split(command)
    assert argv[:2] == ["image-tagger", "evaluate"]
    metrics = evaluate.main(argv[2:])
    assert metrics["mAP"] >= 0.75 and (root / "model" / "test_report" / "metrics.json").exists()


def test_a_labelled_list_is_read_under_the_list_access_policy(tmp_path, photos):
    """Hostile round 4, class 4: a list's local paths need --allow_local_paths, as in the tag job."""
    listing = tmp_path / "labels.jsonl"
    listing.write_text("".join(json.dumps({"uri": str(photos[n]), "labels": ["x"]}) + "\n" for n in ("chelsea", "coffee")))
    args = ["--dataset", "list", "--labels", str(listing), "--max_error_rate", "1", "--quiet"]
    extract_features.run([*args, "--output", str(tmp_path / "refused")])
    errors = read_table(tmp_path / "refused", "errors").to_pylist()
    assert [e["error_type"] for e in errors] == ["refused_scheme"] * 2
    extract_features.run([*args, "--output", str(tmp_path / "allowed"), "--allow_local_paths"])
    assert read_table(tmp_path / "allowed", "features").num_rows == 2
