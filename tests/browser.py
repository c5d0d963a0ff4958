"""A real headless Chromium for the contact sheet's tests (Debian's chromium and chromedriver)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from pipeline import report

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BROWSER = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)) and not os.environ.get("CI"),
    reason="Debian chromium/chromium-driver not installed (.ci/run installs them)")


@contextlib.contextmanager
def opened(output, tmp_path):
    """The report of ``output`` written and opened in headless Chromium; the driver."""
    html_path = tmp_path / "report.html"
    report.main(["--input", str(output), "--html", str(html_path), "--allow_local_paths"])
    driver = browser(tmp_path)
    try:
        driver.get(html_path.as_uri())
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1800"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def downloaded(tmp_path, name: str, timeout: float = 10.0):
    """A copy of the file the page saved as ``name``, once Chromium has finished it: the final
    name can appear before the download completes, and a download still open when the
    browser quits is deleted, so this waits for no partial (.crdownload) to remain and for
    the size to hold, then copies the file out of the download folder."""
    import shutil
    import time

    folder, target = tmp_path / "downloads", tmp_path / "downloads" / name
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        partial = list(folder.glob("*.crdownload")) if folder.exists() else []
        size = target.stat().st_size if target.exists() else -1
        if size > 0 and not partial and size == last:
            break
        last = size
        time.sleep(0.1)
    assert target.exists() and target.stat().st_size > 0, f"the browser saved no {name}"
    return Path(shutil.copy(target, tmp_path / f"saved-{name}"))
