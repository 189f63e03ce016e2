"""The page lamb serve shows at /, in a real browser: Debian's Chromium driven by Selenium.

Set LAMB_SCREENSHOT to a path (docs/img/serve-page.png) to keep the page's screenshot for the docs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from conftest import make_task_root

from lamb.serve import LocalServer

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

# Flags for a headless Chromium that talks to nothing but the page: no sandbox (CI runs as
# root), no GPU, no background fetches, a fresh profile each time.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1180,760"]


@pytest.fixture(scope="module")
def demo_task_root(tmp_path_factory, host_runtime_deps):
    """The bundled demo model (clothing silhouettes, 5 classes) converted and laid out as a task root."""
    from lamb.convert import convert_model

    labels = DEMO.joinpath("labels.txt").read_text().split()
    converted = convert_model(DEMO / "clothing.h5", tmp_path_factory.mktemp("demo") / "clothing.tflite", preprocess="xception", labels=labels)
    return make_task_root(tmp_path_factory.mktemp("demo_task_root"), converted, host_runtime_deps)


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="lamb-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_and_its_status_are_served_beside_the_endpoint(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    (root / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return {'echo': 1.0}\n")
    with LocalServer(root, port=0) as server:
        page = requests.get(server.page_url, timeout=10)
        status = requests.get(server.page_url + "lamb/status", timeout=10).json()
        answer = requests.post(server.url, json={}, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "/2015-03-31/functions/function/invocations" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//|@import|url\(""", page.text)  # nothing fetched from elsewhere
    assert status["ready"] is True and len(status["init_ms"]) == 1 and status["init_error"] is None
    assert float(answer.headers["X-Lamb-Init-Ms"]) == pytest.approx(status["init_ms"][0], abs=0.1)


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_a_sample_dropped_on_the_page_shows_its_top_class(demo_task_root, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sample = DEMO / "samples" / "hat-1.png"
    with LocalServer(demo_task_root, port=0) as server:
        browser.get(server.page_url)
        wait = WebDriverWait(browser, 60)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))
        browser.find_element(By.ID, "file").send_keys(str(sample))
        wait.until(lambda d: d.find_element(By.ID, "classes").get_attribute("data-top"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#classes .row")
        top = rows[0].find_element(By.CLASS_NAME, "label").text
        timing = browser.find_element(By.ID, "timing").text
        curl = browser.find_element(By.ID, "curl").text
        shot = Path(os.environ.get("LAMB_SCREENSHOT") or tmp_path / "serve-page.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
    assert top == "hat"  # the demo model's answer for its own held-out sample (models/demo/README.md)
    assert len(rows) == 5 and browser.find_element(By.ID, "error").text == ""
    assert "The function took" in timing and "cold start" in timing
    assert curl.startswith(f"curl -s -X POST {server.url}") and "hat-1.png" in curl
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
