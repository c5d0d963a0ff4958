"""The HTML contact sheet: content and sampling in Python, behaviour in a real headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import report, tag
from tests.browser import BROWSER, downloaded, opened
from tests.conftest import base_url, loopback, publish
from tests.synthetic_mirflickr import make_dataset

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def run(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("report")
    make_dataset(root / "synthetic", n=6, seed=3)
    uris = [str(photos[n]) for n in ("chelsea", "coffee", "grace_hopper", "motorcycle")]
    uris += sorted(str(p) for p in (root / "synthetic" / "mirflickr").glob("im*.jpg"))
    uris += [str(root / "missing.jpg")]
    (root / "bad.jpg").write_text("<html>")
    uris.append(str(root / "bad.jpg"))
    listing = root / "in.txt"
    listing.write_text("\n".join(uris) + "\n")
    tag.run(["--input", str(listing), "--output", str(root / "out"), "--allow_local_paths"])
    return root


def test_scan_samples_a_reservoir_and_counts_everything(run):
    full = report.scan(str(run / "out"), sample=100)
    small = report.scan(str(run / "out"), sample=3, seed=1)
    assert full["rows"] == small["rows"] == 10
    assert len(full["sample"]) == 10 and len(small["sample"]) == 3
    assert full["freq"] == small["freq"] and full["freq"]["cat"] >= 1
    assert full["error_counts"] == {"fetch/not_found": 1, "decode/not_an_image": 1}
    assert report.scan(str(run / "out"), sample=3, seed=1)["sample"] == small["sample"], "seeded"
    import duckdb

    per_tag = duckdb.sql(f"SELECT t.name, count(DISTINCT uri) FROM (SELECT uri, unnest(tags) AS t FROM "
                         f"read_parquet('{run / 'out'}/tags/*.parquet')) GROUP BY t.name").fetchall()
    assert dict(per_tag) == dict(full["freq"]), "the chart counts images, as SQL does"


def test_report_is_self_contained(run, tmp_path):
    html_path = tmp_path / "r.html"
    report.main(["--input", str(run / "out"), "--html", str(html_path), "--sample", "5"])
    page = html_path.read_text()
    assert page.count('class="card"') == 5
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert "fetch/not_found" in page and "decode/not_an_image" in page


def test_the_report_replaces_an_earlier_page_but_never_data(run, tmp_path):
    """--html over a row file of the output (a typo away from OUTPUT/report.html), over the
    output folder or over any file that is not an HTML page is refused in one line, before any
    thumbnail is read, and the file is left as it was; an earlier report is replaced."""
    out = run / "out"
    part = sorted((out / "tags").rglob("*.parquet"))[0]
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    before = {path: path.read_bytes() for path in (part, notes)}
    owned = f"a folder the tag output's runs own: write the report beside the tables (e.g. {out}/report.html)"
    for target, said in ((part, f"lies inside {os.path.realpath(part.parent)}, {owned}"),
                         (out / "_runs" / "new.html", f"lies inside {os.path.realpath(out / '_runs')}, {owned}"),
                         (notes, "is a file that is not an HTML page"), (out, "is a folder: name the page")):
        with pytest.raises(SystemExit) as info:
            report.main(["--input", str(out), "--html", str(target), "--sample", "2"])
        message = str(info.value)
        assert f"image-tagger report: --html {target} {said}" in message and "\n" not in message, message
    assert {path: path.read_bytes() for path in before} == before
    assert not (out / "_runs" / "new.html").exists()
    (out / "mine").mkdir()
    for page in (out / "report.html", out / "mine" / "r.html"):  # beside the tables, or a folder of the user's
        for _ in range(2):  # and written again
            report.main(["--input", str(out), "--html", str(page), "--sample", "2"])
            assert page.read_text().startswith("<!DOCTYPE html>")
        page.unlink()
    (out / "mine").rmdir()


def test_model_panel_shows_curves_and_metrics(run, tmp_path):
    import json

    from pipeline.training.train import plot_curves
    from transforms.output import model_folder

    model = tmp_path / "model"
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_topk_accuracy": 0.5 + e / 10} for e in (1, 2, 3)]
    model_folder.publish(str(model), {"config.json": b"{}", "curves.png": plot_curves(history, 3), "metrics.json": json.dumps(
        {"best_epoch": 3, "epochs_run": 3, "validation": {"mAP": 0.875}}).encode()}, "test")
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"mAP": 0.625, "top3_accuracy": 0.9, "images": 60}))
    html_path = tmp_path / "r.html"
    report.main(["--input", str(run / "out"), "--html", str(html_path), "--model", str(model),
                 "--evaluation", str(evaluation)])
    page = html_path.read_text()
    assert 'alt="training curves" src="data:image/png;base64,' in page
    assert "<td>mAP</td><td>0.8750</td>" in page and "best epoch 3 of 3" in page
    assert "<th>test metric</th>" in page and "<td>mAP</td><td>0.6250</td>" in page


def test_a_folder_that_is_not_a_model_or_an_evaluation_is_refused(run, tmp_path):
    """--model and --evaluation are read back as data: a folder that is neither once gave a
    report without its panel (--model) or a FileNotFoundError traceback (--evaluation)."""
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "metrics.json").write_text("[1, 2]")
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "metrics.json").write_bytes(b'{"ZS": {"mAP": 0.5}')
    for extra, said in ((["--model", str(tmp_path)], f"--model {tmp_path} has no manifest.json"),
                        (["--evaluation", str(tmp_path)], f"--evaluation: {tmp_path} holds no metrics.json"),
                        (["--evaluation", str(tmp_path / "list")], "metrics.json is not the metrics image-tagger evaluate writes"),
                        (["--evaluation", str(tmp_path / "cut")], "metrics.json is not JSON (JSONDecodeError)")):
        with pytest.raises(SystemExit) as info:
            report.main(["--input", str(run / "out"), "--html", str(tmp_path / "r.html"), *extra])
        message = str(info.value)
        assert message.startswith("image-tagger report: ") and said in message and "\n" not in message, message
        assert not (tmp_path / "r.html").exists()



@BROWSER
def test_report_in_a_real_browser(run, tmp_path, photos):
    from selenium.webdriver.common.by import By

    with opened(run / "out", tmp_path) as driver:
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.thumb')).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 10 and all(w > 0 for w in widths), widths
        cat_card = driver.find_element(By.CSS_SELECTOR, f'.card[data-uri="{photos["chelsea"]}"]')
        assert cat_card.is_displayed() and "cat" in cat_card.text
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report.png"))

        driver.find_element(By.ID, "tag-filter").send_keys("espresso")
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        visible = [c.get_attribute("data-uri") for c in cards if c.is_displayed()]
        assert visible == [str(photos["coffee"])]
        assert driver.find_element(By.ID, "shown").text == "1"

        driver.find_element(By.ID, "tag-filter").clear()
        driver.execute_script("document.getElementById('tag-filter').dispatchEvent(new Event('input'))")
        driver.find_element(By.CSS_SELECTOR, '.source-toggle[value="detector"]').click()
        hopper = driver.find_element(By.CSS_SELECTOR, f'.card[data-uri="{photos["grace_hopper"]}"]')
        shown_tags = [t.text.split()[0] for t in hopper.find_elements(By.CSS_SELECTOR, ".tag") if t.is_displayed()]
        assert "tie" not in shown_tags and shown_tags, "detector tags hidden, the others stay"
        boxes = hopper.find_elements(By.CSS_SELECTOR, ".box")
        assert boxes and all(b.is_displayed() for b in boxes), "the pose model draws person boxes too"
        driver.find_element(By.CSS_SELECTOR, '.source-toggle[value="pose"]').click()
        assert not any(b.is_displayed() for b in boxes), "with every source of boxes off, none shows"
        driver.save_screenshot(str(ARTIFACTS / "report-filtered.png"))


def test_thumbnails_are_fetched_concurrently(tmp_path, photos):
    """A loopback server counts requests in flight: the report fetches thumbnails at once."""
    import http.server
    import io as _io
    import threading
    import time as _time

    import pyarrow as pa
    from PIL import Image

    from pipeline.report import build_report
    from transforms.core.records import TAGS_SCHEMA

    buf = _io.BytesIO()
    Image.open(photos["chelsea"]).convert("RGB").save(buf, "JPEG")
    body = buf.getvalue()
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            _time.sleep(0.3)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with lock:
                state["now"] -= 1

        def log_message(self, *args):
            pass

    with loopback(Slow) as server:
        base = base_url(server)
        rows = [{"uri": f"{base}/{i}.jpg", "image_id": str(i), "width": 1, "height": 1, "tags": [],
                 "objects": [], "model_version": "m", "processed_at": None} for i in range(8)]
        out = tmp_path / "run"
        publish(out, {"tags": pa.Table.from_pylist(rows, schema=TAGS_SCHEMA)})
        page = build_report(str(out), allow_private_networks=True)
    assert page.count("data:image/jpeg;base64,") >= 8
    assert state["peak"] >= 4, state


@BROWSER
def test_review_controls_in_a_real_browser(run, tmp_path, photos):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with opened(run / "out", tmp_path) as driver:

        def visible():
            return [c.get_attribute("data-uri") for c in driver.find_elements(By.CSS_SELECTOR, ".card") if c.is_displayed()]

        # The filter matches whole words: "cat" is not "domesticated".
        box = driver.find_element(By.ID, "tag-filter")
        box.send_keys("cat")
        cats = visible()
        assert str(photos["chelsea"]) in cats
        for uri in cats:
            card = driver.find_element(By.CSS_SELECTOR, f'.card[data-uri="{uri}"]')
            assert "cat" in [t.get_attribute("data-name") for t in card.find_elements(By.CSS_SELECTOR, ".tag")]
        box.clear()
        driver.execute_script("document.getElementById('tag-filter').dispatchEvent(new Event('input'))")
        # Clicking a chart bar filters the sheet by that word.
        bar = driver.find_elements(By.CSS_SELECTOR, ".bar")[0]
        word = bar.get_attribute("data-name")
        driver.execute_script("arguments[0].click()", bar)
        assert driver.find_element(By.ID, "tag-filter").get_attribute("value") == word
        assert driver.find_element(By.ID, "shown").text == str(len(visible())) != "0"
        box.clear()
        driver.execute_script("document.getElementById('tag-filter').dispatchEvent(new Event('input'))")
        # The score slider hides weaker tags; a card left with none says so.
        driver.execute_script("const s = document.getElementById('min-score'); s.value = '0.99';"
                              "s.dispatchEvent(new Event('input'))")
        shown_scores = [float(t.get_attribute("data-score")) for t in driver.find_elements(By.CSS_SELECTOR, ".tag")
                        if t.is_displayed()]
        assert all(v >= 0.99 for v in shown_scores)
        assert any(m.is_displayed() for m in driver.find_elements(By.CSS_SELECTOR, ".notags"))
        # Weak tags look weaker: dashed and faded.
        weak = driver.find_elements(By.CSS_SELECTOR, ".tag.weak")
        strong = [t for t in driver.find_elements(By.CSS_SELECTOR, ".tag") if "weak" not in t.get_attribute("class")]
        if weak:
            assert float(weak[0].value_of_css_property("opacity")) < float(strong[0].value_of_css_property("opacity"))
        driver.execute_script("const s = document.getElementById('min-score'); s.value = '0';"
                              "s.dispatchEvent(new Event('input'))")
        # Sorting: most confident first, then most tags first.
        Select(driver.find_element(By.ID, "sort")).select_by_value("confidence")
        best = [float(c.get_attribute("data-best")) for c in driver.find_elements(By.CSS_SELECTOR, ".card")]
        assert best == sorted(best, reverse=True)
        Select(driver.find_element(By.ID, "sort")).select_by_value("tags")
        counts = [int(c.get_attribute("data-count")) for c in driver.find_elements(By.CSS_SELECTOR, ".card")]
        assert counts == sorted(counts, reverse=True)
        # Dead letters carry their message.
        details = driver.find_elements(By.CSS_SELECTOR, "details.err")
        for d in details:
            driver.execute_script("arguments[0].open = true", d)
        text = " ".join(d.text for d in details)
        assert "no such file" in text and "missing.jpg" in text
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report-review.png"))


@BROWSER
def test_injected_markup_stays_text_in_a_real_browser(tmp_path, http_server, photos):
    """A hostile URI in the list and a planted shard (someone with write access to a shared
    output) with markup in a tag name, a source and a box label: the page shows it as text."""
    import pyarrow as pa
    from selenium.webdriver.common.by import By

    from transforms.core.records import TAGS_SCHEMA

    base, routes = http_server
    hostile_uri = f"{base}/<script>window.__pwned=1</script>.jpg"
    listing = tmp_path / "urls.txt"
    listing.write_text(hostile_uri + "\n")
    out = tmp_path / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_private_networks", "--ingest_only",
             "--max_error_rate", "1"])
    evil = '"><img src=x onerror="window.__pwned=2">'
    row = {"uri": f"http://example.invalid/{evil}.jpg", "image_id": "x", "width": 1, "height": 1,
           "tags": [{"name": f"<script>window.__pwned=3</script>{evil}", "score": 0.9, "source": evil,
                     "origin": evil, "sources": [evil]}],
           "objects": [{"label": evil, "score": 0.9, "box": [0.1, 0.1, 0.5, 0.5]}],
           "model_version": evil, "processed_at": None}
    publish(out, {"tags": pa.Table.from_pylist([row], schema=TAGS_SCHEMA)}, run_id="20300101T000000Z-evil00")
    with opened(out, tmp_path) as driver:
        assert driver.execute_script("return window.__pwned === undefined")
        assert "<script>window.__pwned=3</script>" in driver.find_element(By.CSS_SELECTOR, ".tag").get_attribute("textContent")
        for d in driver.find_elements(By.CSS_SELECTOR, "details.err"):
            driver.execute_script("arguments[0].open = true", d)
        assert "<script>window.__pwned=1</script>" in driver.find_element(By.CSS_SELECTOR, ".errors").text
        assert not driver.find_elements(By.CSS_SELECTOR, ".card script, .errors script, img[src='x']")


@BROWSER
def test_a_reviewer_corrects_tags_and_exports_them(run, tmp_path):
    """Click a tag to reject it, type a missing one, mark another image all right; the state
    survives a reload and "Export corrections" saves the JSONL that learn reads."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from transforms.knowledge import corrections

    with opened(run / "out", tmp_path) as driver:
        cards = [c for c in driver.find_elements(By.CSS_SELECTOR, ".card") if c.find_elements(By.CSS_SELECTOR, ".tag")]
        first, second = cards[0], cards[1]
        ids = [c.get_attribute("data-image-id") for c in (first, second)]
        rejected = first.find_elements(By.CSS_SELECTOR, ".tag")[0]
        rejected_name = rejected.get_attribute("data-name")
        driver.find_element(By.ID, "reviewer").send_keys("ada")
        rejected.click()
        first.find_element(By.CSS_SELECTOR, ".add-tag").send_keys("  Garden  Shed", Keys.ENTER)
        second.find_element(By.CSS_SELECTOR, ".mark-reviewed").click()
        assert driver.find_element(By.ID, "reviewed-count").text == "2"

        driver.refresh()  # the state lives in localStorage
        card = {c.get_attribute("data-image-id"): c for c in driver.find_elements(By.CSS_SELECTOR, ".card")}
        first, second = card[ids[0]], card[ids[1]]
        assert "rejected" in first.find_element(By.CSS_SELECTOR, f'.tag[data-name="{rejected_name}"]').get_attribute("class")
        assert [t.text for t in first.find_elements(By.CSS_SELECTOR, ".review-added")] == ["garden shed"]
        assert second.find_element(By.CSS_SELECTOR, ".mark-reviewed").is_selected()
        assert driver.find_element(By.ID, "reviewer").get_attribute("value") == "ada"

        driver.find_element(By.ID, "export").click()
        lines = corrections.read_lines([str(downloaded(tmp_path, "corrections.jsonl"))])
    by_id = {c.image_id: c for c in lines}
    assert set(by_id) == set(ids)
    one, two = by_id[ids[0]], by_id[ids[1]]
    assert (one.rejected, one.added, one.accepted, one.reviewed) == ((rejected_name,), ("garden shed",), (), False)
    assert two.reviewed and two.accepted and not two.rejected  # every shown tag accepted
    assert one.reviewer == two.reviewer == "ada" and one.time.endswith("Z")
    assert len(one.content_sha256) == 64 and one.uri.startswith("/")


@BROWSER
def test_a_reviewer_corrects_every_shown_picture_at_once(run, tmp_path, photos):
    """Filter the sheet, add one word to every picture it shows and mark them all right: the
    pictures the filter hides stay as they were."""
    from selenium.webdriver.common.by import By

    from transforms.knowledge import corrections

    with opened(run / "out", tmp_path) as driver:
        driver.find_element(By.ID, "tag-filter").send_keys("espresso")
        shown = [c for c in driver.find_elements(By.CSS_SELECTOR, ".card") if c.is_displayed()]
        assert [c.get_attribute("data-uri") for c in shown] == [str(photos["coffee"])]
        driver.find_element(By.ID, "add-all").send_keys("Breakfast")
        driver.find_element(By.ID, "add-all-button").click()
        driver.find_element(By.ID, "review-all").click()
        assert driver.find_element(By.ID, "reviewed-count").text == "1"
        driver.find_element(By.ID, "export").click()
        (line,) = corrections.read_lines([str(downloaded(tmp_path, "corrections.jsonl"))])
    assert line.uri == str(photos["coffee"]) and line.added == ("breakfast",) and line.reviewed
    assert "espresso" in line.accepted


def test_a_crowd_of_boxes_shows_one_label_per_label():
    """#35, row 9: five overlapping person boxes drew five labels on top of each other. The
    strongest box of a label speaks for the boxes of that label it overlaps ("person 0.91 +2");
    the others keep their label on hover; boxes that do not overlap keep their own."""
    boxes = [("person", 0.6, [0.1, 0.1, 0.4, 0.9]), ("person", 0.91, [0.2, 0.1, 0.5, 0.9]),
             ("person", 0.7, [0.45, 0.1, 0.7, 0.9]), ("person", 0.8, [0.8, 0.1, 0.95, 0.9]),
             ("tie", 0.5, [0.25, 0.3, 0.3, 0.5])]
    row = {"uri": "u", "width": 10, "height": 10, "tags": [],
           "objects": [{"label": label, "score": score, "box": box} for label, score, box in boxes]}
    card = report._card(row, "data:,")
    shown = [(o["label"], o["score"], o["more"]) for o in card["objects"]]
    assert shown == [("person", 0.91, 2), ("person", 0.8, 0), ("person", 0.7, None), ("person", 0.6, None),
                     ("tie", 0.5, 0)]
    assert [o["label_top"] for o in card["objects"] if o["more"] is not None] == [0, 13, 26]


@BROWSER
def test_the_no_tags_label_goes_once_a_word_is_added(run, tmp_path):
    """#35, row 9: a card without tags kept its grey "no tags" after the reviewer added a word."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with opened(run / "out", tmp_path) as driver:
        bare = [c for c in driver.find_elements(By.CSS_SELECTOR, ".card")
                if c.is_displayed() and not c.find_elements(By.CSS_SELECTOR, ".tag")]
        assert bare, "the run has a picture with no tag"
        card = bare[0]
        assert card.find_element(By.CSS_SELECTOR, ".notags").is_displayed()
        card.find_element(By.CSS_SELECTOR, ".add-tag").send_keys("garden shed", Keys.ENTER)
        assert not card.find_element(By.CSS_SELECTOR, ".notags").is_displayed()
        card.find_element(By.CSS_SELECTOR, ".review-added").click()  # removes the word again
        assert card.find_element(By.CSS_SELECTOR, ".notags").is_displayed()
