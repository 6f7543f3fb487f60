"""The SLI events: what SliPublisher emits is valid EMF, is exactly what the operations alarms watch, and refuses
bad values; count_throttles counts each throttled attempt of a real client, retried or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from fasterpay.aws import AwsEnvironment
from fasterpay.faults import FaultInjector, FaultPlan, FaultRates
from fasterpay.observability import (
    AUTHORISATION_SLO,
    CRITICAL_PATH_SLO,
    SLI_NAMESPACE,
    SliPublisher,
    count_throttles,
    validate_emf,
)
from simulations.templates import parameter_values, parse_template, resolve

TEMPLATE = Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation" / "operations.yaml"


def _publisher() -> tuple[SliPublisher, list[dict[str, Any]]]:
    documents: list[dict[str, Any]] = []
    return SliPublisher(stage="prod", sink=documents.append), documents


def _emitted(documents: list[dict[str, Any]]) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for document in documents:
        validate_emf(document)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == SLI_NAMESPACE
        dims = {name: document[name] for name in directive["Dimensions"][0]}
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            for value in values if isinstance(values, list) else [values]:
                out.setdefault(metric["Name"], []).append((dims, value))
    return out


def test_every_event_is_one_datum_in_valid_emf_with_exactly_the_alarms_dimensions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "payments")  # Lambda functions often set it: no extra dimension
    sli, documents = _publisher()
    sli.authorisation(42.0)
    sli.authorisation(None)
    sli.critical_path(180.0)
    sli.critical_path(None)
    sli.scheme_submission(timed_out=False)
    sli.scheme_submission(timed_out=True)
    sli.reconciliation(0)
    sli.throttle("kms")
    sli.metrics.flush()
    emitted = _emitted(documents)
    prod = {"Stage": "prod"}
    assert emitted["AuthorisationLatency"] == [(prod, 42.0)] and emitted["AuthorisationError"] == [(prod, 1.0)]
    assert emitted["CriticalPathLatency"] == [(prod, 180.0)] and emitted["CriticalPathError"] == [(prod, 1.0)]
    assert emitted["SchemeSubmission"] == [(prod, 1.0), (prod, 1.0)] and emitted["SchemeTimeout"] == [(prod, 1.0)]
    assert emitted["ReconciliationMismatches"] == [(prod, 0.0)]  # a clean cycle publishes 0: silence breaches
    assert emitted["DependencyThrottle"] == [({"Stage": "prod", "service": "kms"}, 1.0)]


def test_the_alarms_watch_exactly_what_the_publisher_emits_under_the_same_thresholds() -> None:
    template = parse_template(TEMPLATE.read_text(encoding="utf-8"))
    values = parameter_values(template)
    watched: set[str] = set()
    thresholds: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resolve(template, resource["Properties"], values, attributes={})
        stats = [q["MetricStat"] for q in props.get("Metrics", []) if "MetricStat" in q]
        for stat in stats:
            if stat["Metric"]["Namespace"] == SLI_NAMESPACE:
                watched.add(stat["Metric"]["MetricName"])
                if stat["Stat"].startswith("PR("):
                    thresholds.add(stat["Stat"])
        if props.get("Namespace") == SLI_NAMESPACE:
            watched.add(props["MetricName"])
    sli, documents = _publisher()
    sli.authorisation(1.0), sli.authorisation(None), sli.critical_path(1.0), sli.critical_path(None)
    sli.scheme_submission(timed_out=True), sli.reconciliation(0), sli.throttle("kms")
    sli.metrics.flush()
    emitted = set(_emitted(documents)) | {"Detokenize"}  # detokenize counts come from PaymentMetrics.detokenize
    assert watched == emitted
    assert thresholds == {f"PR(:{AUTHORISATION_SLO.threshold_ms:g})", f"PR(:{CRITICAL_PATH_SLO.threshold_ms:g})"}


def test_bad_values_are_refused() -> None:
    sli, _ = _publisher()
    for bad in (-1.0, float("nan"), float("inf"), 86_400_000.0):
        with pytest.raises(ValueError, match="between 0 and a day"):
            sli.authorisation(bad)
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="count"):
            sli.reconciliation(bad)  # type: ignore[arg-type]
    for stage in ("", "prod stage", "prod;drop"):
        with pytest.raises(ValueError, match="stage"):
            SliPublisher(stage=stage, sink=list().append)
    with pytest.raises(ValueError, match="service"):
        sli.throttle("")


def test_count_throttles_counts_each_throttled_attempt_of_a_real_client(
        env: AwsEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)  # botocore's back-off, not slept here
    sli, documents = _publisher()
    kms = env.client("kms", config=Config(retries={"mode": "standard", "max_attempts": 3}))
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    injector = FaultInjector(plan=FaultPlan(per_service={"kms": FaultRates(throttle_rate=0.4, server_error_rate=0.3)}),
                             seed=4)
    injector.attach(count_throttles(kms, sli))
    failed = 0
    for _ in range(20):
        try:
            kms.describe_key(KeyId=key)
        except kms.exceptions.ClientError:
            failed += 1
    sli.metrics.flush()
    counted = sum(value for _, value in _emitted(documents).get("DependencyThrottle", []))
    assert counted == injector.injected["throttle"] > 0  # every throttled attempt, including those retried
    assert injector.injected["server_error"] > 0  # 5xx attempts are retried too, but they are not throttles
    assert counted > failed  # most throttles were retried and succeeded: the count sees them anyway
