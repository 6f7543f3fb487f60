"""The site build's caches give the answers the work they save would give.

* ``sitebuild.speedups`` (nbconvert's compiled templates, pygments' style tables): each check runs in a fresh
  interpreter, computes the results with the libraries as shipped, installs the caches, computes them again
  (twice, so the second comes from the cache) and compares.
* The threat models', controls' and checklist's code and test references (``sitebuild.threats``), which parse
  each file once: every reference resolves to the line a fresh parse of the file gives."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from sitecheck import REPO


def _run(script: str, tmp_path: Path) -> dict:
    out = tmp_path / "result.json"
    code = f"import sys; sys.path.insert(0, {str(REPO / 'tools')!r})\nOUT = {str(out)!r}\n" + textwrap.dedent(script)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_the_style_table_cache_gives_each_formatter_the_table_pygments_builds(tmp_path: Path) -> None:
    result = _run("""
        import json
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
        from pymdownx.highlight import BlockHtmlFormatter, InlineHtmlFormatter

        CODE = "@decorator\\ndef f(x: int = 1) -> str:\\n    '''doc'''\\n    return f'{x!r}' + \\"s\\"  # note\\n"
        CASES = [(cls, style, prefix) for cls in (HtmlFormatter, BlockHtmlFormatter, InlineHtmlFormatter)
                 for style in ("default", "monokai", "bw") for prefix in ("", "x-")]

        def compute():
            out = []
            for cls, style, prefix in CASES:
                f = cls(style=style, classprefix=prefix, linenos="table", anchorlinenos=True,
                        lineanchors="__codelineno-0", linespans="__span-0", wrapcode=True, hl_lines=[2])
                out.append([sorted((repr(k), v) for k, v in f.ttype2class.items()),
                            sorted((k, repr(v)) for k, v in f.class2style.items()),
                            f.get_style_defs(".highlight"), highlight(CODE, PythonLexer(), f)])
            return out

        shipped = compute()
        from sitebuild import speedups
        speedups.install()
        speedups.install()  # idempotent
        first, second = compute(), compute()
        json.dump({"same": shipped == first == second, "installed": sorted(speedups.installed())}, open(OUT, "w"))
    """, tmp_path)
    assert result == {"same": True, "installed": ["nbconvert-templates", "pygments-stylesheet"]}


def test_the_shared_template_cache_renders_notebooks_as_nbconvert_does(tmp_path: Path) -> None:
    result = _run("""
        import json
        import jinja2
        import nbformat
        from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

        nb = new_notebook(cells=[
            new_markdown_cell("# Title\\n\\nSome *text* and a [link](https://example.org).\\n\\n## Part"),
            new_code_cell("x = 1\\nprint(x)", outputs=[new_output("stream", name="stdout", text="1\\n")],
                          execution_count=1),
            new_code_cell("import pandas", metadata={"tags": ["hide-input"]},
                          outputs=[new_output("execute_result", data={"text/html": "<table><tr><td>1</td></tr></table>",
                                                                     "text/plain": "1"}, execution_count=2)],
                          execution_count=2),
            new_code_cell("hidden()", metadata={"tags": ["hide"]}),
        ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, "demo.ipynb")

        from mkdocs_jupyter import convert
        from mkdocs_jupyter.plugin import _get_nb_toc_tokens

        compiled = []
        compile_ = jinja2.Environment.compile
        def counting(self, *args, **kwargs):
            compiled.append(1)
            return compile_(self, *args, **kwargs)
        jinja2.Environment.compile = counting

        def convert_once():
            html = convert.nb2html("demo.ipynb", allow_errors=False, remove_tag_config={
                "remove_input_tags": ["hide-input"], "remove_cell_tags": ["hide"]})
            return [html, repr(_get_nb_toc_tokens("demo.ipynb", 6))]

        shipped = convert_once()
        from sitebuild import speedups
        speedups.install()
        first = convert_once()
        before = len(compiled)
        second = convert_once()
        json.dump({"same": shipped == first == second, "compiled_again": len(compiled) - before,
                   "compiled_first": before}, open(OUT, "w"))
    """, tmp_path)
    assert result["same"]
    assert result["compiled_first"] > 0 and result["compiled_again"] == 0, result


# -- the threat models' and controls' references: each file parsed once, the same answers ----------------------------
def _first_def(body: list, name: str):  # type: ignore[no-untyped-def]
    """The lookup the references used before the parse was cached: the first def or class of that name."""
    import ast

    return next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == name), None)


@functools.lru_cache(maxsize=None)
def _body(path: Path, text: str) -> list:  # type: ignore[type-arg]
    import ast

    return ast.parse(text).body


def _line_as_parsed(path: Path, names: list[str], *, test: bool) -> int | None:
    import ast

    body = _body(path, path.read_text(encoding="utf-8"))
    node = _first_def(body, names[0])
    if len(names) == 2:
        node = _first_def(node.body, names[1]) if isinstance(node, ast.ClassDef) else None
    if test and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    return None if node is None else node.lineno


SAMPLE = '''
import functools


def shadowed():
    pass


class shadowed:  # a second definition of the name: the first one counts
    pass


@functools.cache
def decorated():
    pass


async def test_async():
    pass


class TestThings:
    value = 1

    def test_one(self):
        pass

    @staticmethod
    def test_one():  # redefined: the first one counts
        pass

    class Nested:
        def test_deep(self):
            pass

    if True:
        def test_hidden(self):  # not a direct child of the class body
            pass


def test_plain():
    def test_inner():
        pass
'''


def test_cached_definitions_resolve_references_as_the_parse_does(tmp_path: Path) -> None:
    from sitebuild.threats import _resolve_code, _resolve_test

    (tmp_path / "tests").mkdir()
    sample = tmp_path / "tests" / "test_sample.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    codes = ["shadowed", "decorated", "test_async", "TestThings", "TestThings.test_one", "TestThings.Nested",
             "TestThings.value", "TestThings.test_hidden", "TestThings.Nested.test_deep", "test_plain",
             "test_plain.test_inner", "missing", "shadowed.x"]
    for symbol in codes:
        problems: list[str] = []
        ref = _resolve_code(f"tests/test_sample.py::{symbol}", tmp_path, "w", problems)
        parts = symbol.split(".")
        expected = _line_as_parsed(sample, parts, test=False) if len(parts) <= 2 else None
        assert (ref.line if ref else None) == expected, (symbol, problems)
        assert bool(problems) == (expected is None), symbol
    tests = ["test_async", "test_plain", "TestThings::test_one", "TestThings::test_hidden", "TestThings::Nested",
             "TestThings::value", "decorated", "shadowed::x", "test_plain[case-1]"]
    for node_id in tests:
        problems = []
        ref = _resolve_test(f"tests/test_sample.py::{node_id}", tmp_path, "w", problems)
        names = [n.split("[")[0] for n in node_id.split("::")]
        expected = _line_as_parsed(sample, names, test=True)
        if expected is not None and (not names[-1].startswith("test") or (len(names) == 2 and
                                                                          not names[0].startswith("Test"))):
            expected = None  # found, but pytest would not collect it
        assert (ref.line if ref else None) == expected, (node_id, problems)
    sample.write_text("def broken(:\n", encoding="utf-8")  # an edited file is parsed again; a broken one fails each time
    for _ in range(2):
        problems = []
        assert _resolve_code("tests/test_sample.py::broken", tmp_path, "w", problems) is None
        assert len(problems) == 1 and "cannot parse 'tests/test_sample.py' as Python" in problems[0]


def test_every_reference_in_the_compliance_data_resolves_to_the_line_the_parse_gives() -> None:
    import re

    import yaml

    from sitebuild.threats import _resolve_code, _resolve_test

    refs: list[tuple[str, bool]] = []
    for path in sorted((REPO / "compliance" / "threats").glob("*.yaml")):
        for m in yaml.safe_load(path.read_text(encoding="utf-8"))["mitigations"]:
            refs += [(r, False) for r in m.get("code", [])] + [(r, True) for r in m.get("tests", [])]
    for framework in yaml.safe_load((REPO / "compliance" / "controls.yaml").read_text(encoding="utf-8"))["frameworks"]:
        for control in framework["controls"]:
            refs += [(r, False) for r in control.get("code", [])] + [(r, True) for r in control.get("tests", [])]
    for item in yaml.safe_load((REPO / "compliance" / "checklist.yaml").read_text(encoding="utf-8"))["items"]:
        refs += [(r, False) for r in (*item.get("templates", []), *item.get("code", []))]
        refs += [(r, True) for r in item.get("tests", [])]
    checked = 0
    for ref, test in refs:
        path, _, rest = ref.partition("::")
        if not rest:
            continue
        names = [re.sub(r"\[.*\]$", "", n) for n in (rest.split("::") if test else rest.split("."))]
        problems: list[str] = []
        resolved = (_resolve_test if test else _resolve_code)(ref, REPO, "w", problems)
        assert not problems and resolved is not None, problems
        assert resolved.line == _line_as_parsed(REPO / path, names, test=test), ref
        checked += 1
    assert checked > 500, checked  # 755 references into 151 files when this was written
