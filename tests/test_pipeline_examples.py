"""The pipeline quick start runs and does what the article says it does."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "reference" / "examples" / "pipeline_quickstart.py"


def test_pipeline_quickstart_settles_refuses_and_reconciles() -> None:
    result = runpy.run_path(str(EXAMPLE))["main"]()
    assert result["answer"] == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert result["mismatches"] == () and set(result["balances"].values()) == {0}
    assert result["replay_matches"] is True
    assert set(result["statuses"]) == {"ACSC"}  # book transfers settle at once, the rest in the cycle
    assert result["statuses"]["ACSC"] >= result["settled"] >= 6
    assert len(result["refused_at_ingest"]) == 3  # 12 messages, invalid rate 0.25
    assert sum(p.net_minor for p in result["positions"]) == 0


def test_the_pipeline_wired_by_hand_holds_the_payment_and_answers_acsp() -> None:
    """The plain wiring (deploy helpers, ledger, vault, builder, own connector) takes a payment to ACSP."""
    plain = runpy.run_path(str(EXAMPLE.with_name("pipeline_plain.py")))
    out = plain["main"]()
    assert out["finished"] == {"accept": 1, "clear": 1}
    assert out["status"] == "ACSP"
    assert out["balance_minor"] == 100_00 - 25_00  # funded 100.00, held 25.00
    assert out["debtor_account"].startswith("cust:dtk.iban.") and "GB82" not in out["debtor_account"]
