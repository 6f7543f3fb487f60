"""Execute one of the guide's notebooks as the site build does, and keep its figures.

    python tools/run_notebook.py notebooks/03-payment-pipeline.ipynb [--scale full] [--metrics-dir build/metrics]

The notebook runs in a fresh kernel in a temporary folder (``sitebuild.notebooks.execute_notebook``, the
function the build uses), with ``FASTERPAY_SCALE`` set to ``--scale``. Its metrics files (the figures on
the article's page) are copied to ``--metrics-dir``, the executed notebook to ``--out``. The kernel imports
this checkout's ``reference/`` and ``simulations/`` first. Exits 1 if a cell fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

__all__ = ["SCALES", "build_parser", "main"]

#: The run sizes every notebook reads from ``FASTERPAY_SCALE`` (``fasterpay.metrics.scale``).
SCALES = ("ci", "full")


def _notebook(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute() and not path.exists():
        path = REPO / path  # run from anywhere: paths are taken relative to the repository too
    if path.suffix != ".ipynb":
        raise argparse.ArgumentTypeError(f"{text} is not a notebook (.ipynb)")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} does not exist; the notebooks are in {REPO / 'notebooks'}")
    return path.resolve()


def build_parser() -> argparse.ArgumentParser:
    """The command line: one notebook, the run size, where the figures and the executed copy go."""
    parser = argparse.ArgumentParser(
        prog="python tools/run_notebook.py",
        description="Execute one notebook as the site build does and write its metrics files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("notebook", type=_notebook, help="the notebook, e.g. notebooks/03-payment-pipeline.ipynb")
    parser.add_argument("--scale", choices=SCALES, default=os.environ.get("FASTERPAY_SCALE", "ci"),
                        help="run size: ci (about a minute) or full (the published figures)")
    parser.add_argument("--metrics-dir", type=Path, default=REPO / "build" / "metrics",
                        help="where the notebook's metrics files are copied")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "executed",
                        help="where the executed notebook is written")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from sitebuild.notebooks import NotebookExecutionError, execute_notebook

    os.environ["FASTERPAY_SCALE"] = args.scale  # the kernel inherits this process's environment
    paths = [str(REPO / "reference"), str(REPO)]
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory(prefix="fasterpay-run-") as work:
        try:
            seconds = execute_notebook(args.notebook, Path(work), timeout=args.timeout)
        except NotebookExecutionError as exc:
            print(exc, file=sys.stderr)
            return 1
        args.metrics_dir.mkdir(parents=True, exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
        written = []
        for metrics in sorted((Path(work) / "metrics").glob("*.json")):
            shutil.copyfile(metrics, args.metrics_dir / metrics.name)
            written.append(args.metrics_dir / metrics.name)
        shutil.copyfile(Path(work) / args.notebook.name, args.out / args.notebook.name)
    print(f"{args.notebook.name} executed in {seconds:.0f} s (scale {args.scale}); executed copy: "
          f"{args.out / args.notebook.name}")
    for path in written:
        print(f"metrics: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
