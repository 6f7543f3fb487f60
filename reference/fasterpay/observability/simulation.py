"""A SIMULATED payment flow, to drive traces, metrics, logs, audit entries and SLOs in this article.

This is not the pipeline: it is five plain functions, one per stage (ingest → authorise → route →
clear → settle), each making the kind of AWS call the real stage would make on moto, so that the
observability code has something to observe. The payment pipeline article will plug its real stages
into the same tracing, metrics, logging and audit calls. Each status change is appended to the
tamper-evident audit trail; payments carry tokens and references only.

Time is modelled: :class:`ModelledClock` follows the latency that :class:`~fasterpay.faults.FaultInjector`
samples for each AWS call (nothing sleeps), plus a stated in-process cost per stage, so traces and
the latency breakdown show modelled rather than moto's in-process timings.

Also here: :func:`simulate_long_run`, which replays the traced payments' latencies over days of
traffic with incidents injected (for the SLO alerts), and :func:`simulate_detokenize_traffic`, which
produces per-caller detokenize events with a misuse spike.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry.trace import Tracer

from fasterpay.audit import AuditEntry, AuditTrail
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, FaultPlan, LatencyModel

from .emf import PaymentMetrics
from .logs import PaymentLogger
from .slo import SliCounts, Slo
from .tracing import StageTiming, in_memory_tracer, instrument_aws_client, payment_span, stage_span, stage_timings

__all__ = [
    "CRITICAL_PATH",
    "DEFAULT_STAGE_WORK_MS",
    "STAGES",
    "Incident",
    "Misuse",
    "ModelledClock",
    "PaymentOutcome",
    "SimulatedPayment",
    "SimulatedPaymentFlow",
    "SimulationResources",
    "SimulationRun",
    "create_simulation_resources",
    "run_simulation",
    "simulate_detokenize_traffic",
    "simulate_long_run",
    "synthetic_payments",
]

STAGES = ("ingest", "authorise", "route", "clear", "settle")
#: Stages up to ACSP (accepted, settlement in process): the latency the payer waits for.
CRITICAL_PATH = ("ingest", "authorise", "route", "clear")
#: Modelled in-process work per stage (validation, rules, serialisation), in milliseconds.
DEFAULT_STAGE_WORK_MS: Mapping[str, float] = {"ingest": 1.5, "authorise": 0.8, "route": 0.4, "clear": 1.0,
                                              "settle": 0.5}
_ACTOR = "sim-pipeline"
_SCHEME_LIMIT_MINOR = 100_000_000  # £1m: above it, the simulation routes to CHAPS
_NO_FAULTS = FaultPlan()


class ModelledClock:
    """Nanoseconds: ``start`` + modelled AWS latency so far + in-process work advanced explicitly.

    Examples:
        >>> clock = ModelledClock(FaultInjector(seed=1), start=datetime(2026, 11, 28, tzinfo=UTC))
        >>> t0 = clock(); clock.advance(0.002); clock() - t0
        2000000
    """

    def __init__(self, faults: FaultInjector, *, start: datetime) -> None:
        self._faults = faults
        self._start_ns = int(start.timestamp() * 1e9)
        self._base = faults.modelled_seconds
        self._own = 0.0

    def advance(self, seconds: float) -> None:
        self._own += seconds

    def __call__(self) -> int:
        return self._start_ns + round((self._faults.modelled_seconds - self._base + self._own) * 1e9)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self() / 1e9, tz=UTC)


@dataclass(frozen=True)
class SimulatedPayment:
    """A payment by reference: ids, amount in minor units, and vault tokens for both accounts."""

    end_to_end_id: str
    uetr: str
    amount_minor: int
    currency: str
    debtor_account: str  # a vault token, never an IBAN
    creditor_account: str


def synthetic_payments(count: int, *, seed: int, accounts: int = 50) -> list[SimulatedPayment]:
    """Seeded GBP payments between ``accounts`` tokenised accounts.

    Examples:
        >>> synthetic_payments(1, seed=7)[0].currency
        'GBP'
    """
    rng = random.Random(seed)
    out = []
    for i in range(count):
        debtor, creditor = rng.sample(range(accounts), 2)
        out.append(SimulatedPayment(
            end_to_end_id=f"E2E-{seed % 10_000:04d}-{i:07d}",
            uetr=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            amount_minor=int(rng.lognormvariate(8.5, 1.3)) + 1,
            currency="GBP",
            debtor_account=f"tok_acct_{debtor:04d}",
            creditor_account=f"tok_acct_{creditor:04d}",
        ))
    return out


@dataclass(frozen=True)
class SimulationResources:
    """The simulation's DynamoDB table (payments and balances) and SQS clearing queue."""

    table_name: str
    queue_url: str


def create_simulation_resources(dynamodb: Any, sqs: Any, *, name_prefix: str = "sim", accounts: int = 50,
                                balance_minor: int = 50_000_000) -> SimulationResources:
    """The simulation's own table (payments and account balances) and clearing queue, on moto.

    Examples:
        >>> res = create_simulation_resources(env.client("dynamodb"), env.client("sqs"))  # doctest: +SKIP
        >>> res.table_name  # doctest: +SKIP
        'sim-payments'
    """
    table = f"{name_prefix}-payments"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    for i in range(accounts):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"ACCOUNT#tok_acct_{i:04d}"},
                                                 "available": {"N": str(balance_minor)}})
    queue_url = sqs.create_queue(QueueName=f"{name_prefix}-clearing")["QueueUrl"]
    return SimulationResources(table, queue_url)


@dataclass(frozen=True)
class PaymentOutcome:
    """How one simulated payment ended, and its modelled latencies."""

    end_to_end_id: str
    status: str  # ACSC, or RJCT
    reason: str  # ISO 20022 reason code, or "" when accepted
    technical_failure: bool  # the system failed (not a business rejection)
    authorise_ms: float  # ingest start to the authorisation decision
    critical_path_ms: float  # ingest start to ACSP
    total_ms: float  # ingest start to ACSC


class _PaymentRejectedError(Exception):
    def __init__(self, reason: str, technical: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.technical = technical


class SimulatedPaymentFlow:
    """The five stages as plain functions on moto, traced, measured, logged and audited (a simulation).

    Examples:
        >>> flow = SimulatedPaymentFlow(dynamodb=ddb, sqs=sqs, resources=res, tracer=tracer,  # doctest: +SKIP
        ...                             clock=clock, logger=log, metrics=metrics, audit=trail)
        >>> flow.process(synthetic_payments(1, seed=1)[0]).status  # doctest: +SKIP
        'ACSC'
    """

    def __init__(self, *, dynamodb: Any, sqs: Any, resources: SimulationResources, tracer: Tracer,
                 clock: ModelledClock, logger: PaymentLogger, metrics: PaymentMetrics,
                 audit: AuditTrail | None = None, stage_work_ms: Mapping[str, float] = DEFAULT_STAGE_WORK_MS) -> None:
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.resources = resources
        self.tracer = tracer
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.audit = audit
        self.stage_work_ms = dict(stage_work_ms)

    # -- the stages: what each would do in the real pipeline, in one or two AWS calls --------------
    def ingest(self, p: SimulatedPayment) -> str:
        try:
            self.dynamodb.put_item(
                TableName=self.resources.table_name,
                Item={"pk": {"S": f"PAYMENT#{p.end_to_end_id}"}, "uetr": {"S": p.uetr}, "status": {"S": "RCVD"},
                      "amount_minor": {"N": str(p.amount_minor)}, "currency": {"S": p.currency},
                      "debtor": {"S": p.debtor_account}, "creditor": {"S": p.creditor_account}},
                ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise _PaymentRejectedError("AM05") from exc  # duplicate
            raise
        return "RCVD"

    def authorise(self, p: SimulatedPayment) -> str:
        try:
            self.dynamodb.update_item(
                TableName=self.resources.table_name, Key={"pk": {"S": f"ACCOUNT#{p.debtor_account}"}},
                UpdateExpression="SET available = available - :amt", ConditionExpression="available >= :amt",
                ExpressionAttributeValues={":amt": {"N": str(p.amount_minor)}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise _PaymentRejectedError("AM04") from exc  # insufficient funds
            raise
        return "ACTC"

    def route(self, p: SimulatedPayment) -> str:
        return "FPS" if p.currency == "GBP" and p.amount_minor <= _SCHEME_LIMIT_MINOR else "CHAPS"

    def clear(self, p: SimulatedPayment, scheme: str) -> str:
        body = {"end_to_end_id": p.end_to_end_id, "uetr": p.uetr, "amount_minor": p.amount_minor,
                "currency": p.currency, "creditor": p.creditor_account, "scheme": scheme}
        self.sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=json.dumps(body))
        return "ACSP"

    def settle(self, p: SimulatedPayment) -> str:
        self.dynamodb.update_item(
            TableName=self.resources.table_name, Key={"pk": {"S": f"PAYMENT#{p.end_to_end_id}"}},
            UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "ACSC"}})
        return "ACSC"

    # -- one payment, end to end ------------------------------------------------------------------
    def _status(self, p: SimulatedPayment, stage: str, status: str, reason: str = "") -> None:
        if self.audit is not None:
            refs = {"uetr": p.uetr, "stage": stage, **({"reason": reason} if reason else {})}
            self.audit.append(AuditEntry("payment.status", _ACTOR, p.end_to_end_id, status, self.clock.now(), refs))

    def _stage(self, p: SimulatedPayment, stage: str, log: PaymentLogger, call: Any) -> str:
        start = self.clock()
        ok = False
        try:
            with stage_span(self.tracer, stage, clock=self.clock) as span:
                self.clock.advance(self.stage_work_ms.get(stage, 0.0) / 1000)
                result = call()
                span.set_attribute("payment.status" if stage != "route" else "payment.scheme", result)
            ok = True
            return str(result)
        finally:
            latency = (self.clock() - start) / 1e6
            self.metrics.stage(stage, latency_ms=latency, ok=ok)
            log.info("stage finished" if ok else "stage failed", stage=stage, latency_ms=round(latency, 3))

    def process(self, p: SimulatedPayment) -> PaymentOutcome:
        """Run one payment through every stage; business rejections and AWS failures end it as RJCT."""
        log = self.logger.bind(end_to_end_id=p.end_to_end_id, uetr=p.uetr)
        start = self.clock()
        marks: dict[str, float] = {}
        status, reason, technical = "RJCT", "", False
        with payment_span(self.tracer, end_to_end_id=p.end_to_end_id, uetr=p.uetr, clock=self.clock,
                          attributes={"payment.currency": p.currency}) as root:
            try:
                self._status(p, "ingest", self._stage(p, "ingest", log, lambda: self.ingest(p)))
                try:
                    self._status(p, "authorise", self._stage(p, "authorise", log, lambda: self.authorise(p)))
                finally:
                    marks["authorise"] = (self.clock() - start) / 1e6
                scheme = self._stage(p, "route", log, lambda: self.route(p))
                self._status(p, "clear", self._stage(p, "clear", log, lambda: self.clear(p, scheme)))
                marks["clear"] = (self.clock() - start) / 1e6
                status = self._stage(p, "settle", log, lambda: self.settle(p))
                self._status(p, "settle", status)
            except _PaymentRejectedError as exc:
                reason = exc.reason
            except (ClientError, BotoCoreError) as exc:
                reason, technical = "NARR", True
                log.error("technical failure", error=type(exc).__name__)
            if status == "RJCT":
                self._status(p, "reject", "RJCT", reason)
            root.set_attribute("payment.status", status)
            if reason:
                root.set_attribute("payment.reason", reason)
        total = (self.clock() - start) / 1e6
        return PaymentOutcome(p.end_to_end_id, status, reason, technical,
                              authorise_ms=marks.get("authorise", total), critical_path_ms=marks.get("clear", total),
                              total_ms=total)


@dataclass(frozen=True)
class SimulationRun:
    """What a traced simulation produced: outcomes, span timings, log lines and EMF documents."""

    outcomes: list[PaymentOutcome]
    timings: list[StageTiming]
    log_lines: list[str]
    emf_documents: list[dict[str, Any]]
    faults: FaultInjector


def run_simulation(dynamodb: Any, sqs: Any, *, payments: int, seed: int, audit: AuditTrail | None = None,
                   latency: LatencyModel = DEFAULT_LATENCY_MODEL, plan: FaultPlan = _NO_FAULTS,
                   name_prefix: str = "sim", start: datetime | None = None) -> SimulationRun:
    """Create the simulation's resources, then trace ``payments`` seeded payments through the five stages.

    The clients get the fault injector (modelled latency, and ``plan``'s faults) and the tracing hooks;
    use clients with few retries if ``plan`` injects faults, because SDK back-off sleeps in wall time.
    Status changes go to ``audit`` (not flushed: the caller decides when).

    Examples:
        >>> run = run_simulation(env.client("dynamodb"), env.client("sqs"), payments=100, seed=7)  # doctest: +SKIP
        >>> {o.status for o in run.outcomes}  # doctest: +SKIP
        {'ACSC'}
    """
    import io

    resources = create_simulation_resources(dynamodb, sqs, name_prefix=name_prefix)
    tracer, exporter = in_memory_tracer("fasterpay.simulation")
    faults = FaultInjector(latency=latency, plan=plan, seed=seed)
    clock = ModelledClock(faults, start=start or datetime(2026, 11, 28, 9, tzinfo=UTC))
    for client in (dynamodb, sqs):
        faults.attach(client)
        instrument_aws_client(client, tracer, clock=clock)
    logs, documents = io.StringIO(), []
    flow = SimulatedPaymentFlow(
        dynamodb=dynamodb, sqs=sqs, resources=resources, tracer=tracer, clock=clock,
        logger=PaymentLogger("sim-pipeline", stream=logs, clock=clock.now),
        metrics=PaymentMetrics(namespace="FasterPay/Simulation", service="sim-pipeline", sink=documents.append,
                               clock=clock.now),
        audit=audit)
    outcomes = [flow.process(p) for p in synthetic_payments(payments, seed=seed)]
    flow.metrics.flush()
    return SimulationRun(outcomes, stage_timings(exporter.get_finished_spans()), logs.getvalue().splitlines(),
                         documents, faults)


@dataclass(frozen=True)
class Incident:
    """During [start_s, end_s): extra technical failures, and extra latency in ``stage`` on a share of payments.

    Latency added in ``ingest`` or ``authorise`` delays the authorisation decision and the critical
    path; latency added later (``route``, ``clear``) delays the critical path only.
    """

    name: str
    start_s: float
    end_s: float
    failure_rate: float = 0.0
    extra_latency_ms: float = 0.0
    affected: float = 0.0
    stage: str = "clear"

    def __post_init__(self) -> None:
        if self.stage not in CRITICAL_PATH:
            raise ValueError(f"stage must be one of {CRITICAL_PATH}, got {self.stage!r}")
        if not (0 <= self.failure_rate <= 1 and 0 <= self.affected <= 1) or self.end_s <= self.start_s:
            raise ValueError("need rates between 0 and 1 and end_s after start_s")


def simulate_long_run(
    outcomes: Sequence[PaymentOutcome],
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
    """Days of traffic whose latencies are drawn from ``outcomes`` (the traced run), with incidents.

    Returns bucketed good/total counts for the authorisation SLO (success within its threshold) and
    the critical-path SLO (latency of authorised payments within its threshold).

    Examples:
        >>> auth, crit = simulate_long_run(run.outcomes, duration_s=86_400, rate_per_s=10,  # doctest: +SKIP
        ...     incidents=[Incident("outage", 3_600, 5_400, failure_rate=0.02)], authorisation=Slo("a", 0.9999, 150),
        ...     critical_path=Slo("c", 0.99, 300), seed=7)
    """
    usable = [o for o in outcomes if not o.technical_failure]
    if not usable:
        raise ValueError("need at least one outcome without a technical failure to sample latencies from")
    rng = random.Random(seed)
    auth, crit = SliCounts(bucket_s=bucket_s), SliCounts(bucket_s=bucket_s)
    step = 1.0 / rate_per_s
    for i in range(int(duration_s * rate_per_s)):
        at = i * step
        o = usable[rng.randrange(len(usable))]
        failed = rng.random() < base_failure_rate
        early = late = 0.0
        for incident in incidents:
            if incident.start_s <= at < incident.end_s:
                failed = failed or rng.random() < incident.failure_rate
                if incident.affected and rng.random() < incident.affected:
                    if incident.stage in ("ingest", "authorise"):
                        early += incident.extra_latency_ms
                    else:
                        late += incident.extra_latency_ms
        auth.record(at, good=authorisation.is_good(not failed, o.authorise_ms + early))
        if not failed:
            crit.record(at, good=critical_path.is_good(True, o.critical_path_ms + early + late))
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
