"""The compliance article's live evidence, as the notebook runs it: each demonstration proves what it says."""

from __future__ import annotations

from fasterpay.aws import open_environment
from simulations import compliance_demo


def test_after_erasure_nothing_is_left_to_read() -> None:
    with open_environment("moto") as env:
        proof = compliance_demo.erasure(env)
    assert proof.tokens == 3 and proof.subject_secret_left is False
    assert proof.detokenize_refused == 3 and proof.values_recovered == 0 and proof.kms_decrypts_tried == 6
    assert proof.clear_values_found == 0 and proof.items_scanned > proof.tokens and proof.receipt is not None


def test_every_deploy_helper_refuses_a_disallowed_region_and_creates_nothing() -> None:
    with open_environment("moto") as env:
        answers = compliance_demo.residency(env, region="us-east-1")
    assert answers.pop("stacks created") == "0"
    assert set(answers) == {"vault", "audit", "ledger", "pipeline"}
    assert all("not in allowed_regions" in answer for answer in answers.values())
    assert compliance_demo.template_rule("pipeline") == [{"Fn::Contains": [{"Ref": "AllowedRegions"},
                                                                           {"Ref": "AWS::Region"}]}]


def test_the_trail_from_the_template_selects_dynamodb_data_events() -> None:
    with open_environment("moto") as env:
        found = compliance_demo.cloudtrail(env)
    assert found["trail"]["IsMultiRegionTrail"] is False and found["trail"]["LogFileValidationEnabled"] is True
    fields = [f for s in found["selectors"]["AdvancedEventSelectors"] for f in s["FieldSelectors"]]
    assert {"Field": "resources.type", "Equals": ["AWS::DynamoDB::Table"]} in fields


def test_only_fresh_mfa_with_the_incident_tags_opens_the_break_glass_role() -> None:
    with open_environment("moto") as env:
        cases, refusal, calls, assumed = compliance_demo.break_glass(env)
    assert [(c.name, c.allowed) for c in cases][0] == ("MFA 60 s old, incident tags", True)
    assert not any(c.allowed for c in cases[1:])
    assert "MFA code" in refusal and calls == 0 and assumed.endswith("/break-glass-INC-4711-alice")
