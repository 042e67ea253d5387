"""The HTML report in a real headless Chromium: the grid renders, a click shows details."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.report import load_results, write_reports

SAMPLE = Path(__file__).resolve().parent / "data" / "seed-article-results.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("HARNESS_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromium-driver are required (apt-get install chromium chromium-driver)")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_grid_renders_and_a_click_shows_the_cell(browser, tmp_path):
    from selenium.webdriver.common.by import By

    doc = load_results(SAMPLE)
    write_reports(doc, tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    cells = browser.find_elements(By.CSS_SELECTOR, "td.cell")
    assert len(cells) == len(doc["results"])
    assert all(c.is_displayed() for c in cells[:5])
    colours = {c.get_attribute("data-status"): c.value_of_css_property("background-color") for c in cells}
    assert colours["loaded"] != colours["load-error"] != colours["import-error"]

    # without a click: the hint, and each failure's status, message, cause and fix on the page
    assert browser.find_element(By.CSS_SELECTOR, "p.hint").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "table.failures tr")
    assert rows and all(r.is_displayed() for r in rows[:5])
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "ValueError: Unknown layer: 'ResidualBlock'" in page and "custom_objects={'ResidualBlock'" in page

    panel = browser.find_element(By.ID, "details")
    assert not panel.is_displayed()
    marked = browser.find_elements(By.CSS_SELECTOR, "td.cell.attr")
    assert len(marked) == sum(bool(r["attribute_error"]) for r in doc["results"])
    marked[0].click()
    assert panel.is_displayed()
    text = panel.text
    assert "py3.11-tensorflow2.14.0" in text
    assert "AttributeError" in text and "pin numpy<2" in text

    error = next(
        c for c in cells if c.get_attribute("title") == "py3.11-tensorflow2.15.1" and c.get_attribute("data-status") == "load-error"
    )
    error.click()
    assert "Unknown layer" in panel.text or "Unknown loss" in panel.text or "TypeError" in panel.text
    panel.find_element(By.CSS_SELECTOR, "button.close").click()
    assert not panel.is_displayed()


def test_trend_squares_and_new_marks_show_in_the_browser(browser, tmp_path):
    """With earlier runs in the store, each cell shows its outcome in them; new cells say so."""
    from selenium.webdriver.common.by import By

    from harness.history import follow_up
    from harness.keys import result_key
    from harness.store import Store, StoredResult

    doc = load_results(SAMPLE)
    store = Store(tmp_path / "s.sqlite")
    sha = {m["name"]: m["sha256"] for m in doc["models"]}
    for flip in (False, True):  # two earlier runs without the last cell; the second fails where now it loads
        run = store.start_run(doc["matrix"]["name"], "uv")
        cells = doc["cells"][:-1]
        store.record_cells(run, cells)
        ids = {c["id"] for c in cells}
        earlier = [
            dict(r, status="load-error" if flip and r["status"] == "loaded" else r["status"]) for r in doc["results"] if r["cell"] in ids
        ]
        store.add(
            run, [StoredResult(r, sha[r["model"]], "e", "o", 1, result_key(sha[r["model"]], r["cell"], "e", "o", 1)) for r in earlier]
        )
    doc = follow_up(doc, store, None, "regression")
    write_reports(doc, tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    strips = browser.find_elements(By.CSS_SELECTOR, "td.cell .trend")
    assert len(strips) == len(doc["results"]) and all(s.is_displayed() for s in strips[:5])
    squares = strips[0].find_elements(By.TAG_NAME, "i")
    assert len(squares) == 2 and squares[0].get_attribute("title").startswith("run 1 ")
    loaded = next(c for c in browser.find_elements(By.CSS_SELECTOR, "td.cell") if c.get_attribute("data-status") == "loaded")
    first, second = loaded.find_elements(By.CSS_SELECTOR, ".trend i")
    assert "load-error" in second.get_attribute("title")
    assert first.value_of_css_property("background-color") != second.value_of_css_property("background-color")
    last_cell = doc["cells"][-1]["id"]
    assert any(
        e.get_attribute("title") == "not in any earlier run of this matrix" for e in browser.find_elements(By.CSS_SELECTOR, "td.cell .new")
    )
    loaded.click()
    assert "Earlier runs" in browser.find_element(By.ID, "details").text
    assert [c["id"] for c in doc["cells"] if c.get("new")] == [last_cell]
