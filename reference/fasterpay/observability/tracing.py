"""OpenTelemetry traces: one trace per payment, a span per stage, a span per AWS call.

* :func:`in_memory_tracer` gives a tracer whose finished spans land in an ``InMemorySpanExporter``
  (tests and the notebook). In production, give the same code a tracer from your own
  ``TracerProvider`` with an OTLP exporter (for example the ADOT collector, to AWS X-Ray).
* :func:`instrument_aws_client` registers botocore event hooks on one client so that every API call
  becomes a CLIENT span, child of the current span, named ``Service.Operation`` with the attributes
  OpenTelemetry's AWS SDK conventions use (``rpc.system=aws-api``, ``rpc.service``, ``rpc.method``,
  ``cloud.region``, ``aws.request_id``). Request and response bodies are never recorded: they may
  hold personal data. (``opentelemetry-instrumentation-botocore`` does the same for every client at
  once; this hook does it per client, so clients passed in can be traced explicitly.)
* :func:`payment_span` and :func:`stage_span` open the payment's root span and its stage spans;
  attributes go through :func:`~fasterpay.observability.redaction.refuse_personal_data` first.

Every helper takes an optional ``clock`` (nanoseconds since the epoch). The default is wall time; a
clock that follows a latency model (for example :attr:`fasterpay.faults.FaultInjector.modelled_seconds`)
makes traces show modelled rather than moto's in-process timings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .redaction import refuse_personal_data

__all__ = [
    "Clock",
    "StageBreakdown",
    "StageTiming",
    "breakdown_by_stage",
    "in_memory_tracer",
    "instrument_aws_client",
    "payment_span",
    "stage_span",
    "stage_timings",
    "trace_id_hex",
]

Clock = Callable[[], int]
_SPAN_KEY = "fasterpay.observability.span"
_SERVICE_NAMES = {"dynamodb": "DynamoDB", "kms": "KMS", "s3": "S3", "sqs": "SQS", "sts": "STS", "sns": "SNS",
                  "kinesis": "Kinesis", "lambda": "Lambda", "cloudwatch": "CloudWatch"}


def in_memory_tracer(name: str = "fasterpay") -> tuple[Tracer, InMemorySpanExporter]:
    """A tracer that exports each finished span, synchronously, to an in-memory exporter.

    Examples:
        >>> tracer, exporter = in_memory_tracer()
        >>> with tracer.start_as_current_span("hello"):
        ...     pass
        >>> [s.name for s in exporter.get_finished_spans()]
        ['hello']
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer(name), exporter


def trace_id_hex(span: trace.Span | None = None) -> str | None:
    """The 32-hex-digit trace id of ``span`` (default: the current span), or None outside a trace.

    Examples:
        >>> trace_id_hex() is None  # outside any span
        True
    """
    context = (span or trace.get_current_span()).get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def instrument_aws_client(client: Any, tracer: Tracer, *, clock: Clock | None = None) -> Any:
    """Make every API call of ``client`` a CLIENT span; instrumenting twice is harmless. Returns the client.

    Examples:
        >>> dynamodb = instrument_aws_client(env.client("dynamodb"), tracer)  # doctest: +SKIP
    """
    service = client.meta.service_model.service_name
    region = client.meta.region_name or ""
    now = clock

    def before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
        rpc_service = _SERVICE_NAMES.get(service, model.service_model.service_id.replace(" ", ""))
        span = tracer.start_span(
            f"{rpc_service}.{model.name}", kind=SpanKind.CLIENT, start_time=now() if now else None,
            attributes={"rpc.system": "aws-api", "rpc.service": rpc_service, "rpc.method": model.name,
                        "cloud.region": region})
        context[_SPAN_KEY] = span

    def after_call(http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is None:
            return
        metadata = parsed.get("ResponseMetadata", {})
        if metadata.get("RequestId"):
            span.set_attribute("aws.request_id", metadata["RequestId"])
        span.set_attribute("http.response.status_code", http_response.status_code)
        retries = metadata.get("RetryAttempts")
        if retries:
            span.set_attribute("aws.retry_attempts", retries)
        if http_response.status_code >= 300:
            code = str(parsed.get("Error", {}).get("Code") or http_response.status_code)
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, code))
        span.end(end_time=now() if now else None)

    def after_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is None:
            return
        span.set_attribute("error.type", type(exception).__name__)
        span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end(end_time=now() if now else None)

    uid = f"fasterpay-tracing-{id(tracer)}"
    events = client.meta.events
    events.register("before-call", before_call, unique_id=f"{uid}-before")
    events.register("after-call", after_call, unique_id=f"{uid}-after")
    events.register("after-call-error", after_call_error, unique_id=f"{uid}-error")
    return client


@contextmanager
def _ended_on_exit(span: trace.Span, clock: Clock | None) -> Iterator[None]:
    """Make ``span`` current; on exit mark an exception as an error status and end it at ``clock()``."""
    with trace.use_span(span, end_on_exit=False):
        try:
            yield
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end(end_time=clock() if clock else None)


@contextmanager
def payment_span(tracer: Tracer, *, end_to_end_id: str, uetr: str, clock: Clock | None = None,
                 attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """The root span of one payment's trace, keyed by its EndToEndId and UETR.

    Examples:
        >>> with payment_span(tracer, end_to_end_id="E2E-1", uetr="8a562c67-ca16-48ba-b074-65581be6f011"):
        ...     pass  # doctest: +SKIP
    """
    attrs = {"payment.end_to_end_id": end_to_end_id, "payment.uetr": uetr, **(attributes or {})}
    refuse_personal_data(attrs, where="span")
    span = tracer.start_span("payment", context=trace.set_span_in_context(trace.INVALID_SPAN),
                             kind=SpanKind.SERVER, start_time=clock() if clock else None, attributes=attrs)
    with _ended_on_exit(span, clock):
        yield span


@contextmanager
def stage_span(tracer: Tracer, stage: str, *, clock: Clock | None = None,
               attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span for one pipeline stage, child of the current span (the payment).

    Examples:
        >>> with stage_span(tracer, "authorise", attributes={"payment.status": "ACTC"}):
        ...     pass  # doctest: +SKIP
    """
    attrs = {"payment.stage": stage, **(attributes or {})}
    refuse_personal_data(attrs, where="span")
    span = tracer.start_span(f"stage {stage}", start_time=clock() if clock else None, attributes=attrs)
    with _ended_on_exit(span, clock):
        yield span


@dataclass(frozen=True)
class StageTiming:
    """One span's duration, placed in its payment's trace (for the latency breakdown)."""

    trace_id: str
    end_to_end_id: str
    name: str  # "payment", "stage authorise", "DynamoDB.UpdateItem", ...
    stage: str | None  # the enclosing stage, for AWS call spans and stage spans
    start_ms: float  # from the start of the payment
    duration_ms: float
    error: bool


def stage_timings(spans: list[ReadableSpan] | tuple[ReadableSpan, ...]) -> list[StageTiming]:
    """Flatten finished spans into rows per payment: offsets and durations in milliseconds.

    Examples:
        >>> rows = stage_timings(exporter.get_finished_spans())  # doctest: +SKIP
    """
    by_id = {s.context.span_id: s for s in spans}
    roots = {s.context.trace_id: s for s in spans if s.name == "payment"}
    out = []
    for s in spans:
        root = roots.get(s.context.trace_id)
        if root is None or s.start_time is None or s.end_time is None or root.start_time is None:
            continue
        stage = None
        cursor: ReadableSpan | None = s
        while cursor is not None:
            if cursor.attributes and "payment.stage" in cursor.attributes:
                stage = str(cursor.attributes["payment.stage"])
                break
            parent = cursor.parent
            cursor = by_id.get(parent.span_id) if parent is not None else None
        out.append(StageTiming(
            trace_id=f"{s.context.trace_id:032x}",
            end_to_end_id=str((root.attributes or {}).get("payment.end_to_end_id", "")),
            name=s.name, stage=stage,
            start_ms=(s.start_time - root.start_time) / 1e6,
            duration_ms=(s.end_time - s.start_time) / 1e6,
            error=s.status.status_code is StatusCode.ERROR,
        ))
    return out


@dataclass(frozen=True)
class StageBreakdown:
    """Where one stage's time goes, over every payment traced: waiting on AWS, or working in process."""

    stage: str
    payments: int
    mean_ms: float
    mean_aws_ms: float
    p99_ms: float

    @property
    def mean_in_process_ms(self) -> float:
        return self.mean_ms - self.mean_aws_ms


def breakdown_by_stage(timings: list[StageTiming], stages: tuple[str, ...]) -> list[StageBreakdown]:
    """Mean and p99 duration of each stage, and the mean time spent in its AWS calls, in ``stages`` order.

    Examples:
        >>> breakdown_by_stage(stage_timings(exporter.get_finished_spans()), ("ingest", "clear"))  # doctest: +SKIP
    """
    out = []
    for stage in stages:
        spans = [t for t in timings if t.name == f"stage {stage}"]
        if not spans:
            continue
        durations = sorted(t.duration_ms for t in spans)
        aws = sum(t.duration_ms for t in timings if t.stage == stage and not t.name.startswith(("stage ", "payment")))
        p99 = durations[min(len(durations) - 1, int(0.99 * len(durations)))]
        out.append(StageBreakdown(stage, len(spans), sum(durations) / len(spans), aws / len(spans), p99))
    return out
