"""The operations template: SLO burn-rate alarms, their composites, the runbook alarms and the dashboard.

moto's CloudFormation creates no alarms and moto has no ``put_composite_alarm``, so the test resolves the
template's properties with its defaults (as tests/test_finops_template.py does), puts every metric alarm,
the dashboard and the topics through the APIs on moto, and checks the composite alarms' rules as text.
The numbers are checked too: each window's period and burn-rate threshold against the SRE workbook's table,
CloudWatch's limit on an alarm's evaluation range, and each bad-fraction expression evaluated on numbers
computed by hand (the arithmetic evaluator is the dashboard renderer's, ``simulations.dashboard``).
cfn-lint and the shared rules (allowed regions, TLS-only topic policy, tags) run in tests/test_template_policy.py.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fasterpay.aws import AwsEnvironment
from simulations.dashboard import DashboardError, dashboard_body, evaluate_expression, metric_specs
from simulations.templates import alarm_request, parameter_values, parse_template, resolve

TEMPLATE = (Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation"
            / "operations.yaml")
ACCOUNT = "123456789012"
PREFIX = "fasterpay-prod-"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"  # the Ref of AlertKey given to resolve

#: The metric contract: what the pipeline, the vault, the scheme adapter and the settlement job publish.
CONTRACT = {"AuthorisationLatency", "AuthorisationError", "CriticalPathLatency", "CriticalPathError", "Detokenize",
            "SchemeSubmission",
            "SchemeTimeout", "ReconciliationMismatches", "DependencyThrottle"}
AWS_METRICS = {("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
               ("AWS/DynamoDB", "WriteThrottleEvents"), ("AWS/DynamoDB", "ReplicationLatency")}
RUNBOOKS = {"dlq-redrive", "scheme-timeout-storm", "settlement-mismatch", "hot-account", "kms-throttling",
            "region-failover", "slo-burn", "detokenize-spike"}
#: The SRE workbook's table (ch. 5): row -> (severity, long window, short window, burn rate).
WORKBOOK = {"fast": ("page", "1h", "5m", 14.4), "medium": ("page", "6h", "30m", 6.0),
            "slow": ("ticket", "3d", "6h-slow", 1.0)}
WINDOW_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "6h-slow": 21600, "3d": 259200}
BUDGET = {"authorisation": 0.0001, "critical-path": 0.01}


def _template() -> dict[str, Any]:
    return parse_template(TEMPLATE.read_text(encoding="utf-8"))


def _resolved(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values = parameter_values(doc)
    names = {logical: resolve(doc, r["Properties"]["AlarmName"], values) for logical, r in doc["Resources"].items()
             if "AlarmName" in r.get("Properties", {})}
    names |= {"PageTopic": f"arn:aws:sns:eu-west-2:{ACCOUNT}:fasterpay-prod-pages",
              "TicketTopic": f"arn:aws:sns:eu-west-2:{ACCOUNT}:fasterpay-prod-tickets",
              "AlertKey": KEY_ID}
    return {name: resolve(doc, r.get("Properties", {}), values, names) | {"Type": r["Type"]}
            for name, r in doc["Resources"].items()}


@pytest.fixture(scope="module")
def resolved() -> dict[str, dict[str, Any]]:
    return _resolved(_template())


def _of_type(resolved: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {props["AlarmName"] if "AlarmName" in props else name: props
            for name, props in resolved.items() if props["Type"] == kind}




def evaluation_range_error(props: dict[str, Any]) -> str | None:
    """Why CloudWatch would refuse this alarm's periods, or None. Period must be 10, 30 or a multiple of 60;
    Period x EvaluationPeriods may be at most one day when Period is under an hour, seven days otherwise."""
    periods = {int(m["MetricStat"]["Period"]) for m in props.get("Metrics", []) if "MetricStat" in m}
    periods |= {int(m["Period"]) for m in props.get("Metrics", []) if "Period" in m}
    if "Period" in props:
        periods.add(int(props["Period"]))
    if len(periods) != 1:
        return f"an alarm's metrics share one period, found {sorted(periods)}"
    period, = periods
    if period not in (10, 30) and period % 60:
        return f"Period {period} is not 10, 30 or a multiple of 60"
    evaluated = period * int(props["EvaluationPeriods"])
    limit = 86400 if period < 3600 else 7 * 86400
    if evaluated > limit:
        return f"Period x EvaluationPeriods = {evaluated} s exceeds {limit} s"
    if int(props.get("DatapointsToAlarm", props["EvaluationPeriods"])) > int(props["EvaluationPeriods"]):
        return "DatapointsToAlarm exceeds EvaluationPeriods"
    return None


def _burn_windows(resolved: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: props for name, props in _of_type(resolved, "AWS::CloudWatch::Alarm").items()
            if "-burn-" in name}


def _return_expression(props: dict[str, Any]) -> str:
    returned = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1 and "Expression" in returned[0]
    return str(returned[0]["Expression"])


# -- moto: the alarms, the dashboard and the topics are valid API requests -------------------------------
def test_every_alarm_is_a_valid_put_metric_alarm_request(env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    cloudwatch = env.client("cloudwatch")
    alarms = _of_type(resolved, "AWS::CloudWatch::Alarm")
    for props in alarms.values():
        cloudwatch.put_metric_alarm(**alarm_request(props))
    stored = {a["AlarmName"]: a for page in cloudwatch.get_paginator("describe_alarms").paginate()
              for a in page["MetricAlarms"]}
    assert set(stored) == set(alarms) and len(stored) == 28
    for name, props in alarms.items():
        if "Metrics" in props:
            assert [m["Id"] for m in stored[name]["Metrics"]] == [m["Id"] for m in props["Metrics"]]
        else:
            assert stored[name]["MetricName"] == props["MetricName"]
    burn = stored[PREFIX + "authorisation-burn-1h"]
    assert {m["MetricStat"]["Stat"] for m in burn["Metrics"] if "MetricStat" in m} == {"SampleCount", "PR(:150)",
                                                                                        "Sum"}
    assert stored[PREFIX + "critical-path-p99"]["ExtendedStatistic"] == "p99"


def test_the_dashboard_round_trips_through_put_dashboard(env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    dashboard = resolved["OperationsDashboard"]
    body = dashboard_body(TEMPLATE)
    cloudwatch = env.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=dashboard["DashboardName"], DashboardBody=json.dumps(body))
    stored = cloudwatch.get_dashboard(DashboardName="fasterpay-prod-operations")
    assert json.loads(stored["DashboardBody"]) == body


def test_pages_and_tickets_go_to_two_topics_encrypted_with_the_stacks_key(
        env: AwsEnvironment, resolved: dict[str, Any]) -> None:
    sns = env.client("sns")
    for logical in ("PageTopic", "TicketTopic"):
        props = resolved[logical]
        assert props["KmsMasterKeyId"] == KEY_ID
        sns.create_topic(Name=props["TopicName"], Attributes={"KmsMasterKeyId": props["KmsMasterKeyId"]},
                         Tags=props["Tags"])
    names = sorted(t["TopicArn"].rsplit(":", 1)[-1] for t in sns.list_topics()["Topics"])
    assert names == ["fasterpay-prod-pages", "fasterpay-prod-tickets"]


def test_cloudwatch_may_use_the_key_and_publish_only_for_this_accounts_alarms(resolved: dict[str, Any]) -> None:
    key_policy = json.loads(resolved["AlertKey"]["KeyPolicy"])
    grant = next(s for s in key_policy["Statement"] if s["Sid"] == "CloudWatchAlarmsPublish")
    assert grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    publish = next(s for s in resolved["AlertTopicPolicy"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    pattern = publish["Condition"]["ArnLike"]["aws:SourceArn"]
    assert pattern == f"arn:aws:cloudwatch:eu-west-2:{ACCOUNT}:alarm:fasterpay-prod-*"
    assert all(re.fullmatch(pattern.replace("*", ".*"), f"arn:aws:cloudwatch:eu-west-2:{ACCOUNT}:alarm:{name}")
               for name in _of_type(resolved, "AWS::CloudWatch::CompositeAlarm") | _of_type(
                   resolved, "AWS::CloudWatch::Alarm"))


# -- composites: long AND short of one row, actions on the right topic ----------------------------------
RULE = re.compile(r'ALARM\("([^"]+)"\) AND ALARM\("([^"]+)"\)')


@pytest.mark.parametrize("slo", sorted(BUDGET))
@pytest.mark.parametrize("row", sorted(WORKBOOK))
def test_each_composite_is_the_long_and_the_short_window_of_one_workbook_row(
        resolved: dict[str, Any], slo: str, row: str) -> None:
    severity, long_w, short_w, rate = WORKBOOK[row]
    composites = _of_type(resolved, "AWS::CloudWatch::CompositeAlarm")
    windows = _burn_windows(resolved)
    composite = composites[f"{PREFIX}{slo}-{row}-burn"]
    match = RULE.fullmatch(composite["AlarmRule"])
    assert match, composite["AlarmRule"]
    long_name, short_name = match.groups()
    assert (long_name, short_name) == (f"{PREFIX}{slo}-burn-{long_w}", f"{PREFIX}{slo}-burn-{short_w}")
    for name, window in ((long_name, long_w), (short_name, short_w)):
        alarm = windows[name]  # the rule names an alarm of this template
        assert float(alarm["Threshold"]) == rate and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert {int(m["MetricStat"]["Period"]) for m in alarm["Metrics"] if "MetricStat" in m} == {
            WINDOW_SECONDS[window]}
        assert int(alarm["EvaluationPeriods"]) == 1 and int(alarm["DatapointsToAlarm"]) == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "AlarmActions" not in alarm and "OKActions" not in alarm  # only the composite notifies
    topic = resolved["PageTopic" if severity == "page" else "TicketTopic"]
    assert composite["AlarmActions"] == [f"arn:aws:sns:eu-west-2:{ACCOUNT}:fasterpay-prod-{severity}s"] == [
        _topic_arn(topic)]


def _topic_arn(topic: dict[str, Any]) -> str:
    return f"arn:aws:sns:eu-west-2:{ACCOUNT}:{topic['TopicName']}"


def test_every_alarm_rule_names_alarms_of_this_template(resolved: dict[str, Any]) -> None:
    alarms = set(_of_type(resolved, "AWS::CloudWatch::Alarm"))
    composites = _of_type(resolved, "AWS::CloudWatch::CompositeAlarm")
    assert len(composites) == 6
    for composite in composites.values():
        named = re.findall(r'ALARM\("([^"]+)"\)', composite["AlarmRule"])
        assert len(named) == 2 and set(named) <= alarms
    windows = set(_burn_windows(resolved))
    used = {n for c in composites.values() for n in re.findall(r'ALARM\("([^"]+)"\)', c["AlarmRule"])}
    assert used == windows  # every window alarm belongs to exactly one row


# -- the numbers ---------------------------------------------------------------------------------------
def test_every_alarm_respects_cloudwatchs_evaluation_range_limit(resolved: dict[str, Any]) -> None:
    errors = {name: evaluation_range_error(props)
              for name, props in _of_type(resolved, "AWS::CloudWatch::Alarm").items()}
    assert {name: error for name, error in errors.items() if error} == {}


@pytest.mark.parametrize(("period", "evaluations", "error"), [
    (90, 1, "not 10, 30 or a multiple of 60"),
    (300, 289, "exceeds 86400"),                 # 24 h and 5 min of 5-minute periods
    (259200, 3, "exceeds 604800"),               # nine days of 3-day periods
])
def test_the_limit_check_refuses_an_invalid_period(resolved: dict[str, Any], period: int, evaluations: int,
                                                   error: str) -> None:
    variant = copy.deepcopy(resolved["AuthorisationBurn1h"])
    for metric in variant["Metrics"]:
        if "MetricStat" in metric:
            metric["MetricStat"]["Period"] = period
    variant["EvaluationPeriods"] = evaluations
    variant["DatapointsToAlarm"] = 1
    assert error in (evaluation_range_error(variant) or "")


def test_a_template_variant_with_a_90_second_window_is_rejected() -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace("Period: 300\n", "Period: 90\n", 1)
    variant = _resolved(parse_template(text))
    errors = [name for name, props in _of_type(variant, "AWS::CloudWatch::Alarm").items()
              if evaluation_range_error(props)]
    assert errors == [PREFIX + "authorisation-burn-5m"]


def _authorisation_bad_fraction(n: float, pr: float | None, err: float) -> float:
    """By hand: slow decisions (n x (100 - pr)%) plus technical failures, over all authorisations."""
    slow = n * (100 - pr) / 100 if pr is not None else 0.0
    return (slow + err) / (n + err)


@pytest.mark.parametrize(("n", "pr", "err", "expected"), [
    (10000.0, 99.5, 3.0, 0.0053),       # 50 slow + 3 failed of 10,003 (0.0052984 ...)
    (10000.0, 100.0, None, 0.0),        # all fast, no AuthorisationError datapoint: nothing burnt
    (None, None, 4.0, 1.0),             # no decision at all, 4 failures: all bad
    (2000.0, 99.99, 0.0, 0.0001),       # exactly the budget: burn rate 1
])
def test_the_authorisation_burn_expression_computes_the_bad_fraction_over_the_budget(
        resolved: dict[str, Any], n: float | None, pr: float | None, err: float | None, expected: float) -> None:
    for name, alarm in _burn_windows(resolved).items():
        if "-authorisation-" not in name:
            continue
        burn = evaluate_expression(_return_expression(alarm), {"n": n, "pr": pr, "err": err})
        assert burn is not None
        by_hand = _authorisation_bad_fraction(n or 0.0, pr, err or 0.0)
        assert burn * BUDGET["authorisation"] == pytest.approx(by_hand, rel=1e-9)
        assert by_hand == pytest.approx(expected, abs=5e-6)


def test_no_traffic_gives_no_burn_datapoint(resolved: dict[str, Any]) -> None:
    alarm = resolved["AuthorisationBurn5m"]
    assert evaluate_expression(_return_expression(alarm), {"n": None, "pr": None, "err": None}) is None


@pytest.mark.parametrize(("n", "pr", "err", "burn"), [
    (5000.0, 99.0, None, 1.0), (5000.0, 85.6, None, 14.4), (400.0, 100.0, None, 0.0),
    (4950.0, 100.0, 50.0, 1.0),  # technical failures (a scheme timeout) are bad events though they have no latency
    (None, None, 30.0, 100.0)])  # only failures: every event bad, 100x a 1% budget
def test_the_critical_path_burn_expression_computes_the_bad_fraction_over_the_budget(
        resolved: dict[str, Any], n: float | None, pr: float | None, err: float | None, burn: float) -> None:
    for name, alarm in _burn_windows(resolved).items():
        if "-critical-path-" in name:
            value = evaluate_expression(_return_expression(alarm), {"n": n, "pr": pr, "err": err})
            assert value == pytest.approx(burn, abs=1e-9)
            bad = (n or 0) * (100 - (pr if pr is not None else 100)) / 100 + (err or 0)
            assert value * BUDGET["critical-path"] == pytest.approx(bad / ((n or 0) + (err or 0)), abs=1e-12)


def test_a_mutated_expression_fails_the_check(resolved: dict[str, Any]) -> None:
    """The check above is not vacuous: ``pr`` in place of ``100 - pr`` gives a different burn rate."""
    expression = _return_expression(resolved["AuthorisationBurn1h"])
    mutated = expression.replace("(100 - FILL(pr, 100))", "FILL(pr, 100)")
    assert mutated != expression
    numbers = {"n": 10000.0, "pr": 99.5, "err": 3.0}
    assert evaluate_expression(expression, numbers) == pytest.approx(53.0 / 10003 / 0.0001)
    assert evaluate_expression(mutated, numbers) != pytest.approx(53.0 / 10003 / 0.0001)


def test_the_evaluator_refuses_anything_but_arithmetic_and_fill() -> None:
    with pytest.raises(DashboardError, match="function __import__ is not emulated"):
        evaluate_expression("__import__(os)", {})
    for text in ("n ^ 2", "n ** 2", "n.real", "[n]", "n if n else 1"):
        with pytest.raises(DashboardError, match="unsupported syntax"):
            evaluate_expression(text, {"n": 2.0})
    with pytest.raises(DashboardError, match="cannot parse"):
        evaluate_expression("n +", {"n": 2.0})
    assert evaluate_expression("-(a - 3) * 2", {"a": 1.0}) == 4.0


def test_the_scheme_timeout_storm_is_a_percentage_of_submissions(resolved: dict[str, Any]) -> None:
    alarm = resolved["SchemeTimeoutStorm"]
    expression = _return_expression(alarm)
    assert evaluate_expression(expression, {"timeouts": 6.0, "submissions": 100.0}) == 6.0
    assert evaluate_expression(expression, {"timeouts": None, "submissions": 100.0}) == 0.0
    assert float(alarm["Threshold"]) == 5.0 and int(alarm["Metrics"][1]["MetricStat"]["Period"]) == 60
    assert (int(alarm["DatapointsToAlarm"]), int(alarm["EvaluationPeriods"])) == (3, 5)


# -- the contract, the runbooks and the alarm settings ---------------------------------------------------
def _watched(props: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric an alarm reads."""
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props["Dimensions"]})]
    found = []
    for metric in props["Metrics"]:
        if "MetricStat" in metric:
            m = metric["MetricStat"]["Metric"]
            found.append((m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m["Dimensions"]}))
        elif str(metric["Expression"]).startswith("SELECT"):
            query = re.fullmatch(r'SELECT SUM\((\w+)\) FROM SCHEMA\("([^"]+)", Stage, caller\) '
                                 r"WHERE Stage = '([^']+)' GROUP BY caller", metric["Expression"])
            assert query, metric["Expression"]
            found.append((query[2], query[1], {"Stage": query[3]}))
    return found


def test_every_watched_metric_is_in_the_contract(resolved: dict[str, Any]) -> None:
    seen = set()
    for name, props in _of_type(resolved, "AWS::CloudWatch::Alarm").items():
        for namespace, metric, dimensions in _watched(props):
            seen.add(metric)
            if namespace == "FasterPay/Payments":
                assert metric in CONTRACT, name
                assert dimensions.get("Stage") == "prod", name
                assert set(dimensions) <= {"Stage", {"Detokenize": "caller", "DependencyThrottle": "service"}.get(
                    metric, "Stage")}, name
            else:
                assert (namespace, metric) in AWS_METRICS, name
    assert CONTRACT <= seen


def test_the_queue_and_table_dimensions_name_the_pipelines_resources(resolved: dict[str, Any]) -> None:
    queues = {dims["QueueName"] for props in _of_type(resolved, "AWS::CloudWatch::Alarm").values()
              for namespace, _, dims in _watched(props) if namespace == "AWS/SQS"}
    assert queues == {"fasterpay-accept", "fasterpay-clear", "fasterpay-accept-dlq", "fasterpay-clear-dlq",
                      "fasterpay-answers-dlq"}
    tables = {(dims["TableName"], dims.get("ReceivingRegion")) for props in _of_type(
        resolved, "AWS::CloudWatch::Alarm").values() for namespace, _, dims in _watched(props)
        if namespace == "AWS/DynamoDB"}
    assert tables == {("fasterpay-ledger", None), ("fasterpay-ledger", "eu-west-1"),
                      ("fasterpay-payments", "eu-west-1")}


def test_every_alarm_description_starts_with_its_runbook(resolved: dict[str, Any]) -> None:
    alarms = _of_type(resolved, "AWS::CloudWatch::Alarm") | _of_type(resolved, "AWS::CloudWatch::CompositeAlarm")
    slugs = {}
    for name, props in alarms.items():
        match = re.match(r"Runbook: docs/runbooks/([a-z-]+)\.md — \S", props["AlarmDescription"])
        assert match and match[1] in RUNBOOKS, name
        slugs[name] = match[1]
    assert set(slugs.values()) == RUNBOOKS
    assert all(slug == "slo-burn" for name, slug in slugs.items() if "-burn" in name)


def test_the_runbook_alarms_have_their_documented_settings(resolved: dict[str, Any]) -> None:
    alarms = _of_type(resolved, "AWS::CloudWatch::Alarm")
    age = alarms[PREFIX + "accept-queue-age"]
    assert (float(age["Threshold"]), int(age["Period"]), int(age["DatapointsToAlarm"]),
            int(age["EvaluationPeriods"])) == (30.0, 60, 2, 3)
    assert "15 s" in age["AlarmDescription"]
    for queue in ("accept", "clear", "answers"):
        dlq = alarms[f"{PREFIX}{queue}-dlq-not-empty"]
        assert float(dlq["Threshold"]) == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    settlement = alarms[PREFIX + "settlement-mismatch"]
    assert settlement["TreatMissingData"] == "breaching" and int(settlement["Period"]) == 3600
    hot = alarms[PREFIX + "ledger-write-throttles"]
    assert (hot["Statistic"], int(hot["DatapointsToAlarm"]), int(hot["EvaluationPeriods"])) == ("Sum", 3, 5)
    lag = alarms[PREFIX + "ledger-replication-lag"]
    assert float(lag["Threshold"]) == 30000.0 and lag["Statistic"] == "Average"
    anomaly = alarms[PREFIX + "detokenize-anomaly"]
    assert anomaly["ThresholdMetricId"] == "band" and anomaly["ComparisonOperator"] == "GreaterThanUpperThreshold"
    assert "ANOMALY_DETECTION_BAND(calls, 3)" in [m.get("Expression") for m in anomaly["Metrics"]]
    assert anomaly["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][1] == {"Name": "caller",
                                                                               "Value": "support-desk"}
    p99 = alarms[PREFIX + "critical-path-p99"]
    assert (p99["ExtendedStatistic"], float(p99["Threshold"]), int(p99["Period"])) == ("p99", 300.0, 300)


def test_every_alarm_that_notifies_names_one_of_the_two_topics(resolved: dict[str, Any]) -> None:
    topics = {_topic_arn(resolved["PageTopic"]), _topic_arn(resolved["TicketTopic"])}
    alarms = _of_type(resolved, "AWS::CloudWatch::Alarm") | _of_type(resolved, "AWS::CloudWatch::CompositeAlarm")
    notifying = {name for name, props in alarms.items() if props.get("AlarmActions")}
    assert notifying == set(alarms) - set(_burn_windows(resolved))
    assert all(set(alarms[name]["AlarmActions"]) <= topics for name in notifying)


# -- the dashboard -------------------------------------------------------------------------------------
def test_the_dashboard_widgets_fit_the_grid_and_read_only_contract_metrics() -> None:
    body = dashboard_body(TEMPLATE)
    kinds = [w["type"] for w in body["widgets"]]
    assert kinds.count("text") == 1 and kinds.count("alarm") == 1 and kinds.count("metric") == 12
    for widget in body["widgets"]:
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24 and widget["height"] >= 1
        if widget["type"] != "metric":
            continue
        for spec in metric_specs(widget):
            if spec["expression"] is None:
                namespace, metric = spec["namespace"], spec["metric"]
                assert metric in CONTRACT if namespace == "FasterPay/Payments" else (namespace, metric) in AWS_METRICS
            elif spec["expression"].startswith("SELECT"):
                assert "SUM(Detokenize)" in spec["expression"] and "'prod'" in spec["expression"]
    alarms = next(w for w in body["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    assert [a.rsplit(":", 1)[-1] for a in alarms] == [f"{PREFIX}{slo}-{row}-burn" for slo in
                                                        ("authorisation", "critical-path")
                                                        for row in ("fast", "medium", "slow")]
    markdown = next(w for w in body["widgets"] if w["type"] == "text")["properties"]["markdown"]
    assert set(re.findall(r"/runbooks/([a-z-]+)/", markdown)) == RUNBOOKS


def test_the_dashboards_burn_rate_matches_the_alarms(resolved: dict[str, Any]) -> None:
    body = dashboard_body(TEMPLATE)
    widget = next(w for w in body["widgets"] if w["properties"].get("title", "").startswith("Authorisation SLO"))
    expressions = {s["id"]: s["expression"] for s in metric_specs(widget) if s["expression"]}
    alarm = _return_expression(resolved["AuthorisationBurn1h"])
    assert expressions["burn1h"].replace("n1h", "n").replace("pr1h", "pr").replace("e1h", "err") == alarm


def test_the_dashboard_follows_the_parameters() -> None:
    body = dashboard_body(TEMPLATE, NamePrefix="dr", Stage="test", LedgerTableName="other-ledger")
    text = json.dumps(body)
    assert "fasterpay-" not in text
    assert '"other-ledger"' in text and '"dr-payments"' in text and "dr-test-authorisation-fast-burn" in text
