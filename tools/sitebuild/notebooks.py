"""Execute the guide's notebooks once per content change and keep the executed copies.

A notebook's cache key hashes the notebook, every file of the reference package, the run size
(``FASTERPAY_SCALE``) and this runner's version. A hit costs a file copy; a miss executes the notebook
with nbclient in a fresh temporary folder (so nothing depends on the working directory), with
``FASTERPAY_METRICS_DIR`` pointing at a folder kept beside the executed copy. A failing cell raises
:class:`NotebookExecutionError`, which fails the site build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NotebookExecutionError", "NotebookRun", "cache_key", "execute_notebook", "execute_notebooks"]

RUNNER_VERSION = "3"


class NotebookExecutionError(RuntimeError):
    """A notebook failed; the message names the notebook and the failing cell's error."""


@dataclass(frozen=True)
class NotebookRun:
    source: Path
    executed: Path
    metrics: tuple[Path, ...]
    cached: bool


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(p for p in package_dir.rglob("*") if p.is_file() and p.suffix in {".py", ".yaml", ".json"}
                  and "__pycache__" not in p.parts)


def _package_parts(package_dir: Path) -> list[bytes]:
    """What a key hashes after the notebook: each file's name and bytes, of the package and of the benches."""
    parts = []
    simulations = package_dir.parent.parent / "simulations"  # the benches the notebooks run
    for root in (package_dir, simulations):
        if not root.is_dir():
            continue
        for path in _package_files(root):
            parts += [f"{root.name}/{path.relative_to(root)}".encode(), path.read_bytes()]
    return parts


def cache_key(notebook: Path, package_dir: Path, *, package_parts: list[bytes] | None = None) -> str:
    """``package_parts``: :func:`_package_parts` of ``package_dir``, read once for every notebook of a build."""
    digest = hashlib.sha256()
    digest.update(f"runner={RUNNER_VERSION};scale={os.environ.get('FASTERPAY_SCALE', 'ci')}".encode())
    digest.update(notebook.read_bytes())
    for part in _package_parts(package_dir) if package_parts is None else package_parts:
        digest.update(part)
    return digest.hexdigest()[:20]


def _execute(notebook: Path, out_dir: Path, timeout: int) -> float:
    """Run one notebook in a fresh kernel and temporary folder; its metrics go to ``out_dir/metrics``.

    The kernel gets its own environment (never this process's, which other notebooks share), so
    notebooks can run side by side. Returns the seconds it took."""
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from jupyter_client.manager import KernelManager

    started = time.perf_counter()
    nb = nbformat.read(notebook, as_version=4)
    metrics = out_dir / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FASTERPAY_METRICS_DIR": str(metrics)}
    code_cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
    done = 0

    def progress(cell: Any, cell_index: int, **_: Any) -> None:
        nonlocal done
        if cell.cell_type == "code":
            done += 1
            print(f"notebooks: {notebook.stem} cell {done} of {code_cells}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="fasterpay-nb-") as work:
        # IPC (Unix sockets in the temporary folder) rather than TCP on localhost: nothing listens on a
        # port, and the kernel has no reason to warn that its traffic is unencrypted.
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(work) / "kernel"))
        client = NotebookClient(nb, km=kernel, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": work}}, on_cell_executed=progress)
        try:
            client.execute(env=env)  # the kernel starts in ``work`` (resources' path)
        except CellExecutionError as exc:
            raise NotebookExecutionError(f"{notebook.name} failed:\n{exc}") from exc
        finally:
            if kernel.has_kernel:  # the client shuts down only kernels it made itself
                kernel.shutdown_kernel(now=True)
    nbformat.write(nb, out_dir / notebook.name)
    return time.perf_counter() - started


def execute_notebook(notebook: Path, out_dir: Path, *, timeout: int = 600) -> float:
    """Execute one notebook exactly as the build does (fresh kernel, temporary folder), without the cache.

    The executed copy goes to ``out_dir``, its metrics files to ``out_dir/metrics``; returns the seconds it
    took. ``tools/run_notebook.py`` calls this to reproduce one article's figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return _execute(notebook, out_dir, timeout)


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.exists() and dst.read_bytes() == src.read_bytes():
        return  # unchanged files keep their mtime, so `mkdocs serve` does not rebuild in a loop
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def execute_notebooks(
    notebooks: Iterable[Path],
    *,
    package_dir: Path,
    cache_dir: Path,
    executed_dir: Path,
    metrics_dir: Path,
    figures_dir: Path | None = None,
    timeout: int = 600,
    jobs: int | None = None,
) -> list[NotebookRun]:
    """Execute (or take from the cache) each notebook; copy it to ``executed_dir``, its metrics to ``metrics_dir``,
    and any PNG it saved beside its metrics (a figure an article shows at full size) to ``figures_dir``."""
    notebooks = sorted(notebooks)
    parts = _package_parts(package_dir)
    entries = {nb: cache_dir / f"{nb.stem}-{cache_key(nb, package_dir, package_parts=parts)}" for nb in notebooks}
    missing = [nb for nb in notebooks if not (entries[nb] / nb.name).exists()]
    if missing:
        workers = max(1, min(len(missing), jobs or os.cpu_count() or 1))
        print(f"notebooks: executing {len(missing)} of {len(notebooks)} ({workers} at a time)", flush=True)
        with ThreadPoolExecutor(max_workers=workers) as pool:  # each notebook runs in its own kernel process
            for notebook, seconds in zip(missing, pool.map(lambda nb: _run_into_cache(nb, entries[nb], timeout),
                                                          missing)):
                print(f"notebooks: {notebook.name} executed in {seconds:.0f} s", flush=True)
    runs = []
    for notebook in notebooks:
        entry = entries[notebook]
        executed = executed_dir / notebook.name
        _copy_if_changed(entry / notebook.name, executed)
        copied = []
        for metrics_file in sorted((entry / "metrics").glob("*.json")):
            _copy_if_changed(metrics_file, metrics_dir / metrics_file.name)
            copied.append(metrics_dir / metrics_file.name)
        if figures_dir is not None:
            for picture in sorted((entry / "metrics").glob("*.png")):
                _copy_if_changed(picture, figures_dir / picture.name)
        runs.append(NotebookRun(notebook, executed, tuple(copied), notebook not in missing))
    return runs


def _run_into_cache(notebook: Path, entry: Path, timeout: int) -> float:
    """Execute into a partial folder of this process's own, then rename it to the cache entry."""
    cache_dir = entry.parent
    for stale in cache_dir.glob(f"{notebook.stem}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    # a partial folder of this process's own: two builds at once (test workers) never share one
    partial = cache_dir / f".{entry.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    seconds = _execute(notebook, partial, timeout)
    try:
        partial.rename(entry)
    except OSError:  # another build finished the same entry first: its copy is as good
        if not entry.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return seconds
