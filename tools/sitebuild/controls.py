"""Regulatory control mappings (``compliance/controls.yaml``), validated and rendered as an evidence matrix.

Each control names its obligation and the source it comes from (citation, URL, the date it was checked),
how the guide meets it, the article, the code that implements it, the tests that evidence it, and the
evidence artefact. The build fails when a control cites no source, names a file, symbol, test or article
that does not exist, or has no code or no test. With the last test run's junit XML
(:mod:`sitebuild.evidence`), every test shows its state, and each control the worst of its tests': a
failing test shows red.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .evidence import STATES, JunitResults, badge, combine, status
from .threats import SourceRef, _resolve_code, _resolve_test

__all__ = ["ControlMappingError", "load_controls", "render_checklist", "render_controls"]


class ControlMappingError(ValueError):
    """A control names a file, symbol, test or article that does not exist, or cites no source; the message
    lists each problem."""


def _links(refs: list[SourceRef], link_base: str) -> list[str]:
    return [f"[`{r.ref}`]({link_base}{r.path}.md{f'#__codelineno-0-{r.line}' if r.line else ''})" for r in refs]


def _source(control: dict[str, Any], where: str, problems: list[str]) -> dict[str, str]:
    source = control.get("source")
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) and source.get(k)
                                               for k in ("citation", "url", "checked")):
        problems.append(f"{where}: needs source: {{citation, url, checked}} (cite the text the obligation comes from)")
        return {}
    if not source["url"].startswith("https://"):
        problems.append(f"{where}: source url must be https, got {source['url']!r}")
    return source


def load_controls(path: Path, *, repo_root: Path, articles: set[str]) -> list[dict[str, Any]]:
    """Every framework with its controls, references resolved; raises :class:`ControlMappingError`."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    frameworks = []
    for framework in raw.get("frameworks") or []:
        controls = []
        for control in framework.get("controls") or []:
            where = f"{framework.get('id')} {control.get('id')}"
            if control.get("article") not in articles:
                problems.append(f"{where}: unknown article {control.get('article')!r}")
            for key in ("title", "obligation", "how", "evidence"):
                if not isinstance(control.get(key), str) or not control.get(key):
                    problems.append(f"{where}: needs {key!r}")
            source = _source(control, where, problems)
            code = [r for ref in control.get("code", []) if (r := _resolve_code(ref, repo_root, where, problems))]
            tests = [r for ref in control.get("tests", []) if (r := _resolve_test(ref, repo_root, where, problems))]
            if not code or not tests:
                problems.append(f"{where}: needs at least one code and one test reference")
            controls.append({**control, "source": source, "code_refs": code, "test_refs": tests})
        frameworks.append({**framework, "controls": controls})
    if problems:
        raise ControlMappingError(f"{path}:\n  - " + "\n  - ".join(problems))
    return frameworks


def _run_line(results: JunitResults | None) -> str:
    if results is None:
        return ("**No test run recorded yet**: every test shows *not run*. Run `make test` (it writes "
                "`build/test-results/junit.xml`), then build the site again.")
    return (f"Test states from the last test run ({results.timestamp or 'time not recorded'}, {results.tests:,} "
            "tests, `build/test-results/junit.xml`). A control takes the worst state of its tests.")


def render_controls(path: Path, *, repo_root: Path, link_base: str, articles: set[str],
                    results: JunitResults | None = None) -> tuple[str, set[str]]:
    """Markdown: the run's line, a summary matrix, then per framework a table of controls with their evidence
    and state; and the set of repository paths it links to."""
    frameworks = load_controls(path, repo_root=repo_root, articles=articles)
    paths: set[str] = set()
    summary = ["| Framework | Controls | " + " | ".join(STATES) + " |", "| --- | --- |" + " --- |" * len(STATES)]
    sections: list[str] = []
    for framework in frameworks:
        counts: Counter[str] = Counter()
        lines = [f"## {framework['name']}", ""]
        if framework.get("source"):
            lines += [f"Source: [{framework['source']['title']}]({framework['source']['url']}).", ""]
        lines += ["| Control | How the guide meets it | Evidence | State |", "| --- | --- | --- | --- |"]
        for control in framework["controls"]:
            code, tests = control["code_refs"], control["test_refs"]
            paths.update(r.path for r in (*code, *tests))
            states = [status(r.ref, results) for r in tests]
            state = combine(states)
            counts[state] += 1
            source = control["source"]
            requirement = (f"**{control['id']}** {control['title']}<br>{control['obligation']}<br>"
                           f"[{source['citation']}]({source['url']}) (checked {source['checked']})")
            article = f"[{control['article']}](articles/{control['article']}.md)"
            evidence = ("Code: " + ", ".join(_links(code, link_base)) + "<br>Tests: "
                        + ", ".join(f"{link} {badge(s)}" for link, s in zip(_links(tests, link_base), states,
                                                                            strict=True))
                        + f"<br>Artefact: {control['evidence']}")
            lines.append(f"| {requirement} | {control['how']} ({article}) | {evidence} | {badge(state)} |")
        sections.append("\n".join(lines))
        summary.append(f"| [{framework['name']}](#{_anchor(framework['name'])}) | {sum(counts.values())} | "
                       + " | ".join(str(counts[s]) for s in STATES) + " |")
    return "\n\n".join([_run_line(results), "\n".join(summary), *sections]) + "\n", paths


def _anchor(title: str) -> str:
    """The heading anchor mkdocs (toc, default slugify) gives a title."""
    text = re.sub(r"[^\w\s-]", "", title.lower()).strip()
    return re.sub(r"[-\s]+", "-", text)


def render_checklist(path: Path, *, repo_root: Path, link_base: str,
                     results: JunitResults | None = None) -> tuple[str, set[str]]:
    """The security and compliance checklist: each item with the templates, code and tests that evidence it
    and its state; an item with no test, or a reference that does not exist, fails the build."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    paths: set[str] = set()
    rows = ["| Item | Evidence | State |", "| --- | --- | --- |"]
    counts: Counter[str] = Counter()
    for item in raw.get("items") or []:
        where = f"checklist {item.get('id')}"
        templates = [r for ref in item.get("templates", []) if (r := _resolve_code(ref, repo_root, where, problems))]
        code = [r for ref in item.get("code", []) if (r := _resolve_code(ref, repo_root, where, problems))]
        tests = [r for ref in item.get("tests", []) if (r := _resolve_test(ref, repo_root, where, problems))]
        if not tests or not (templates or code):
            problems.append(f"{where}: needs at least one test and one template or code reference")
        paths.update(r.path for r in (*templates, *code, *tests))
        states = [status(r.ref, results) for r in tests]
        state = combine(states)
        counts[state] += 1
        parts = []
        if templates:
            parts.append("Templates: " + ", ".join(_links(templates, link_base)))
        if code:
            parts.append("Code: " + ", ".join(_links(code, link_base)))
        parts.append("Tests: " + ", ".join(f"{link} {badge(s)}" for link, s in zip(_links(tests, link_base), states,
                                                                             strict=True)))
        rows.append(f"| **{item['title']}**<br>{item.get('what', '')} | {'<br>'.join(parts)} | {badge(state)} |")
    if problems:
        raise ControlMappingError(f"{path}:\n  - " + "\n  - ".join(problems))
    total = " · ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    return "\n\n".join([_run_line(results), f"**{sum(counts.values())} items**: {total}.", "\n".join(rows)]) + "\n", paths
