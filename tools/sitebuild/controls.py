"""Regulatory control mappings (``compliance/controls.yaml``), validated and rendered as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .threats import SourceRef, _resolve_code, _resolve_test

__all__ = ["ControlMappingError", "render_controls"]


class ControlMappingError(ValueError):
    """A control names a file, symbol, test or article that does not exist; the message lists each one."""


def _links(refs: list[SourceRef], link_base: str) -> str:
    return "<br>".join(
        f"[`{r.ref}`]({link_base}{r.path}.md{f'#__codelineno-0-{r.line}' if r.line else ''})" for r in refs
    )


def render_controls(path: Path, *, repo_root: Path, link_base: str, articles: set[str]) -> tuple[str, set[str]]:
    """Markdown for every framework's controls, and the set of repository paths it links to."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    out: list[str] = []
    paths: set[str] = set()
    for framework in raw.get("frameworks") or []:
        out += [f"## {framework['name']}", "", "| Control | Requirement | How the guide meets it | Evidence: code | Evidence: tests |",
                "| --- | --- | --- | --- | --- |"]
        for control in framework.get("controls") or []:
            where = f"{framework['id']} {control.get('id')}"
            if control.get("article") not in articles:
                problems.append(f"{where}: unknown article {control.get('article')!r}")
            code = [r for ref in control.get("code", []) if (r := _resolve_code(ref, repo_root, where, problems))]
            tests = [r for ref in control.get("tests", []) if (r := _resolve_test(ref, repo_root, where, problems))]
            if not code or not tests:
                problems.append(f"{where}: needs at least one code and one test reference")
            paths.update(r.path for r in (*code, *tests))
            article = f"[{control.get('article')}](articles/{control.get('article')}.md)"
            out.append(f"| **{control['id']}** | {control['title']} | {control['how']} ({article}) "
                       f"| {_links(code, link_base)} | {_links(tests, link_base)} |")
        out.append("")
    if problems:
        raise ControlMappingError(f"{path}:\n  - " + "\n  - ".join(problems))
    return "\n".join(out), paths
