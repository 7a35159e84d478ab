"""`indexcalc serve` in a real browser: Debian's chromium, headless, driven by selenium through
the system chromedriver (nothing downloads a browser). Skipped where chromium is absent, except
in CI (CI=true, or INDEXCALC_REQUIRE_BROWSER=1 as .ci/run sets after installing it), where a
missing browser is a failure."""
import os
import re
import shutil
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from indexcalc.cli import main

from .served import Served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

MISSING = ("selenium is not installed" if webdriver is None else
           "chromium is not installed (apt install chromium chromium-driver)" if not CHROMIUM else
           "chromedriver is not installed (apt install chromium-driver)" if not CHROMEDRIVER else "")
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("INDEXCALC_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=MISSING or "")


@pytest.fixture(scope="module")
def server():
    s = Served()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"the browser tests must run here (CI or INDEXCALC_REQUIRE_BROWSER=1): {MISSING}")
    options = webdriver.ChromeOptions()
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1100,1400", "--no-first-run", "--disable-extensions"]:
        options.add_argument(a)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path given explicitly: Selenium Manager never looks for (or downloads) one
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait(browser, css, seconds=60):
    return WebDriverWait(browser, seconds).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def fill(browser, **fields):
    for name, value in fields.items():
        box = browser.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)


def closed_forms(browser):
    return [dd.text for dd in browser.find_elements(By.CSS_SELECTOR, "dl.facts dd:first-of-type")]


def test_type_click_and_see_the_rendered_closed_form(server, browser):
    browser.get(server.url)
    fill(browser, expr="tr(V X W)", wrt="X", where="V: n×m, X: m×p, W: p×n")
    browser.find_element(By.ID, "derive").click()
    answer = wait(browser, "li.answer .katex")
    assert closed_forms(browser) == ["V^T W^T"]
    # the boxed answer is typeset by KaTeX, from the LaTeX of --format json
    assert answer.find_elements(By.CSS_SELECTOR, ".katex-html .boxpad")
    tex = browser.execute_script("return document.querySelector('li.answer annotation').textContent")
    assert r"\boxed{\mathbf{V}^{\top} \mathbf{W}^{\top}}" in tex
    steps = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "ol.steps .rule")]
    assert steps[:2] == ["read as", "index the derivative"] and "sift the deltas" in steps and steps[-1] == "closed form"
    assert len(browser.find_elements(By.CSS_SELECTOR, "ol.steps .katex")) >= len(steps)
    assert "V.T @ W.T" in browser.find_element(By.CSS_SELECTOR, ".code pre").text
    copy = browser.find_element(By.CSS_SELECTOR, ".code button.copy")
    copy.click()
    WebDriverWait(browser, 10).until(lambda b: copy.text == "Copied")
    query = parse_qs(urlsplit(browser.current_url).query)          # the address now carries it
    assert query == {"cmd": ["derive"], "expr": ["tr(V X W)"], "wrt": ["X"], "where": ["V: n×m, X: m×p, W: p×n"]}


def test_a_bad_input_shows_the_caret(server, browser, capsys):
    browser.get(server.url)
    fill(browser, expr="x^T B +", wrt="x")
    browser.find_element(By.ID, "expr").send_keys("\n")               # Enter derives too
    error = wait(browser, "pre.error")
    assert main(["derive", "x^T B +", "--wrt", "x"]) == 2
    assert error.text == capsys.readouterr().err.rstrip("\n")          # as the command line says it
    lines = error.text.splitlines()
    assert lines[0].startswith("indexcalc: error: column 8")
    assert lines[-2] == "  x^T B +" and lines[-1] == "  " + " " * 7 + "^"
    assert not browser.find_elements(By.CSS_SELECTOR, "#results .katex")


def test_a_link_derives_on_load(server, browser):
    browser.get(server.url + "?expr=" + quote("x^T B x") + "&wrt=x")
    wait(browser, "li.answer .katex")
    assert closed_forms(browser) == ["(B + B^T) x"]
    assert browser.find_element(By.ID, "expr").get_attribute("value") == "x^T B x"


def test_a_linked_backprop_and_check(server, browser):
    browser.get(server.url + "?cmd=backprop&expr=" + quote("Y = X W^T + b") + "&wrt=" + quote("W,b")
                + "&where=" + quote("X: S×M, W: N×M, b: 1×N"))
    wait(browser, "li.answer .katex")
    assert closed_forms(browser) == ["dY^T X", "1^T dY"]
    browser.get(server.url + "?expr=" + quote("x^T B x") + "&wrt=x&answer=" + quote("2 B x"))
    verdict = wait(browser, "#verdict")
    assert verdict.find_element(By.CSS_SELECTOR, ".badge").text == "WRONG"
    assert "Counterexample" in verdict.text and verdict.find_elements(By.CSS_SELECTOR, ".values .katex")
    fill(browser, answer="B x + B^T x")
    browser.find_element(By.ID, "check").click()
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.CSS_SELECTOR, "#verdict .badge").text == "RIGHT")


def test_only_its_own_files_are_loaded_and_all_are_served(server, browser):
    browser.get(server.url + "?expr=" + quote("sqrt(x^T B x) + sum(A)") + "&wrt=x")
    wait(browser, "li.answer .katex")
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith(".woff2") for u in loaded) and any(u.endswith("katex.min.js") for u in loaded)
    assert all(u.startswith(server.url) for u in loaded), loaded
    assert not re.search(r"https?://", browser.page_source.replace(server.url, ""))
    assert [s for s in server.statuses() if s[1] >= 400] == []
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []                      # no failed load, no Content-Security-Policy refusal
