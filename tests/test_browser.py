"""The built site in headless Chromium: the vault page shows its diagram, threat model and evidence,
the notebook page its outputs, and no page logs a console error.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


pytestmark = [pytest.mark.site, pytest.mark.browser, pytest.mark.xdist_group("site")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    out = site
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are needed: run `make test`, or "
                    "`sudo apt-get install -y chromium chromium-driver`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser: object, url: str) -> list[dict]:
    browser.get_log("browser")  # type: ignore[attr-defined]  # drop what earlier pages logged
    browser.get(url)  # type: ignore[attr-defined]
    browser.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[0];"
        "const imgs = [...document.images];"
        "Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))"
        ".then(() => setTimeout(done, 300));"
    )
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]


def _broken_images(browser: object) -> list[str]:
    return browser.execute_script(  # type: ignore[attr-defined]
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);")


def test_vault_page_shows_diagram_threat_model_and_evidence(browser: object, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    errors = _open(browser, f"{base_url}/articles/tokenisation-vault/")
    assert not errors, errors
    diagram = browser.find_element(By.CSS_SELECTOR, 'img[src$="generated/diagrams/tokenisation-vault.png"]')  # type: ignore[attr-defined]
    assert browser.execute_script("return arguments[0].naturalWidth", diagram) > 500  # type: ignore[attr-defined]
    assert not _broken_images(browser)
    threat = browser.find_element(By.ID, "threat-tokenisation-vault-t1")  # type: ignore[attr-defined]
    assert "can call the vault code or KMS directly" in threat.text
    evidence = browser.find_element(By.XPATH, "//td[contains(., 'KMS requests per 10k tokenisations')]/ancestor::table")  # type: ignore[attr-defined]
    assert "cached data keys" in evidence.text and "counted" in evidence.text
    assert browser.find_element(By.CSS_SELECTOR, ".tabbed-set").is_displayed()  # type: ignore[attr-defined]


def test_notebook_page_shows_its_outputs(browser: object, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    errors = _open(browser, f"{base_url}/generated/notebooks/01-tokenisation-vault/")
    assert not errors, errors
    outputs = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")  # type: ignore[attr-defined]
    text = "\n".join(o.text for o in outputs)
    assert "denied by IAM" in text and "EncryptionContextError" in text and "unrecoverable" in text
    plots = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")  # type: ignore[attr-defined]
    assert len(plots) >= 2 and not _broken_images(browser)


@pytest.mark.parametrize("path", ["/", "/how-we-measure/", "/kpis/", "/compliance/", "/templates/"])
def test_other_pages_load_without_console_errors(browser: object, base_url: str, path: str) -> None:
    errors = _open(browser, base_url + path)
    assert not errors, errors
    assert not _broken_images(browser)


ARTICLE_PAGES = ["/articles/tokenisation-vault/", "/articles/idempotency-ledger/", "/articles/payment-pipeline/",
                 "/articles/audit-observability/"]


def _overflowing_tables(browser: object) -> list[str]:
    """Tables wider than the text column they sit in (their last columns would be hidden)."""
    return browser.execute_script(  # type: ignore[attr-defined]
        "const col = document.querySelector('.md-content__inner').getBoundingClientRect();"
        "return [...document.querySelectorAll('.md-content__inner table')]"
        ".filter(t => t.offsetParent !== null && t.getBoundingClientRect().right > col.right + 1)"
        ".map(t => t.innerText.slice(0, 80));")


@pytest.mark.parametrize("path", ARTICLE_PAGES)
def test_an_article_reads_well_at_desktop_width(browser: object, base_url: str, path: str) -> None:
    """What a reader sees at 1400 px: threat text at least 250 px wide, no table wider than the column,
    and every image has alt text."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(1400, 1000)  # type: ignore[attr-defined]
    assert not _open(browser, base_url + path)
    threats = browser.find_elements(By.CSS_SELECTOR, ".fp-threat")  # type: ignore[attr-defined]
    assert threats
    widths = [browser.execute_script(  # type: ignore[attr-defined]
        "return [...arguments[0].querySelectorAll('p')].at(-2).getBoundingClientRect().width", t) for t in threats[:3]]
    assert min(widths) >= 250, widths
    assert _overflowing_tables(browser) == []
    assert browser.execute_script(  # type: ignore[attr-defined]
        "return [...document.images].filter(i => !(i.alt || '').trim()).map(i => i.src)") == []


@pytest.mark.parametrize("path", ARTICLE_PAGES + ["/kpis/"])
def test_an_article_reads_on_a_phone(browser: object, base_url: str, path: str) -> None:
    """At 400 px: no table overflows the column, and the page itself does not scroll sideways."""
    browser.set_window_size(400, 900)  # type: ignore[attr-defined]
    try:
        assert not _open(browser, base_url + path)
        assert _overflowing_tables(browser) == []
        assert browser.execute_script(  # type: ignore[attr-defined]
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        browser.set_window_size(1400, 1000)  # type: ignore[attr-defined]


def test_a_diagram_opens_at_full_size(browser: object, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1400, 1000)  # type: ignore[attr-defined]
    assert not _open(browser, f"{base_url}/articles/payment-pipeline/")
    diagram = browser.find_element(By.CSS_SELECTOR, 'img[src$="generated/diagrams/payment-pipeline.png"]')  # type: ignore[attr-defined]
    shown = diagram.rect["width"]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", diagram)  # type: ignore[attr-defined]
    diagram.click()
    opened = WebDriverWait(browser, 10).until(expected_conditions.visibility_of_element_located(
        (By.CSS_SELECTOR, ".gslide.current img")))
    WebDriverWait(browser, 10).until(lambda b: opened.rect["width"] > shown * 1.3)
    assert opened.rect["width"] > shown * 1.3, (opened.rect, shown)


def test_search_ranks_an_article_first_for_encryption_context(browser: object, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1400, 1000)  # type: ignore[attr-defined]
    assert not _open(browser, base_url + "/")
    browser.find_element(By.CSS_SELECTOR, "label.md-search__icon, .md-search__input").click()  # type: ignore[attr-defined]
    box = browser.find_element(By.CSS_SELECTOR, ".md-search__input")  # type: ignore[attr-defined]
    box.send_keys("EncryptionContext")
    box.send_keys(Keys.SPACE)
    WebDriverWait(browser, 20).until(  # the results of the whole word, not of a prefix typed on the way
        lambda b: any("h=encryptioncontext" in (a.get_attribute("href") or "").lower()
                      for a in b.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")))
    first = browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")[0]  # type: ignore[attr-defined]
    assert "/articles/" in first.get_attribute("href"), first.get_attribute("href")
