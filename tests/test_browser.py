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


pytestmark = [pytest.mark.site, pytest.mark.browser, pytest.mark.xdist_group("site"),
              pytest.mark.timeout(1800)]  # the first test waits for the site build (the notebooks), slow on a busy machine

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


ARTICLE_PAGES = [f"/articles/{p.stem}/" for p in sorted((Path(__file__).resolve().parents[1] / "docs" / "articles").glob("*.md"))]


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


# -- Colour contrast (WCAG 2.x AA) in both palettes ---------------------------------------------------------------

CONTRAST_PAGES = ["/", "/articles/tokenisation-vault/", "/articles/payment-pipeline/", "/kpis/",
                  "/generated/notebooks/01-tokenisation-vault/", "/api/vault/"]

# One async script per page and palette (argument: the palette). It switches the palette with the header's toggle,
# as a reader does, and waits for the colour transitions to end; opens every <details> (a reader can); then, with
# the first tab of every tab set shown, then the second... and last, and finally with each kind of link or control
# focused (as a keyboard user sees it: mkdocs-material gives :focus and :hover the same colours), it walks every
# element with its own non-blank text node that a reader can see and compares the colour the text is drawn in with
# the colour under it:
# - text colour: `color` (or -webkit-text-fill-color) at its alpha times the opacity of the element and its
#   ancestors, drawn over the background below;
# - background: the background colours of the element and its ancestors, each at its alpha times its opacity,
#   composited from the first opaque one (or the page's own background) upwards;
# - skipped: text not drawn (display none, visibility hidden, opacity 0 or transparent text, no box, off the
#   page, clipped away by an overflow-hidden ancestor, screen-reader-only clip), text inside images (svg, img,
#   canvas...), and text with a background image or gradient between it and the first opaque background colour:
#   the colour under that text cannot be known from styles, so it is returned apart (a warning) rather than guessed;
# - WCAG: relative luminance of sRGB, ratio (L1 + 0.05) / (L2 + 0.05), at least 4.5, or 3 for large text
#   (24 px, or 18.66 px and bold).
# Not measured: text drawn by CSS (::before/::after content), placeholders, and hover-only styles that differ
# from the focus ones.
CONTRAST_JS = r"""
const scheme = arguments[0], done = arguments[arguments.length - 1];
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
async function settle() {  // let colour transitions (palette switch, tab labels) end: read what a reader ends up seeing
  getComputedStyle(document.body).color; await frame(); await frame();
  const running = document.getAnimations().filter(a => a.effect && a.effect.getTiming().iterations !== Infinity);
  await Promise.race([Promise.all(running.map(a => a.finished.catch(() => 0))), new Promise(r => setTimeout(r, 3000))]);
  await frame();
}
const canvas = document.createElement('canvas'); canvas.width = canvas.height = 1;
const ctx = canvas.getContext('2d', {willReadFrequently: true});
const parsed = new Map();
function parse(str) {  // a computed colour as [r, g, b, a], r, g, b in 0..255
  if (parsed.has(str)) return parsed.get(str);
  let c, m = str.match(/^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+)(%?))?\s*\)$/);
  if (m) {
    c = [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4] / (m[5] ? 100 : 1)];
  } else if ((m = str.match(/^color\(srgb\s+([-\d.e]+)\s+([-\d.e]+)\s+([-\d.e]+)(?:\s*\/\s*([\d.]+)(%?))?\s*\)$/))) {
    c = [m[1] * 255, m[2] * 255, m[3] * 255, m[4] === undefined ? 1 : +m[4] / (m[5] ? 100 : 1)];
  } else {  // any other syntax (oklch, lab...): the canvas converts it to sRGB
    ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = str; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data; c = [d[0], d[1], d[2], d[3] / 255];
  }
  c[3] = Math.round(c[3] * 255) / 255;  // Chrome draws with 8-bit alpha and prints it rounded: #0000008a is "0.54", drawn as 138/255
  parsed.set(str, c); return c;
}
const over = (top, a, below) => [0, 1, 2].map(i => top[i] * a + below[i] * (1 - a));
const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                   return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const contrast = (x, y) => { const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p); return (a + 0.05) / (b + 0.05); };
const hex = c => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
let styles, opacities, boxes, backgrounds, canvasBg;
const style = e => { let s = styles.get(e); if (!s) { s = getComputedStyle(e); styles.set(e, s); } return s; };
const rect = e => { let r = boxes.get(e); if (!r) { r = e.getBoundingClientRect(); boxes.set(e, r); } return r; };
function opacity(e) {  // the element's opacity times its ancestors'
  if (!e) return 1;
  if (!opacities.has(e)) opacities.set(e, parseFloat(style(e).opacity) * opacity(e.parentElement));
  return opacities.get(e);
}
function background(el) {  // {color}: composited from the first opaque layer (or the page) up to el; or {image: element}
  if (!el) return {color: canvasBg};
  let bg = backgrounds.get(el);
  if (!bg) {
    const s = style(el), c = parse(s.backgroundColor), a = c[3] * opacity(el);
    if (s.backgroundImage !== 'none') bg = {image: el};
    else if (a >= 1) bg = {color: c.slice(0, 3)};
    else {
      const below = background(el.parentElement);
      bg = below.image || a === 0 ? below : {color: over(c, a, below.color)};
    }
    backgrounds.set(el, bg);
  }
  return bg;
}
function hidden(el, node) {  // why a reader cannot see this text, or ''
  if (!el.checkVisibility({checkVisibilityCSS: true, visibilityProperty: true})) return 'not displayed';
  if (opacity(el) === 0) return 'transparent';
  const range = document.createRange(); range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
  if (!rects.length) return 'no box';
  const box = rects.reduce((u, r) => ({left: Math.min(u.left, r.left), top: Math.min(u.top, r.top),
                                       right: Math.max(u.right, r.right), bottom: Math.max(u.bottom, r.bottom)}));
  if (box.right + scrollX <= 0 || box.bottom + scrollY <= 0) return 'off the page';
  // The text must show inside every ancestor that clips. Inside a scroller (code blocks, notebook cells) text
  // past its edge can be scrolled into view, so from there up it is the scroller's box that must show.
  const view = {...box};
  for (let e = el; e && e !== document.body; e = e.parentElement) {
    const s = style(e), r = rect(e);
    if (/rect\(0(px)?,? 0(px)?,? 0(px)?,? 0(px)?\)/.test(s.clip) || /inset\(50%/.test(s.clipPath)) return 'screen-reader only';
    for (const [axis, lo, hi, size] of [['X', 'left', 'right', 'width'], ['Y', 'top', 'bottom', 'height']]) {
      const o = s['overflow' + axis];
      if ((o === 'hidden' || o === 'clip') && (r[size] <= 1 || view[hi] <= r[lo] || view[lo] >= r[hi])) return 'clipped away';
      if (o === 'auto' || o === 'scroll') { view[lo] = r[lo]; view[hi] = r[hi]; }
    }
  }
  return '';
}
function describe(el) {  // a short selector path: up to four levels, or up to the nearest id
  const parts = [];
  for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
    const tag = e.tagName.toLowerCase();
    if (e.id) { parts.unshift(tag + '#' + e.id); break; }
    const cls = [...e.classList].filter(k => k !== 'focus-visible').slice(0, 3);
    parts.unshift(cls.length ? tag + '.' + cls.join('.') : tag);
  }
  return parts.join(' > ');
}
const SKIP_TAGS = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TITLE', 'OPTION']);
const seen = new Map(), failures = [], imageBacked = [], skipped = {};
let checked = 0, focusKinds = 0;
function scan(root, state = '') {
  styles = new Map(); opacities = new Map(); boxes = new Map(); backgrounds = new Map();
  // At the bottom, the page's own background: the root's, else the body's (CSS paints it on the canvas), else white.
  const html = parse(style(document.documentElement).backgroundColor), body = parse(style(document.body).backgroundColor);
  canvasBg = html[3] > 0 ? over(html, html[3], [255, 255, 255]) : body[3] > 0 ? over(body, body[3], [255, 255, 255]) : [255, 255, 255];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT,
    {acceptNode: n => /\S/.test(n.data) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT});
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement;
    if (!el || SKIP_TAGS.has(el.tagName) || el.closest('svg, img, picture, canvas, video, object, iframe')) continue;
    const why = hidden(el, node);
    if (why) { skipped[why] = (skipped[why] || 0) + 1; continue; }
    const s = style(el), c = parse(s.webkitTextFillColor || s.color), a = c[3] * opacity(el);
    if (a === 0) { skipped['transparent'] = (skipped['transparent'] || 0) + 1; continue; }
    const bg = background(el);
    const key = bg.image ? 'image' : hex(c) + a + hex(bg.color);
    if (!seen.has(el)) seen.set(el, new Set());
    if (seen.get(el).has(key)) continue;  // the element's other text nodes, or the same look in another tab state
    seen.get(el).add(key);
    if (bg.image) { imageBacked.push(describe(el) + ' (background image on ' + describe(bg.image) + ')'); continue; }
    checked++;
    const fg = over(c, a, bg.color), size = parseFloat(s.fontSize), weight = parseInt(s.fontWeight, 10) || 400;
    const large = size >= 24 || (size >= 18.66 && weight >= 700), need = large ? 3 : 4.5, ratio = contrast(fg, bg.color);
    if (ratio < need) {
      const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('').replace(/\s+/g, ' ').trim();
      const tag = el.tagName.toLowerCase() + [...el.classList].filter(k => k !== 'focus-visible').map(k => '.' + k).join('');
      failures.push({where: describe(el), tag: tag,
                     text: text.slice(0, 40), fg: hex(fg), bg: hex(bg.color), ratio: Math.floor(ratio * 100) / 100,
                     need: need, size: Math.round(size * 10) / 10, state: state});
    }
  }
}
(async () => {
  // The palette, switched as a reader does: with the toggle in the header (which also stores the choice).
  for (let i = 0; i < 2 && document.body.getAttribute('data-md-color-scheme') !== scheme; i++) {
    const toggle = [...document.querySelectorAll('form[data-md-component=palette] label')].find(l => l.checkVisibility());
    if (!toggle) break;
    toggle.click();
    await frame();
  }
  await settle();
  const page = getComputedStyle(document.body).backgroundColor;
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  await settle();
  scan(document.body);
  // Then the other tabs of each tab set, in turn: only their content changes (the labels were seen above).
  const sets = [...document.querySelectorAll('.tabbed-set')].map(t => [...t.querySelectorAll(':scope > input')]);
  const states = Math.max(1, ...sets.map(inputs => inputs.length));
  for (let i = 1; i < states; i++) {
    sets.forEach(inputs => { if (inputs[i]) inputs[i].checked = true; });
    await frame();
    document.querySelectorAll('.tabbed-set > .tabbed-content').forEach(c => scan(c));
  }
  // Then what a keyboard user sees: each kind of link or control in its :focus colours (mkdocs-material gives
  // :focus and :hover the same ones), e.g. the accent colour of a focused link. Transitions are turned off here
  // (they change when a colour is reached, not which), so that each state can be read at once.
  const still = document.createElement('style');
  still.textContent = '*, *::before, *::after { transition: none !important; animation: none !important; }';
  document.head.appendChild(still);
  const kinds = new Set();
  for (const el of document.querySelectorAll('a[href], button, summary, [tabindex]:not([tabindex="-1"])')) {
    if (!/\S/.test(el.textContent) || el.closest('svg') || !el.checkVisibility({checkVisibilityCSS: true})) continue;
    const kind = [el, el.parentElement, el.parentElement && el.parentElement.parentElement, ...el.querySelectorAll('*')]
      .map(e => e ? e.tagName + '.' + [...e.classList].sort().join('.') : '').join(' ');  // its place and its content's markup
    if (kinds.has(kind)) continue;
    kinds.add(kind);
    el.focus({preventScroll: true});
    if (document.activeElement === el) scan(el, 'focused');
    el.blur();
  }
  still.remove();
  focusKinds = kinds.size;
  done({scheme: document.body.getAttribute('data-md-color-scheme'), page: page, states: states, focusKinds: focusKinds,
        failures: failures, checked: checked, imageBacked: imageBacked, skipped: skipped});
})().catch(e => done({error: String(e && e.stack || e)}));
"""


def _relative_luminance(css_rgb: str) -> float:
    channels = [float(v) / 255 for v in css_rgb[css_rgb.index("(") + 1:css_rgb.index(")")].replace(",", " ").split()[:3]]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _forget_palette(browser: object) -> None:
    browser.execute_script(  # type: ignore[attr-defined]
        "Object.keys(localStorage).filter(k => k.endsWith('__palette')).forEach(k => localStorage.removeItem(k))")


@pytest.mark.parametrize("scheme", ["default", "slate"])
@pytest.mark.parametrize("path", CONTRAST_PAGES)
def test_text_has_aa_contrast_in_both_palettes(browser: object, base_url: str, path: str, scheme: str) -> None:
    """Every piece of text a reader can see, in the light and the dark palette, has WCAG 2.x AA contrast
    against what is drawn under it: 4.5:1, or 3:1 for large text (see CONTRAST_JS for how it is measured)."""
    import collections
    import warnings

    browser.set_window_size(1400, 1000)  # type: ignore[attr-defined]
    browser.set_script_timeout(60)  # type: ignore[attr-defined]
    try:
        _open(browser, base_url + path)
        result = browser.execute_async_script(CONTRAST_JS, scheme)  # type: ignore[attr-defined]
    finally:
        _forget_palette(browser)
    assert "error" not in result, result.get("error")
    # The switch took effect: the palette's attribute is set and the page is drawn on that palette's background.
    assert result["scheme"] == scheme
    page_luminance = _relative_luminance(result["page"])
    assert (page_luminance > 0.9) if scheme == "default" else (page_luminance < 0.05), (scheme, result["page"])
    assert result["checked"] > 50, result  # the walk found the page's text
    if result["imageBacked"]:
        warnings.warn(f"{path} ({scheme}): text on a background image, contrast not checked: "
                      f"{result['imageBacked'][:10]}", stacklevel=1)
    failures = result["failures"]

    def kind(f: dict) -> tuple:
        return f["tag"], f["state"], f["fg"], f["bg"], f["ratio"], f["need"]

    lines = []
    for key, count in collections.Counter(kind(f) for f in failures).most_common():
        f = next(f for f in failures if kind(f) == key)
        lines.append(f"  {count:4d} x {f['where']}{' (focused)' if f['state'] else ''}  {f['text']!r}: "
                     f"{f['fg']} on {f['bg']}, {f['ratio']:.2f} < {f['need']} ({f['size']} px)")
    if failures:
        pytest.fail(f"{path} in the {scheme} palette: {len(failures)} of {result['checked']} text elements below "
                    f"WCAG AA contrast (count x example element 'text': text colour on background, ratio):\n"
                    + "\n".join(lines), pytrace=False)
