"""The simulations command line: --help, and `generate` end to end against the validator and its manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fasterpay.iso20022 import Pacs008Validator, TransactionStatus
from simulations.generator import DUPLICATE_CASES, INVALID_CASES

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "reference")])}
    return subprocess.run([sys.executable, "-m", "simulations", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _main(*args: str) -> int:
    sys.path.insert(0, str(REPO_ROOT))  # until `simulations` is an installed package
    from simulations.cli import main

    return main(list(args))


def test_help_lists_the_subcommands() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert "generate" in result.stdout and "usage: python -m simulations" in result.stdout
    result = _run("generate", "--help")
    assert result.returncode == 0
    for option in ("--count", "--seed", "--mix", "--invalid-rate", "--duplicate-rate", "--out"):
        assert option in result.stdout


def test_generate_end_to_end_every_file_matches_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "payloads"
    result = _run("generate", "--count", "120", "--seed", "42", "--mix", "uk_fps=0.6,sepa_inst=0.4",
                  "--invalid-rate", "0.3", "--duplicate-rate", "0.05", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote 120 messages to {out}" in result.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    entries = manifest["messages"]
    assert [e["file"] for e in entries] == sorted(p.name for p in out.glob("*.xml"))
    assert manifest["settings"]["seed"] == 42 and manifest["settings"]["mix"] == {"uk_fps": 0.6, "sepa_inst": 0.4}
    assert set(INVALID_CASES) | set(DUPLICATE_CASES) <= {e["case"] for e in entries}

    validator = Pacs008Validator(max_message_bytes=manifest["validation"]["max_message_bytes"])
    mismatches = []
    for entry in entries:  # in sequence, one validator: duplicates refer to earlier files
        report = validator.validate((out / entry["file"]).read_bytes())
        status = report.transactions[0].status.value if report.transactions else TransactionStatus.RJCT.value
        codes = [c.value for c in report.reason_codes]
        expected = [entry["expected_reason"]] if entry["expected_reason"] else []
        if status != entry["expected_status"] or codes != expected:
            mismatches.append((entry["file"], entry["case"], entry["expected_reason"], codes))
    assert mismatches == []
    assert manifest["summary"]["expected_status"] == {"ACTC": 78, "RJCT": 42}


def test_generate_is_reproducible_and_refuses_to_mix_two_batches(tmp_path: Path, capsys) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _main("generate", "--count", "15", "--seed", "9", "--invalid-rate", "0.2", "--out", str(first)) == 0
    assert _main("generate", "--count", "15", "--seed", "9", "--invalid-rate", "0.2", "--out", str(second)) == 0
    assert [p.read_bytes() for p in sorted(first.iterdir())] == [p.read_bytes() for p in sorted(second.iterdir())]

    with pytest.raises(SystemExit) as exited:
        _main("generate", "--count", "5", "--out", str(first))
    assert exited.value.code == 2
    assert "already holds a generated batch; pass --force" in capsys.readouterr().err

    assert _main("generate", "--count", "5", "--out", str(first), "--force") == 0
    assert sorted(p.name for p in first.iterdir()) == [f"{i:06d}.xml" for i in range(1, 6)] + ["manifest.json"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mix", "bacs=1"], "unknown scheme ['bacs']"),
        (["--invalid-rate", "2"], "is not between 0 and 1"),
        (["--count", "0"], "must be at least 1"),
        (["--count", "3", "--invalid-rate", "0.9"], "leave at least the first message valid"),
    ],
)
def test_generate_rejects_bad_arguments_with_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        _main("generate", *args, "--out", str(tmp_path / "x"))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
