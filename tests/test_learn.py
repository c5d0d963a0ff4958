"""Learning from a reviewer's corrections: partial labels, and the whole round trip from a real
browser's review to a tag run that writes the learned and reviewed words."""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import tag
from pipeline.training import learn
from pipeline.training.train import Dataset, train_taggernet
from tests.browser import BROWSER, downloaded, opened
from tests.conftest import read_table
from transforms.knowledge.corrections import Correction
from transforms.stages.taggernet import predict_scores


def _c(key: str, added=(), rejected=(), accepted=(), reviewed=False) -> Correction:
    return Correction(uri=f"/x/{key}.jpg", image_id=key, content_sha256=key, accepted=tuple(accepted),
                      rejected=tuple(rejected), added=tuple(added), reviewed=reviewed)


def test_partial_labels_know_only_what_the_reviewer_said():
    items = [_c("a", added=["pet"]), _c("b", rejected=["pet"]), _c("c", reviewed=True, accepted=["cat"]),
             _c("d", added=["shed"])]
    y, known = learn.partial_labels(items, ["pet", "shed"], review_negatives=False)
    assert y.tolist() == [[1, 0], [0, 0], [0, 0], [0, 1]]
    # a: pet known, shed unknown; b: only the rejection; c: all right, so every word is known
    assert known.tolist() == [[1, 0], [1, 0], [1, 1], [0, 1]]


def test_a_picture_the_same_review_corrected_without_a_word_is_a_negative_for_it():
    """#37: a review that only adds words once gave no negatives at all (held-out precision 1.00
    printed, 0.32 real). Within one review, a corrected picture lacking a word the review gave
    others is a negative for it; another review's pictures say nothing about that word."""
    one = [replace(c, review="r1") for c in (_c("a", added=["pet"]), _c("b", added=["mug"]), _c("c", rejected=["cup"]))]
    other = [replace(_c("d", added=["shed"]), review="r2")]
    y, known = learn.partial_labels([*one, *other], ["mug", "pet", "shed"])
    assert y.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert known.tolist() == [[1, 1, 0], [1, 1, 0], [1, 1, 0], [0, 0, 1]]
    _, only_said = learn.partial_labels([*one, *other], ["mug", "pet", "shed"], review_negatives=False)
    assert only_said.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]


def test_folds_and_early_stopping_splits_are_fixed_by_the_picture():
    keys = [f"k{i}" for i in range(2000)]
    folds = [learn.fold_of(k, 5) for k in keys]
    assert folds == [learn.fold_of(k, 5) for k in keys] and set(folds) == set(range(5))
    assert all(abs(folds.count(f) / len(keys) - 0.2) < 0.04 for f in range(5))
    inner = learn.within_fold_split(keys, 0.2)
    assert abs((inner == "val").mean() - 0.2) < 0.04
    assert list(inner) == list(learn.within_fold_split(keys, 0.2))


def test_a_groups_pictures_are_scored_by_a_model_that_saw_none_of_them(monkeypatch):
    """Near copies of one subject in two folds would let a fold model score what it has seen."""
    usable = [replace(_c(f"p{i}", added=["pet"]), group=f"subject {i % 6}") for i in range(60)]
    groups = [c.group for c in usable]
    trained_on: list[set[int]] = []

    def fit(rows, epochs=None):
        trained_on.append(set(rows.tolist()))
        return None, None, None, 3

    monkeypatch.setattr(learn, "predict_scores", lambda model, features: np.zeros((len(features), 1), np.float32))
    inner = np.array(["train", "val"] * 30)
    result = learn.cross_fit(usable, np.zeros((60, 1), np.float32), fit, inner, (60, 1), argparse.Namespace(folds=5))
    assert result.scored.all() and len(trained_on) >= 2
    for rows in trained_on:  # every fold model trained on all of a group or on none of it
        for g in set(groups):
            members = {i for i, x in enumerate(groups) if x == g}
            assert members <= rows or not members & rows, g
    plain = [replace(c, group="") for c in usable]  # without groups, pictures of one subject spread
    trained_on.clear()
    learn.cross_fit(plain, np.zeros((60, 1), np.float32), fit, inner, (60, 1), argparse.Namespace(folds=5))
    assert any(0 < len({i for i, x in enumerate(groups) if x == g} & rows) < 10 for rows in trained_on for g in set(groups))


def test_unknown_labels_are_left_out_of_the_loss_not_counted_as_negatives():
    rng = np.random.default_rng(0)
    a, b = rng.normal(2, 0.3, (30, 8)), rng.normal(-2, 0.3, (30, 8))
    features = np.vstack([a, b]).astype(np.float32)
    data = Dataset(features, [["w"]] * 30 + [[]] * 30, np.array(["train", "val"] * 30), "bb",
                   [str(i) for i in range(60)], [])
    args = argparse.Namespace(seed=0, hidden=16, dropout=0.0, lr=0.01, weight_decay=0.0, epochs=60,
                              batch_size=16, patience=60, quiet=True, top_k=1, early_stopping_metric="loss")
    only_positives = np.array([[1.0]] * 30 + [[0.0]] * 30)  # nothing said about the second cluster
    partial, *_ = train_taggernet(args, data, ["w"], only_positives)
    complete, *_ = train_taggernet(args, data, ["w"])  # every missing label a negative
    unseen = rng.normal(-2, 0.3, (5, 8)).astype(np.float32)
    # the second cluster never pulled w down when its labels were unknown
    assert predict_scores(complete, unseen).max() < 0.1
    assert predict_scores(partial, unseen).min() > predict_scores(complete, unseen).max() + 0.2


def _variants(photo, root, name: str, n: int) -> list[str]:
    """n re-framed, re-encoded copies of a photo: distinct pictures of the same subject."""
    image = Image.open(photo).convert("RGB")
    w, h = image.size
    out = []
    for i in range(n):
        d = 3 * i
        path = root / f"{name}-{i}.jpg"
        image.crop((d, d, w - d, h - d)).save(path, quality=80 + i)
        out.append(str(path))
    return out


@BROWSER
def test_review_export_learn_and_tag_round_trip(tmp_path, photos):
    """A reviewer adds "pet" to the cat pictures, rejects "cup" on the coffee ones and marks them
    all right in the browser; learn trains on the export; the next tag run writes the reviewed
    words (source review), never the rejected ones, and "pet" on new cat pictures (source learned)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    images = tmp_path / "images"
    images.mkdir()
    cats, cups = _variants(photos["chelsea"], images, "cat", 12), _variants(photos["coffee"], images, "cup", 12)
    reviewed, fresh = cats[:10] + cups[:10], cats[10:] + cups[10:]
    listing = tmp_path / "in.txt"
    listing.write_text("\n".join(reviewed) + "\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "first"), "--allow_local_paths", "--quiet"])

    with opened(tmp_path / "first", tmp_path) as driver:
        driver.find_element(By.ID, "reviewer").send_keys("ada")
        for card in driver.find_elements(By.CSS_SELECTOR, ".card"):
            if "/cat-" in card.get_attribute("data-uri"):
                card.find_element(By.CSS_SELECTOR, ".add-tag").send_keys("pet", Keys.ENTER)
            else:
                for t in card.find_elements(By.CSS_SELECTOR, '.tag[data-name="cup"]'):
                    t.click()
            card.find_element(By.CSS_SELECTOR, ".mark-reviewed").click()
        driver.find_element(By.ID, "export").click()
        export = downloaded(tmp_path, "corrections.jsonl")
    assert len(export.read_text().splitlines()) == 20

    model = tmp_path / "model"
    metrics = learn.main(["--corrections", str(export), "--output", str(model), "--allow_local_paths", "--quiet"])
    config = json.loads((model / "config.json").read_text())
    assert config["vocabulary"] == ["pet"] and config["corrections"]["reviewers"] == ["ada"]
    assert metrics["images"]["corrected"] == 20 and "corrections.jsonl" in (model / "model_card.md").read_text()
    assert metrics["held_out"]["positives"] == 10  # every picture scored by a model that never saw it

    from pipeline import report

    page = report.build_report(str(tmp_path / "first"), model_dir=str(model))
    assert "held-out metric" in page and "learned from 20 corrected pictures" in page

    listing.write_text("\n".join(reviewed + fresh) + "\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "second"), "--allow_local_paths", "--quiet",
             "--tagger_model", str(model)])
    rows = {r["uri"]: r for r in read_table(tmp_path / "second", "tags").to_pylist()}
    words = {u: {(t["name"], t["source"]) for t in r["tags"]} for u, r in rows.items()}
    for uri in cats[:10]:
        assert ("pet", "review") in words[uri] and ("cat", "learned") not in words[uri]
    for uri in cups[:10]:
        assert not any(name == "cup" for name, _ in words[uri])
        assert all(o["label"] != "cup" for o in rows[uri]["objects"] or [])
    for uri in cats[10:]:
        assert ("pet", "learned") in words[uri], words[uri]
    for uri in cups[10:]:
        assert not any(name == "pet" for name, _ in words[uri])
    versions = rows[cats[0]]["model_version"]
    assert "learned=" in versions and "review=corrections@" in versions

    # #37: the next review sees the learned word with its source and chance, and striking it makes
    # that picture a negative for the next learn.
    struck, again = cats[10], tmp_path / "review2"
    again.mkdir()
    with opened(tmp_path / "second", again) as driver:
        card = driver.find_element(By.CSS_SELECTOR, f'.card[data-uri="{struck}"]')
        chip = card.find_element(By.CSS_SELECTOR, '.tag[data-name="pet"]')
        assert "learned" in chip.get_attribute("data-sources").split() and 0.5 <= float(chip.get_attribute("data-score")) <= 1
        assert "pet" in chip.text and "learned" in (chip.get_attribute("title") or "") + chip.text
        chip.click()
        driver.find_element(By.ID, "export").click()
        from transforms.knowledge import corrections as corr

        second = corr.read_lines([str(downloaded(again, "corrections.jsonl"))])
    [line] = [c for c in second if c.uri == struck]
    assert line.rejected == ("pet",)
    y, known = learn.partial_labels([line], ["pet"])
    assert (y[0, 0], known[0, 0]) == (0.0, 1.0), "a struck learned word is a negative"


def test_new_corrections_add_to_earlier_ones_and_reuse_features(tmp_path, photos, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    cats, cups = _variants(photos["chelsea"], images, "cat", 8), _variants(photos["coffee"], images, "cup", 8)

    def line(uri: str, time: str, **words) -> str:
        sha = hashlib.sha256(Path(uri).read_bytes()).hexdigest()
        return json.dumps({"uri": uri, "image_id": uri, "content_sha256": sha, "reviewed": True,
                           "reviewer": "bo", "time": time, **words})

    first = tmp_path / "first.jsonl"
    first.write_text("".join(line(u, "2026-12-01T00:00:00Z", added=["pet"]) + "\n" for u in cats)
                     + "".join(line(u, "2026-12-01T00:00:00Z") + "\n" for u in cups))
    model = tmp_path / "model"
    learn.main(["--corrections", str(first), "--output", str(model), "--allow_local_paths", "--quiet"])
    assert len(learn.feature_runs(str(model))) == 1

    (model / "feature_runs.json").unlink()  # as if killed after extracting, before listing the run
    learn.main(["--corrections", str(first), "--output", str(model), "--allow_local_paths", "--quiet"])
    assert learn.feature_runs(str(model)) == [str(model / "features" / "001")]  # its own run, replaced

    second = tmp_path / "second.jsonl"  # later: the cups are "mug" too; the cats' decisions stand
    second.write_text("".join(line(u, "2026-12-02T00:00:00Z", added=["mug"]) + "\n" for u in cups))
    ran = []
    monkeypatch.setattr(learn, "extract", lambda *a, **k: ran.append(a))
    learn.main(["--corrections", str(second), "--output", str(model), "--quiet"])
    assert not ran, "every picture's features were reused"
    assert json.loads((model / "config.json").read_text())["vocabulary"] == ["mug", "pet"]
    merged = [json.loads(x) for x in (model / "corrections.jsonl").read_text().splitlines()]
    assert len(merged) == 16 and sum(r["added"] == ["mug"] for r in merged) == 8


def test_train_with_corrections_is_learn(monkeypatch):
    from pipeline import cli

    seen = []
    monkeypatch.setattr(learn, "main", lambda argv: seen.append(argv) or {})
    cli.main(["train", "--corrections", "c.jsonl", "--output", "m"])
    assert seen == [["--corrections", "c.jsonl", "--output", "m"]]


def test_learn_refuses_bad_input_in_one_line(tmp_path):
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"image_id": "x", "added": "pet"}\n')
    with pytest.raises(SystemExit, match="c.jsonl:1: added must be a list"):
        learn.main(["--corrections", str(bad), "--output", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match="no such file"):
        learn.main(["--corrections", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match="is a file"):
        learn.main(["--corrections", str(bad), "--output", str(bad)])
    assert not (tmp_path / "m").exists()
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "config.json").write_text(json.dumps({"vocabulary": ["sky"]}))  # a model from train
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"image_id": "x", "added": ["pet"]}) + "\n")
    with pytest.raises(SystemExit, match="holds a model from image-tagger train"):
        learn.main(["--corrections", str(good), "--output", str(trained)])
    assert json.loads((trained / "config.json").read_text()) == {"vocabulary": ["sky"]}


def _lines(uris: list[str], words: dict[str, list[str]], files: list[str] | None = None) -> str:
    """Reviewed corrections of ``uris``, keyed by the content of ``files`` (the same pictures)."""
    out = []
    for uri, path in zip(uris, files or uris, strict=True):
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        out.append(json.dumps({"uri": uri, "image_id": key, "content_sha256": key, "reviewed": True,
                               "time": "2026-12-01T00:00:00Z", "added": words.get(uri, [])}) + "\n")
    return "".join(out)


def test_learn_reads_web_pictures_and_local_ones_only_when_allowed(tmp_path, photos, http_server, monkeypatch):
    """Hostile round 4, class 4: the access policy the right way round, as in the tag job."""
    from tests.conftest import send_bytes

    images = tmp_path / "images"
    images.mkdir()
    cats, cups = _variants(photos["chelsea"], images, "cat", 6), _variants(photos["coffee"], images, "cup", 6)
    local = tmp_path / "local.jsonl"
    local.write_text(_lines(cats + cups, {u: ["pet"] for u in cats}))
    with pytest.raises(SystemExit) as info:
        learn.main(["--corrections", str(local), "--output", str(tmp_path / "m"), "--quiet"])
    assert "--allow_local_paths" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "m").exists(), "refused before anything was written"

    base, routes = http_server
    web = []
    for path in cats + cups:
        name = "/" + Path(path).name
        routes[name] = send_bytes(Path(path).read_bytes())
        web.append(base + name)
    review = tmp_path / "web.jsonl"
    review.write_text(_lines(web, {u: ["pet"] for u in web if "/cat-" in u}, cats + cups))
    monkeypatch.chdir(tmp_path)
    metrics = learn.main(["--corrections", "web.jsonl", "--output", "m", "--allow_private_networks", "--quiet",
                          "--min_label_count", "2"])
    assert metrics["images"]["corrected"] == 12, "every web picture was read"
    assert json.loads((tmp_path / "m" / "feature_runs.json").read_text()) == ["features/001"], \
        "stored inside MODEL_DIR, independent of the working folder"


def test_a_feature_runs_list_naming_paths_elsewhere_is_refused(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / learn.RUNS).write_text(json.dumps(["/etc", "../victim/features"]))
    with pytest.raises(SystemExit, match="not one learn wrote"):
        learn.feature_runs(str(model))
    (model / learn.RUNS).write_text(json.dumps(["/old/place/m/features/002"]))  # an older absolute entry
    assert learn.feature_runs(str(model)) == [str(model / "features" / "002")]


@pytest.fixture(scope="module")
def review_set(tmp_path_factory, photos):
    """10 cat and 10 cup pictures with their features extracted once (learn reuses them)."""
    from pipeline.training import extract_features

    root = tmp_path_factory.mktemp("review")
    images = root / "images"
    images.mkdir()
    cats, cups = _variants(photos["chelsea"], images, "cat", 10), _variants(photos["coffee"], images, "cup", 10)
    listing = root / "all.jsonl"
    listing.write_text("".join(json.dumps({"uri": u, "labels": []}) + "\n" for u in cats + cups))
    extract_features.run(["--dataset", "list", "--labels", str(listing), "--output", str(root / "features"),
                          "--allow_local_paths", "--quiet", "--val_fraction", "0", "--test_fraction", "0"])
    return root, cats, cups


def _review(path: Path, pictures: list[tuple[str, list[str]]], ticked: bool) -> str:
    lines = []
    for uri, words in pictures:
        sha = hashlib.sha256(Path(uri).read_bytes()).hexdigest()
        lines.append(json.dumps({"uri": uri, "image_id": sha, "content_sha256": sha, "added": words,
                                 "reviewed": ticked, "time": "2026-12-01T00:00:00Z"}) + "\n")
    path.write_text("".join(lines))
    return str(path)


def _learn(root: Path, review: str, name: str, *extra: str) -> tuple[dict | str, list[str]]:
    """learn's metrics, or its one-line refusal; and the lines it printed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            result: dict | str = learn.main(["--corrections", review, "--output", str(root / name), "--features",
                                             str(root / "features"), "--quiet", *extra])
        except SystemExit as exc:
            result = str(exc)
    return result, out.getvalue().splitlines()


def test_a_review_that_only_adds_words_learns_them_with_negatives(review_set):
    """#37: 10 cats given "pet" and 10 cups given "mug", no ticks: each is the other's negative."""
    root, cats, cups = review_set
    review = _review(root / "adds.jsonl", [(u, ["pet"]) for u in cats] + [(u, ["mug"]) for u in cups], ticked=False)
    metrics, printed = _learn(root, review, "adds")
    assert isinstance(metrics, dict), metrics
    words = {w["word"]: w for w in metrics["words"]}
    assert {w: (f["positives"], f["negatives"]) for w, f in words.items()} == {"mug": (10, 10), "pet": (10, 10)}
    for f in metrics["words"]:
        fig = learn.held_out.WordFigures(**{k: v for k, v in f.items() if k not in ("precision", "recall", "interval")})
        assert f"  {fig.line(0.9)}" in printed, "what learn prints per word is what it wrote"
    assert printed[-1] == f"next: image-tagger tag --input INPUT --output OUTPUT --tagger_model {root / 'adds'}"
    config = json.loads((root / "adds" / "config.json").read_text())
    for f, threshold in zip(metrics["words"], config["thresholds"], strict=True):
        assert threshold == (f["floor"] if f["floor"] is not None else learn.held_out.NEVER)


def test_a_word_with_no_reviewed_picture_without_it_is_refused_in_one_line(review_set):
    root, cats, _ = review_set
    review = _review(root / "only.jsonl", [(u, ["pet"]) for u in cats], ticked=False)
    result, printed = _learn(root, review, "only")
    assert isinstance(result, str) and "no word can be learned yet" in result and "\n" not in result
    assert printed == ["  not learned: pet: no picture without it was reviewed (tick pictures that lack it, or "
                       "correct other pictures in the same review)"]
    assert not (root / "only").exists(), "no silent model that writes nothing"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 9])
def test_reviews_down_to_one_picture_end_in_a_model_or_one_line_per_word(review_set, size):
    """#37: 9 ticked pictures of 2 words once ended in a traceback (no best state kept)."""
    root, cats, cups = review_set
    pictures = [(u, ["pet"]) for u in cats[: (size + 1) // 2]] + [(u, ["mug"]) for u in cups[: size // 2]]
    review = _review(root / f"small{size}.jsonl", pictures, ticked=True)
    result, printed = _learn(root, review, f"small{size}", "--min_label_count", "1")
    words = {w for _, ws in pictures for w in ws}
    for word in words:  # one line per word: what is missing, its figures, or why it is not written
        assert sum(line.strip().removeprefix("not learned: ").startswith(f"{word}:") for line in printed) == 1, printed
    if isinstance(result, str):
        assert "\n" not in result and result.startswith("image-tagger learn: ")
        assert not (root / f"small{size}").exists()
    else:
        assert any(w["floor"] is not None for w in result["words"]), "a model is written only when a word is"
