"""Helpers for the site tests: build the site once per session, and read its HTML."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

REPO = Path(__file__).resolve().parent.parent
SNIPPET_RE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')


def build_site(out: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` into ``out``, as `make build` does, from the repository root."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("FASTERPAY_METRICS_DIR", None)  # the build decides where notebook metrics go
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500,  # a busy machine: see the site tests
    )


@dataclass
class Page:
    path: Path
    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, str]] = field(default_factory=list)  # (tag.attr, url)
    images: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.page.ids.add(a[key])  # type: ignore[arg-type]
        if tag == "a" and a.get("href"):
            self.page.links.append(("a.href", a["href"]))  # type: ignore[arg-type]
        if tag in ("img", "script") and a.get("src"):
            self.page.links.append((f"{tag}.src", a["src"]))  # type: ignore[arg-type]
            if tag == "img":
                self.page.images.append(a["src"])  # type: ignore[arg-type]
        if tag == "link" and a.get("href") and a.get("rel") != "canonical":
            self.page.links.append(("link.href", a["href"]))  # type: ignore[arg-type]


def parse(path: Path) -> Page:
    """The page's ids, links and images; parsed once per file version (the site tests read each page often)."""
    stat = path.stat()
    return _parse(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _parse(path: Path, mtime_ns: int, size: int) -> Page:
    page = Page(path)
    _Parser(page).feed(path.read_text(encoding="utf-8"))
    return page


def resolve(site: Path, page: Path, url: str) -> tuple[Path | None, str]:
    """The file an internal URL points at (None for external), and its fragment."""
    target, fragment = urldefrag(url)
    if urlparse(target).scheme or target.startswith("//"):
        return None, ""
    if not target:
        return page, fragment
    base = site if target.startswith("/") else page.parent  # the 404 page links from the site root
    resolved = (base / unquote(target).lstrip("/")).resolve()
    if resolved.is_dir() or target.endswith("/"):
        resolved = resolved / "index.html"
    return resolved, fragment


def snippet_includes(markdown: Path) -> list[str]:
    return [m.group(1) for line in markdown.read_text(encoding="utf-8").splitlines() if (m := SNIPPET_RE.match(line))]


def fenced_blocks(markdown: Path) -> list[list[str]]:
    """The body lines of each fenced code block (``` or ~~~), indented ones (in tabs) included."""
    blocks, current, fence = [], None, None
    for line in markdown.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if current is None and stripped.startswith(("```", "~~~")):
            current, fence = [], stripped[:3]
        elif current is not None and stripped == fence:
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return blocks
