"""Work the site build repeats with the same inputs, done once: each cache hands back exactly what the library
computes, and ``tests/test_site_speedups.py`` checks that against the libraries' own code.

* **nbconvert's templates.** mkdocs-jupyter makes a new exporter for every notebook, and each exporter a new Jinja
  environment, so the same templates were parsed and compiled again for every notebook (about 2 s of the build's
  CPU). One in-memory Jinja bytecode cache per exporter class lets each new environment load the compiled
  template instead; Jinja compares a checksum of the template's source before it uses the cached code, and only
  environments of one exporter class (the same extensions, filters and settings) share a cache.
* **pygments' style table.** Every highlighted block (about 2,500 a build: each code block, each signature and
  source listing of the API reference) gets a new formatter, and each formatter built the same table of CSS
  classes from its style (about 1 s). The table depends only on the formatter's class, its style and its class
  prefix, so it is built once per combination and copied into each new formatter.

:func:`install` is idempotent; the build hook calls it from ``on_config``. Both caches live as long as the process
(`mkdocs serve` rebuilds reuse them) and stay small: a few compiled templates, a table per style.
"""

from __future__ import annotations

from typing import Any

import jinja2

__all__ = ["install", "installed"]

_INSTALLED: set[str] = set()


def installed() -> frozenset[str]:
    """The caches :func:`install` has put in place in this process."""
    return frozenset(_INSTALLED)


class _SharedBytecode(jinja2.BytecodeCache):
    """A Jinja bytecode cache held in memory: ``bucket.key`` (template name and file) -> compiled code.

    Jinja checks the bucket's checksum (of the template source) when it loads the code, so an edited template
    is compiled again."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Any) -> None:
        code = self.code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Any) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _install_nbconvert_templates() -> None:
    from nbconvert.exporters.templateexporter import TemplateExporter

    caches: dict[type, jinja2.BytecodeCache] = {}
    create = TemplateExporter._create_environment  # noqa: SLF001

    def _create_environment(self: Any) -> jinja2.Environment:
        environment = create(self)
        if environment.bytecode_cache is None:  # one an exporter sets itself wins
            environment.bytecode_cache = caches.setdefault(type(self), _SharedBytecode())
        return environment

    TemplateExporter._create_environment = _create_environment  # type: ignore[method-assign]  # noqa: SLF001


def _install_pygments_stylesheet() -> None:
    from pygments.formatters.html import HtmlFormatter

    tables: dict[tuple[type, type, str], tuple[dict[Any, str], dict[str, Any]]] = {}
    create = HtmlFormatter._create_stylesheet  # noqa: SLF001

    def _create_stylesheet(self: Any) -> None:
        key = (type(self), self.style, self.classprefix)
        table = tables.get(key)
        if table is None:
            create(self)
            tables[key] = (dict(self.ttype2class), dict(self.class2style))
        else:
            self.ttype2class, self.class2style = dict(table[0]), dict(table[1])

    HtmlFormatter._create_stylesheet = _create_stylesheet  # type: ignore[method-assign]  # noqa: SLF001


def install() -> None:
    """Put both caches in place (once per process)."""
    for name, put in (("nbconvert-templates", _install_nbconvert_templates),
                      ("pygments-stylesheet", _install_pygments_stylesheet)):
        if name not in _INSTALLED:
            put()
            _INSTALLED.add(name)
