"""Skip a test run whose every input is unchanged since a run that passed.

``make test`` asks ``check`` first. The key hashes the content of every file git would commit (tracked
files and untracked ones that ``.gitignore`` does not exclude; outside a git checkout, every file but
the ignored folders), the Python version and platform, the browser's version and every ``FASTERPAY_*``
setting. If ``build/test-pass.json`` holds the same key, the run is skipped, with a line that says so;
otherwise the key is kept as pending and pytest runs. ``record``, called only when pytest exits 0, turns
the pending key (the inputs as they were when the run *started*) into the pass record. ``FORCE=1``
(``check --force``) always runs.

A fresh clone has no record, so CI always runs every test.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "build" / "test-pass.json"
PENDING = REPO / "build" / "test-pending.json"
#: Folders that hold outputs, caches or environments, never inputs (as .gitignore says).
SKIPPED_DIRS = {".git", ".venv", "build", "site", "__pycache__", ".pytest_cache", ".hypothesis", ".cache",
                ".ipynb_checkpoints"}


def _inputs(repo: Path) -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True,
                                capture_output=True).stdout
        return sorted(repo / name for name in listed.decode().split("\0") if name)
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive, say)
        found = []
        for root, dirs, files in os.walk(repo):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")
                       and Path(root, d).relative_to(repo).as_posix() != "docs/generated"]
            found += [Path(root, f) for f in files if not f.endswith(".pyc")]
        return sorted(found)


@functools.cache
def _browser_version() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return "no chromium"
    try:
        return subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "chromium (version unknown)"


def input_key(repo: Path | None = None) -> str:
    """A digest of everything a test run reads: the project's files, the interpreter, the browser, settings."""
    repo = REPO if repo is None else repo
    digest = hashlib.sha256()
    for path in _inputs(repo):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except FileNotFoundError:  # listed by git but deleted in the work tree
            digest.update(b"<deleted>")
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith("FASTERPAY_"))
    digest.update(json.dumps([sys.version, platform.platform(), _browser_version(), settings]).encode())
    return digest.hexdigest()


def check(force: bool = False) -> int:
    """0: a passing run had exactly these inputs (skip); 1: run the tests (the key is kept as pending)."""
    key = input_key()
    PENDING.parent.mkdir(parents=True, exist_ok=True)
    PENDING.write_text(json.dumps({"key": key, "started": time.time()}), encoding="utf-8")
    if force or not RECORD.exists():
        return 1
    try:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    if record.get("key") != key:
        return 1
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["finished"]))
    print(f"make test: nothing has changed since the run that passed at {when} "
          f"(it took {record['seconds'] / 60:.1f} min); `make test FORCE=1` runs every test again.")
    return 0


def record() -> int:
    """Turn the pending key into the pass record (called only after pytest exited 0)."""
    pending = json.loads(PENDING.read_text(encoding="utf-8"))
    finished = time.time()
    RECORD.write_text(json.dumps({"key": pending["key"], "finished": finished,
                                  "seconds": round(finished - pending["started"], 1)}), encoding="utf-8")
    PENDING.unlink()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check(force="--force" in argv[1:])
    if argv == ["record"]:
        return record()
    print("usage: testcache.py check [--force] | record", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
