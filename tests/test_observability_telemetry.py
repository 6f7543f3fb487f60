"""Structured logs, EMF metrics and the personal-data guard."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from fasterpay.observability import (
    EmfError,
    PaymentLogger,
    PaymentMetrics,
    PersonalDataError,
    in_memory_tracer,
    payment_span,
    refuse_personal_data,
    validate_emf,
)

AT = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("fields", [
    {"iban": "tok_iban_1"}, {"debtor_iban": "x"}, {"DbtrAcct.IBAN": "x"}, {"creditorName": "x"}, {"Nm": "x"},
    {"name": "x"}, {"email": "x"}, {"postal_address": "x"}, {"Ustrd": "x"}, {"date_of_birth": "x"},
    {"card_number": "x"}, {"ref": "GB82 WEST 1234 5698 7654 32"}, {"ref": "4111 1111 1111 1111"},
    {"ref": "ann.smith@example.com"}, {"refs": ["ok", "DE89370400440532013000"]},
])
def test_personal_data_is_refused_by_name_or_by_value(fields: dict) -> None:
    with pytest.raises(PersonalDataError):
        refuse_personal_data(fields)


@pytest.mark.parametrize("fields", [
    {"end_to_end_id": "E2E-2026-0001", "uetr": "8a562c67-ca16-48ba-b074-65581be6f011"},
    {"debtor": "tok_iban_3f9a", "creditor_token": "dtk_iban_77aa"}, {"stage_name": "authorise"},
    {"table_name": "payments"}, {"queue_name": "clearing"}, {"amount_minor": 1250, "currency": "GBP"},
    {"timespan_ms": 12}, {"ref": "12345678"}, {"ref": "4111111111111112"},  # fails Luhn: not a card number
])
def test_references_and_tokens_pass(fields: dict) -> None:
    refuse_personal_data(fields)


def test_log_lines_are_json_with_correlation_and_trace_ids() -> None:
    out = io.StringIO()
    log = PaymentLogger("payments-api", stream=out, clock=lambda: AT).bind(end_to_end_id="E2E-1", uetr="u-1")
    tracer, _ = in_memory_tracer()
    with payment_span(tracer, end_to_end_id="E2E-1", uetr="u-1") as span:
        log.info("authorised", stage="authorise", status="ACTC")
        trace_id = f"{span.get_span_context().trace_id:032x}"
    log.debug("hidden")
    line = json.loads(out.getvalue())
    assert line == {"timestamp": "2026-11-28T09:30:00.000Z", "level": "INFO", "service": "payments-api",
                    "message": "authorised", "end_to_end_id": "E2E-1", "uetr": "u-1", "trace_id": trace_id,
                    "span_id": line["span_id"], "stage": "authorise", "status": "ACTC"}
    assert len(out.getvalue().splitlines()) == 1  # DEBUG is below the INFO level


def test_a_personal_data_log_line_is_refused_and_nothing_is_written() -> None:
    out = io.StringIO()
    log = PaymentLogger("payments-api", stream=out)
    with pytest.raises(PersonalDataError, match="debtor_name"):
        log.info("screened", debtor_name="Ann Smith")
    with pytest.raises(PersonalDataError, match="IBAN"):
        log.info("looked up GB82WEST12345698765432")
    with pytest.raises(PersonalDataError):
        log.bind(iban="x")
    with pytest.raises(ValueError):
        log.log("CHATTY", "x")
    assert out.getvalue() == ""


def test_emf_documents_follow_the_spec_with_exact_dimensions() -> None:
    docs: list[dict] = []
    metrics = PaymentMetrics(namespace="FasterPay", service="payments", sink=docs.append, clock=lambda: AT)
    metrics.stage("authorise", latency_ms=12.5, ok=True)
    metrics.stage("authorise", latency_ms=30.0, ok=False)
    metrics.stage("clear", latency_ms=8.0, ok=True)
    metrics.detokenize("scheme-gateway")
    assert metrics.flush() == 3
    for doc in docs:
        validate_emf(doc)
        assert doc["_aws"]["Timestamp"] == int(AT.timestamp() * 1000) and doc["service"] == "payments"
    by_stage = {d.get("stage") or d.get("caller"): d for d in docs}
    assert by_stage["authorise"]["StageLatency"] == [12.5, 30.0]
    assert by_stage["authorise"]["StageSuccess"] == [1.0] and by_stage["authorise"]["StageFailure"] == [1.0]
    assert by_stage["authorise"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["stage", "service"]]
    assert by_stage["scheme-gateway"]["Detokenize"] == [1.0]
    assert metrics.flush() == 0


def test_more_than_a_hundred_values_split_into_several_documents() -> None:
    docs: list[dict] = []
    metrics = PaymentMetrics(namespace="FasterPay", service="payments", sink=docs.append)
    for i in range(250):
        metrics.stage("ingest", latency_ms=float(i), ok=True)
    metrics.flush()
    assert sum(len(d["StageLatency"]) for d in docs) == 250
    for doc in docs:
        validate_emf(doc)


def test_a_person_is_never_a_metric_dimension() -> None:
    metrics = PaymentMetrics(namespace="FasterPay", service="payments", sink=lambda d: None)
    with pytest.raises(PersonalDataError):
        metrics.detokenize("ann.smith@example.com")


@pytest.mark.parametrize("doc", [
    {}, {"_aws": {"Timestamp": "now", "CloudWatchMetrics": [{}]}},
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}},
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["d"]],
                                                     "Metrics": [{"Name": "M"}]}]}, "M": 1},
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
                                                     "Metrics": [{"Name": "M"}]}]}, "M": "1"},
    {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": []}]}},
])
def test_invalid_emf_is_named(doc: dict) -> None:
    with pytest.raises(EmfError):
        validate_emf(doc)
