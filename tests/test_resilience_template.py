"""The multi-region template: global tables with two replicas inside the allowed regions, point-in-time
recovery and deletion protection on every replica, a fence table that is never replicated, and routing
controls that only a role with MFA can switch. (cfn-lint and the rules every template shares are in
tests/test_template_policy.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulations.templates import parse_template

TEMPLATE = Path(__file__).resolve().parents[1] / "reference" / "fasterpay" / "cloudformation" / "resilience.yaml"
DOC = parse_template(TEMPLATE.read_text(encoding="utf-8"))
GLOBAL = {name: r for name, r in DOC["Resources"].items() if r["Type"] == "AWS::DynamoDB::GlobalTable"}


def test_the_payment_and_ledger_tables_are_global_tables() -> None:
    names = {r["Properties"]["TableName"]["Fn::Sub"] for r in GLOBAL.values()}
    assert names == {"${NamePrefix}-payments", "${NamePrefix}-ledger"}


@pytest.mark.parametrize("name", sorted(GLOBAL))
def test_every_replica_is_in_the_primary_or_the_replica_region_recoverable_and_protected(name: str) -> None:
    table = GLOBAL[name]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = table["Properties"]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["SSESpecification"]["SSEEnabled"] is True
    replicas = props["Replicas"]
    assert [r["Region"] for r in replicas] == [{"Ref": "AWS::Region"}, {"Ref": "ReplicaRegion"}]
    for replica in replicas:
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True


def test_a_replica_outside_the_allowed_regions_is_refused_by_a_rule() -> None:
    asserts = [a["Assert"] for rule in DOC["Rules"].values() for a in rule["Assertions"]]
    assert {"Fn::Contains": [{"Ref": "AllowedRegions"}, {"Ref": "ReplicaRegion"}]} in asserts
    assert {"Fn::Contains": [{"Ref": "AllowedRegions"}, {"Ref": "AWS::Region"}]} in asserts
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReplicaRegion"}, {"Ref": "AWS::Region"}]}]} in asserts
    assert DOC["Parameters"]["AllowedRegions"]["Default"] == "eu-west-2"  # a replica needs an explicit allow


def test_the_fence_table_is_regional_and_has_no_stream() -> None:
    control: dict[str, Any] = DOC["Resources"]["ControlTable"]
    assert control["Type"] == "AWS::DynamoDB::Table"
    assert "StreamSpecification" not in control["Properties"]


def test_only_the_operator_policy_switches_cells_and_only_with_mfa() -> None:
    def statements(name: str) -> list[dict[str, Any]]:
        return DOC["Resources"][name]["Properties"]["PolicyDocument"]["Statement"]

    renewer = [s for s in statements("LeaseRenewerPolicy") if "route53-recovery-cluster" in str(s["Action"])]
    assert [s["Action"] for s in renewer] == ["route53-recovery-cluster:GetRoutingControlState"]
    (switch,) = statements("FailoverOperatorPolicy")
    assert "route53-recovery-cluster:UpdateRoutingControlState" in switch["Action"]
    assert switch["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert switch["Resource"] == {"Ref": "RoutingControlArns"}
