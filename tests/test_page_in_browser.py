"""The day's page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which `make browser-env` installs) loads it over HTTP from a local
server without a console error, and shows the map and the locations' names.

The page is drawn in the test from a few hand-made summary rows and the names of the
real configuration (tests/fixtures/network). Without the browser the test skips,
saying why; under CI=true it fails instead, as CI must run it.
"""

import datetime as dt
import functools
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tools import pictures, report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NETWORK_CONFIGURATION = Path(__file__).parent / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"
DAY = dt.date(2017, 5, 18)
KRUIBEKE_1, KRUIBEKE_2 = 398698145, 1780434701  # A14 km 94.7 (Parking Kruibeke), both directions
MECHELEN_ZUID = 1364060098  # A1 km 12.3, measured without a jam
UNCONFIGURED = -957  # a lane the configuration does not hold
KRUIBEKE_LABEL = "A14 km 94.7 (Parking Kruibeke), direction 1"
# No network, no first-run or background work: the browser only loads the page.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,2000")


def _missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (f"{path} is not installed (make browser-env installs Debian's chromium "
                    "and chromium-driver, as root)")
    try:
        import selenium  # noqa: F401
    except ModuleNotFoundError:
        return "selenium is not installed (make setup installs the dev extras)"
    return None


def _wait_for_the_browser_install(limit: float = 600) -> None:
    """`make test` installs the browser while the suite runs and writes the file that
    TRAFFIC_GLUE_BROWSER_ENV_DONE names once done (the Makefile): wait for it."""
    done = os.environ.get("TRAFFIC_GLUE_BROWSER_ENV_DONE")
    if not done:
        return  # run without make test: the browser is there or not
    deadline = time.monotonic() + limit
    while not Path(done).exists():
        assert time.monotonic() < deadline, (
            f"the browser's install (make test) did not end within {limit:.0f} s: see .local/browser-env.log")
        time.sleep(0.5)


def test_the_browser_test_waits_for_make_tests_install_of_the_browser(tmp_path, monkeypatch):
    done = tmp_path / "browser-env.done"
    monkeypatch.setenv("TRAFFIC_GLUE_BROWSER_ENV_DONE", str(done))
    with pytest.raises(AssertionError, match=r"did not end within 0 s: see \.local/browser-env\.log"):
        _wait_for_the_browser_install(limit=0.2)
    writer = threading.Timer(0.3, done.write_text, args=("0\n",))
    writer.start()
    started = time.monotonic()
    _wait_for_the_browser_install(limit=10)
    assert done.exists() and 0.25 <= time.monotonic() - started < 5  # it waited for the file
    monkeypatch.delenv("TRAFFIC_GLUE_BROWSER_ENV_DONE")
    _wait_for_the_browser_install(limit=0)  # run without make test: no wait


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _wait_for_the_browser_install()
    reason = _missing_browser()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the browser test: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass  # pytest shows a failing test's output: keep it to what failed


@pytest.fixture(scope="module")
def served_page(tmp_path_factory):
    """The day's page drawn into a folder, and the page's URL on a local HTTP server."""
    names = report.names_from_configuration(NETWORK_CONFIGURATION)
    jams = {(KRUIBEKE_1, 7): 45, (KRUIBEKE_1, 8): 50, (KRUIBEKE_2, 16): 20,
            (UNCONFIGURED, 7): 5, (MECHELEN_ZUID, 7): 0}
    rows = [{"uniqueid": location, "day": DAY, "hour": hour, "local_hour": hour + 2,
             "minutes_measured": 60, "jam_minutes": jam, "long_jam_minutes": 0,
             "mean_speed": 100.0 - jam, "p15_speed": 80.0 - jam, "vehicles_class2": 100,
             "vehicles_class3": 10, "vehicles_class4": 5, "vehicles_class5": 5,
             "worst_avgspeed20": 60.0}
            for (location, hour), jam in jams.items()]
    folder = tmp_path_factory.mktemp("page")
    page = pictures.render_day(rows, DAY, folder, names=names)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_port}/{page.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_loads_without_console_errors_and_shows_the_map_and_names(browser, served_page, tmp_path):
    from selenium.webdriver.common.by import By

    folder, url = served_page
    browser.get(url)
    assert browser.title == f"Traffic on {DAY} (UTC)"
    # Every console message of the page's load, a missing resource (a 404) included.
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    the_map = browser.find_element(By.CSS_SELECTOR, "figure#jam-map svg")
    assert the_map.is_displayed()
    assert the_map.size["width"] > 600 and the_map.size["height"] > 250
    map_text = the_map.text
    assert "Antwerpen" in map_text and "longitude" in map_text
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert KRUIBEKE_LABEL in page_text
    assert "lane 957 (not in the configuration)" in page_text
    figures = browser.find_elements(By.CSS_SELECTOR, "figure svg")
    assert [f.find_element(By.XPATH, "..").get_attribute("id") for f in figures] == [
        pictures.MAP_ID, pictures.HEATMAP_ID, pictures.PROFILE_ID]

    screenshot = tmp_path / "page.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("TRAFFIC_GLUE_SCREENSHOT")  # a path: keep the screenshot to look at
    if keep:
        shutil.copy(screenshot, keep)
