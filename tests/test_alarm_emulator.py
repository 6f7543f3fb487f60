"""The offline CloudWatch alarm emulator: statistics, metric math, M-of-N alarms, missing data, composite rules.

The multi-window burn-rate alarms, written as CloudWatch writes them (one metric-math alarm per window and
a composite per row), must fire at the same minute as :func:`fasterpay.observability.evaluate_alerts`, which
computes the SRE workbook's rule directly from the counts.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from fasterpay.observability import SRE_WORKBOOK_ALERTS, SliCounts, Slo, evaluate_alerts
from simulations.alarm_emulator import (
    MetricStore,
    UnsupportedAlarm,
    evaluate_composite_rule,
    evaluate_expression,
    evaluate_timeline,
)

NS = "FasterPay/Payments"
DIMS = {"Stage": "prod"}


def _stat_alarm(name: str, metric: str, stat: str, threshold: float, *, period: int = 60, n: int = 1,
                m: int | None = None, op: str = "GreaterThanThreshold", missing: str | None = None) -> dict:
    alarm = {"AlarmName": name, "Namespace": NS, "MetricName": metric, "Statistic": stat,
             "Dimensions": [{"Name": "Stage", "Value": "prod"}], "Period": period, "EvaluationPeriods": n,
             "Threshold": threshold, "ComparisonOperator": op}
    if m is not None:
        alarm["DatapointsToAlarm"] = m
    if missing is not None:
        alarm["TreatMissingData"] = missing
    return alarm


def test_statistics_over_a_window_match_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    store = MetricStore(start_s=0, minutes=10)
    minutes = [rng.lognormal(math.log(60), 0.8, size=500).round(1) for _ in range(10)]
    for minute, values in enumerate(minutes):
        store.add(NS, "AuthorisationLatency", DIMS, minute, values=values)
    window = np.concatenate(minutes[5:10])  # a 300 s period ending with minute 9 holds minutes 5..9
    got = lambda stat: store.statistic(NS, "AuthorisationLatency", DIMS, stat, period_s=300, end_minute=9)  # noqa: E731
    assert got("SampleCount") == window.size
    assert got("Sum") == pytest.approx(window.sum())
    assert got("Average") == pytest.approx(window.mean())
    assert got("Minimum") == window.min() and got("Maximum") == window.max()
    assert got("PR(:150)") == pytest.approx(100 * np.count_nonzero(window <= 150) / window.size)
    assert got("PR(100:150)") == pytest.approx(100 * np.count_nonzero((window > 100) & (window <= 150)) / window.size)
    assert got("PR(150:)") == pytest.approx(100 * np.count_nonzero(window > 150) / window.size)
    p99 = got("p99")
    exact = np.sort(window)[math.ceil(0.99 * window.size) - 1]
    assert exact <= p99 <= exact + 1  # exact to its 1 ms bin
    assert store.statistic(NS, "AuthorisationLatency", DIMS, "Sum", period_s=60, end_minute=0) == pytest.approx(
        minutes[0].sum())  # the window stops at the start of the data


def test_a_value_on_the_threshold_counts_as_within_it() -> None:
    store = MetricStore(start_s=0, minutes=1)
    store.add(NS, "L", DIMS, 0, values=[150.0, 150.0, 150.01, 149.99])
    assert store.statistic(NS, "L", DIMS, "PR(:150)", period_s=60, end_minute=0) == 75.0


def test_put_metric_data_takes_the_api_shapes() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    store = MetricStore(start_s=start, minutes=5)
    stamp = datetime(2026, 12, 1, 0, 2, 30, tzinfo=UTC)
    store.put_metric_data(Namespace=NS, MetricData=[
        {"MetricName": "L", "Dimensions": [{"Name": "Stage", "Value": "prod"}], "Timestamp": stamp,
         "Values": [10.0, 200.0], "Counts": [3, 1], "Unit": "Milliseconds"},
        {"MetricName": "E", "Dimensions": [{"Name": "Stage", "Value": "prod"}], "Timestamp": stamp, "Value": 2}])
    assert store.statistic(NS, "L", DIMS, "SampleCount", period_s=60, end_minute=2) == 4
    assert store.statistic(NS, "L", DIMS, "PR(:150)", period_s=60, end_minute=2) == 75.0
    assert store.statistic(NS, "E", DIMS, "Sum", period_s=60, end_minute=2) == 2
    assert store.statistic(NS, "E", DIMS, "Sum", period_s=60, end_minute=1) is None  # no datum: missing
    with pytest.raises(ValueError, match="Counts"):
        store.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "L", "Timestamp": stamp, "Values": [1.0],
                                                         "Counts": [1, 2]}])
    with pytest.raises(ValueError, match="outside"):
        store.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "E", "Value": 1,
                                                         "Timestamp": datetime(2026, 12, 2, tzinfo=UTC)}])
    with pytest.raises(UnsupportedAlarm, match="StatisticValues"):
        store.put_metric_data(Namespace=NS, MetricData=[{"MetricName": "E", "Timestamp": stamp, "StatisticValues": {}}])
    with pytest.raises(ValueError, match="finite"):
        store.add(NS, "L", DIMS, 0, values=[float("nan")])
    with pytest.raises(UnsupportedAlarm, match="distribution"):
        store.statistic(NS, "E", DIMS, "p99", period_s=60, end_minute=2)
    with pytest.raises(UnsupportedAlarm, match="bin edge"):
        store.statistic(NS, "L", DIMS, "PR(:150.5)", period_s=60, end_minute=2)


def test_metric_math() -> None:
    bad = "(n * (100 - pr) / 100 + FILL(err, 0)) / (n + FILL(err, 0))"
    assert evaluate_expression(bad, {"n": 10_000, "pr": 99.5, "err": 3}) == pytest.approx(53 / 10_003)
    assert evaluate_expression(bad, {"n": 10_000, "pr": 99.5, "err": None}) == pytest.approx(0.005)
    assert evaluate_expression("a / b", {"a": 1.0, "b": 0.0}) is None
    assert evaluate_expression("a + b", {"a": 1.0, "b": None}) is None
    assert evaluate_expression("-a * 2", {"a": 3.0}) == -6
    for expression, message in (("ANOMALY_DETECTION_BAND(m, 2)", "not emulated"), ("a ** 2", "unsupported"),
                                ("x + 1", "not a query id"), ("a +", "cannot parse"), ("'a'", "unsupported")):
        with pytest.raises(UnsupportedAlarm, match=message):
            evaluate_expression(expression, {"a": 1.0, "m": 1.0})


def test_composite_rules_follow_cloudwatch_precedence() -> None:
    states = {"a": "ALARM", "b": "OK", "c": "INSUFFICIENT_DATA"}
    assert evaluate_composite_rule('ALARM("a") AND ALARM("b")', states) is False
    assert evaluate_composite_rule('ALARM("a") OR ALARM("b") AND ALARM("c")', states) is True  # AND first
    assert evaluate_composite_rule('(ALARM("a") OR ALARM("b")) AND ALARM("c")', states) is False
    assert evaluate_composite_rule("NOT OK(b) OR INSUFFICIENT_DATA(c)", states) is True
    assert evaluate_composite_rule("TRUE AND NOT FALSE", states) is True
    for rule, message in (('ALARM("zzz")', "not an alarm"), ('ALARM("a") AND', "ends too early"),
                          ('(ALARM("a")', "ends too early"), ('ALARM("a") ALARM("b")', "unexpected"),
                          ("ALARM(a) XOR OK(b)", "cannot read")):
        with pytest.raises(UnsupportedAlarm, match=message):
            evaluate_composite_rule(rule, states)


def test_m_of_n_and_missing_data() -> None:
    store = MetricStore(start_s=0, minutes=8)
    for minute, value in enumerate([0, 0, 5, 0, 5, 0, 0, 0]):
        store.add(NS, "E", DIMS, minute, count=value)
    two_of_three = _stat_alarm("two-of-three", "E", "Sum", 1, n=3, m=2)
    history = evaluate_timeline(store, [two_of_three])
    assert history.states["two-of-three"] == ["OK", "OK", "OK", "OK", "ALARM", "OK", "OK", "OK"]  # 3..5 holds one
    assert history.first("two-of-three", "ALARM") == 300.0  # the end of minute 4

    empty = MetricStore(start_s=0, minutes=3)
    alarms = [_stat_alarm(name, "Nothing", "Sum", 0, missing=mode) for name, mode in
              (("missing", "missing"), ("breaching", "breaching"), ("not-breaching", "notBreaching"))]
    states = evaluate_timeline(empty, alarms).states
    assert states["missing"] == ["INSUFFICIENT_DATA"] * 3
    assert states["breaching"] == ["ALARM"] * 3
    assert states["not-breaching"] == ["OK"] * 3
    # data that stops: missing goes to INSUFFICIENT_DATA (CloudWatch: every datapoint of the range missing),
    # ignore keeps the state it had
    stops = MetricStore(start_s=0, minutes=4)
    for minute in range(2):
        stops.add(NS, "E", DIMS, minute, count=5)
    states = evaluate_timeline(stops, [_stat_alarm(name, "E", "Sum", 1, missing=mode)
                                       for name, mode in (("missing", "missing"), ("ignore", "ignore"))]).states
    assert states["missing"] == ["ALARM", "ALARM", "INSUFFICIENT_DATA", "INSUFFICIENT_DATA"]
    assert states["ignore"] == ["ALARM"] * 4
    with pytest.raises(UnsupportedAlarm, match="TreatMissingData"):
        evaluate_timeline(empty, [_stat_alarm("x", "E", "Sum", 0, missing="sometimes")])


def _burn_alarms(slo: Slo) -> tuple[list[dict], list[dict]]:
    """The workbook's rows written as the operations template writes them (one alarm per window)."""
    alarms, composites = [], []
    for alert in SRE_WORKBOOK_ALERTS:
        names = []
        for window in (alert.long_window_s, alert.short_window_s):
            name = f"burn-{window}-{alert.burn_rate}"
            names.append(name)
            stat = lambda stat: {"Metric": {"Namespace": NS, "MetricName": "AuthorisationLatency",  # noqa: E731
                                            "Dimensions": [{"Name": "Stage", "Value": "prod"}]},
                                 "Period": window, "Stat": stat}
            alarms.append({
                "AlarmName": name, "EvaluationPeriods": 1, "Threshold": alert.burn_rate,
                "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
                "Metrics": [
                    {"Id": "n", "MetricStat": stat("SampleCount"), "ReturnData": False},
                    {"Id": "pr", "MetricStat": stat("PR(:150)"), "ReturnData": False},
                    {"Id": "err", "ReturnData": False, "MetricStat": {
                        "Metric": {"Namespace": NS, "MetricName": "AuthorisationError",
                                   "Dimensions": [{"Name": "Stage", "Value": "prod"}]}, "Period": window, "Stat": "Sum"}},
                    {"Id": "burn", "ReturnData": True, "Expression":
                        f"(n * (100 - pr) / 100 + FILL(err, 0)) / (n + FILL(err, 0)) / {slo.error_budget:.6f}"}]})
        composites.append({"AlarmName": alert.name, "AlarmRule": f'ALARM("{names[0]}") AND ALARM("{names[1]}")'})
    return alarms, composites


def test_burn_rate_alarms_fire_when_the_workbook_rule_says() -> None:
    slo = Slo("authorisation", 0.9999, threshold_ms=150)
    minutes, rate = 12 * 60, 600
    store = MetricStore(start_s=0, minutes=minutes)
    counts = SliCounts(bucket_s=60)
    rng = np.random.default_rng(11)
    for minute in range(minutes):
        slow_share = 0.004 if 180 <= minute < 300 else 0.0  # 40x the budget for two hours
        values = np.where(rng.random(rate) < slow_share, 400.0, 40.0)
        errors = 1 if 420 <= minute < 430 else 0  # a short, small error burst
        store.add(NS, "AuthorisationLatency", DIMS, minute, values=values)
        if errors:
            store.add(NS, "AuthorisationError", DIMS, minute, count=errors)
        counts.record_counts(minute * 60, total=rate + errors, bad=int(np.count_nonzero(values > 150)) + errors)
    alarms, composites = _burn_alarms(slo)
    emulated = evaluate_timeline(store, alarms, composites)
    direct = evaluate_alerts(counts, slo)
    fired_any = False
    for alert in SRE_WORKBOOK_ALERTS:
        expected = [(f.start_s, f.end_s) for f in direct.firings if f.alert == alert]
        got, start = [], None
        for minute, state in enumerate(emulated.states[alert.name]):
            if state == "ALARM" and start is None:
                start = (minute + 1) * 60.0
            elif state != "ALARM" and start is not None:
                got.append((start, (minute + 1) * 60.0))
                start = None
        if start is not None:
            got.append((start, None))
        assert got == expected, alert.name
        fired_any = fired_any or bool(got)
    assert fired_any
    fast = SRE_WORKBOOK_ALERTS[0]
    assert emulated.first(fast.name, "ALARM") is not None and emulated.first(fast.name, "ALARM") > 180 * 60


def test_history_before_the_first_minute_counts_by_the_share_a_window_overlaps() -> None:
    store = MetricStore(start_s=0, minutes=60)
    store.add_history(NS, "L", DIMS, minutes=600, values=[100.0, 400.0], counts=[5400, 600])  # 10 per minute
    for minute in range(60):
        store.add(NS, "L", DIMS, minute, values=[400.0], counts=[10])
    # a 2-hour window at the end of minute 29 holds 30 minutes of data and 90 of the 600 history minutes
    n = store.statistic(NS, "L", DIMS, "SampleCount", period_s=7200, end_minute=29)
    assert n == pytest.approx(300 + 90 * 10)
    good = store.statistic(NS, "L", DIMS, "PR(:150)", period_s=7200, end_minute=29)
    assert good == pytest.approx(100 * 90 * 9 / (300 + 900))
    assert store.statistic(NS, "L", DIMS, "Minimum", period_s=7200, end_minute=29) == 100.0
    assert store.statistic(NS, "L", DIMS, "Minimum", period_s=1800, end_minute=29) == 400.0  # no history in it
    with pytest.raises(ValueError, match="counts"):
        store.add_history(NS, "L", DIMS, minutes=10, values=[1.0], counts=[1.0, 2.0])
