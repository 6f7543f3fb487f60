"""The build's notebook runner: executes once per content change, and a failing notebook fails the build."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from sitebuild.notebooks import NotebookExecutionError, cache_key, execute_notebooks


def _notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    names = ("src", "package", "cache", "executed", "metrics")
    out = {name: tmp_path / name for name in names}
    for d in out.values():
        d.mkdir()
    (out["package"] / "module.py").write_text("VALUE = 1\n")
    return out


def _run(nb: Path, dirs: dict[str, Path]):  # type: ignore[no-untyped-def]
    return execute_notebooks([nb], package_dir=dirs["package"], cache_dir=dirs["cache"],
                             executed_dir=dirs["executed"], metrics_dir=dirs["metrics"], timeout=120)


WRITES_METRICS = (
    "import os, json, pathlib\n"
    "d = pathlib.Path(os.environ['FASTERPAY_METRICS_DIR'])\n"
    "(d / 'demo.json').write_text(json.dumps({'cwd': os.getcwd()}))\n"
    "print('ran')"
)


def test_executes_once_then_serves_from_cache_until_an_input_changes(dirs: dict[str, Path]) -> None:
    nb = _notebook(dirs["src"] / "01-demo.ipynb", WRITES_METRICS)
    (first,) = _run(nb, dirs)
    assert not first.cached
    executed = nbformat.read(first.executed, as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ran"
    assert (dirs["metrics"] / "demo.json").exists()
    (second,) = _run(nb, dirs)
    assert second.cached
    (dirs["package"] / "module.py").write_text("VALUE = 2\n")  # the reference package changed
    (third,) = _run(nb, dirs)
    assert not third.cached
    assert len(list(dirs["cache"].glob("01-demo-*"))) == 1  # stale entries are removed


def test_a_picture_saved_beside_the_metrics_reaches_the_figures_folder_also_from_the_cache(
        dirs: dict[str, Path], tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    nb = _notebook(dirs["src"] / "01-demo.ipynb", WRITES_METRICS + "\n(d / 'demo.png').write_bytes(b'png')")
    for cached in (False, True):
        (run,) = execute_notebooks([nb], package_dir=dirs["package"], cache_dir=dirs["cache"],
                                   executed_dir=dirs["executed"], metrics_dir=dirs["metrics"], figures_dir=figures,
                                   timeout=120)
        assert run.cached is cached and (figures / "demo.png").read_bytes() == b"png"
        assert not (dirs["metrics"] / "demo.png").exists()  # metrics hold JSON only
        (figures / "demo.png").unlink()


def test_runs_in_a_fresh_folder_not_the_callers(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(dirs["src"])
    nb = _notebook(dirs["src"] / "01-demo.ipynb", WRITES_METRICS)
    _run(nb, dirs)
    cwd = json.loads((dirs["metrics"] / "demo.json").read_text())["cwd"]
    assert Path(cwd).resolve() != dirs["src"].resolve()


def test_a_failing_cell_fails_with_the_notebook_and_error_named(dirs: dict[str, Path]) -> None:
    nb = _notebook(dirs["src"] / "02-broken.ipynb", "x = 1", "raise RuntimeError('settlement mismatch')")
    with pytest.raises(NotebookExecutionError, match=r"02-broken\.ipynb(.|\n)*settlement mismatch"):
        _run(nb, dirs)
    assert not list(dirs["cache"].glob("02-broken-*"))  # nothing cached for a failed run
    assert not (dirs["executed"] / "02-broken.ipynb").exists()


def test_cache_key_depends_on_run_size(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _notebook(dirs["src"] / "01-demo.ipynb", "print(1)")
    monkeypatch.setenv("FASTERPAY_SCALE", "ci")
    ci = cache_key(nb, dirs["package"])
    monkeypatch.setenv("FASTERPAY_SCALE", "full")
    assert cache_key(nb, dirs["package"]) != ci


def test_the_build_reports_progress_and_the_kernel_does_not_warn_about_tcp(
        dirs: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    """Each cell prints a progress line; the kernel talks over Unix sockets, so it has no TCP warning,
    and it is shut down when the notebook is done (no kernel outlives its build)."""
    nb = _notebook(dirs["src"] / "01-demo.ipynb", "x = 1", "print(x + 1)")
    _run(nb, dirs)
    out, err = capfd.readouterr()
    assert "notebooks: 01-demo cell 1 of 2" in out and "notebooks: 01-demo cell 2 of 2" in out
    assert "without encryption" not in out + err
    assert "Parent appears to have exited" not in out + err
