"""The dashboard in a real headless Chromium (selenium), served by a real gunicorn over a real history.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): without them
the tests are skipped with how to install them, except under CI=true, where they must run. Selenium
Manager is kept offline (SE_OFFLINE): nothing is downloaded. Each test leaves a screenshot in its
tmp_path (pytest keeps the last few); a failed check names the screenshot taken at that moment.
"""

import os
import re
from pathlib import Path

import pytest
import requests
from conftest import gunicorn, ranked_by_model

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-s3cret"
OPTIONS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
]


def require_chromium() -> None:
    """On a machine without Chromium the tests are skipped with how to get it; under CI=true they must run."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"
    if IN_CI:
        pytest.fail(reason + "; CI must run this test")
    pytest.skip(reason)


class Browser:
    """A Chromium session that keeps screenshots of what it saw in `folder`."""

    def __init__(self, driver, folder: Path, name: str):
        self.driver, self.folder, self.name, self.shots = driver, folder, name, 0

    def screenshot(self, label: str) -> Path:
        self.shots += 1
        path = self.folder / f"{self.name}-{self.shots}-{label}.png"
        self.driver.save_screenshot(str(path))
        return path

    def evidence(self, what: str) -> str:
        """An assertion message: what was wrong, where the page was and the screenshot of it."""
        return f"{what} (at {self.driver.current_url}); screenshot: {self.screenshot('failed')}"

    def console_errors(self) -> list[dict]:
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def check_console(self) -> None:
        errors = self.console_errors()
        assert errors == [], self.evidence(f"errors in the browser console: {errors}")

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def wait_until(self, condition, what: str) -> None:
        """Wait up to 10 s for condition(driver); then fail with the screenshot of the page."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, 10).until(condition)
        except TimeoutException:
            pytest.fail(self.evidence(f"waited 10 s for {what}"))

    def wait_for_url(self, part: str) -> None:
        self.wait_until(lambda driver: part in driver.current_url, f"an address with {part!r}")

    def cookies(self) -> dict:
        return {cookie["name"]: cookie["value"] for cookie in self.driver.get_cookies()}


@pytest.fixture
def browser(tmp_path, monkeypatch, request):
    """A headless Chromium; parametrized indirectly with {"javascript": False} it runs with JavaScript off."""
    require_chromium()
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for (or fetch) a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for option in [*OPTIONS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(option)
    if not getattr(request, "param", {}).get("javascript", True):
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    session = Browser(driver, tmp_path, request.node.name.replace("/", "-")[:60])
    try:
        yield session
    finally:
        print(f"last screenshot of {request.node.name}: {session.screenshot('end')}")
        driver.quit()


@pytest.fixture(scope="module")
def server(history_project, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("browser-server") / "gunicorn.log"
    with gunicorn(history_project.config_path, log_path, "--workers", "1") as url:
        yield url


@pytest.fixture(scope="module")
def guarded_server(history_project, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("browser-guarded") / "gunicorn.log"
    with gunicorn(history_project.config_path, log_path, "--workers", "1", env={"API_TOKEN": TOKEN}) as url:
        yield url


@pytest.mark.slow
def test_the_dashboard_shows_the_banner_the_chart_and_the_risk_list(browser, server, history_project):
    browser.driver.get(server + "/")
    status = browser.css("#status").text
    release = history_project.prod_deployment_path.resolve().name
    assert "HEALTHY" in status and release in status and "ON TIME" in status, browser.evidence(f"banner: {status!r}")
    chart = browser.css("figure.chart svg.wide")
    assert chart.is_displayed() and chart.size["width"] > 300, browser.evidence(f"chart size {chart.size}")
    top = ranked_by_model(history_project)["corporation"].iloc[0]
    first_row = browser.css("table.risk tbody tr").text.split()
    assert first_row[:2] == ["1", top], browser.evidence(f"first risk row {first_row}, expected client {top}")
    loaded = browser.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith(server + "/") for name in loaded), browser.evidence(f"fetched {loaded}")
    browser.check_console()


@pytest.mark.slow
def test_searching_a_client_shows_its_row_with_its_rank(browser, server, history_project):
    code = ranked_by_model(history_project)["corporation"].iloc[41]
    browser.driver.get(server + "/")
    field = browser.css("input#client")
    field.send_keys(code)
    browser.css("form.search button[type=submit]").click()
    browser.wait_for_url(f"client={code}")
    caption = browser.css("p#found").text
    assert caption.startswith(f"Client {code}: rank 42 of "), browser.evidence(f"caption {caption!r}")
    row = browser.css("table[aria-labelledby=found] tbody tr").text.split()
    assert row[:2] == ["42", code], browser.evidence(f"row {row}")
    browser.check_console()


@pytest.mark.slow
def test_a_client_not_in_the_data_is_said_not_found(browser, server):
    browser.driver.get(server + "/")
    browser.css("input#client").send_keys("qqqq\n")
    browser.wait_for_url("client=qqqq")
    notice = browser.css("#found").text
    assert "NOT FOUND" in notice and "qqqq" in notice, browser.evidence(f"notice {notice!r}")
    browser.check_console()


@pytest.mark.slow
def test_the_csv_link_downloads_the_ranked_list(browser, server, history_project):
    browser.driver.get(server + "/")
    from selenium.webdriver.common.by import By

    href = browser.driver.find_element(By.LINK_TEXT, "top 20").get_attribute("href")
    assert href == server + "/toprisk.csv?n=20", browser.evidence(f"link {href}")
    response = requests.get(href, cookies=browser.cookies(), timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment; filename=riskranking-" in response.headers["Content-Disposition"]
    lines = response.text.splitlines()
    assert lines[0].split(",")[:3] == ["rank", "corporation", "probability"] and len(lines) == 21
    expected = ranked_by_model(history_project)["corporation"].head(20).tolist()
    assert [line.split(",")[1] for line in lines[1:]] == expected
    browser.check_console()


OVERFLOWING = """
const width = document.documentElement.clientWidth;
const clipped = (element) => {  // kept for screen readers only (a phone's table headers)
  for (let e = element; e; e = e.parentElement) if (getComputedStyle(e).clip !== "auto") return true;
  return false;
};
const out = [];
for (const element of document.body.querySelectorAll("*")) {
  const box = element.getBoundingClientRect();
  if ((box.width === 0 && box.height === 0) || clipped(element)) continue;  // not shown
  const name = `${element.tagName}.${element.className}`;
  if (box.left < -0.5 || box.right > width + 0.5) out.push(`${name}: ${box.left}-${box.right}`);
  if (element.scrollWidth > element.clientWidth + 1 && getComputedStyle(element).overflowX !== "visible")
    out.push(`${name} scrolls: ${element.scrollWidth} > ${element.clientWidth}`);
}
return out;
"""


def show_at(browser, url: str, width: int) -> None:
    """`url` as a laptop (1,280 px) or a phone (390 px) shows it."""
    height, mobile = {1280: (800, False), 390: (844, True)}[width]
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
    browser.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    browser.driver.get(url)


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390])
def test_nothing_overflows_the_page_and_the_health_verdict_shows_without_scrolling(browser, server, width):
    show_at(browser, server + "/", width)
    page_width = browser.driver.execute_script("return document.documentElement.scrollWidth")
    assert page_width <= width, browser.evidence(f"the page is {page_width}px wide at {width}px")
    overflowing = browser.driver.execute_script(OVERFLOWING)
    assert overflowing == [], browser.evidence(f"elements beyond the page or scrolling sideways: {overflowing[:5]}")
    health = browser.css("#health")
    box = browser.driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", health)
    viewport = browser.driver.execute_script("return window.innerHeight")
    assert health.is_displayed() and 0 <= box["top"] and box["bottom"] <= viewport, browser.evidence(
        f"the health verdict at {box} in a window {viewport}px high"
    )
    assert "HEALTHY" in health.text, browser.evidence(f"health: {health.text!r}")
    chart = [svg for svg in browser.driver.find_elements("css selector", "figure.chart svg") if svg.is_displayed()]
    content = browser.css("#quality").size["width"]
    assert len(chart) == 1 and chart[0].size["width"] >= content - 2, browser.evidence("the chart is not as wide")
    browser.check_console()


@pytest.mark.slow
def test_on_a_phone_every_risk_row_is_a_card_with_each_value_named(browser, server, history_project):
    show_at(browser, server + "/", 390)
    row = browser.css("table.risk tbody tr")
    labels = browser.driver.execute_script(
        "return [...arguments[0].querySelectorAll('td[data-label]')]"
        ".map(td => [getComputedStyle(td).display, getComputedStyle(td, '::before').content])",
        row,
    )
    expected = ["Why", "Activity last month", "Activity last year", "Employees"]
    assert labels == [["block", f'"{label}: "'] for label in expected], browser.evidence(f"cells {labels}")
    top = ranked_by_model(history_project)["corporation"].iloc[0]
    assert row.size["width"] <= 390 and row.text.split()[:2] == ["1", top], browser.evidence(f"card {row.text!r}")
    browser.check_console()


@pytest.mark.slow
def test_with_a_token_the_browser_logs_in_and_out(browser, guarded_server, history_project):
    browser.driver.get(guarded_server + "/")
    assert "/login" in browser.driver.current_url, browser.evidence("not sent to the login form")
    browser.css("input#token").send_keys("wrong\n")
    browser.wait_for_url("/login")
    refused = browser.css("p.notice").text
    assert "That token is not the right one." in refused, browser.evidence(f"notice {refused!r}")
    browser.css("input#token").send_keys(TOKEN + "\n")
    browser.wait_until(lambda driver: "/login" not in driver.current_url, "the dashboard after logging in")
    assert "HEALTHY" in browser.css("#status").text, browser.evidence("no dashboard after logging in")
    href = browser.css("#clients .downloads a").get_attribute("href")
    response = requests.get(href, cookies=browser.cookies(), timeout=10)
    assert response.status_code == 200 and len(response.text.splitlines()) == 21
    assert requests.get(href, timeout=10, allow_redirects=False).status_code == 302  # no session, no list
    browser.css("form.logout button").click()
    browser.wait_for_url("/login")
    browser.driver.get(guarded_server + "/")
    assert re.search(r"/login\b", browser.driver.current_url), browser.evidence("still logged in after logout")
    # A wrong token answers 401: Chromium logs that load as a console error, the one expected here.
    errors = [entry for entry in browser.console_errors() if "401" not in entry["message"]]
    assert errors == [], browser.evidence(f"errors in the browser console: {errors}")


@pytest.mark.slow
@pytest.mark.parametrize("browser", [{"javascript": False}], indirect=True)
def test_without_javascript_the_page_shows_everything_and_the_search_works(browser, server, history_project):
    browser.driver.get("data:text/html,<title>off</title><script>document.title = 'on'</script>")
    assert browser.driver.title == "off", "JavaScript is still on in this browser"
    browser.driver.get(server + "/")
    status = browser.css("#status").text
    assert "HEALTHY" in status and "ON TIME" in status, browser.evidence(f"banner: {status!r}")
    assert browser.css("figure.chart svg.wide").size["width"] > 300, browser.evidence("no chart without JavaScript")
    ranked = ranked_by_model(history_project)
    assert browser.css("table.risk tbody tr").text.split()[:2] == ["1", ranked["corporation"].iloc[0]]
    code = ranked["corporation"].iloc[6]
    browser.css("input#client").send_keys(code + "\n")  # a plain GET form
    browser.wait_for_url(f"client={code}")
    caption = browser.css("p#found").text
    assert caption.startswith(f"Client {code}: rank 7 of "), browser.evidence(f"caption {caption!r}")


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_chromium_the_tests_are_skipped_with_how_to_get_it_or_fail_under_ci(monkeypatch, tmp_path, ci):
    import sys

    module = sys.modules[__name__]
    monkeypatch.setattr(module, "CHROMIUM", str(tmp_path / "chromium"))
    monkeypatch.setattr(module, "CHROMEDRIVER", sys.executable)  # present on every machine: only Chromium lacks
    monkeypatch.setattr(module, "IN_CI", bool(ci))
    reason = f"{tmp_path / 'chromium'} not installed (Debian: apt-get install chromium chromium-driver)"
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected) as outcome:
        require_chromium()
    assert str(outcome.value) == (reason + "; CI must run this test" if ci else reason)
