"""The HTML report in a real headless Chromium: the grid renders and reads at any size, every tile
opens by mouse and keyboard, filters work, and axe-core finds no WCAG A/AA violation."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from docs import synthetic_doc

from harness.diagnose import STATUSES
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
    tiles = browser.find_elements(By.CSS_SELECTOR, "section.model button.cell")
    assert len(tiles) == len(doc["results"])
    assert all(c.is_displayed() for c in tiles[:5])

    # the first screen: every model against every environment, broken environments marked as such
    overview = browser.find_element(By.CSS_SELECTOR, "#overview table.grid")
    assert overview.is_displayed() and overview.location["y"] + overview.size["height"] < 1000  # whole, at 1400x1000
    minis = overview.find_elements(By.CSS_SELECTOR, "button.cell")
    assert len(minis) == len(doc["results"]) and {m.text for m in minis} <= {"✓", "◐", "✗", "!"}
    rows = overview.find_elements(By.CSS_SELECTOR, "tbody th a")
    assert [a.text for a in rows] == [m["name"] for m in doc["models"]]
    assert rows[2].get_attribute("href").endswith("#model-dense_h5")
    cells = browser.find_elements(By.CSS_SELECTOR, "#overview ol.cells li")
    broken = [li.text for li in cells if "environment broken" in li.text]
    assert len(cells) == len(doc["cells"]) and len(broken) == 2 and "py3.11-tensorflow2.14.0" in broken[0]
    assert [th.text for th in overview.find_elements(By.CSS_SELECTOR, "thead th")].count("4 !") == 1
    minis[0].click()
    assert browser.find_element(By.ID, "details").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#details button.close").click()
    colours = {c.get_attribute("data-status"): c.value_of_css_property("background-color") for c in tiles}
    assert colours["loaded"] != colours["load-error"] != colours["import-error"]

    # one grid per model: TensorFlow releases as rows, only the variant columns that have cells
    grid = browser.find_element(By.CSS_SELECTOR, "#model-residual_block_h5 table.grid")
    head = [th.text for th in grid.find_elements(By.CSS_SELECTOR, "thead th")]
    assert head == [
        "tensorflow",
        "plain",
        "tensorflow-addons",
        "numpy · override",
        "tf-keras · TF_USE_LEGACY_KERAS=1",
        "tf-keras · api keras",
    ]
    assert [th.text for th in grid.find_elements(By.CSS_SELECTOR, "tbody th")] == ["2.14.0", "2.15.1", "2.16.2", "2.21.0"]
    legacy = grid.find_element(By.CSS_SELECTOR, "button[title='py3.11-tensorflow2.16.2-tf-keras2.16.0-legacy']")
    assert "tf-keras 2.16.0" in legacy.text  # the companion's release is in the tile, not a column of its own

    # without a click: the hint, and each way of failing with its message, cause, fix and cells on the page
    assert browser.find_element(By.CSS_SELECTOR, "p.hint").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "table.failures tbody tr")
    assert rows and all(r.is_displayed() for r in rows[:5])
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "ValueError: Unknown layer: 'ResidualBlock'" in page and "custom_objects={'ResidualBlock'" in page

    panel = browser.find_element(By.ID, "details")
    assert not panel.is_displayed()
    marked = browser.find_elements(By.CSS_SELECTOR, "button.cell.attr")
    assert len(marked) == sum(bool(r["attribute_error"]) for r in doc["results"])
    marked[0].click()
    assert panel.is_displayed()
    text = panel.text
    assert "py3.11-tensorflow2.14.0" in text
    assert "AttributeError" in text and "pin numpy<2" in text

    error = next(
        c for c in tiles if c.get_attribute("title") == "py3.11-tensorflow2.15.1" and c.get_attribute("data-status") == "load-error"
    )
    error.click()
    assert "Unknown layer" in panel.text or "Unknown loss" in panel.text or "TypeError" in panel.text
    panel.find_element(By.CSS_SELECTOR, "button.close").click()
    assert not panel.is_displayed()


def test_every_tile_opens_from_the_keyboard(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    write_reports(load_results(SAMPLE), tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    grids = browser.find_elements(By.CSS_SELECTOR, "table.grid")
    for grid in grids:  # one Tab stop per grid (WAI-ARIA grid pattern): one tile tabbable, the others by the arrows
        stops = [t for t in grid.find_elements(By.CSS_SELECTOR, "button.cell") if t.get_attribute("tabIndex") == "0"]
        assert len(stops) == 1
    tiles = browser.find_elements(By.CSS_SELECTOR, "section.model button.cell")

    def focused():
        return browser.switch_to.active_element

    # Tab from the filters reaches the first grid, and its first tile
    browser.find_element(By.CSS_SELECTOR, "#filters select").click()
    browser.find_element(By.TAG_NAME, "body").click()
    first = tiles[0]
    browser.execute_script("arguments[0].focus()", first)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    panel = browser.find_element(By.ID, "details")
    assert panel.is_displayed() and first.get_attribute("title") in panel.text
    assert focused().get_attribute("class") == "close"  # focus moves into the panel
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert not panel.is_displayed() and focused() == first  # and back to the tile

    # the arrow keys walk the grid: right along the row, down the column
    grid = first.find_element(By.XPATH, "ancestor::table")
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()
    below = focused()
    assert below != first and below.get_attribute("class").startswith("cell")
    assert below.find_element(By.XPATH, "ancestor::tr").find_element(By.TAG_NAME, "th").text == "2.15.1"
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    right = focused()
    assert right != below and right.find_element(By.XPATH, "ancestor::table") == grid
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    assert panel.is_displayed() and right.get_attribute("title") in panel.text
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert focused() == right and right.get_attribute("tabIndex") == "0"  # the grid's one stop is now the tile last used
    # Tab leaves the grid at once: its other tiles are not Tab stops
    ActionChains(browser).send_keys(Keys.TAB).perform()
    after = focused()
    around = after.find_elements(By.XPATH, "ancestor::table")
    assert after != right and (not around or around[0] != grid)
    # the arrows never stop at an empty slot: down from a tile whose column is empty below goes to that row's nearest tile
    overview_tiles = browser.find_elements(By.CSS_SELECTOR, "#overview button.cell")
    browser.execute_script("arguments[0].focus()", overview_tiles[0])
    for _ in range(6):
        ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()
    assert focused().find_element(By.XPATH, "ancestor::table").get_attribute("class") == "grid overview"
    assert focused() != overview_tiles[0]


def test_filters_by_status_and_cause(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    doc = load_results(SAMPLE)
    write_reports(doc, tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    shown = browser.find_element(By.ID, "shown")
    assert shown.text == f"{len(doc['results'])} of {len(doc['results'])} results shown"
    browser.find_element(By.CSS_SELECTOR, "#filters input[value='loaded-after-fix']").click()
    visible = [t for t in browser.find_elements(By.CSS_SELECTOR, "section.model button.cell") if t.is_displayed()]
    assert len(visible) == sum(r["status"] != "loaded-after-fix" for r in doc["results"])
    assert not any(t.get_attribute("data-status") == "loaded-after-fix" for t in visible)
    assert shown.text.startswith(f"{len(visible)} of ")

    Select(browser.find_element(By.CSS_SELECTOR, "#filters select")).select_by_value("missing-dependency")
    visible = [t for t in browser.find_elements(By.CSS_SELECTOR, "section.model button.cell") if t.is_displayed()]
    expected = [r for r in doc["results"] if r["status"] != "loaded-after-fix" and r["cause"] == "missing-dependency"]
    assert expected and len(visible) == len(expected)
    failures = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "table.failures tbody tr") if tr.is_displayed()]
    assert failures and all(tr.get_attribute("data-cause") == "missing-dependency" for tr in failures)
    rows = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "table.grid tbody tr") if tr.is_displayed()]
    assert all(tr.find_elements(By.CSS_SELECTOR, "button.cell:not([hidden])") for tr in rows)  # rows with nothing to show fold


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def viewport(browser, width, height):
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    )


@pytest.mark.parametrize("width", [375, 1400])
def test_a_thousand_cells_read_on_a_phone_and_a_desktop(browser, tmp_path, width):
    from selenium.webdriver.common.by import By

    doc = synthetic_doc(10, 10, 10)  # 1,010 cells: 10 TensorFlow rows, 101 variant columns
    write_reports(doc, tmp_path)
    viewport(browser, width, 800)
    browser.get((tmp_path / "report.html").as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.model button.cell")) == 1010
    # the page itself never scrolls sideways: the grid scrolls inside its own box
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    assert png_size(browser.get_screenshot_as_png()) == (width, 800)
    box = browser.find_element(By.CSS_SELECTOR, "section.model div.scroll")
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", box)
    assert box.size["width"] <= width
    # the headers stay in view while the grid scrolls both ways
    browser.execute_script("arguments[0].scrollIntoView(); arguments[0].scrollTop = 300; arguments[0].scrollLeft = 2000", box)
    corner, column = box.find_elements(By.CSS_SELECTOR, "thead th")[:2]
    row = box.find_element(By.CSS_SELECTOR, "tbody tr:nth-child(5) th")
    top = box.rect["y"] + 1  # inside the border
    assert abs(column.rect["y"] - top) <= 2 and abs(corner.rect["y"] - top) <= 2
    assert abs(row.rect["x"] - (box.rect["x"] + 1)) <= 2
    # a tile under the headers is still one click away
    tile = box.find_element(By.CSS_SELECTOR, "tbody tr:nth-child(6) button.cell")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", tile)
    tile.click()
    assert browser.find_element(By.ID, "details").is_displayed()
    assert browser.find_element(By.ID, "details").size["width"] <= width


def test_a_cells_message_is_text_never_markup(browser, tmp_path):
    from selenium.webdriver.common.by import By

    doc = synthetic_doc(1, 4)  # its messages carry "</script><b>x</b>"
    write_reports(doc, tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    assert not browser.find_elements(By.CSS_SELECTOR, "main b, #details b")
    tile = next(t for t in browser.find_elements(By.CSS_SELECTOR, "button.cell") if t.get_attribute("data-status") == "load-error")
    tile.click()
    assert "</script><b>x</b>" in browser.find_element(By.ID, "details").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#details b")


AXE_RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.mark.parametrize("which", ["sample", "every-status"])
def test_axe_core_finds_no_wcag_violation(browser, tmp_path, node_modules, which):
    """axe-core (from npm) on the page as it opens and with a tile's details open: contrast of
    every status colour, names of the tiles, the filters and the dialog."""
    from selenium.webdriver.common.by import By

    doc = load_results(SAMPLE) if which == "sample" else synthetic_doc(2, 4)
    if which == "every-status":
        assert {r["status"] for r in doc["results"]} == set(STATUSES)
    write_reports(doc, tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    browser.execute_script((node_modules / "axe-core" / "axe.min.js").read_text())
    browser.set_script_timeout(120)

    def violations():
        found = browser.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "axe.run(document, arguments[0]).then(function (r) { done(r.violations.map(function (v) {"
            "  return [v.id, v.help, v.nodes.slice(0, 3).map(function (n) { return n.failureSummary + ' @ ' + n.target; })]; })); });",
            AXE_RULES,
        )
        return found

    assert violations() == []
    browser.find_elements(By.CSS_SELECTOR, "button.cell.s-load-error")[0].click()
    assert violations() == []


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
    strips = browser.find_elements(By.CSS_SELECTOR, "section.model button.cell .trend")
    assert len(strips) == len(doc["results"]) and all(s.is_displayed() for s in strips[:5])
    squares = strips[0].find_elements(By.TAG_NAME, "i")
    assert len(squares) == 2 and squares[0].get_attribute("title").startswith("run 1 ")
    loaded = next(c for c in browser.find_elements(By.CSS_SELECTOR, "section.model button.cell") if c.get_attribute("data-status") == "loaded")
    first, second = loaded.find_elements(By.CSS_SELECTOR, ".trend i")
    assert "load-error" in second.get_attribute("title")
    assert first.value_of_css_property("background-color") != second.value_of_css_property("background-color")
    # a square never melts into its tile: a white rim around its own colour
    assert first.value_of_css_property("border-top-color") in ("rgb(255, 255, 255)", "rgba(255, 255, 255, 1)") and first.value_of_css_property("border-top-width") == "2px"
    last_cell = doc["cells"][-1]["id"]
    assert any(
        e.get_attribute("title") == "not in any earlier run of this matrix"
        for e in browser.find_elements(By.CSS_SELECTOR, "button.cell .new")
    )
    loaded.click()
    assert "Earlier runs" in browser.find_element(By.ID, "details").text
    assert [c["id"] for c in doc["cells"] if c.get("new")] == [last_cell]


def test_junit_opens_in_xunit_viewer(tmp_path, node_modules):
    """xunit-viewer (npm), a JUnit viewer CI users publish reports with, reads the file as the
    harness means it: the baseline's accepted failures skipped, the two regressions failed."""
    import subprocess

    from test_report import accepted_doc

    write_reports(accepted_doc(), tmp_path)
    viewer = node_modules / ".bin" / "xunit-viewer"
    with open(tmp_path / "console.txt", "w") as console:  # a file: node may exit before a pipe is drained
        subprocess.run(
            [str(viewer), "-r", "junit.xml", "-c", "-n", "-C", "false", "-o", "console.html"],
            cwd=tmp_path,
            stdout=console,
            timeout=120,
            check=True,
        )
    shown = (tmp_path / "console.txt").read_text()
    assert "28 passed, 2 failure, 26 skipped" in shown.splitlines()
    failed = [line.split()[1] for line in shown.splitlines() if line.strip().startswith("✗")]
    assert sorted(failed) == ["py3.11-tensorflow2.14.0", "py3.11-tensorflow2.15.1-numpy2.1.3-override"]  # dense.h5's regressions
    assert sum(line.strip().startswith("⊘") for line in shown.splitlines()) == 26
    subprocess.run(
        [str(viewer), "-r", str(tmp_path / "junit.xml"), "-o", str(tmp_path / "viewer.html")], capture_output=True, timeout=120, check=True
    )
    assert (tmp_path / "viewer.html").stat().st_size > 10_000
