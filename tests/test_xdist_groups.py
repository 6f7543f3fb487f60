"""`make test` relies on pytest-xdist's ``--dist loadgroup``: the site group builds the site once on one
worker, and a module's shared bench runs once. pytest 9.2 with pytest-xdist 3.8 silently stopped grouping
(pytest-xdist#1386): the second worker then waited for the first one's site build. This runs a tiny suite
the way `make test` runs the real one and checks that each group ran on one worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    for module in ("a", "b"):
        (tmp_path / f"test_{module}.py").write_text(
            "import os, pytest\n"
            + "".join(f"@pytest.mark.xdist_group('g{g}')\n@pytest.mark.parametrize('i', range(4))\n"
                      f"def test_{g}(i):\n    print(os.environ['PYTEST_XDIST_WORKER'])\n" for g in (1, 2))
            + "@pytest.mark.parametrize('i', range(6))\ndef test_free(i):\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider",
                          "-p", "no:randomly", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    workers: dict[str, set[str]] = {}
    for worker, group in re.findall(r"\[(gw\d)\] .*PASSED .*::test_(\d)\[", out.stdout):
        workers.setdefault(group, set()).add(worker)
    assert set(workers) == {"1", "2"}, out.stdout[-3000:]
    assert all(len(w) == 1 for w in workers.values()), workers
