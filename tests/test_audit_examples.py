"""The audit quick start runs and does what the article says it does."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "reference" / "examples" / "audit_quickstart.py"


@pytest.fixture(scope="module")
def result() -> dict:
    return runpy.run_path(str(EXAMPLE))["main"]()


def test_the_quickstart_logs_proves_and_verifies(result: dict) -> None:
    assert result["first_checkpoint"] == 2 and result["entries"] == 5
    assert result["delete"] == "AccessDenied"
    # one checkpoint per flush: the vault's record (flushed before the vault answers), checkpoint(), close()
    assert result["exit_status"] == 0 and result["verdict"].startswith("intact: 5 entries, 3 checkpoints")


def test_the_quickstart_traces_logs_and_measures(result: dict) -> None:
    assert result["spans"] == ["SQS.ListQueues", "stage clear", "payment"]
    line = json.loads(result["log"])
    assert line["end_to_end_id"] == "E2E-20261128-000042" and len(line["trace_id"]) == 32
    assert result["emf"][0]["StageLatency"] == [18.0]


def test_the_quickstart_alerts_fire_when_the_page_says(result: dict) -> None:
    first = {}
    for name, start in result["firings"]:
        first.setdefault(name.split(" (")[0], start)
    assert 25_200 < first["fast burn"] <= 25_200 + 5 * 60  # pages within five minutes of the outage
    assert first["fast burn"] < first["medium burn"] <= 25_200 + 15 * 60
    assert result["spikes"] and {caller for caller, _ in result["spikes"]} == {"support-desk"}
