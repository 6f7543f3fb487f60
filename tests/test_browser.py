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
    threat_row = browser.find_element(By.ID, "threat-tokenisation-vault-t1").find_element(By.XPATH, "./ancestor::tr")  # type: ignore[attr-defined]
    assert "can call the vault code or KMS directly" in threat_row.text
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
