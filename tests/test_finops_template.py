"""The FinOps template: budget, anomaly alerts, the cost-per-transaction SLO alarm and the quota alarms.

moto's CloudFormation does not create budgets, anomaly monitors or alarms, so the test resolves the
template's properties with its defaults and creates them through the Budgets and CloudWatch APIs on
moto: the properties are real API shapes, and what the code publishes matches what the alarms watch.
cfn-lint and the shared rules (allowed regions, TLS-only policies, cost-allocation tags) run in
tests/test_template_policy.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.finops.costs import unit_cost_metric
from simulations.templates import alarm_request, parse_template, resolve

TEMPLATE = Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation" / "finops.yaml"
ACCOUNT = "123456789012"


def _template() -> dict[str, Any]:
    return parse_template(TEMPLATE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    doc = _template()
    names = {"AlertTopic": f"arn:aws:sns:eu-west-2:{ACCOUNT}:fasterpay-finops-alerts",
             "CostAnomalyMonitor": f"arn:aws:ce::{ACCOUNT}:anomalymonitor/example",
             "MonthlyBudget": "fasterpay-payments-monthly"}
    return {name: resolve(doc, r.get("Properties", {}), attributes=names) | {"Type": r["Type"]}
            for name, r in doc["Resources"].items()}


def test_the_budget_filters_on_the_cost_allocation_tag_and_alerts_on_actual_and_forecast(
        env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    budget = dict(resolved["MonthlyBudget"])
    budget.pop("Type")
    budgets = env.client("budgets", region="us-east-1")
    budgets.create_budget(AccountId=ACCOUNT, **budget)
    stored = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="fasterpay-payments-monthly")["Budget"]
    assert stored["CostFilters"] == {"TagKeyValue": ["user:cost-centre$payments"]}  # the tag every template sets
    assert Decimal(stored["BudgetLimit"]["Amount"]) == 1000 and stored["TimeUnit"] == "MONTHLY"
    notes = budgets.describe_notifications_for_budget(AccountId=ACCOUNT,
                                                      BudgetName="fasterpay-payments-monthly")["Notifications"]
    assert {(n["NotificationType"], n["Threshold"]) for n in notes} == {("ACTUAL", 80.0), ("FORECASTED", 100.0)}


def test_the_anomaly_subscription_watches_the_tagged_monitor_above_a_threshold(resolved: dict[str, Any]) -> None:
    monitor, subscription = resolved["CostAnomalyMonitor"], resolved["CostAnomalySubscription"]
    assert json.loads(monitor["MonitorSpecification"]) == {"Tags": {"Key": "cost-centre", "Values": ["payments"]}}
    threshold = json.loads(subscription["ThresholdExpression"])["Dimensions"]
    assert threshold["Key"] == "ANOMALY_TOTAL_IMPACT_ABSOLUTE" and threshold["Values"] == ["50"]
    assert subscription["Frequency"] == "IMMEDIATE"  # IMMEDIATE alerts need an SNS subscriber
    assert [s["Type"] for s in subscription["Subscribers"]] == ["SNS"]
    assert subscription["MonitorArnList"] == [f"arn:aws:ce::{ACCOUNT}:anomalymonitor/example"]


def test_budget_and_anomaly_alerts_may_publish_to_the_topic_only_from_this_account(resolved: dict[str, Any]) -> None:
    statements = resolved["AlertTopicPolicy"]["PolicyDocument"]["Statement"]
    allow = next(s for s in statements if s["Sid"] == "BudgetsAndAnomalyDetectionPublish")
    assert set(allow["Principal"]["Service"]) == {"budgets.amazonaws.com", "costalerts.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_alert_topic_is_encrypted_with_a_key_the_publishers_may_use_for_this_topic_only(
        env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    topic = resolved["AlertTopic"]
    assert topic["KmsMasterKeyId"] == "<AlertKey>"  # the stack's own key, not alias/aws/sns
    statements = {s["Sid"]: s for s in json.loads(resolved["AlertKey"]["KeyPolicy"])["Statement"]}
    topic_arn = f"arn:aws:sns:eu-west-2:{ACCOUNT}:fasterpay-finops-alerts"
    billing = statements["BudgetsAndAnomalyDetectionPublish"]
    assert sorted(billing["Principal"]["Service"]) == ["budgets.amazonaws.com", "costalerts.amazonaws.com"]
    assert sorted(billing["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert billing["Condition"] == {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}}
    alarms = statements["CloudWatchAlarmsPublish"]
    assert alarms["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:cloudwatch:eu-west-2:{ACCOUNT}:alarm:fasterpay-prod-*"}
    assert resolved["AlertKey"]["EnableKeyRotation"] is True
    # The topic's name is the one the key policy names, and SNS takes the key: create both on moto.
    key_id = env.client("kms").create_key(Description=resolved["AlertKey"]["Description"])["KeyMetadata"]["KeyId"]
    sns = env.client("sns")
    arn = sns.create_topic(Name=topic["TopicName"], Attributes={"KmsMasterKeyId": key_id})["TopicArn"]
    assert arn == topic_arn
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["KmsMasterKeyId"] == key_id




def test_every_alarm_is_a_valid_put_metric_alarm_request(env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    cloudwatch = env.client("cloudwatch")
    alarms = {name: props for name, props in resolved.items() if props["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"CostPerTransactionAlarm", "KmsRequestQuotaAlarm", "LambdaConcurrencyQuotaAlarm",
                           "LogFloodAlarm"}
    for props in alarms.values():
        cloudwatch.put_metric_alarm(**alarm_request(props))
    stored = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert len(stored) == 4
    quota = stored["fasterpay-prod-kms-request-quota"]
    expression = next(m["Expression"] for m in quota["Metrics"] if m.get("ReturnData"))
    assert "SERVICE_QUOTA(" in expression and quota["Threshold"] == 80.0


def test_the_unit_cost_the_job_publishes_is_the_metric_the_slo_alarm_watches(
        env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    alarm = resolved["CostPerTransactionAlarm"]
    datum = unit_cost_metric(Decimal("0.1234"), stage="prod")
    assert datum["MetricName"] == alarm["MetricName"]
    assert datum["Dimensions"] == alarm["Dimensions"]
    cloudwatch = env.client("cloudwatch")
    cloudwatch.put_metric_data(Namespace=alarm["Namespace"], MetricData=[datum])
    listed = cloudwatch.list_metrics(Namespace=alarm["Namespace"], MetricName=alarm["MetricName"])["Metrics"]
    assert listed and sorted(listed[0]["Dimensions"], key=lambda d: d["Name"]) == sorted(
        alarm["Dimensions"], key=lambda d: d["Name"])
    assert datum["Value"] > float(alarm["Threshold"])  # 0.1234 breaches the default $0.10 SLO
    assert alarm["TreatMissingData"] == "breaching"  # a day without the job's datum is not a met SLO


def test_a_bad_unit_cost_is_refused_before_it_is_published() -> None:
    with pytest.raises(ValueError, match="non-negative Decimal"):
        unit_cost_metric(Decimal("-0.01"), stage="prod")
    with pytest.raises(ValueError, match="non-negative Decimal"):
        unit_cost_metric(0.05, stage="prod")  # type: ignore[arg-type]
