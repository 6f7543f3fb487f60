"""The operations article's scenario: a scheme timeout storm burns the error budget, the operations template's
alarms fire, the on-call applies the runbook's remedy, and the burn stops.

Not copied into a service. Three steps, each labelled on the page:

1. **Measured on moto**: :func:`measure_phase` runs the real pipeline (handlers, ledger, simulated scheme) on
   moto twice, healthy and with the scheme connection timing out, and keeps what the indicators need: the
   modelled authorisation and critical-path latencies of each payment, and the share of technical failures.
2. **Modelled**: :func:`simulate` replays hours of traffic at a steady rate, minute by minute, drawing each
   event from the phase it falls in, and publishes the SLI metrics of
   :class:`fasterpay.observability.SliPublisher` into a :class:`~simulations.alarm_emulator.MetricStore`.
3. **Emulated**: the alarms of ``cloudformation/operations.yaml``, resolved from the template, are evaluated
   at the end of every minute (:func:`simulations.alarm_emulator.evaluate_timeline`). When a paging alarm
   fires, the on-call applies the runbook's remedy ``respond_minutes`` later (failing the scheme connection
   over to the standby gateway): from then on, traffic is drawn from the healthy phase again.

Each minute draws from its own seeded generator, so a run with the remedy and a run without it are identical
up to the remedy: the detection time is the same in both, and the difference is what the remedy saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fasterpay.aws import AwsEnvironment
from fasterpay.observability import AUTHORISATION_SLO, CRITICAL_PATH_SLO, SLI_NAMESPACE, Slo
from simulations.alarm_emulator import AlarmHistory, MetricStore, UnsupportedAlarm, evaluate_timeline
from simulations.pipeline_bench import RunSettings, RunSummary, run_pipeline
from simulations.templates import alarm_request, parameter_values, parse_template, resolve

__all__ = [
    "OPERATIONS_TEMPLATE",
    "TECHNICAL_REASONS",
    "PhaseProfile",
    "ScenarioResult",
    "ScenarioSettings",
    "measure_phase",
    "paging_alarms",
    "scheme_storm",
    "simulate",
    "states_at",
    "store_fetch",
    "summary_numbers",
    "template_alarms",
]

OPERATIONS_TEMPLATE = Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation" / "operations.yaml"
#: Rejections that are technical failures of the critical path (the scheme connection timed out), not business
#: answers: ISO 20022 ``AB05`` TimeoutCreditorAgent and ``AB06`` TimeoutInstructedAgent.
TECHNICAL_REASONS = ("AB05", "AB06")
#: 2026-12-01T00:00:00Z: the scenario's clock starts here (metric timestamps only; nothing reads the wall clock).
START_S = 1_796_083_200.0


@dataclass(frozen=True)
class PhaseProfile:
    """What one pipeline run on moto says about its indicators (latencies are modelled, counts measured)."""

    name: str
    payments: int
    decided: int
    authorise_ms: tuple[float, ...]
    authorised: int
    critical_ms: tuple[float, ...]
    technical_failures: int
    ok: bool

    @property
    def authorisation_error_share(self) -> float:
        """Submissions that got no decision (technical failures before the decision)."""
        return max(0, self.payments - self.decided) / self.payments if self.payments else 0.0

    @property
    def authorised_share(self) -> float:
        """Decisions that authorised the payment (the rest are business rejections)."""
        return min(1.0, self.authorised / self.decided) if self.decided else 0.0

    @property
    def technical_failure_share(self) -> float:
        """Authorised payments that failed on the way to ACSP for a technical reason."""
        return self.technical_failures / self.authorised if self.authorised else 0.0


def _profile(name: str, summary: RunSummary) -> PhaseProfile:
    technical = sum(summary.reasons.get(code, 0) for code in TECHNICAL_REASONS)
    critical = tuple(float(v) for v in summary.latency_samples.get("ingest_to_acsp", ()))
    authorise = tuple(float(v) for v in summary.latency_samples.get("authorise", ()))
    # ACSP is our clearing's acceptance, before the scheme answers: a payment the scheme then fails to answer
    # (AB05, AB06) reached ACSP too, so the technical failures are a subset of the payments with a critical path
    return PhaseProfile(
        name=name, payments=summary.valid, decided=min(len(authorise), summary.valid), authorise_ms=authorise,
        authorised=min(len(critical), summary.valid), critical_ms=critical,
        technical_failures=min(technical, len(critical)), ok=summary.ok)


def measure_phase(env: AwsEnvironment, name: str, settings: RunSettings, *, name_prefix: str) -> PhaseProfile:
    """Run the pipeline on moto with ``settings`` and keep the indicators' inputs."""
    profile = _profile(name, run_pipeline(env, settings, name_prefix=name_prefix))
    if not profile.authorise_ms or not profile.critical_ms:
        raise ValueError(f"the {name} run produced no latencies to draw from; give it more payments")
    return profile


def scheme_storm(healthy: PhaseProfile, storm: PhaseProfile) -> PhaseProfile:
    """The storm as the scenario replays it: what happens after clearing from the storm run, the authorisation
    path from the healthy run.

    A scheme timeout storm cannot touch authorisation, which is decided before the payment reaches the scheme;
    but two small runs differ in their authorisation tails by chance (one modelled cold start among 40
    payments is 2.5% of the draws, 250 times the authorisation budget), which would page for the wrong reason.
    """
    return PhaseProfile(name=storm.name, payments=healthy.payments, decided=healthy.decided,
                        authorise_ms=healthy.authorise_ms, authorised=storm.authorised, critical_ms=storm.critical_ms,
                        technical_failures=storm.technical_failures, ok=storm.ok)


# -- the template's alarms ----------------------------------------------------------------------------------
def template_alarms(path: Path = OPERATIONS_TEMPLATE, **parameters: Any) -> tuple[list[dict[str, Any]],
                                                                                 list[dict[str, Any]],
                                                                                 dict[str, str]]:
    """The template's metric alarms and composite alarms, resolved with its defaults and ``parameters``.

    Returns (metric alarms the emulator evaluates, composite alarms, {alarm name: why it is not emulated}).
    """
    template = parse_template(path.read_text(encoding="utf-8"))
    values = parameter_values(template, **parameters)
    names = {logical: resolve(template, r.get("Properties", {}).get("AlarmName", logical), values)
             for logical, r in template["Resources"].items()}
    metric: list[dict[str, Any]] = []
    composite: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
            continue
        props = resolve(template, resource.get("Properties", {}), values, attributes=names)
        request = alarm_request(props, actions=False)
        if resource["Type"] == "AWS::CloudWatch::CompositeAlarm":
            composite.append(request)
            continue
        reason = _unsupported(request)
        if reason:
            skipped[request["AlarmName"]] = reason
        else:
            metric.append(request)
    return metric, composite, skipped


def _unsupported(alarm: Mapping[str, Any]) -> str | None:
    if alarm.get("ThresholdMetricId"):
        return "anomaly-detection band (AWS's model)"
    for query in alarm.get("Metrics", []):
        expression = str(query.get("Expression", ""))
        for word in ("ANOMALY_DETECTION_BAND", "SERVICE_QUOTA", "SEARCH", "SELECT", "METRICS("):
            if word in expression:
                return f"{word.rstrip('(')} in its metric math"
    return None


# -- the scenario ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioSettings:
    """Traffic, the incident, and how fast the on-call acts."""

    seed: int
    rate_per_s: float = 20.0
    hours: float = 8.0
    incident_at_minute: int = 120
    respond_minutes: int = 10
    remedy: bool = True
    stage: str = "prod"
    #: healthy traffic before the run, so that the 3-day window does not start empty (three days)
    history_minutes: int = 3 * 24 * 60
    #: alarms that page the on-call (empty: the fast- and medium-burn composites, :func:`paging_alarms`)
    paging_alarms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.hours <= 0:
            raise ValueError("rate_per_s and hours must be positive")
        if not 0 <= self.incident_at_minute < self.hours * 60:
            raise ValueError("the incident must start inside the run")
        if self.respond_minutes < 0:
            raise ValueError("respond_minutes cannot be negative")

    @property
    def minutes(self) -> int:
        return int(round(self.hours * 60))


@dataclass
class ScenarioResult:
    """The metric store, the alarm history and the scenario's times (minutes from the start)."""

    settings: ScenarioSettings
    store: MetricStore
    history: AlarmHistory
    detected_minute: int | None
    detected_by: str | None
    remedy_minute: int | None
    events: dict[str, np.ndarray] = field(default_factory=dict)  # per minute: totals and bad counts per SLO

    def budget_spent(self, slo: Slo) -> np.ndarray:
        """Cumulative share of the 30-day error budget spent, minute by minute, at this traffic rate."""
        key = slo.name
        budget = self.settings.rate_per_s * 86_400 * slo.period_days * slo.error_budget
        return np.cumsum(self.events[f"{key}:bad"]) / budget

    def burn_rate(self, slo: Slo, window_minutes: int) -> np.ndarray:
        """The burn rate over the trailing window at each minute's end."""
        total = np.convolve(self.events[f"{slo.name}:total"], np.ones(window_minutes))[: self.settings.minutes]
        bad = np.convolve(self.events[f"{slo.name}:bad"], np.ones(window_minutes))[: self.settings.minutes]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, bad / total / slo.error_budget, 0.0)

    def restored_minute(self, slo: Slo, window_minutes: int = 5) -> int | None:
        """The first minute after the incident began at whose end the short-window burn is below 1x again."""
        burn = self.burn_rate(slo, window_minutes)
        start = self.settings.incident_at_minute
        burning = next((m for m in range(start, self.settings.minutes) if burn[m] >= 1), None)
        if burning is None:
            return None
        return next((m + 1 for m in range(burning, self.settings.minutes) if burn[m] < 1), None)


def _draw(rng: np.random.Generator, profile: PhaseProfile, n: int) -> dict[str, Any]:
    """One minute of ``n`` submissions: each latency drawn from the run's samples (as counts per sample value)."""
    errors = int(rng.binomial(n, profile.authorisation_error_share))
    decided = n - errors
    authorise = np.asarray(profile.authorise_ms)
    authorise_counts = rng.multinomial(decided, np.full(authorise.size, 1 / authorise.size))
    authorised = int(rng.binomial(decided, profile.authorised_share))
    technical = int(rng.binomial(authorised, profile.technical_failure_share))
    critical = np.asarray(profile.critical_ms)
    critical_counts = rng.multinomial(authorised - technical, np.full(critical.size, 1 / critical.size))
    return {"errors": errors, "authorise": authorise, "authorise_counts": authorise_counts,
            "authorised": authorised, "technical": technical, "critical": critical, "critical_counts": critical_counts}


def _history(store: MetricStore, settings: ScenarioSettings, healthy: PhaseProfile) -> None:
    """The healthy days before the run, as one block per metric (expected counts, no draws)."""
    minutes, per_minute = settings.history_minutes, settings.rate_per_s * 60
    if not minutes:
        return
    dims = {"Stage": settings.stage}
    decided = per_minute * (1 - healthy.authorisation_error_share)
    authorised = decided * healthy.authorised_share
    technical = authorised * healthy.technical_failure_share
    authorise, critical = np.asarray(healthy.authorise_ms), np.asarray(healthy.critical_ms)
    store.add_history(SLI_NAMESPACE, "AuthorisationLatency", dims, minutes=minutes, values=authorise,
                      counts=np.full(authorise.size, decided * minutes / authorise.size))
    store.add_history(SLI_NAMESPACE, "CriticalPathLatency", dims, minutes=minutes, values=critical,
                      counts=np.full(critical.size, (authorised - technical) * minutes / critical.size))
    store.add_history(SLI_NAMESPACE, "SchemeSubmission", dims, minutes=minutes, values=[authorised], counts=[minutes])
    store.add_history(SLI_NAMESPACE, "ReconciliationMismatches", dims, minutes=minutes, values=[0.0],
                      counts=[minutes // 60])
    for name, per in (("AuthorisationError", per_minute - decided), ("CriticalPathError", technical),
                      ("SchemeTimeout", technical)):
        if per > 0:
            store.add_history(SLI_NAMESPACE, name, dims, minutes=minutes, values=[per], counts=[minutes])


def _traffic(settings: ScenarioSettings, healthy: PhaseProfile, incident: PhaseProfile,
             remedy_minute: int | None) -> tuple[MetricStore, dict[str, np.ndarray]]:
    store = MetricStore(start_s=START_S, minutes=settings.minutes)
    _history(store, settings, healthy)
    dims = {"Stage": settings.stage}
    minutes = settings.minutes
    events = {f"{slo.name}:{kind}": np.zeros(minutes) for slo in (AUTHORISATION_SLO, CRITICAL_PATH_SLO)
              for kind in ("total", "bad")}
    for minute in range(minutes):
        rng = np.random.default_rng([settings.seed, minute])
        in_incident = minute >= settings.incident_at_minute and (remedy_minute is None or minute < remedy_minute)
        profile = incident if in_incident else healthy
        n = int(rng.poisson(settings.rate_per_s * 60))
        d = _draw(rng, profile, n)
        # what SliPublisher emits, aggregated per minute as CloudWatch stores it
        store.add(SLI_NAMESPACE, "AuthorisationLatency", dims, minute, values=d["authorise"], counts=d["authorise_counts"])
        if d["errors"]:
            store.add(SLI_NAMESPACE, "AuthorisationError", dims, minute, count=d["errors"])
        store.add(SLI_NAMESPACE, "CriticalPathLatency", dims, minute, values=d["critical"], counts=d["critical_counts"])
        if d["technical"]:
            store.add(SLI_NAMESPACE, "CriticalPathError", dims, minute, count=d["technical"])
            store.add(SLI_NAMESPACE, "SchemeTimeout", dims, minute, count=d["technical"])
        store.add(SLI_NAMESPACE, "SchemeSubmission", dims, minute, count=d["authorised"])
        if minute % 60 == 59:  # the settlement job reconciles each hourly cycle and publishes 0 when clean
            store.add(SLI_NAMESPACE, "ReconciliationMismatches", dims, minute, count=0)
        slow_auth = int(d["authorise_counts"][d["authorise"] > AUTHORISATION_SLO.threshold_ms].sum())
        slow_path = int(d["critical_counts"][d["critical"] > CRITICAL_PATH_SLO.threshold_ms].sum())
        events["authorisation:total"][minute] = n
        events["authorisation:bad"][minute] = d["errors"] + slow_auth
        events["critical-path:total"][minute] = d["authorised"]
        events["critical-path:bad"][minute] = d["technical"] + slow_path
    return store, events


def paging_alarms(composites: Sequence[Mapping[str, Any]], *, cause: str | None = None) -> tuple[str, ...]:
    """The alarms that page the on-call: every fast- and medium-burn composite, and the ``cause`` alarm if named
    (the operations template pages on both; a cause alarm names the fault before the budget is much spent)."""
    pages = tuple(c["AlarmName"] for c in composites if c["AlarmName"].endswith(("-fast-burn", "-medium-burn")))
    return pages + ((cause,) if cause else ())


def _paging(settings: ScenarioSettings, alarms: Sequence[Mapping[str, Any]],
            composites: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    pages = settings.paging_alarms or paging_alarms(composites)
    known = {a["AlarmName"] for a in [*alarms, *composites]}
    unknown = sorted(set(pages) - known)
    if unknown:
        raise UnsupportedAlarm(f"paging alarms not among the alarms evaluated: {unknown}")
    return pages


def simulate(settings: ScenarioSettings, healthy: PhaseProfile, incident: PhaseProfile, *,
             alarms: Sequence[Mapping[str, Any]], composites: Sequence[Mapping[str, Any]] = ()) -> ScenarioResult:
    """The scenario: traffic, the incident from ``incident_at_minute``, the alarms, and the remedy.

    First the incident runs unchecked to find when a paging alarm fires; then, if ``settings.remedy``, the
    run is repeated with the remedy applied ``respond_minutes`` after that (identical minutes before it).
    """
    pages = _paging(settings, alarms, composites)
    store, events = _traffic(settings, healthy, incident, None)
    history = evaluate_timeline(store, alarms, composites)
    detected, by = None, None
    for transition in history.transitions:
        if (transition.alarm in pages and transition.state == "ALARM"
                and transition.at_s > settings.incident_at_minute * 60):
            detected, by = int(transition.at_s // 60), transition.alarm
            break
    remedy = None
    if settings.remedy and detected is not None:
        remedy = min(detected + settings.respond_minutes, settings.minutes)
        store, events = _traffic(settings, healthy, incident, remedy)
        history = evaluate_timeline(store, alarms, composites)
    return ScenarioResult(settings, store, history, detected, by, remedy, events)


def summary_numbers(result: ScenarioResult, slo: Slo) -> dict[str, float | None]:
    """Time to detect, to restore, and the budget spent: the KPI figures, in minutes and per cent."""
    start = result.settings.incident_at_minute
    restored = result.restored_minute(slo)
    spent = result.budget_spent(slo)
    before = float(spent[start - 1]) if start else 0.0
    until = float(spent[-1] if restored is None else spent[min(restored, len(spent)) - 1])
    return {
        "time_to_detect_min": None if result.detected_minute is None else result.detected_minute - start,
        "time_to_remedy_min": None if result.remedy_minute is None else result.remedy_minute - start,
        "time_to_restore_min": None if restored is None else restored - start,
        # from the incident's start until the burn is back under 1x (or the end of the run): the incident's share
        "budget_spent_pct": 100 * (until - before),
        "budget_spent_before_pct": 100 * before,
    }


def store_fetch(store: MetricStore, *, step_s: int = 300) -> Any:
    """A ``fetch`` for :func:`simulations.dashboard.render_dashboard` that reads ``store``: one point every
    ``step_s`` seconds, each the statistic over the period ending there. Metrics the scenario does not
    publish (SQS, DynamoDB, detokenize) come back empty, and their panels say "no data"."""

    def fetch(spec: Mapping[str, Any], period_s: int, start_s: float, end_s: float) -> Any:
        if spec.get("expression"):
            return {}
        points: list[tuple[float, float | None]] = []
        at = start_s + step_s
        while at <= end_s:
            minute = int((at - store.start_s) // 60) - 1
            value = store.statistic(spec["namespace"], spec["metric"], spec.get("dimensions") or {}, spec["stat"],
                                    period_s=period_s, end_minute=minute) if minute >= 0 else None
            points.append((at, value))
            at += step_s
        return points

    return fetch


def states_at(history: AlarmHistory, minute: int) -> dict[str, str]:
    """Every alarm's state at the end of ``minute``."""
    return {name: states[minute] for name, states in history.states.items() if minute < len(states)}
