"""PipelineTelemetry on a real pipeline run (moto): every status it is told is audited and the trail verifies,
a span per logical step carries the batch's UETRs and no personal data, EMF documents are valid, and the
bytes it reports are the bytes it emitted."""

from __future__ import annotations

import io
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fasterpay.audit import (
    AuditStoreError,
    AuditTrail,
    InMemoryAuditStore,
    LocalCheckpointSigner,
    verify_export,
    write_export,
)
from fasterpay.aws import open_environment
from fasterpay.observability import (
    PaymentLogger,
    PaymentMetrics,
    PersonalDataError,
    PipelineTelemetry,
    in_memory_tracer,
    refuse_personal_data,
    refuse_personal_text,
    validate_emf,
)
from fasterpay.pipeline import Answer, FanOut
from simulations.pipeline_bench import RunSettings, RunSummary, run_pipeline

STEP_SPANS = {"stage ingest", "stage route", "stage authorise", "stage scheme", "stage clear", "stage settle", "stage vault"}
UETR = "8a562c67-ca16-48ba-b074-65581be6f011"


class _Recorder:
    """Every status the handlers report, to compare with the trail."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def step(self, name: str) -> None:
        pass

    def status(self, answer: Answer) -> None:
        self.answers.append(answer)

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        pass

    @contextmanager
    def span(self, name: str, uetrs: Sequence[str]) -> Iterator[None]:
        yield None


@dataclass
class _Run:
    summary: RunSummary
    telemetry: PipelineTelemetry
    spans: list[Any]
    documents: list[dict[str, Any]]
    log: str
    store: InMemoryAuditStore
    trail: AuditTrail
    public_pem: bytes
    answers: list[Answer]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for key, body in sorted(self.store.objects().items())
                if key.startswith("segments/") for line in body.splitlines()]


def _telemetry(stream: io.StringIO, documents: list[dict[str, Any]], trail: AuditTrail) -> tuple[PipelineTelemetry, Any]:
    tracer, exporter = in_memory_tracer("fasterpay.pipeline")
    telemetry = PipelineTelemetry(
        tracer=tracer, metrics=PaymentMetrics(namespace="FasterPay/Pipeline", service="pipeline", sink=documents.append),
        logger=PaymentLogger("pipeline", stream=stream), audit=trail, clock=time.time_ns)
    return telemetry, exporter


def _trail(store: InMemoryAuditStore | None = None, signer: Any = None) -> AuditTrail:
    return AuditTrail(store=store or InMemoryAuditStore(), signer=signer or LocalCheckpointSigner.generate(),
                      origin="bank-a/payments", batch_size=None)


@pytest.fixture(scope="module")
def run() -> Iterator[_Run]:
    store, signer = InMemoryAuditStore(), LocalCheckpointSigner.generate()
    trail = _trail(store, signer)
    stream, documents = io.StringIO(), []
    telemetry, exporter = _telemetry(stream, documents, trail)
    recorder = _Recorder()
    with open_environment("moto", region="eu-west-2") as env:
        summary = run_pipeline(env, RunSettings(payments=20, seed=11), name_prefix="obs",
                               telemetry=FanOut(telemetry, recorder))
    trail.close()
    yield _Run(summary, telemetry, list(exporter.get_finished_spans()), documents, stream.getvalue(), store, trail,
               signer.public_key_pem(), recorder.answers)


def test_the_run_is_a_real_one(run: _Run) -> None:
    assert run.summary.ok and run.summary.payments == 20
    assert {a.status for a in run.answers} >= {"ACCP", "ACSP", "RJCT"}


def test_every_status_change_is_in_the_audit_trail(run: _Run) -> None:
    entries = run.entries()
    assert len(entries) == len(run.answers) == run.trail.size
    logged = Counter((e["subject"], e["outcome"], e["refs"].get("reason")) for e in entries)
    told = Counter((a.uetr or f"submission:{a.submission_id}", a.status, a.reason) for a in run.answers)
    assert logged == told
    assert all(e["kind"] == "payment.status" and e["actor"] == "payment-pipeline" for e in entries)


def test_every_held_payment_ends_final_in_the_trail_and_matches_the_reconciled_count(run: _Run) -> None:
    history: dict[str, list[str]] = defaultdict(list)
    for e in run.entries():
        history[e["subject"]].append(e["outcome"])
    held = [u for u, outcomes in history.items() if "ACCP" in outcomes]
    assert held and all(outcomes[-1] in ("ACSP", "ACSC", "RJCT") for u, outcomes in history.items() if u in held)
    # ACSP becomes ACSC when the settlement cycle closes (the settlement job, not a handler)
    cleared = sum(1 for outcomes in history.values() if outcomes[-1] in ("ACSP", "ACSC"))
    assert cleared == run.summary.statuses.get("ACSC", 0)


def test_the_trail_verifies_offline(run: _Run, tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", run.store.objects())
    report = verify_export(folder, run.public_pem)
    assert report.intact, str(report)
    assert report.entries == run.trail.size and report.unsigned_entries == 0
    segment = sorted(k for k in run.store.objects() if k.startswith("segments/"))[0]
    changed = {**run.store.objects(), segment: run.store.objects()[segment].replace(b'"ACCP"', b'"ACSC"', 1)}
    assert not verify_export(write_export(tmp_path / "tampered", changed), run.public_pem).intact


def test_a_span_per_logical_step_with_the_batch_uetrs_and_no_personal_data(run: _Run) -> None:
    names = Counter(s.name for s in run.spans)
    assert set(names) == STEP_SPANS
    audited = {e["subject"] for e in run.entries()}
    for span in run.spans:
        attributes = dict(span.attributes or {})
        refuse_personal_data(attributes, where="span")
        uetrs = list(attributes["payment.uetrs"])
        assert attributes["payment.count"] == len(uetrs) and set(uetrs) <= audited
        if span.name in ("stage authorise", "stage clear"):
            assert len(uetrs) == 1  # per payment
    ingest = [s for s in run.spans if s.name == "stage ingest"]
    assert all(s.attributes["payment.uetrs"] for s in ingest)  # read when the step ends


def test_emf_documents_validate_and_count_every_step(run: _Run) -> None:
    assert run.documents
    outcomes: Counter[str] = Counter()
    for document in run.documents:
        validate_emf(document)
        refuse_personal_data({k: v for k, v in document.items() if k != "_aws"}, where="metric")
        spans = sum(document.get("StageSuccess", [])) + sum(document.get("StageFailure", []))
        assert spans == len(document["StageLatency"])  # one latency and one outcome count per span
        outcomes[document["stage"]] += int(spans)
    assert outcomes == Counter(s.attributes["payment.stage"] for s in run.spans)


def test_log_lines_are_json_with_correlation_ids_and_no_personal_data(run: _Run) -> None:
    lines = [json.loads(line) for line in run.log.splitlines()]
    statuses = [line for line in lines if line["message"] == "payment status"]
    assert len(statuses) == len(run.answers)
    for line in lines:
        refuse_personal_data(line, where="log")
    assert all(line.get("uetr") or line.get("submission_id") for line in statuses)


def test_no_personal_data_in_spans_logs_metrics_or_audit_entries(run: _Run) -> None:
    for span in run.spans:
        refuse_personal_data(dict(span.attributes or {}), where="span")
    for line in run.log.splitlines():
        refuse_personal_data(json.loads(line), where="log")
        refuse_personal_text(line, where="log line")
    for document in run.documents:
        refuse_personal_data({k: v for k, v in document.items() if k != "_aws"}, where="metric")
    for entry in run.entries():
        refuse_personal_data({"subject": entry["subject"], "outcome": entry["outcome"], **entry["refs"]}, where="audit")


def test_logged_bytes_are_the_bytes_emitted(run: _Run) -> None:
    emf = sum(len(json.dumps(d, separators=(",", ":")).encode()) + 1 for d in run.documents)
    assert run.telemetry.logged_bytes > 0
    assert run.telemetry.logged_bytes == emf + len(run.log.encode())


# -- the port's contract, without a pipeline --------------------------------------------------------------
def test_the_trail_is_stored_before_answers_go_out_and_metrics_flush_per_invocation() -> None:
    trail, stream, documents = _trail(), io.StringIO(), []
    telemetry, _ = _telemetry(stream, documents, trail)
    with telemetry.span("authorise", [UETR]):
        pass
    telemetry.status(Answer("sub-1", "MSG-1", "E2E-1", UETR, "ACCP"))
    assert trail.stored == 0
    telemetry.step("accept.recorded")
    assert trail.stored == 1 and documents == []
    telemetry.step("accept.answered")
    assert [d["stage"] for d in documents] == ["authorise"]


class _DownStore(InMemoryAuditStore):
    def put_segment(self, first: int, end: int, body: bytes) -> None:
        raise AuditStoreError("the audit bucket is unreachable")


def test_a_trail_that_cannot_store_fails_the_batch_before_any_answer_is_sent() -> None:
    trail = _trail(_DownStore())
    telemetry, _ = _telemetry(io.StringIO(), [], trail)
    telemetry.status(Answer("sub-1", "MSG-1", "E2E-1", UETR, "ACSP"))
    with pytest.raises(AuditStoreError):  # raised at the step: the handler fails and SQS redelivers the batch
        telemetry.step("clear.decided")
    assert (trail.size, trail.stored) == (1, 0)  # kept buffered, never checkpointed


def test_ingest_uetrs_are_read_when_the_step_ends() -> None:
    telemetry, exporter = _telemetry(io.StringIO(), [], _trail())
    uetrs: list[str] = []
    with telemetry.span("ingest", uetrs):
        uetrs.append(UETR)
    [span] = exporter.get_finished_spans()
    assert list(span.attributes["payment.uetrs"]) == [UETR] and span.attributes["payment.count"] == 1


def test_a_failed_step_marks_its_span_counts_a_failure_and_logs_an_error() -> None:
    stream, documents = io.StringIO(), []
    telemetry, exporter = _telemetry(stream, documents, _trail())
    with pytest.raises(RuntimeError), telemetry.span("clear", [UETR]):
        raise RuntimeError("throttled")
    telemetry.flush()
    [span] = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert documents[0]["StageFailure"] == [1.0] and "StageSuccess" not in documents[0]
    assert json.loads(stream.getvalue())["level"] == "ERROR"


@pytest.mark.parametrize("end_to_end_id", ["GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432",
                                           "invoice for Ann Smith", "4111.1111.1111.1111"])
def test_an_id_that_is_not_a_reference_enters_as_a_digest_and_never_fails_the_payment(end_to_end_id: str) -> None:
    store, stream = InMemoryAuditStore(), io.StringIO()
    trail = _trail(store)
    telemetry, _ = _telemetry(stream, [], trail)
    telemetry.status(Answer("sub-1", "MSG-1", end_to_end_id, UETR, "RJCT", "FF01"))
    trail.close()
    [body] = [v for k, v in store.objects().items() if k.startswith("segments/")]
    entry = json.loads(body)
    assert entry["outcome"] == "RJCT" and entry["refs"]["end_to_end_id"].startswith("sha256:")
    refuse_personal_text(stream.getvalue())
    assert end_to_end_id not in stream.getvalue() and end_to_end_id.encode() not in body


def test_a_uetr_that_is_not_a_reference_enters_a_span_as_a_digest() -> None:
    telemetry, exporter = _telemetry(io.StringIO(), [], _trail())
    with telemetry.span("route", ["GB82WEST12345698765432", UETR]):
        pass
    [span] = exporter.get_finished_spans()
    refuse_personal_data(dict(span.attributes), where="span")
    assert span.attributes["payment.uetrs"][0].startswith("sha256:") and span.attributes["payment.uetrs"][1] == UETR


def test_the_pipeline_registers_the_names_it_tokenises_so_telemetry_holding_one_is_refused() -> None:
    """Item 7 of the trust fixes: a plain name has no pattern; the guard knows it because ingest told it."""
    from fasterpay.iso20022 import parse_pacs008
    from fasterpay.observability import personal_value_registry
    from simulations.pipeline_bench import _messages

    settings = RunSettings(payments=6, seed=11)
    trail = _trail()
    telemetry, _ = _telemetry(io.StringIO(), [], trail)
    personal_value_registry().clear()
    with open_environment("moto", region="eu-west-2") as env:
        run_pipeline(env, settings, name_prefix="reg", telemetry=telemetry)
    names = []
    for message in _messages(settings, 0, settings.payments):
        try:
            tx = parse_pacs008(message.xml).transactions[0]
        except Exception:  # noqa: BLE001 - the invalid cases
            continue
        if message.case == "valid":
            names += [tx.debtor.name, tx.creditor.name]
    assert names
    for name in names:
        assert personal_value_registry().find(f"refund to {name.upper()} requested") == "name", name
        with pytest.raises(PersonalDataError):
            PaymentLogger("pipeline", stream=io.StringIO()).info("payment status", note=f"paid {name}")
        with pytest.raises(PersonalDataError):
            refuse_personal_data({"outer": {"inner": [f"for {name}"]}}, where="span")
