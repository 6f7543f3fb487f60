"""The payment pipeline's telemetry: its steps traced, measured and logged, its status changes audited.

:class:`PipelineTelemetry` implements the pipeline's ``Telemetry`` port (``step``, ``span``, ``status``;
see :mod:`fasterpay.pipeline.stages`) with the pieces of this package and of :mod:`fasterpay.audit`:

* **a span per logical step** (``ingest``, ``route``, ``scheme`` and ``settle`` per batch; ``authorise``
  and ``clear`` per payment), named ``stage <step>``, child of whatever span is current (in Lambda, the
  handler's span from the OpenTelemetry layer). Its ``payment.uetrs`` attribute lists the payments it
  worked on, read when the step ends (ingest learns them as it parses). UETRs are references, not
  personal data; every attribute still goes through the guard.
* **EMF metrics per step**: ``StageLatency`` and a ``StageSuccess`` or ``StageFailure`` count per span,
  dimension ``stage``, flushed once per invocation (at ``accept.answered`` and ``clear.booked``) or on
  :meth:`~PipelineTelemetry.flush`.
* **a JSON log line per status**, and one per failed step, with UETR, EndToEndId, status and reason.
* **an audit entry per status**: ``payment.status`` with the UETR as subject and references only, into
  an :class:`~fasterpay.audit.AuditTrail`. The trail is flushed when a handler has written every status
  of its batch and before it sends any answer (``accept.recorded``, ``clear.decided``), so no answer goes
  out without its record stored; if the write fails, the handler fails the batch and the redelivery
  audits again. Audit is therefore at least once: a redelivered payment's status appears twice.

An id that is not one reference-shaped word (free text in an EndToEndId, say) enters logs and the audit
trail as ``sha256:`` and the first 32 hex digits of its SHA-256: telemetry must never refuse a payment.

:attr:`~PipelineTelemetry.logged_bytes` counts the bytes of the EMF documents and log lines it produced,
so the cost model can price CloudWatch Logs ingestion from real documents.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Tracer

from ..audit import AuditEntry, AuditTrail, InvalidEntryError

from .emf import PaymentMetrics
from .logs import PaymentLogger
from .redaction import PersonalDataError, personal_value_registry, refuse_personal_data
from .tracing import stage_span

if TYPE_CHECKING:  # only for the annotation: this module does not need the pipeline package
    from ..pipeline import Answer

__all__ = ["AUDIT_FLUSH_STEPS", "INVOCATION_END_STEPS", "PipelineTelemetry"]

#: Steps after which every status of the batch is written and no answer is sent yet: flush the trail.
AUDIT_FLUSH_STEPS = ("accept.recorded", "clear.decided")
#: Steps that end an invocation: flush the EMF metrics.
INVOCATION_END_STEPS = ("accept.answered", "clear.booked")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#=+-]{0,199}")


def _digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _reference(value: str) -> str:
    """``value`` if it is one reference-shaped word holding no personal data, else a digest of it."""
    if _REFERENCE.fullmatch(value):
        try:
            refuse_personal_data({"reference": value})
            return value
        except PersonalDataError:
            pass
    return _digest(value)


class PipelineTelemetry:
    """The pipeline's ``Telemetry`` port: spans, EMF metrics, JSON logs and audit entries.

    ``clock`` gives nanoseconds since the epoch, for span times, step latency and audit times.
    Every dependency is passed in; one instance serves one execution environment (one writer per trail).

    Examples:
        >>> import io, time
        >>> from fasterpay.audit import InMemoryAuditStore, LocalCheckpointSigner
        >>> from fasterpay.observability import in_memory_tracer
        >>> from fasterpay.pipeline import Answer
        >>> tracer, exporter = in_memory_tracer()
        >>> trail = AuditTrail(store=InMemoryAuditStore(), signer=LocalCheckpointSigner.generate(),
        ...                    origin="bank-a/payments", batch_size=None)
        >>> documents = []
        >>> telemetry = PipelineTelemetry(
        ...     tracer=tracer, metrics=PaymentMetrics(namespace="FasterPay", service="pipeline", sink=documents.append),
        ...     logger=PaymentLogger("pipeline", stream=io.StringIO()), audit=trail, clock=time.time_ns)
        >>> uetr = "8a562c67-ca16-48ba-b074-65581be6f011"
        >>> with telemetry.span("clear", [uetr]):
        ...     telemetry.status(Answer("sub-1", "MSG-1", "E2E-1", uetr, "ACSP"))
        >>> telemetry.step("clear.decided")  # the trail is flushed: stored before any answer is sent
        >>> telemetry.step("clear.booked")  # the invocation's EMF documents are emitted
        >>> trail.stored, [s.name for s in exporter.get_finished_spans()], documents[0]["stage"]
        (1, ['stage clear'], 'clear')
        >>> telemetry.logged_bytes > 0
        True
    """

    def __init__(self, *, tracer: Tracer, metrics: PaymentMetrics, logger: PaymentLogger, audit: AuditTrail,
                 clock: Callable[[], int], actor: str = "payment-pipeline") -> None:
        self.tracer = tracer
        self.metrics = metrics
        self.logger = logger
        self.audit = audit
        self.clock = clock
        self.actor = actor
        self._lock = threading.Lock()  # a batch's per-payment work may run on a thread pool
        self._bytes_before = metrics.bytes_emitted + logger.bytes_written

    @property
    def logged_bytes(self) -> int:
        """Bytes of the EMF documents (as emitted so far) and JSON log lines since this was created."""
        return self.metrics.bytes_emitted + self.logger.bytes_written - self._bytes_before

    def step(self, name: str) -> None:
        """Flush the audit trail before answers go out, and the metrics at the end of an invocation."""
        if name in AUDIT_FLUSH_STEPS:
            self.audit.flush()
        if name in INVOCATION_END_STEPS:
            self.flush()

    def flush(self) -> int:
        """Emit the pending EMF documents now; returns how many."""
        with self._lock:
            return self.metrics.flush()

    @contextmanager
    def span(self, name: str, uetrs: Sequence[str]) -> Iterator[Any]:
        """A ``stage <name>`` span around the step; its latency and outcome go to the metrics."""
        started = self.clock()
        ok = False
        try:
            with stage_span(self.tracer, name, clock=self.clock) as span:
                try:
                    yield span
                    ok = True
                finally:  # the UETRs as the step ends: ingest learns them as it parses
                    span.set_attributes({"payment.uetrs": [_reference(str(u)) for u in uetrs],
                                         "payment.count": len(uetrs)})
        finally:
            latency_ms = (self.clock() - started) / 1e6
            with self._lock:
                self.metrics.stage(name, latency_ms=latency_ms, ok=ok)
                if not ok:
                    self.logger.error("step failed", stage=name, payments=len(uetrs),
                                      uetrs=[_reference(str(u)) for u in uetrs])

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        """Register the batch's names and account numbers with the personal-data guard (as keyed hashes, in
        the process's registry, the one the logger, the metrics, the spans and the audit entries consult),
        so a log line, span or metric that carried one would be refused."""
        registry = personal_value_registry()
        for value, kind in values:
            registry.register(value, kind=kind)

    def status(self, answer: Answer) -> None:
        """Log the status, and append it to the audit trail by reference (UETR, EndToEndId, reason)."""
        at = datetime.fromtimestamp(self.clock() / 1e9, tz=UTC)
        subject = _reference(answer.uetr or f"submission:{answer.submission_id}")
        refs = {key: _reference(value) for key, value in (
            ("end_to_end_id", answer.end_to_end_id), ("msg_id", answer.msg_id),
            ("submission_id", answer.submission_id), ("reason", answer.reason or "")) if value}
        outcome = _reference(answer.status)
        try:
            entry = AuditEntry("payment.status", self.actor, subject, outcome, at, refs)
        except InvalidEntryError:  # a value the entry's own checks refuse: digests only
            entry = AuditEntry("payment.status", self.actor, _digest(subject), outcome, at,
                               {key: _digest(value) for key, value in refs.items()})
        fields = {"uetr": entry.subject if answer.uetr else None, "end_to_end_id": entry.refs.get("end_to_end_id"),
                  "submission_id": None if answer.uetr else entry.refs.get("submission_id"), "status": outcome,
                  "reason": entry.refs.get("reason")}
        with self._lock:
            self.logger.info("payment status", **{k: v for k, v in fields.items() if v is not None})
            self.audit.append(entry)
