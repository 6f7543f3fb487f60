"""The ledger quick start that the article includes runs, and does what the page says it does."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "reference" / "examples" / "ledger_quickstart.py"


def test_ledger_quickstart_posts_once_refuses_and_delivers() -> None:
    result = runpy.run_path(str(EXAMPLE))["main"]()
    assert result["transfer_id"] == "E2E-20261128-0001" and result["replayed"] is True
    assert (result["alice"], result["coffee_shop"]) == (50_00 - 3_20, 3_20)
    assert result["refusals"] == {
        "same key, other payload": "IdempotencyKeyReuseError",
        "same transfer id, other content": "TransferIdReuseError",
        "overdraft": "InsufficientFundsError",
    }
    assert result["sent"] == result["applied"] == 2  # the funding and the coffee, once each
    assert result["balanced"]


def test_quickstart_sections_are_balanced() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    starts = [line.split("[start:")[1].rstrip("]") for line in text.splitlines() if "--8<-- [start:" in line]
    ends = [line.split("[end:")[1].rstrip("]") for line in text.splitlines() if "--8<-- [end:" in line]
    assert starts == ends == ["setup", "submit", "refusals", "deliver"]
