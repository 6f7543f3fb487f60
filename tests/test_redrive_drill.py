"""The runbook's redrive drill, through the CLI function: poison isolated, fixed, redriven, nothing doubled."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _main(*args: str) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from simulations.cli import main

    return main(list(args))


def test_redrive_drill_isolates_redrives_and_processes_everything_once(capsys) -> None:
    assert _main("redrive-drill", "--messages", "30", "--poison", "3", "--seed", "7") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert (summary["processed"], summary["isolated"], summary["redriven"]) == (30, 3, 3)
    assert (summary["left_in_dlq"], summary["duplicates"]) == (0, 0)
    assert summary["good_processed_once_before_redrive"] and summary["isolated_are_the_poison"]


def test_redrive_drill_refuses_more_poison_than_messages(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit) as exited:
        _main("redrive-drill", "--messages", "2", "--poison", "3")
    assert exited.value.code == 2 and "--poison must be between 0" in capsys.readouterr().err
