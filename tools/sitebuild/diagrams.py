"""Render the diagram-as-code scripts in ``diagrams/`` to PNG, skipping the unchanged ones.

A diagram script is called as ``python diagrams/<slug>.py OUT_BASENAME`` and must write
``OUT_BASENAME.png``. Rendering runs in a subprocess, so a script cannot leak state (the
``diagrams`` package keeps a global context) into the build.

Examples:
    >>> render_all(Path("diagrams"), Path("build/diagrams"))        # doctest: +SKIP
    [PosixPath('build/diagrams/reference-architecture.png')]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "RENDERER_VERSION",
    "STAMP_FILE",
    "DiagramError",
    "GraphvizMissingError",
    "graphviz_available",
    "render_all",
    "render_diagram",
]

#: Part of every cache key: bump it when rendering changes in a way scripts do not show.
RENDERER_VERSION = "sitebuild.diagrams/1"
#: JSON file in the output folder: script name -> content hash of its last good render.
STAMP_FILE = ".diagram-stamps.json"
_TIMEOUT_S = 120.0


class DiagramError(RuntimeError):
    """A diagram script failed or wrote no PNG; ``stderr`` holds the script's error output."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        self.stderr = stderr
        super().__init__(message + (f"\n--- script stderr ---\n{stderr.rstrip()}" if stderr else ""))


class GraphvizMissingError(DiagramError):
    """Graphviz's ``dot`` is not on PATH, so no diagram can be rendered."""

    def __init__(self) -> None:
        super().__init__(
            "Graphviz is not installed: the `dot` program was not found on PATH. Install it with "
            "`sudo apt-get install -y graphviz` (Debian/Ubuntu) or `brew install graphviz` "
            "(macOS), then build again."
        )


def graphviz_available() -> bool:
    """Return True if Graphviz's ``dot`` program is on PATH.

    Examples:
        >>> graphviz_available()                                    # doctest: +SKIP
        True
    """
    return shutil.which("dot") is not None


def render_diagram(script: Path, out_png: Path, *, timeout: float = _TIMEOUT_S) -> Path:
    """Run one diagram script and return the PNG it wrote at ``out_png``.

    The script renders into a temporary folder next to ``out_png``; the PNG replaces the old one
    only on success, so a failed render never leaves a stale or half-written image behind.

    Examples:
        >>> render_diagram(Path("diagrams/tokenisation-vault.py"),
        ...                Path("build/diagrams/tokenisation-vault.png"))   # doctest: +SKIP
        PosixPath('build/diagrams/tokenisation-vault.png')
    """
    script, out_png = Path(script), Path(out_png)
    if out_png.suffix != ".png":
        raise ValueError(f"out_png must end in .png, got {out_png}")
    if not script.is_file():
        raise DiagramError(f"{script}: no such diagram script")
    if not graphviz_available():
        raise GraphvizMissingError()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out_png.parent) as tmp:
        base = Path(tmp) / out_png.stem
        try:
            result = subprocess.run(
                [sys.executable, str(script.resolve()), str(base)],
                cwd=tmp,  # stray files land in the temp folder and are removed with it
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raw = exc.stderr or b""  # bytes on POSIX even with text=True
            stderr = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            raise DiagramError(f"{script}: still running after {timeout:.0f} s; "
                               "look for a loop or a blocking call in the script",
                               stderr=stderr) from exc
        if result.returncode != 0:
            raise DiagramError(f"{script}: failed with exit code {result.returncode}; "
                               "fix the script and build again", stderr=result.stderr)
        written = base.with_suffix(".png")
        if not written.is_file() or written.stat().st_size == 0:
            raise DiagramError(
                f"{script}: wrote no {written.name}; a diagram script must take the output base "
                "name as its first argument and use Diagram(filename=<that>, outformat='png', "
                "show=False)",
                stderr=result.stderr,
            )
        os.replace(written, out_png)
    return out_png


def _content_hash(script: Path) -> str:
    """The script, the shared helpers beside it (``_*.py``, e.g. the style) and the renderer version."""
    digest = hashlib.sha256(RENDERER_VERSION.encode())
    for path in (script, *sorted(script.parent.glob("_*.py"))):
        digest.update(b"\0" + path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_stamps(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no stamp yet, or a damaged one: render everything
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return {}
    return data


def _write_stamps(out_dir: Path, stamps: dict[str, str]) -> None:
    tmp = out_dir / (STAMP_FILE + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(stamps.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / STAMP_FILE)


def render_all(src_dir: Path, out_dir: Path) -> list[Path]:
    """Render each ``src_dir/*.py`` to ``out_dir/<stem>.png`` if it changed; return those rendered.

    A script is re-rendered when its content hash (script bytes plus ``RENDERER_VERSION``) differs
    from the one in ``out_dir/.diagram-stamps.json``, or its PNG is missing. Files whose name starts
    with ``_`` are helpers, not diagrams. Every script is tried; failures are raised together at
    the end as one ``DiagramError``, and the successful renders stay stamped.

    Examples:
        >>> render_all(Path("diagrams"), Path("build/diagrams"))    # doctest: +SKIP
        []
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise DiagramError(f"{src_dir}: no such folder of diagram scripts")
    scripts = sorted(p for p in src_dir.glob("*.py") if not p.name.startswith("_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    old = _read_stamps(out_dir)
    stamps = {s.name: old[s.name] for s in scripts if s.name in old}

    stale = []
    for script in scripts:
        key = _content_hash(script)
        if stamps.get(script.name) != key or not (out_dir / f"{script.stem}.png").is_file():
            stale.append((script, key))
    if stale and not graphviz_available():
        raise GraphvizMissingError()

    rendered: list[Path] = []
    failures: list[DiagramError] = []
    for script, key in stale:
        try:
            rendered.append(render_diagram(script, out_dir / f"{script.stem}.png"))
        except DiagramError as exc:
            stamps.pop(script.name, None)
            failures.append(exc)
        else:
            stamps[script.name] = key
        _write_stamps(out_dir, stamps)  # after each script, so an interrupted run keeps progress
    if stamps != old and not stale:
        _write_stamps(out_dir, stamps)  # pruned scripts that no longer exist
    if failures:
        if len(failures) == 1:
            raise failures[0]
        error = DiagramError(f"{len(failures)} diagram scripts failed:\n\n"
                             + "\n\n".join(str(f) for f in failures))
        error.stderr = "\n".join(f.stderr for f in failures)
        raise error
    return rendered
