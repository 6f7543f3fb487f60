"""The observability article's simulations: days of SLO traffic replayed from a real pipeline run, detokenize
traffic with a misuse, and the per-step view of a traced run.

None of this is copied into a service. :func:`simulate_long_run` replays the per-payment latencies that a
pipeline run modelled (:attr:`simulations.pipeline_bench.RunSummary.latency_samples`) over days of
traffic, with incidents injected, for the burn-rate alerts. :func:`simulate_detokenize_traffic` produces
per-caller detokenize events with a misuse spike, for the spike detector. :func:`step_breakdown` turns the
spans that :class:`fasterpay.observability.PipelineTelemetry` exported into one row per logical step, and
:func:`status_histories` reads each payment's statuses back from the audit trail's segments.
:func:`captured_telemetry` wires a ``PipelineTelemetry`` whose spans, EMF documents and log lines stay in
memory, for the notebook to show.
"""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fasterpay.audit import AuditTrail
from fasterpay.metrics import percentile
from fasterpay.observability import (
    AlertEvaluation,
    BurnRateAlert,
    PaymentLogger,
    PaymentMetrics,
    PipelineTelemetry,
    SliCounts,
    Slo,
    in_memory_tracer,
)
from fasterpay.pipeline import LOGICAL_STEPS

__all__ = [
    "EARLY_STEPS",
    "TRACED_STEPS",
    "Incident",
    "Misuse",
    "StepSpans",
    "TelemetryCapture",
    "captured_telemetry",
    "minutes_to_alert",
    "simulate_detokenize_traffic",
    "simulate_long_run",
    "status_histories",
    "step_breakdown",
]

#: Steps before the authorisation decision: latency added here delays it and the whole path.
EARLY_STEPS = ("ingest", "route", "authorise")
#: The spans the pipeline opens, in the order a payment meets them ("scheme" is the clear handler's batch
#: submission; "clear" its per-payment decision).
TRACED_STEPS = ("ingest", "route", "authorise", "scheme", "clear", "settle")


@dataclass(frozen=True)
class Incident:
    """During [start_s, end_s): extra technical failures, and extra latency in ``stage`` on a share of payments.

    Latency added in ``ingest``, ``route`` or ``authorise`` delays the authorisation decision and the
    path to ACSP; latency added in ``clear`` or ``settle`` delays the path to ACSP only.
    """

    name: str
    start_s: float
    end_s: float
    failure_rate: float = 0.0
    extra_latency_ms: float = 0.0
    affected: float = 0.0
    stage: str = "clear"

    def __post_init__(self) -> None:
        if self.stage not in LOGICAL_STEPS:
            raise ValueError(f"stage must be one of {LOGICAL_STEPS}, got {self.stage!r}")
        if not (0 <= self.failure_rate <= 1 and 0 <= self.affected <= 1) or self.end_s <= self.start_s:
            raise ValueError("need rates between 0 and 1 and end_s after start_s")


def minutes_to_alert(evaluation: AlertEvaluation, alert: BurnRateAlert, incident: Incident) -> float | None:
    """Minutes from ``incident``'s start to the first firing of ``alert`` it caused, or None.

    None when the alert did not fire between the incident's start and the end of its long window after the
    incident, or when it was already firing as the incident began (the baseline burns: nothing to time).

    Examples:
        >>> minutes_to_alert(evaluation, fast, Incident("outage", 3_600, 5_400, failure_rate=0.02))  # doctest: +SKIP
        3.0
    """
    for firing in evaluation.firings:
        if firing.alert != alert:
            continue
        if firing.start_s <= incident.start_s and (firing.end_s is None or firing.end_s > incident.start_s):
            return None  # already firing
        if incident.start_s <= firing.start_s < incident.end_s + alert.long_window_s:
            return (firing.start_s - incident.start_s) / 60
    return None


def simulate_long_run(
    latency_samples: Mapping[str, Sequence[float]],
    *,
    duration_s: int,
    rate_per_s: float,
    incidents: Sequence[Incident],
    authorisation: Slo,
    critical_path: Slo,
    seed: int,
    base_failure_rate: float = 1e-5,
    bucket_s: int = 60,
) -> tuple[SliCounts, SliCounts]:
    """Days of traffic whose latencies are drawn from a pipeline run's samples, with incidents.

    ``latency_samples`` is a run summary's ``latency_samples``: modelled milliseconds per payment under
    ``"authorise"`` (submission to the authorisation decision) and ``"ingest_to_acsp"``. The two lists are
    not paired per payment, so each event draws one of each independently. Returns bucketed good/total
    counts for the authorisation SLO (success within its threshold) and the critical-path SLO (latency of
    authorised payments within its threshold).

    Examples:
        >>> samples = {"authorise": [20.0, 30.0], "ingest_to_acsp": [60.0, 90.0]}
        >>> auth, crit = simulate_long_run(samples, duration_s=600, rate_per_s=1, incidents=[],
        ...     authorisation=Slo("a", 0.9999, 150), critical_path=Slo("c", 0.99, 300), seed=7)
        >>> sum(auth.total), auth.ratio_good()
        (600, 1.0)
    """
    authorise = [float(v) for v in latency_samples.get("authorise", ())]
    to_acsp = [float(v) for v in latency_samples.get("ingest_to_acsp", ())]
    if not authorise or not to_acsp:
        raise ValueError("need latency samples under 'authorise' and 'ingest_to_acsp' (a RunSummary's "
                         "latency_samples) to draw from")
    rng = random.Random(seed)
    auth, crit = SliCounts(bucket_s=bucket_s), SliCounts(bucket_s=bucket_s)
    step = 1.0 / rate_per_s
    auth_limit = authorisation.threshold_ms if authorisation.threshold_ms is not None else float("inf")
    path_limit = critical_path.threshold_ms if critical_path.threshold_ms is not None else float("inf")
    events = int(duration_s * rate_per_s)
    draw = rng.random
    counts = [0, 0, 0, 0]  # authorisations, bad ones, authorised payments, late ones: in the current bucket

    def flush(bucket: int) -> None:  # a bucket's counts at once, as a CloudWatch metric delivers them
        if counts[0]:
            auth.record_counts(bucket * bucket_s, total=counts[0], bad=counts[1])
        if counts[2]:
            crit.record_counts(bucket * bucket_s, total=counts[2], bad=counts[3])
        counts[:] = [0, 0, 0, 0]

    bucket = 0
    for i in range(events):
        at = i * step
        if at >= (bucket + 1) * bucket_s:
            flush(bucket)
            bucket = int(at // bucket_s)
        authorise_ms = authorise[int(draw() * len(authorise))]
        path_ms = to_acsp[int(draw() * len(to_acsp))]
        failed = draw() < base_failure_rate
        early = late = 0.0
        for incident in incidents:
            if incident.start_s <= at < incident.end_s:
                failed = failed or draw() < incident.failure_rate
                if incident.affected and draw() < incident.affected:
                    if incident.stage in EARLY_STEPS:
                        early += incident.extra_latency_ms
                    else:
                        late += incident.extra_latency_ms
        counts[0] += 1
        if failed or authorise_ms + early > auth_limit:
            counts[1] += 1
        if not failed:
            counts[2] += 1
            if path_ms + early + late > path_limit:
                counts[3] += 1
    flush(bucket)
    return auth, crit


@dataclass(frozen=True)
class Misuse:
    """``caller`` detokenizes at ``per_minute`` on top of its normal rate during [start_s, end_s)."""

    caller: str
    start_s: float
    end_s: float
    per_minute: float


def simulate_detokenize_traffic(*, duration_s: float, callers: Mapping[str, float], misuse: Sequence[Misuse],
                                seed: int) -> list[tuple[str, float]]:
    """``(caller, at_s)`` detokenize events in time order: Poisson arrivals at each caller's rate per minute.

    Examples:
        >>> events = simulate_detokenize_traffic(duration_s=600, callers={"scheme-gateway": 40}, misuse=[], seed=1)
        >>> all(caller == "scheme-gateway" for caller, _ in events) and len(events) > 300
        True
    """
    rng = random.Random(seed)
    events: list[tuple[str, float]] = []

    def poisson(caller: str, per_minute: float, start: float, end: float) -> None:
        if per_minute <= 0:
            return
        at = start + rng.expovariate(per_minute / 60)
        while at < end:
            events.append((caller, at))
            at += rng.expovariate(per_minute / 60)

    for caller, per_minute in sorted(callers.items()):
        poisson(caller, per_minute, 0.0, duration_s)
    for m in misuse:
        poisson(m.caller, m.per_minute, m.start_s, min(m.end_s, duration_s))
    events.sort(key=lambda e: e[1])
    return events


@dataclass(frozen=True)
class StepSpans:
    """The ``stage <step>`` spans of one step: how many, over how many payments, how long, how many failed."""

    step: str
    spans: int
    payments: int
    mean_ms: float
    p99_ms: float
    errors: int


def step_breakdown(spans: Iterable[Any], steps: Sequence[str] = TRACED_STEPS) -> list[StepSpans]:
    """One row per step from finished spans (``ReadableSpan``), in ``steps`` order; steps never seen are left out.

    Examples:
        >>> rows = step_breakdown(exporter.get_finished_spans())  # doctest: +SKIP
    """
    by_step: dict[str, list[Any]] = {}
    for span in spans:
        step = (span.attributes or {}).get("payment.stage")
        if step is not None and span.start_time is not None and span.end_time is not None:
            by_step.setdefault(str(step), []).append(span)
    rows = []
    for step in steps:
        found = by_step.get(step, [])
        if not found:
            continue
        durations = [(s.end_time - s.start_time) / 1e6 for s in found]
        rows.append(StepSpans(
            step=step, spans=len(found), payments=sum(int((s.attributes or {}).get("payment.count", 0)) for s in found),
            mean_ms=sum(durations) / len(durations), p99_ms=percentile(durations, 99),
            errors=sum(1 for s in found if s.status.status_code.name == "ERROR")))
    return rows


def status_histories(objects: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Each subject's ``payment.status`` outcomes in log order, from a trail's objects (key -> bytes).

    Examples:
        >>> line = b'{"kind":"payment.status","subject":"u-1","outcome":"ACCP"}'
        >>> status_histories({"segments/000000000000-000000000001.jsonl": line + b"\\n"})
        {'u-1': ['ACCP']}
    """
    histories: dict[str, list[str]] = {}
    for key in sorted(k for k in objects if k.startswith("segments/")):
        for line in objects[key].splitlines():
            entry = json.loads(line)
            if entry.get("kind") == "payment.status":
                histories.setdefault(entry["subject"], []).append(entry["outcome"])
    return histories


@dataclass
class TelemetryCapture:
    """A :class:`PipelineTelemetry` and where its output went: spans, EMF documents, log lines."""

    telemetry: PipelineTelemetry
    exporter: InMemorySpanExporter
    documents: list[dict[str, Any]] = field(default_factory=list)
    lines: io.StringIO = field(default_factory=io.StringIO)

    @property
    def log_lines(self) -> list[str]:
        return self.lines.getvalue().splitlines()


def captured_telemetry(trail: AuditTrail, *, clock: Callable[[], int] = time.time_ns,
                       service: str = "payment-pipeline") -> TelemetryCapture:
    """What a pipeline function's composition root would build, with in-memory sinks instead of stdout.

    Examples:
        >>> capture = captured_telemetry(trail)  # doctest: +SKIP
        >>> summary = run_pipeline(env, RunSettings(payments=60), telemetry=capture.telemetry)  # doctest: +SKIP
    """
    tracer, exporter = in_memory_tracer("fasterpay.pipeline")
    documents: list[dict[str, Any]] = []
    lines = io.StringIO()
    telemetry = PipelineTelemetry(
        tracer=tracer, metrics=PaymentMetrics(namespace="FasterPay/Pipeline", service=service, sink=documents.append),
        logger=PaymentLogger(service, stream=lines), audit=trail, clock=clock)
    return TelemetryCapture(telemetry, exporter, documents, lines)
