"""Templates stay usable: each has its sections, and everything a template names exists.

The incident playbook's five worked scenarios each have every part; every ``python -m simulations``
command written in a template parses with the CLI's own parser; every repository path and
``path::symbol`` reference names a file, function, class or test that exists; the DPIA names every
vault data class; every URL is https; the worked tabletop scenario is filled in; and the site's
templates page includes every template. No subprocess and no AWS call: the module runs in about a
second.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"

REQUIRED = {
    "article.md": ["## Context and problem", "## Solution", "## Threat model", "## Issues and considerations",
                   "## When to use", "## Checklist", "## Notebook", "## How we measured"],
    "runbook.md": ["## Detection signal", "## Checks", "## Remedy", "## Rollback", "## Rehearse", "## Evidence",
                   "## Escalate when"],
    "incident-playbook.md": ["Detection", "Severity", "## 3. Roles", "Communications", "Containment", "Recovery",
                             "## 7. Evidence", "Post-incident review", "## 9. Worked scenarios", "## 10. Sources"],
    "tabletop-exercise.md": ["## Part 1: template", "### Injects", "### Questions to ask", "### Evidence to collect",
                             "### Scoring", "## Part 2: worked scenario"],
    "dpia.md": ["## Step 1: Identify the need for a DPIA", "## Step 2: Describe the processing",
                "## Step 3: Consultation", "## Step 4: Necessity and proportionality",
                "## Step 5: Identify and assess risks", "## Step 6: Measures to reduce risk",
                "## Step 7: Sign-off and outcomes", "### Lawful bases", "### Retention per class",
                "### International transfers"],
}

#: The playbook's worked scenarios: a word of each title, in order, and the parts each must have.
SCENARIOS = ("detokenize", "ledger", "scheme", "region", "key")
SCENARIO_PARTS = ("#### Detection signal", "#### First 15 minutes", "#### Checks", "#### Remedy",
                  "#### Notification duties", "#### Evidence to keep", "#### Rehearse")

_ROOTS = ("reference/", "simulations/", "tests/", "compliance/", "templates/", "docs/", "notebooks/", "diagrams/",
          "tools/")
_COMMAND = re.compile(r"`python -m simulations([^`\n]*)`")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s)\]>`\"']+")
_PLACEHOLDER = re.compile(r"<(?!!--)[^<>\n]+>")


def _text(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.iterdir() if p.is_file())


def _section(text: str, start: str, end: str | None) -> str:
    """The text from the heading ``start`` to the heading ``end`` (or the end of the file)."""
    assert start in text, f"missing heading {start!r}"
    body = text.split(start, 1)[1]
    return body.split(end, 1)[0] if end else body


@pytest.mark.parametrize(("name", "headings"), sorted(REQUIRED.items()))
def test_markdown_templates_have_their_sections(name: str, headings: list[str]) -> None:
    text = _text(name)
    missing = [h for h in headings if h.lower() not in text.lower()]
    assert not missing, f"{name} lacks {missing}"
    assert "--8<--" not in text  # an included template must not itself include files


def test_threat_model_template_is_valid_yaml_in_the_schema_shape() -> None:
    data = yaml.safe_load(_text("threat-model.yaml"))
    assert {"article", "assets", "threats", "mitigations"} <= set(data)


# --------------------------------------------------------------------------- incident playbook


def _scenarios() -> list[tuple[str, str]]:
    worked = _section(_text("incident-playbook.md"), "## 9. Worked scenarios", "## 10. Sources")
    parts = worked.split("\n### Scenario ")[1:]
    return [(part.split("\n", 1)[0], part) for part in parts]


def test_the_playbook_works_through_five_scenarios_each_with_every_part() -> None:
    scenarios = _scenarios()
    titles = [title for title, _ in scenarios]
    assert len(scenarios) == len(SCENARIOS), titles
    for (title, body), word in zip(scenarios, SCENARIOS):
        assert word in title.lower(), f"scenario {title!r} should be about {word!r}"
        positions = [body.find(part) for part in SCENARIO_PARTS]
        missing = [part for part, at in zip(SCENARIO_PARTS, positions) if at < 0]
        assert not missing, f"scenario {title!r} lacks {missing}"
        assert positions == sorted(positions), f"scenario {title!r}: parts out of order"
        rehearse = body.split("#### Rehearse", 1)[1]
        assert _COMMAND.search(rehearse) or "No `python -m simulations` command" in rehearse, (
            f"scenario {title!r}: give the rehearsal command, or say that none exists")


def test_every_notification_duty_is_marked_confirm_and_every_deadline_cites_a_source() -> None:
    text = _text("incident-playbook.md")
    sources = _section(text, "## 10. Sources", None)
    defined = set(re.findall(r"^- \[(S\d+)\] .*", sources, flags=re.M))
    for title, body in _scenarios():
        duties = body.split("#### Notification duties", 1)[1].split("#### Evidence to keep", 1)[0]
        items = re.split(r"\n- \[ \] ", "\n" + duties.strip())[1:]
        assert items, f"scenario {title!r}: notification duties must be a checklist"
        for item in items:
            assert "[confirm]" in item, f"scenario {title!r}: not marked [confirm]: {item!r}"
            if re.search(r"\d+ hours|one month", item):
                assert re.search(r"\[S\d+\]", item), f"scenario {title!r}: a deadline without its source: {item!r}"
    cited = set(re.findall(r"\[(S\d+)\]", text.split("## 10. Sources", 1)[0]))
    assert cited and cited <= defined, f"cited but not listed in the sources: {sorted(cited - defined)}"
    for key in defined:
        entry = re.search(rf"^- \[{key}\] (.*(?:\n  .*)*)", sources, flags=re.M)
        assert entry and "https://" in entry.group(1), f"source {key} has no https URL"


# --------------------------------------------------------------------------- what templates name


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in _templates():
        text = path.read_text(encoding="utf-8")
        commands = _COMMAND.findall(text)
        # a command broken over two lines, or outside backticks, would escape the check below
        assert len(commands) == text.count("python -m simulations"), (
            f"{path.name}: write each `python -m simulations ...` command on one line, in backticks")
        found += [(path.name, command.strip()) for command in commands if command.strip()]  # bare: prose
    return found


@functools.cache
def _parser(names: frozenset[str]) -> argparse.ArgumentParser:
    """The CLI's parser with only the named subcommands registered (the others import more than a test needs);
    the full parser when a name has no ``register_<name>`` function, so its error is the CLI's own."""
    from simulations import cli

    parser = argparse.ArgumentParser(prog="python -m simulations")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for register in cli.SUBCOMMANDS:
        if register.__name__.removeprefix("register_").replace("_", "-") in names:
            register(subparsers)
    return parser if names <= set(subparsers.choices) else cli.build_parser()


def test_every_simulations_command_in_a_template_exists_with_its_flags() -> None:
    commands = _commands()
    assert len({template for template, _ in commands}) >= 3  # the playbook, the tabletop and the runbook
    argvs = [(template, shlex.split(command)) for template, command in commands]
    parser = _parser(frozenset(argv[0] for _, argv in argvs if argv and not argv[0].startswith("-")))
    problems = []
    for template, argv in argvs:
        if any("<" in arg for arg in argv):
            problems.append(f"{template}: {' '.join(argv)}: write a runnable example, not a placeholder")
            continue
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code:  # --help exits 0
                problems.append(f"{template}: python -m simulations {' '.join(argv)}: {stderr.getvalue().strip()}")
    assert not problems, "\n".join(problems)


def _references() -> list[tuple[str, str]]:
    found = []
    for path in _templates():
        for token in re.split(r"[\s`\"'(),;\[\]]+", path.read_text(encoding="utf-8")):
            token = token.rstrip(".:")
            if token.startswith(_ROOTS) and "<" not in token and "…" not in token:
                found.append((path.name, token))
    return found


@functools.cache
def _symbols(path: Path) -> frozenset[str]:
    """Top-level functions and classes of a Python file, and ``Class.method`` for their methods."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{item.name}" for item in node.body
                      if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return frozenset(names)


def test_every_repository_path_and_code_reference_in_a_template_exists() -> None:
    references = _references()
    assert len(references) >= 20
    problems = []
    for template, reference in references:
        path, _, symbol = reference.partition("::")
        matches = sorted(REPO.glob(path)) if "*" in path else [REPO / path]
        if not any(m.exists() for m in matches):
            problems.append(f"{template}: {path} does not exist")
        elif symbol:
            name = symbol.split("[", 1)[0].replace("::", ".")  # pytest ids: Class::test, test[case]
            if name not in _symbols(REPO / path):
                problems.append(f"{template}: {path} has no {name}")
    assert not problems, "\n".join(problems)


def test_the_dpia_names_every_data_class_of_the_vault() -> None:
    from fasterpay.vault.classes import DataClass

    text = _text("dpia.md")
    missing = [c.value for c in DataClass if f"`{c.value}`" not in text]
    assert not missing, f"the DPIA does not map the vault's data classes {missing}"


@pytest.mark.parametrize("path", _templates(), ids=lambda p: p.name)
def test_every_url_in_a_template_is_https(path: Path) -> None:
    urls = _URL.findall(path.read_text(encoding="utf-8"))
    assert all(url.startswith("https://") for url in urls), [u for u in urls if not u.startswith("https://")]


def test_the_legal_templates_cite_their_sources() -> None:
    assert "https://handbook.fca.org.uk/handbook/SYSC/15A/5.html" in _text("tabletop-exercise.md")
    assert "https://ico.org.uk/" in _text("dpia.md")


def test_the_worked_tabletop_scenario_is_filled_in() -> None:
    worked = _section(_text("tabletop-exercise.md"), "## Part 2: worked scenario", None)
    assert not _PLACEHOLDER.findall(worked), f"unfilled placeholders: {_PLACEHOLDER.findall(worked)}"
    injects = re.findall(r"^\| \d+ \| T\+\d+ \|", worked, flags=re.M)
    assert len(injects) >= 5, "the worked scenario needs injects on a timeline"
    for part in ("### Questions to ask", "### Evidence to collect", "### Scoring", "Impact tolerance"):
        assert part in worked, f"the worked scenario lacks {part!r}"


def test_the_templates_page_includes_every_template() -> None:
    page = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    missing = [p.name for p in _templates() if f'--8<-- "templates/{p.name}"' not in page]
    assert not missing, f"docs/templates.md does not render {missing}"
