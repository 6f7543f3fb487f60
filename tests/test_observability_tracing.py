"""Tracing helpers: span helpers refuse personal data, every AWS call of an instrumented client is a CLIENT
span under the current stage, timed by the clock given (modelled here), with failures marked.

The pipeline's own spans are tested on a real pipeline run in ``test_observability_pipeline.py``."""

from __future__ import annotations

import io
import json
import time

import pytest
from botocore.config import Config

from fasterpay.audit import AuditTrail, InMemoryAuditStore, LocalCheckpointSigner
from fasterpay.aws import AwsEnvironment
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, FaultPlan
from fasterpay.observability import (
    PaymentLogger,
    PaymentMetrics,
    PersonalDataError,
    PipelineTelemetry,
    in_memory_tracer,
    instrument_aws_client,
    payment_span,
    refuse_personal_data,
    stage_span,
    stage_timings,
)
from fasterpay.pipeline import Answer

UETR = "8a562c67-ca16-48ba-b074-65581be6f011"


def test_aws_call_spans_follow_a_modelled_clock_under_their_stage(env: AwsEnvironment) -> None:
    tracer, exporter = in_memory_tracer()
    faults = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=11)
    clock = lambda: 1_800_000_000_000_000_000 + round(faults.modelled_seconds * 1e9)  # noqa: E731 - modelled ns
    sqs = instrument_aws_client(faults.attach(env.client("sqs")), tracer, clock=clock)
    with payment_span(tracer, end_to_end_id="E2E-1", uetr=UETR, clock=clock), stage_span(tracer, "clear", clock=clock):
        url = sqs.create_queue(QueueName="clearing")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="{}")
    rows = stage_timings(exporter.get_finished_spans())
    aws = [r for r in rows if "." in r.name]
    assert [r.name for r in aws] == ["SQS.CreateQueue", "SQS.SendMessage"]
    assert all(r.stage == "clear" and r.end_to_end_id == "E2E-1" for r in aws)
    assert sum(r.duration_ms for r in aws) == pytest.approx(faults.modelled_seconds * 1000, rel=1e-6)
    spans = exporter.get_finished_spans()
    assert all(s.attributes["rpc.system"] == "aws-api" and s.attributes["cloud.region"] == "eu-west-2"
               for s in spans if s.name.startswith("SQS."))


def test_a_failed_aws_call_marks_its_span(env: AwsEnvironment) -> None:
    tracer, exporter = in_memory_tracer()
    faults = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=3,
                           plan=FaultPlan(throttle_rate=1.0, services={"dynamodb"}, operations={"ListTables"}))
    dynamodb = instrument_aws_client(faults.attach(env.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))),
                                     tracer)
    with pytest.raises(Exception, match="Throughput|Throttl"):
        dynamodb.list_tables()
    [span] = exporter.get_finished_spans()
    assert span.name == "DynamoDB.ListTables" and span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] in ("ProvisionedThroughputExceededException", "ThrottlingException")


def test_no_personal_data_in_spans_logs_metrics_or_audit_entries(env: AwsEnvironment) -> None:
    """A pipeline step whose AWS calls are traced: step span, CLIENT spans, log, EMF and audit entry."""
    tracer, exporter = in_memory_tracer()
    store, logs, documents = InMemoryAuditStore(), io.StringIO(), []
    trail = AuditTrail(store=store, signer=LocalCheckpointSigner.generate(), origin="bank-a/payments", batch_size=None)
    telemetry = PipelineTelemetry(tracer=tracer, metrics=PaymentMetrics(namespace="FasterPay", service="p",
                                                                        sink=documents.append),
                                  logger=PaymentLogger("p", stream=logs), audit=trail, clock=time.time_ns)
    dynamodb = instrument_aws_client(env.client("dynamodb"), tracer)
    with telemetry.span("authorise", [UETR]):
        dynamodb.list_tables()
        telemetry.status(Answer("sub-1", "MSG-1", "E2E-1", UETR, "RJCT", "AM04"))
    telemetry.flush()
    trail.close()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["DynamoDB.ListTables", "stage authorise"]
    for span in spans:
        refuse_personal_data(dict(span.attributes or {}), where="span")
    for line in logs.getvalue().splitlines():
        record = json.loads(line)
        refuse_personal_data(record, where="log")
        assert record["uetr"] == UETR and len(record["trace_id"]) == 32
    for document in documents:
        refuse_personal_data({k: v for k, v in document.items() if k != "_aws"}, where="metric")
    [segment] = [body for key, body in store.objects().items() if key.startswith("segments/")]
    entry = json.loads(segment)
    refuse_personal_data({"subject": entry["subject"], **entry["refs"]}, where="audit")
    assert (entry["subject"], entry["outcome"], entry["refs"]["reason"]) == (UETR, "RJCT", "AM04")


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
