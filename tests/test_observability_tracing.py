"""Traces of the simulated payment flow: one trace per payment, a span per stage and per AWS call,
modelled timings, errors marked, and no personal data in any attribute."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from botocore.config import Config

from fasterpay.audit import AuditTrail, InMemoryAuditStore, LocalCheckpointSigner
from fasterpay.aws import AwsEnvironment
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, FaultPlan
from fasterpay.observability import (
    PaymentLogger,
    PaymentMetrics,
    PersonalDataError,
    in_memory_tracer,
    instrument_aws_client,
    payment_span,
    refuse_personal_data,
    stage_span,
    stage_timings,
)
from fasterpay.observability.simulation import (
    CRITICAL_PATH,
    STAGES,
    ModelledClock,
    SimulatedPaymentFlow,
    create_simulation_resources,
    synthetic_payments,
)

START = datetime(2026, 11, 28, 9, tzinfo=UTC)


@pytest.fixture
def rig(env: AwsEnvironment):
    config = Config(retries={"total_max_attempts": 1})  # faults surface at once: no wall-time back-off
    dynamodb, sqs = env.client("dynamodb", config=config), env.client("sqs", config=config)
    resources = create_simulation_resources(dynamodb, sqs, accounts=5, balance_minor=10_000_000)
    tracer, exporter = in_memory_tracer()
    faults = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=11)
    clock = ModelledClock(faults, start=START)
    for client in (dynamodb, sqs):
        faults.attach(client)
        instrument_aws_client(client, tracer, clock=clock)
    logs, docs = io.StringIO(), []
    store = InMemoryAuditStore()
    trail = AuditTrail(store=store, signer=LocalCheckpointSigner.generate(), origin="sim/audit", batch_size=None)
    flow = SimulatedPaymentFlow(dynamodb=dynamodb, sqs=sqs, resources=resources, tracer=tracer, clock=clock,
                                logger=PaymentLogger("sim", stream=logs, clock=clock.now),
                                metrics=PaymentMetrics(namespace="FasterPay", service="sim", sink=docs.append),
                                audit=trail)
    return flow, exporter, faults, logs, docs, trail, store


def test_one_trace_per_payment_with_a_span_per_stage_and_aws_call(rig) -> None:
    flow, exporter, *_ = rig
    outcomes = [flow.process(p) for p in synthetic_payments(5, seed=1, accounts=5)]
    assert [o.status for o in outcomes] == ["ACSC"] * 5
    spans = exporter.get_finished_spans()
    traces = {s.context.trace_id for s in spans}
    assert len(traces) == 5
    names = Counter(s.name for s in spans)
    assert names["payment"] == 5 and all(names[f"stage {stage}"] == 5 for stage in STAGES)
    assert names["DynamoDB.PutItem"] == 5 and names["DynamoDB.UpdateItem"] == 10 and names["SQS.SendMessage"] == 5
    aws = [s for s in spans if s.name.startswith(("DynamoDB.", "SQS."))]
    assert all(s.attributes["rpc.system"] == "aws-api" and s.attributes["cloud.region"] == "eu-west-2" for s in aws)
    by_id = {s.context.span_id: s for s in spans}
    assert all(by_id[s.parent.span_id].name.startswith("stage ") for s in aws)


def test_span_times_follow_the_modelled_clock(rig) -> None:
    flow, exporter, faults, *_ = rig
    outcome = flow.process(synthetic_payments(1, seed=2, accounts=5)[0])
    rows = stage_timings(exporter.get_finished_spans())
    root = next(r for r in rows if r.name == "payment")
    assert root.duration_ms == pytest.approx(outcome.total_ms)
    modelled_aws_ms = faults.modelled_seconds * 1000
    assert sum(r.duration_ms for r in rows if "." in r.name) == pytest.approx(modelled_aws_ms, rel=1e-6)
    assert outcome.authorise_ms < outcome.critical_path_ms < outcome.total_ms
    assert sorted({r.stage for r in rows if r.stage}) == sorted(STAGES)
    assert set(CRITICAL_PATH) < set(STAGES)


def test_a_failed_aws_call_marks_its_span_and_rejects_the_payment(rig) -> None:
    flow, exporter, faults, logs, *_ = rig
    faults.plan = FaultPlan(throttle_rate=1.0, services={"dynamodb"}, operations={"UpdateItem"})
    outcome = flow.process(synthetic_payments(1, seed=3, accounts=5)[0])
    assert (outcome.status, outcome.reason, outcome.technical_failure) == ("RJCT", "NARR", True)
    failed = [s for s in exporter.get_finished_spans() if s.name == "DynamoDB.UpdateItem"]
    assert failed[0].attributes["error.type"] == "ProvisionedThroughputExceededException"
    assert failed[0].status.status_code.name == "ERROR"
    assert '"level":"ERROR"' in logs.getvalue()


def test_a_business_rejection_is_not_a_technical_failure(rig) -> None:
    flow, *_ = rig
    big = synthetic_payments(1, seed=4, accounts=5)[0]
    from dataclasses import replace

    outcome = flow.process(replace(big, amount_minor=10_000_001))
    assert (outcome.status, outcome.reason, outcome.technical_failure) == ("RJCT", "AM04", False)


def test_no_personal_data_in_spans_logs_metrics_or_audit_entries(rig) -> None:
    flow, exporter, _, logs, docs, trail, store = rig
    for p in synthetic_payments(8, seed=5, accounts=5):
        flow.process(p)
    flow.metrics.flush()
    trail.close()
    for span in exporter.get_finished_spans():
        refuse_personal_data(dict(span.attributes or {}), where="span")
    for line in logs.getvalue().splitlines():
        record = json.loads(line)
        refuse_personal_data(record, where="log")
        assert record["end_to_end_id"].startswith("E2E-") and len(record["trace_id"]) == 32
    for doc in docs:
        refuse_personal_data({k: v for k, v in doc.items() if k != "_aws"}, where="metric")
    statuses = Counter(json.loads(line)["outcome"] for key, body in store.objects().items()
                       if key.startswith("segments/") for line in body.splitlines())
    assert statuses == {"RCVD": 8, "ACTC": 8, "ACSP": 8, "ACSC": 8}


def test_span_helpers_refuse_personal_data(env: AwsEnvironment) -> None:
    tracer, exporter = in_memory_tracer()
    named = {"debtor.name": "Ann Smith"}
    with pytest.raises(PersonalDataError), payment_span(tracer, end_to_end_id="E2E-1", uetr="u-1", attributes=named):
        pass
    valued = {"payment.creditor": "GB82WEST12345698765432"}
    with payment_span(tracer, end_to_end_id="E2E-1", uetr="u-1"), pytest.raises(PersonalDataError), \
            stage_span(tracer, "ingest", attributes=valued):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["payment"]


def test_instrumenting_a_client_twice_makes_one_span_per_call(env: AwsEnvironment) -> None:
    tracer, exporter = in_memory_tracer()
    sqs = env.client("sqs")
    instrument_aws_client(sqs, tracer)
    instrument_aws_client(sqs, tracer)
    sqs.list_queues()
    assert [s.name for s in exporter.get_finished_spans()] == ["SQS.ListQueues"]


def test_an_exception_in_a_stage_marks_stage_and_payment_spans_and_ends_both() -> None:
    from fasterpay.observability.tracing import in_memory_tracer, payment_span, stage_span

    tracer, exporter = in_memory_tracer()
    ticks = iter(range(1_000, 10_000, 1_000))
    clock = lambda: next(ticks)  # noqa: E731 - nanosecond timestamps for the spans
    with pytest.raises(RuntimeError, match="ledger down"):
        with payment_span(tracer, end_to_end_id="E2E-9", uetr="8a562c67-ca16-48ba-b074-65581be6f011", clock=clock):
            with stage_span(tracer, "clear", clock=clock):
                raise RuntimeError("ledger down")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"payment", "stage clear"}  # both ended, so both were exported
    assert all(s.status.status_code.name == "ERROR" for s in spans.values())
    assert spans["stage clear"].parent.span_id == spans["payment"].context.span_id
    assert spans["stage clear"].end_time == 3_000 and spans["payment"].end_time == 4_000
