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
