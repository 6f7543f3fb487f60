"""Test outcomes from the last test run's junit XML, for the evidence matrix and the security checklist.

``make test`` writes ``build/test-results/junit.xml`` (pytest ``--junitxml``). The site build reads it, so
every control and every checklist item shows the state of the tests that evidence it: **pass**, **fail**
(red), **skipped**, or **not run** (no junit yet, or the test was not in the run). A parametrised test
passes only if every case passed.

Examples:
    >>> results = parse_junit('''<testsuites><testsuite name="pytest" timestamp="2026-12-02T01:00:00">
    ... <testcase classname="tests.test_vault" name="test_a[x]"/>
    ... <testcase classname="tests.test_vault" name="test_a[y]"><failure message="no"/></testcase>
    ... <testcase classname="tests.test_vault.TestB" name="test_c"><skipped/></testcase>
    ... </testsuite></testsuites>''')
    >>> status("tests/test_vault.py::test_a", results), status("tests/test_vault.py::TestB::test_c", results)
    ('fail', 'skipped')
    >>> status("tests/test_vault.py::test_z", results), status("tests/test_vault.py::test_z", None)
    ('not run', 'not run')
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["STATES", "JunitResults", "badge", "combine", "parse_junit", "read_junit", "status"]

#: Every state a test, a control or a checklist item can be in, worst first.
STATES = ("fail", "not run", "skipped", "pass")


@dataclass(frozen=True)
class JunitResults:
    """Outcome per pytest node id (parametrised cases apart), and when the run was."""

    outcomes: Mapping[str, str] = field(default_factory=dict)
    timestamp: str = ""
    tests: int = 0


def _node_id(classname: str, name: str) -> str:
    """``tests.test_vault`` + ``test_a[x]`` -> ``tests/test_vault.py::test_a[x]``; a class stays a part."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):  # the module is the longest prefix that names a test file
        if parts[cut - 1].startswith("test_"):
            module, rest = parts[:cut], parts[cut:]
            return "::".join(["/".join(module) + ".py", *rest, name])
    return f"{classname}::{name}"


def parse_junit(text: str) -> JunitResults:
    """Outcomes from junit XML text (pytest's format)."""
    root = ElementTree.fromstring(text)
    outcomes: dict[str, str] = {}
    timestamp = ""
    for suite in root.iter("testsuite"):
        timestamp = timestamp or suite.get("timestamp", "")
        for case in suite.iter("testcase"):
            node = _node_id(case.get("classname", ""), case.get("name", ""))
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "fail"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "pass"
            if outcomes.get(node) != "fail":  # a setup error and a call pass of one test: it failed
                outcomes[node] = outcome
    return JunitResults(outcomes=outcomes, timestamp=timestamp, tests=len(outcomes))


def read_junit(path: Path) -> JunitResults | None:
    """The last run's outcomes, or None when no run has written the file yet."""
    if not path.exists():
        return None
    return parse_junit(path.read_text(encoding="utf-8"))


def combine(states: Iterable[str]) -> str:
    """The worst of several states; ``not run`` for none.

    Examples:
        >>> combine(["pass", "skipped"]), combine(["pass", "fail"]), combine([])
        ('skipped', 'fail', 'not run')
    """
    found = list(states)
    return min(found, key=STATES.index) if found else "not run"


def status(ref: str, results: JunitResults | None) -> str:
    """The state of a test reference (``path::test`` covers every case ``path::test[...]``)."""
    if results is None:
        return "not run"
    if ref in results.outcomes:
        return results.outcomes[ref]
    prefix = re.escape(ref) + r"\["
    return combine(outcome for node, outcome in results.outcomes.items() if re.match(prefix, node))


def badge(state: str) -> str:
    """An inline badge for a state: the site's stylesheet colours ``ev-fail`` red and ``ev-pass`` green."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}: one of {STATES}")
    return f'<span class="ev ev-{state.replace(" ", "-")}">{state}</span>'
