"""`make test` skips a run only when every input matches a run that passed (tools/testcache.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import testcache  # noqa: E402


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "reference").mkdir(parents=True)
    (root / "reference" / "code.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    monkeypatch.setattr(testcache, "REPO", root)
    monkeypatch.setattr(testcache, "RECORD", root / "build" / "test-pass.json")
    monkeypatch.setattr(testcache, "PENDING", root / "build" / "test-pending.json")
    for name in [k for k in __import__("os").environ if k.startswith("FASTERPAY_")]:
        monkeypatch.delenv(name)
    return root


def test_the_key_changes_with_every_input_and_not_with_ignored_output(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = testcache.input_key()
    assert testcache.input_key() == first
    (repo / "build").mkdir()
    (repo / "build" / "out.json").write_text("{}")
    (repo / "run.log").write_text("log")
    assert testcache.input_key() == first  # what the run writes (ignored) is not an input
    (repo / "reference" / "code.py").write_text("x = 2\n")  # an edit not yet staged
    edited = testcache.input_key()
    assert edited != first
    (repo / "reference" / "new.py").write_text("")  # a new file not yet added
    assert testcache.input_key() != edited
    (repo / "reference" / "new.py").unlink()
    assert testcache.input_key() == edited
    monkeypatch.setenv("FASTERPAY_SCALE", "full")
    assert testcache.input_key() != edited


def test_a_run_is_skipped_only_after_a_pass_with_the_same_inputs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert testcache.check() == 1  # no record: run
    testcache.record()  # the run passed
    assert testcache.check() == 0
    assert "nothing has changed since the run that passed" in capsys.readouterr().out
    assert testcache.check(force=True) == 1  # FORCE=1
    (repo / "reference" / "code.py").write_text("x = 3\n")
    assert testcache.check() == 1  # an input changed: run
    assert testcache.check() == 1  # ... and again, until a run with these inputs passes


def test_the_inputs_recorded_are_those_at_the_start_of_the_run(repo: Path) -> None:
    assert testcache.check() == 1
    (repo / "reference" / "code.py").write_text("x = 4\n")  # edited while the tests ran
    testcache.record()
    assert testcache.check() == 1  # the edit was not tested, so it is not skipped


def test_outside_git_every_file_but_the_output_folders_is_an_input(tmp_path: Path) -> None:
    root = tmp_path / "unpacked"
    (root / "reference").mkdir(parents=True)
    (root / "reference" / "code.py").write_text("x = 1\n")
    first = testcache.input_key(root)
    (root / "build").mkdir()
    (root / "build" / "metrics.json").write_text("{}")
    assert testcache.input_key(root) == first
    (root / "reference" / "code.py").write_text("x = 2\n")
    assert testcache.input_key(root) != first


def test_the_makefile_records_a_pass_only_when_pytest_succeeds() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"testcache\.py check \$\(if \$\(FORCE\),--force\) \|\|", recipe)
    assert re.search(r"-m pytest [^\n]*tests && \$\(BIN\)/python tools/testcache\.py record", recipe)
