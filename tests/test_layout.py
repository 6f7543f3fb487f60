"""Pattern code and bench code live apart: a reader who copies ``reference/fasterpay/<pattern>/`` into a
service never meets a bench, a generator, a comparison or a harness, and nothing there imports them.

Benches, generators, comparisons and harnesses belong in ``simulations/`` (DESIGN.md, section 2).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "reference" / "fasterpay"

#: TEMPORARY: paths (relative to ``reference/fasterpay``) not checked yet, because their owners are moving
#: the bench code out of them in parallel. Remove each entry as soon as its move lands; never add one.
TEMPORARY_ALLOWLIST: tuple[str, ...] = ()  # every pattern folder is clean now


def _allowlisted(relative: str) -> bool:
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry))
               for entry in TEMPORARY_ALLOWLIST)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not _allowlisted(relative):
            found.append((relative, path))
    return found


def _is_simulations(name: str | None) -> bool:
    return name is not None and (name == "simulations" or name.startswith("simulations."))


def simulations_imports(source: str) -> list[int]:
    """Line numbers where ``source`` imports ``simulations``, statically or by name."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(_is_simulations(alias.name) for alias in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_simulations(node.module):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in ("import_module", "__import__") and _is_simulations(str(node.args[0].value)):
                lines.append(node.lineno)
    return sorted(lines)


def is_bench_name(filename: str) -> bool:
    """A module name that says bench, comparison or generator: it belongs in ``simulations/``."""
    stem = filename.removesuffix(".py")
    return (stem.startswith("benchmark") or stem.endswith("_bench") or "compare" in stem
            or stem == "generator")


def test_the_walk_sees_the_pattern_packages() -> None:
    seen = {relative.split("/")[0] for relative, _ in _modules()}
    assert {"ledger", "audit", "iso20022", "idempotency", "observability"} <= seen


def test_no_pattern_module_imports_simulations() -> None:
    offenders = [f"reference/fasterpay/{relative}:{line}"
                 for relative, path in _modules()
                 for line in simulations_imports(path.read_text(encoding="utf-8"))]
    assert not offenders, f"pattern code must not import simulations (move the caller there): {offenders}"


def test_no_bench_generator_or_comparison_module_in_the_package() -> None:
    offenders = [f"reference/fasterpay/{relative}" for relative, path in _modules() if is_bench_name(path.name)]
    assert not offenders, f"move these to simulations/: {offenders}"


@pytest.mark.parametrize(("source", "expected"), [
    ("import simulations", [1]),
    ("import simulations.ledger_bench as bench", [1]),
    ("from simulations import generator", [1]),
    ("from simulations.generator import generate_messages", [1]),
    ("import os\nimport importlib\nimportlib.import_module('simulations.audit_bench')", [3]),
    ("__import__('simulations')", [1]),
    ("from .simulations import x", []),  # a sibling module named so, inside the package
    ("import simulationsx\nfrom fasterpay.metrics import percentile", []),
])
def test_the_import_check_catches_every_spelling(source: str, expected: list[int]) -> None:
    assert simulations_imports(source) == expected


@pytest.mark.parametrize(("filename", "bench"), [
    ("benchmark.py", True), ("benchmarks.py", True), ("ledger_bench.py", True), ("powertools_compare.py", True),
    ("compare.py", True), ("generator.py", True),
    ("core.py", False), ("bench_notes.py", False), ("simulation.py", False), ("generators_of_ids.py", False),
])
def test_the_name_check(filename: str, bench: bool) -> None:
    assert is_bench_name(filename) is bench


def test_no_pattern_folder_is_exempt_any_more() -> None:
    assert TEMPORARY_ALLOWLIST == ()
    assert not _allowlisted("pipeline/benchmark.py") and not _allowlisted("observability/simulation.py")
