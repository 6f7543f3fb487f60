"""Every example file the site includes runs, and does what the page says it does."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from fasterpay.vault import SubjectErasedError

EXAMPLES = Path(__file__).resolve().parent.parent / "reference" / "examples"


def test_vault_quickstart_round_trips_and_erases() -> None:
    namespace = runpy.run_path(str(EXAMPLES / "vault_quickstart.py"))
    result = namespace["main"]()
    assert result["iban"] == "GB82WEST12345698765432"
    assert result["token"].startswith("tok_iban_") and result["match_key"].startswith("dtk_iban_")
    assert result["erased_at"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_has_balanced_snippet_sections(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    starts = {line.split("[start:")[1].rstrip("]") for line in text.splitlines() if "--8<-- [start:" in line}
    ends = {line.split("[end:")[1].rstrip("]") for line in text.splitlines() if "--8<-- [end:" in line}
    assert starts and starts == ends


def test_erased_subject_is_refused_after_the_quickstart() -> None:
    from fasterpay.aws import open_environment
    from fasterpay.vault.stack import deploy_vault, vault_as_role

    namespace = runpy.run_path(str(EXAMPLES / "vault_quickstart.py"))
    with open_environment("moto") as env:
        res = deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=True)
        vault = vault_as_role(env, res, None, policy=namespace["policy"], cache=namespace["cache"])
        token = vault.tokenize("Ann Smith", "name", tenant="bank-a", subject="customer-42")
        vault.erase_subject(tenant="bank-a", subject="customer-42", caller=namespace["Caller"]("data-protection-officer", "x"))
        with pytest.raises(SubjectErasedError):
            vault.detokenize(token, tenant="bank-a", caller=namespace["Caller"]("scheme-gateway", "scheme-submission"))


def test_agents_quickstart_scales_isolates_streams_once_and_keeps_the_agent_on_its_list() -> None:
    result = runpy.run_path(str(EXAMPLES / "agents_quickstart.py"))["main"]()
    assert result["wanted"] == 52  # 1,000 visible / 25 per consumer + 60/s × 0.2 s busy
    assert result["failures"] == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert result["published"] == result["applied"] == result["replayed_duplicates"] == 12
    decision = result["decision"]
    assert (decision.action, decision.reason_code, decision.source) == ("reject", "AG01", "model")
    assert decision.audit_seq == 0 and decision.prompt_sha256


def test_resilience_quickstart_fences_the_old_region_fails_over_and_keeps_deadlines_and_hedges_safe() -> None:
    result = runpy.run_path(str(EXAMPLES / "resilience_quickstart.py"))["main"]()
    assert result["held"] == "held" and result["dublin_held"] == "held"
    assert [event.split(": ", 1)[1] for _, event in result["timeline"]] == [
        "eu-west-2 OFF at epoch 1", "fence interval 15 s waited", "eu-west-1 ON at epoch 2"]
    assert result["timeline"][2][0] - result["timeline"][0][0] == result["fence_interval_s"] == 15.0
    assert result["old_region_wrote"] is False  # its lease lapsed inside the fence interval
    assert result["dublin_lease"].renewed and result["dublin_lease"].epoch == 2
    assert result["rto_s"] == 30 + 5 + 15 + 60  # detection + switch + fence interval + re-route
    assert result["enforced_s"] == 9.0 and 0 < result["authorise_left_s"] <= 0.2 + 1e-6
    assert result["config_attempts"] >= 1 and float(result["header"]) == 1_800_000_015.0 + 9.0
    assert result["hedged_source"] in ("primary", "backup") and result["hedged_found"]
    assert result["hedged_a_write"] is False


def test_finops_quickstart_prices_by_pattern_finds_the_binding_quota_and_guards_the_bill() -> None:
    result = runpy.run_path(str(EXAMPLES / "finops_quickstart.py"))["main"]()
    cost = result["cost"]
    assert set(cost.by_pattern) == {"vault", "ledger", "pipeline"}
    assert sum(cost.by_pattern.values()) == cost.total > 0
    # the ledger's two-item transactions bill twice the units of the payments table's conditional puts
    assert result["calls"]["ledger"].write_units == 2 * 2 * result["calls"]["pipeline"].write_units
    assert result["binding"].quota.service == "kms" and result["cached"].quota.service != "kms"
    assert 5 < result["break_even"].tps < 50
    assert result["refused"] == 40  # a burst of 10, then refused: nothing sent
    assert result["datum"]["MetricName"] == "CostPer10kPayments"


def test_operations_quickstart_emits_the_slis_and_its_fast_burn_page_fires_when_the_hour_burns_two_per_cent() -> None:
    result = runpy.run_path(str(EXAMPLES / "operations_quickstart.py"))["main"]()
    (document,) = result["documents"]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]
    assert document["AuthorisationError"] == [1.0] and document["SchemeTimeout"] == [1.0]
    assert document["CriticalPathError"] == [1.0] and document["ReconciliationMismatches"] == [0.0]
    # 20% of payments fail from minute 60: 20x the 1% budget; the 1 h window passes 14.4x after 44 such minutes
    # (43.2 rounded up), and the page fires at the end of that minute
    assert result["page_minute"] == 60 + 44
    assert result["not_emulated"] == ["fasterpay-prod-detokenize-anomaly", "fasterpay-prod-detokenize-ceiling"]
