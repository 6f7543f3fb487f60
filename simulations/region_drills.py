"""Region drills: outage, partition, paused replication and failback of an active/passive cell, on moto.

Two regions of in-process moto, eu-west-2 (London, primary) and eu-west-1 (Ireland, secondary), each with
the payments, settlement and ledger tables (same names, as a global table's replicas have), a control
table holding the region's fence item, a :class:`~fasterpay.pipeline.store.PaymentStore` fenced by a
:class:`~fasterpay.resilience.FenceGuard`, a :class:`~fasterpay.ledger.Ledger` and a
:class:`~fasterpay.pipeline.settlement.SettlementBook`. Replication between them is the EMULATION of
:mod:`simulations.replication` (moto has no global tables); the routing control plane is the EMULATED
:class:`~fasterpay.resilience.InMemoryRoutingControls`; the scheme is one
:class:`~simulations.scheme.SimulatedSchemeGateway` outside both regions, wrapped so that it
de-duplicates by UETR (:class:`DedupingScheme`). Everything runs on a virtual clock; times are modelled.

Per payment, in the active region: hold (ACCP, funds held) -> submit to the scheme -> ACSP and booked into
the current settlement cycle, or RJCT and the hold released. The sender resubmits (same UETR) every
``retry_s`` until it has a final answer, to whichever region its DNS view routes it to.

**The in-flight rule: resume by asking the scheme.** After a failover, every non-final payment the new
region finds (replicated holds), every resubmitted payment and every payment on the scheme's report that
the region does not hold as final is resolved by querying the scheme by UETR:

* the scheme accepted it -> ACSP and booked once (held first if the hold never reached this region; if
  the replicated balance cannot cover it, the shortfall is advanced from the named ``recovery:<ccy>``
  account and counted as a *recovery exposure*, never refused: the money has already moved);
* the scheme never received it -> cancelled: RJCT with ``AB02`` (ISO 20022 ExternalStatusReason
  "AbortedClearingFatalError": the clearing was aborted by a fatal error, here the loss of the region
  that held it before it reached the scheme), and the hold released;
* the scheme rejected it -> RJCT with the scheme's reason, the hold released;
* the scheme has it but has not answered yet -> ask again when it will have.

A region never submits to the scheme unless its lease is valid, so once the fence interval has passed
the scheme's answer to "did you receive it?" cannot change behind the new region's back.

**Failback reconciliation.** The old primary's unreplicated tail is never applied by last writer wins
(that would overwrite newer balances: a lost debit or a double spend). Each payment in the tail is
reconciled by UETR against the active region: final there -> nothing; otherwise the in-flight rule, in
the active region. Then the old region is resynchronised from the active one (on AWS: re-add it as a
replica, which copies the table), replication to it must show no backlog, and the controller fails back
(OFF, fence interval, new epoch ON).
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fasterpay.faults import FaultInjector, FaultPlan, LatencyDistribution
from fasterpay.iso20022.schemes import SCHEMES
from fasterpay.ledger import Ledger, LedgerTables, Transfer, create_ledger_tables
from fasterpay.metrics import Figure, scale
from fasterpay.pipeline.model import Payment, customer_account, inflight_account, settled_account
from fasterpay.pipeline.reconcile import effective_status, reconcile
from fasterpay.pipeline.settlement import Entry, SettlementBook, close_cycle, replay_cycle
from fasterpay.pipeline.store import PaymentStore, StoredPayment, TransitionConflictError
from fasterpay.resilience import (
    FailbackNotReadyError,
    FailoverController,
    FencedOutError,
    FenceGuard,
    HealthPolicy,
    HealthQuorum,
    InMemoryRoutingControls,
    RegionLease,
    RtoModel,
    create_fence_table,
)
from simulations.replication import (
    EchoFilter,
    StreamReplicator,
    create_replicated_table,
    enable_streams_on_moto,
    resync,
    scan_all,
)
from simulations.scheme import SimulatedSchemeGateway, VirtualClock

__all__ = [
    "CANCEL_REASON",
    "DRILLS",
    "DedupingScheme",
    "DrillResult",
    "DrillSettings",
    "PRIMARY",
    "SECONDARY",
    "default_payments",
    "failback",
    "figures",
    "paused_replication",
    "partition",
    "region_outage",
    "run_all",
]

PRIMARY = "eu-west-2"  #: London
SECONDARY = "eu-west-1"  #: Ireland (UK GDPR adequacy covers the EEA)
CELL = "cell-1"
#: ISO 20022 ExternalStatusReason "AbortedClearingFatalError": cancelled because the scheme never received it.
CANCEL_REASON = "AB02"
_FINAL = ("ACSP", "ACSC", "RJCT")
_RAILS = (("uk_fps", "GBP", "BARCGB22"), ("sepa_inst", "EUR", "DEUTDEFF"))
_START = 1_800_000_000.0
CYCLE_S = 30.0  #: settlement cycle length (virtual seconds); a cycle closes 20 s after it ends
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


def default_payments() -> int:
    """Payments per drill: 50 in CI (the four drills in about 20 s on one core: moto's TransactWriteItems
    costs about 10 ms), 5,000 with ``FASTERPAY_SCALE=full``."""
    return 5_000 if scale() == "full" else 50


@dataclass(frozen=True)
class DrillSettings:
    """One drill's knobs; every time is virtual seconds (modelled, not measured).

    ``fail_at`` is the failure moment as a fraction of the traffic window (None: drawn from the seed);
    ``rto`` holds the modelled RTO inputs (fast Route 53 health checks: 10 s x 3).
    """

    payments: int = 50
    seed: int = 7
    rate_per_s: float = 4.0
    customers_per_payment: float = 0.15
    reject_rate: float = 0.05
    replication_lag_ms: tuple[float, float] = (500.0, 3_000.0)  # p50, p99 (assumed; AWS quotes ~1 s typical)
    rto: RtoModel = RtoModel(health=HealthPolicy(interval_s=10.0))
    primary_clock_skew_s: float = 0.5
    retry_s: float = 30.0
    pump_s: float = 1.0
    outage_s: float = 150.0
    pause_s: float = 120.0
    lag_alarm_s: float = 30.0
    fail_at: float | None = None
    lying_vantage_point: bool = True
    primary_reaches_control: bool = False  # partition drill: False = the primary is cut off from ARC too


@dataclass
class DrillResult:
    """What one drill did and found (counts from the run on moto; times virtual, i.e. modelled)."""

    name: str
    payments: int
    acknowledged: int
    rpo_payments: int
    rpo_seconds: float
    rto_modelled_seconds: float
    rto_inputs: dict[str, float]
    rto_observed_seconds: float
    lost: list[str]
    doubled: list[str]
    non_final: list[str]
    mismatches: list[str]
    replayed_cycles: int
    replay_mismatches: list[str]
    ledger_sums: dict[str, int]
    recovery_exposures: int
    recovery_exposure_minor: dict[str, int]
    fenced_writes: int
    split_brain: list[str]
    states_at_failure: dict[str, int]
    resolved_by_rule: dict[str, int]
    tail_payments: int
    cancelled: int
    lag_alarm_at: float | None
    scheme_duplicates_refused: int
    timeline: list[tuple[float, str]]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled, non-final or mismatched; every ledger sums to zero; no split brain."""
        return not (self.lost or self.doubled or self.non_final or self.mismatches or self.replay_mismatches
                    or self.split_brain or any(self.ledger_sums.values()))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (lists cut to their counts and first entries)."""
        data = asdict(self)
        for key in ("lost", "doubled", "non_final", "mismatches", "replay_mismatches", "split_brain"):
            data[key] = {"count": len(data[key]), "first": data[key][:5]}
        data["timeline"] = [[round(t, 3), e] for t, e in self.timeline]
        data["ok"] = self.ok
        return data


# -- the scheme ------------------------------------------------------------------------------------------
@dataclass
class SchemeRecord:
    """What the (simulated) scheme holds for one UETR: the first submission and its answer."""

    payment: Payment
    received_at: float
    answer_at: float
    accepted: bool
    reason: str | None


class DedupingScheme:
    """The scheme outside both regions (SIMULATED): the first submission of a UETR gets the answer, a
    repeat gets the same answer and is never cleared twice; ``query`` answers a status request by UETR.

    Examples:
        >>> s = DedupingScheme(SimulatedSchemeGateway(seed=1))
        >>> s.query("nope", now=0.0)[0]
        'unknown'
    """

    def __init__(self, gateway: SimulatedSchemeGateway) -> None:
        self.gateway = gateway
        self.records: dict[str, SchemeRecord] = {}
        self.duplicates_refused = 0
        self.limits = {rules.clearing.rail: float(rules.clearing.time_limit_seconds)
                       for rules in SCHEMES.values() if rules.clearing is not None}

    def submit(self, payment: Payment, now: float) -> SchemeRecord:
        """Clear ``payment`` once; a resubmission gets the first record back."""
        found = self.records.get(payment.uetr)
        if found is not None:
            self.duplicates_refused += 1
            return found
        limit = self.limits[payment.rail]
        answer = self.gateway.answer(payment.uetr, payment.rail, time_limit=limit)
        reason = None if answer.accepted else ("AB06" if answer.reason == "timeout" else answer.reason)
        record = SchemeRecord(payment, now, now + min(answer.seconds, limit), answer.accepted, reason)
        self.records[payment.uetr] = record
        return record

    def query(self, uetr: str, now: float) -> tuple[str, SchemeRecord | None]:
        """``unknown``, ``pending`` (received, not answered yet), ``accepted`` or ``rejected``."""
        record = self.records.get(uetr)
        if record is None:
            return "unknown", None
        if now < record.answer_at:
            return "pending", record
        return ("accepted" if record.accepted else "rejected"), record

    def accepted(self, now: float) -> list[SchemeRecord]:
        """The scheme's report: every payment it accepted from us and has answered by ``now``."""
        return [r for r in self.records.values() if r.accepted and r.answer_at <= now]


# -- one region ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tables:
    payments: str
    settlement: str
    ledger: LedgerTables
    control: str

    @property
    def replicated(self) -> tuple[str, ...]:
        return (self.payments, self.settlement, self.ledger.ledger)


class _Region:
    def __init__(self, env: Any, name: str, tables: _Tables, truth: VirtualClock, skew: float,
                 control: InMemoryRoutingControls, ttl: float, seed: int) -> None:
        self.name = name
        self.tables = tables
        self.up = True
        config = Config(retries={"max_attempts": 1, "mode": "standard"})
        self.injector = FaultInjector(plan=FaultPlan(), seed=seed, history=0)
        self.ddb = self.injector.attach(env.client("dynamodb", region=name, config=config))
        self.streams = self.injector.attach(env.client("dynamodbstreams", region=name, config=config))
        self.admin = env.client("dynamodb", region=name)  # the auditor's client: set-up and final checks only
        self.version: Counter[str] = Counter()  # writes per table here: the replicator reads a stream when it moves
        for client in (self.ddb, self.admin):
            client.meta.events.register("before-parameter-build.dynamodb", self._count_write)
        self.clock: Callable[[], float] = lambda: truth() + skew
        self.guard = FenceGuard(self.ddb, tables.control, CELL, name, self.clock)
        self.lease = RegionLease(self.guard, control.view(name), ttl=ttl)
        self.lease_until = 0.0
        self.store = PaymentStore(self.ddb, tables.payments, tables.ledger.ledger, fence=self.guard)
        self.book = SettlementBook(self.ddb, tables.settlement)
        self.ledger = Ledger(self.ddb, tables.ledger, clock=self.clock)
        self.pending: set[str] = set()

    def _count_write(self, params: Any = None, model: Any = None, **_: Any) -> None:
        if model is None or model.name not in _WRITES or not isinstance(params, dict):
            return
        if "TableName" in params:
            self.version[params["TableName"]] += 1
        for item in params.get("TransactItems", ()):
            for action in item.values():
                self.version[action.get("TableName", "")] += 1
        for table in params.get("RequestItems", {}):
            self.version[table] += 1

    def fail(self) -> None:
        self.up = False
        self.injector.plan = FaultPlan(partitioned_regions=frozenset({self.name}))

    def recover(self) -> None:
        self.up = True
        self.injector.plan = FaultPlan()

    def may_write(self) -> bool:
        return self.up and self.lease_until > self.clock()

    def cycle(self) -> str:
        return f"C{self.guard.epoch}-{int((self.clock() - _START) // CYCLE_S):05d}"


def _create_tables(ddb: Any, prefix: str) -> _Tables:
    payments = create_replicated_table(ddb, f"{prefix}-payments")
    settlement = create_replicated_table(ddb, f"{prefix}-settlement", sort_key=True)
    ledger = create_ledger_tables(ddb, None, prefix, queue=False)
    ddb.update_table(TableName=ledger.ledger,
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    control = create_fence_table(ddb, f"{prefix}-control")
    return _Tables(payments, settlement, ledger, control)


# -- the drill engine --------------------------------------------------------------------------------------
_Event = tuple[float, int, Callable[..., None], tuple[Any, ...]]


class _Drill:
    def __init__(self, env: Any, name: str, settings: DrillSettings) -> None:
        enable_streams_on_moto()
        self.name = name
        self.s = settings
        self.rng = random.Random(f"{name}:{settings.seed}")
        self.truth = VirtualClock(_START)
        self.events: list[_Event] = []
        self.seq = itertools.count()
        self.timeline: list[tuple[float, str]] = []
        self.controls = InMemoryRoutingControls({CELL: (PRIMARY, 1, "ON")})
        prefix = f"drill-{uuid.uuid4().hex[:8]}"
        self.regions: dict[str, _Region] = {}
        for region, skew in ((PRIMARY, -settings.primary_clock_skew_s), (SECONDARY, 0.0)):
            tables = _create_tables(env.client("dynamodb", region=region), prefix)
            self.regions[region] = _Region(env, region, tables, self.truth, skew, self.controls,
                                           settings.rto.lease_ttl_s, settings.seed)
        self.a, self.b = self.regions[PRIMARY], self.regions[SECONDARY]
        self.tables = self.a.tables
        self.scheme = DedupingScheme(SimulatedSchemeGateway(seed=settings.seed, reject_rate=settings.reject_rate))
        self.controller = FailoverController(self.controls, settings.rto, clock=self.truth, wait=self._wait)
        self.quorum = HealthQuorum(settings.rto.health)
        # state
        self.payments: dict[str, Payment] = {}
        self.answers: dict[str, tuple[str, str, float, str | None]] = {}
        self.answer_conflicts: list[str] = []
        self.acked_by: dict[str, set[str]] = {PRIMARY: set(), SECONDARY: set()}
        self.routed = PRIMARY
        self.writes: list[tuple[float, str, int]] = []
        self.fenced_writes = 0
        self.errors: Counter[str] = Counter()
        self.resolved: Counter[str] = Counter()
        self.cancelled = 0
        self.exposures: list[tuple[str, str, int]] = []
        self.states_at_failure: Counter[str] = Counter()
        self.failed_at: float | None = None
        self.first_answer_after_failover: float | None = None
        self.switching = False
        self.probes_blocked = False  # the partition: the vantage points cannot reach the primary
        self.rpo_payments = 0
        self.rpo_seconds = 0.0
        self.tail_payments = 0
        self.lag_alarm_at: float | None = None
        self.cycles: set[str] = set()  # every cycle a payment was booked into, in any region
        self.settled: dict[str, set[str]] = {}  # cycles each region has closed
        self.finished = False
        self._set_up()

    # -- plumbing ------------------------------------------------------------------------------------------
    def t(self) -> float:
        return self.truth() - _START

    def note(self, event: str) -> None:
        self.timeline.append((round(self.t(), 3), event))

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.events, (when, next(self.seq), fn, args))

    def run_until(self, until: float) -> None:
        while self.events and self.events[0][0] <= until:
            when, _, fn, args = heapq.heappop(self.events)
            if when > self.truth.now:
                self.truth.now = when
            fn(*args)
        if until > self.truth.now:
            self.truth.now = until

    def _wait(self, seconds: float) -> None:
        self.run_until(self.truth() + seconds)

    # -- set-up ----------------------------------------------------------------------------------------------
    def _set_up(self) -> None:
        a = self.a
        admin = Ledger(a.admin, a.tables.ledger, clock=a.clock)
        for rail, ccy, _ in _RAILS:
            admin.open_account(f"funding:{ccy}", ccy, allow_negative=True)
            admin.open_account(f"recovery:{ccy}", ccy, allow_negative=True)
            admin.open_account(inflight_account(rail, ccy), ccy, allow_negative=True)
            admin.open_account(settled_account(rail, ccy), ccy)
        customers = max(4, int(self.s.payments * self.s.customers_per_payment))
        self.customers: list[tuple[str, str]] = []
        for n in range(customers):
            rail, ccy, _ = _RAILS[n % 2]
            token = f"dtk_iban_{n:05d}{self.rng.getrandbits(40):010x}"
            admin.open_account(customer_account(token), ccy)
            funding = self.rng.randint(200, 3_000) * 100
            admin.transfer(Transfer(f"fund:{n}", f"funding:{ccy}", customer_account(token), funding, ccy))
            self.customers.append((token, rail))
        # the secondary starts as a full copy (adding a replica copies the table), then streams replicate
        echo_a, echo_b = EchoFilter(), EchoFilter()
        resync(a.admin, self.b.admin, self.tables.replicated, key_names={self.tables.settlement: ("pk", "sk")})
        lag = LatencyDistribution(*self.s.replication_lag_ms)
        self.ab = StreamReplicator(a.ddb, self.b.ddb, a.streams, self.tables.replicated, lag=lag, clock=self.truth,
                                   seed=self.s.seed, source_echoes=echo_a, target_echoes=echo_b, name="A->B",
                                   source_version=lambda t: a.version[t])
        self.ba = StreamReplicator(self.b.ddb, a.ddb, self.b.streams, self.tables.replicated, lag=lag,
                                   clock=self.truth, seed=self.s.seed + 1, source_echoes=echo_b,
                                   target_echoes=echo_a, name="B->A", source_version=lambda t: self.b.version[t])
        self.ab.start("LATEST")
        self.ba_running = False
        self._renew(a)

    def _payment(self, n: int, at: float) -> Payment:
        token, rail = self.customers[self.rng.randrange(len(self.customers))]
        _, ccy, agent = next(r for r in _RAILS if r[0] == rail)
        amount = max(100, min(int(self.rng.lognormvariate(8.3, 1.0)), 250_000))  # median ~40.00, capped
        uetr = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return Payment(uetr, f"E2E-{self.name[:8]}-{n}", f"MSG-{self.name[:8]}-{n}", rail, amount, ccy, 2, token,
                       f"tok_iban_{self.rng.getrandbits(48):012x}", f"dtk_name_{n}", f"tok_name_{n}", "OURBGB2L",
                       agent, at, rail=rail, submission_id=f"sub-{self.name[:8]}-{n}")

    # -- periodic tasks ----------------------------------------------------------------------------------------
    def _renew(self, region: _Region) -> None:
        if not region.up:
            return
        try:
            state = region.lease.renew()
        except (BotoCoreError, ClientError):
            self.errors["lease renewal"] += 1
            return
        if state.renewed:
            region.lease_until = state.lease_until

    def _tick_lease(self) -> None:
        for region in self.regions.values():
            self._renew(region)
        if not self.finished:
            self.at(self.truth() + self.s.rto.lease_ttl_s / 2, self._tick_lease)

    def _tick_pump(self) -> None:
        now = self.truth()
        for rep in (self.ab, self.ba):
            if rep is self.ba and not self.ba_running:
                continue
            try:
                rep.pump(now)
            except (BotoCoreError, ClientError):
                self.errors[f"replication {rep.name}"] += 1
        lag = self.ab.lag_seconds(now)
        if self.lag_alarm_at is None and lag > self.s.lag_alarm_s:
            self.lag_alarm_at = round(self.t(), 3)
            self.note(f"ReplicationLatency alarm: lag {lag:.0f} s > {self.s.lag_alarm_s:g} s")
        if not self.finished:
            self.at(now + self.s.pump_s, self._tick_pump)

    def _healthy(self, region: _Region) -> bool:
        return region.up and region.may_write()

    def _tick_probe(self) -> None:
        active, _, state = self.controls.active(CELL)
        if active == PRIMARY and state == "ON" and not self.switching:
            for v in range(self.s.rto.health.vantage_points):
                lying = self.s.lying_vantage_point and v == 0
                self.quorum.observe(v, ok=False if lying else self._probe_ok(self.a))
            if self.quorum.unhealthy:
                self.note(f"health: {self.s.rto.health.quorum} of {self.s.rto.health.vantage_points} vantage points "
                          f"saw {self.s.rto.health.failure_threshold} failures in a row: {PRIMARY} unhealthy")
                self._failover()
        if not self.finished:
            self.at(self.truth() + self.s.rto.health.interval_s, self._tick_probe)

    def _probe_ok(self, region: _Region) -> bool:
        if self.probes_blocked and region is self.a:
            return False
        return self._healthy(region)

    def _tick_cycle(self) -> None:
        active, _, state = self.controls.active(CELL)
        region = self.regions[active]
        if state == "ON" and region.may_write():
            self._close_cycles(region, grace=20.0)
        if not self.finished:
            self.at(self.truth() + CYCLE_S, self._tick_cycle)

    def _close_cycles(self, region: _Region, *, grace: float, current_too: bool = False) -> None:
        current = region.cycle()
        try:
            for cycle in sorted(self.cycles - self.settled.get(region.name, set())):
                if cycle == current and not current_too:
                    continue
                epoch, number = cycle[1:].split("-")
                ended = _START + (int(number) + 1) * CYCLE_S
                if int(epoch) == region.guard.epoch and region.clock() < ended + grace:
                    continue
                close_cycle(cycle, book=region.book, ledger=region.ledger, at=region.clock())
                self.settled.setdefault(region.name, set()).add(cycle)
        except (BotoCoreError, ClientError) as exc:
            self.errors[f"close cycle: {type(exc).__name__}"] += 1

    # -- the sender ------------------------------------------------------------------------------------------
    def _arrive(self, n: int) -> None:
        payment = self._payment(n, self.truth())
        self.payments[payment.uetr] = payment
        self._send_from_sender(payment.uetr, first=True)

    def _send_from_sender(self, uetr: str, first: bool = False) -> None:
        if uetr in self.answers:
            return
        self.at(self.truth() + 0.01, self._receive, self.regions[self.routed], uetr, first)
        self.at(self.truth() + self.s.retry_s, self._send_from_sender, uetr)  # the retry: a resubmission

    def _answer(self, region: _Region, uetr: str, status: str, reason: str | None) -> None:
        status = "ACSP" if status == "ACSC" else status
        self.acked_by[region.name].add(uetr)
        if self.failed_at is not None and region is self.b and self.first_answer_after_failover is None:
            self.first_answer_after_failover = self.truth()
        found = self.answers.get(uetr)
        if found is None:
            self.answers[uetr] = (status, region.name, self.truth(), reason)
        elif found[0] != status:
            self.answer_conflicts.append(f"{uetr}: answered {found[0]} by {found[1]}, then {status} by {region.name}")

    def _wrote(self, region: _Region) -> None:
        self.writes.append((self.truth(), region.name, region.guard.epoch))

    # -- the region's work -----------------------------------------------------------------------------------
    def _guarded(self, region: _Region, what: str, fn: Callable[[], Any]) -> Any:
        """Run a region's write; a fenced-out or unreachable region does nothing (returns None)."""
        try:
            return fn()
        except FencedOutError:
            self.fenced_writes += 1
            return None
        except (BotoCoreError, ClientError) as exc:
            self.errors[f"{what}: {type(exc).__name__}"] += 1
            return None

    def _receive(self, region: _Region, uetr: str, first: bool = False) -> None:
        if not region.up or uetr in region.pending:
            return
        payment = self.payments[uetr]
        if not first:
            self._resolve(region, payment, "resubmission")
            return
        outcome = self._guarded(region, "hold", lambda: region.store.hold(payment, first_of_message=False,
                                                                           at=region.clock()))
        if outcome is None:
            return
        if outcome.kind == "held":
            self._wrote(region)
            region.pending.add(uetr)
            self.at(self.truth() + self.rng.uniform(0.05, 0.5), self._submit, region, uetr)
        elif outcome.kind == "refused":
            stored = self._guarded(region, "reject", lambda: region.store.reject(payment, str(outcome.reason),
                                                                                at=region.clock()))
            if stored is not None:
                self._wrote(region)
                self._answer(region, uetr, "RJCT", stored.reason)
        else:
            self._resolve(region, payment, "resubmission")

    def _submit(self, region: _Region, uetr: str) -> None:
        if not region.may_write():  # never hand the scheme a payment without a valid lease
            region.pending.discard(uetr)
            return
        record = self.scheme.submit(self.payments[uetr], self.truth())
        # the answer reaches the region, which records it a moment later (the answered-not-recorded window)
        self.at(max(record.answer_at, self.truth()) + self.rng.uniform(0.05, 0.5), self._record, region, uetr)

    def _record(self, region: _Region, uetr: str) -> None:
        region.pending.discard(uetr)
        if not region.up:
            return  # the answer reached a dead region: the in-flight rule will ask the scheme
        record = self.scheme.records[uetr]
        if record.accepted:
            self._clear(region, self.payments[uetr])
        else:
            self._release(region, self.payments[uetr], str(record.reason))

    def _clear(self, region: _Region, payment: Payment) -> None:
        cycle = region.cycle()
        self.cycles.add(cycle)

        def write() -> StoredPayment:
            stored = region.store.clear(payment, cycle=cycle, at=region.clock())
            region.book.record_batch(cycle, [Entry(payment.uetr, payment.amount_minor, payment.currency,
                                                   payment.rail, payment.creditor_agent)])
            return stored

        try:
            stored = self._guarded(region, "clear", write)
        except TransitionConflictError as exc:
            stored = exc.current
        if stored is not None:
            if stored.status != "ACCP":
                self._wrote(region)
                self._answer(region, payment.uetr, stored.status, stored.reason)

    def _release(self, region: _Region, payment: Payment, reason: str) -> None:
        try:
            stored = self._guarded(region, "release", lambda: region.store.release(payment, reason, at=region.clock()))
        except TransitionConflictError as exc:
            stored = exc.current
        if stored is not None and stored.status != "ACCP":
            self._wrote(region)
            self._answer(region, payment.uetr, stored.status, stored.reason)

    def _resolve(self, region: _Region, payment: Payment, via: str) -> None:
        """The in-flight rule: resume by asking the scheme (see the module docstring)."""
        if not region.up or payment.uetr in region.pending:
            return
        stored = self._guarded(region, "read", lambda: region.store.get(payment.uetr))
        if stored is None and not region.up:
            return
        if stored is not None and stored.status in _FINAL:
            self._answer(region, payment.uetr, stored.status, stored.reason)
            return
        status, record = self.scheme.query(payment.uetr, self.truth())
        if status == "pending":
            assert record is not None
            self.at(record.answer_at + 0.01, self._resolve, region, payment, via)
            return
        if not region.may_write():
            return
        self.resolved[f"{via}: {status}"] += 1
        if status == "accepted":
            if stored is None and not self._recovery_hold(region, payment):
                return
            self._clear(region, payment)
        elif stored is None:
            reason = CANCEL_REASON if status == "unknown" else str(record.reason if record else CANCEL_REASON)
            self.cancelled += status == "unknown"
            done = self._guarded(region, "reject", lambda: region.store.reject(payment, reason, at=region.clock()))
            if done is not None:
                self._wrote(region)
                self._answer(region, payment.uetr, done.status, done.reason)
        else:
            self.cancelled += status == "unknown"
            self._release(region, payment, CANCEL_REASON if status == "unknown" else str(record.reason if record else ""))

    def _recovery_hold(self, region: _Region, payment: Payment) -> bool:
        """Hold a payment the scheme already accepted; advance a shortfall from ``recovery:<ccy>``."""
        for _ in range(2):
            outcome = self._guarded(region, "hold", lambda: region.store.hold(payment, first_of_message=False,
                                                                               at=region.clock()))
            if outcome is None:
                return False
            if outcome.kind in ("held", "redelivery"):
                self._wrote(region)
                return True
            if outcome.kind == "refused" and outcome.reason == "AM04":
                balance = region.ledger.balance(payment.debtor_ledger_account).balance_minor
                shortfall = payment.amount_minor - balance
                self._guarded(region, "recovery", lambda: region.ledger.transfer(Transfer(
                    f"recovery:{payment.uetr}", f"recovery:{payment.currency}", payment.debtor_ledger_account,
                    shortfall, payment.currency, reference="scheme accepted; stale balance after failover")))
                self.exposures.append((payment.uetr, payment.currency, shortfall))
                continue
            self.errors[f"recovery hold: {outcome.kind} {outcome.reason}"] += 1
            return False
        return False

    # -- failure, failover, failback ---------------------------------------------------------------------------
    def _count_states(self) -> None:
        """Where every payment stood at the failure (the crash points the drill must hit)."""
        for uetr in self.payments:
            record = self.scheme.records.get(uetr)
            if uetr in self.answers:
                self.states_at_failure["answered"] += 1
            elif record is None:
                self.states_at_failure["held-not-sent" if uetr in self.a.pending else "not-held"] += 1
            elif self.truth() < record.answer_at:
                self.states_at_failure["sent-not-answered"] += 1
            else:
                self.states_at_failure["answered-not-recorded"] += 1

    def _fail_outage(self) -> None:
        self.failed_at = self.truth()
        self._count_states()
        self.ab.read(self.truth())  # stamp what the stream holds (the emulation can see it; AWS would too)
        self.ab.disconnect()  # a failed region ships nothing more: what it did not ship is its tail
        self.a.fail()
        self.note(f"{PRIMARY} fails (every call: EndpointConnectionError)")

    def _fail_partition(self) -> None:
        self.failed_at = self.truth()
        self._count_states()
        self.ab.disconnect()
        self.probes_blocked = True
        if not self.s.primary_reaches_control:
            self.controls.unreachable_from.add(PRIMARY)
        self.note(f"partition: {PRIMARY} and {SECONDARY} cannot reach each other"
                  + ("" if self.s.primary_reaches_control else f"; {PRIMARY} cannot reach the routing control plane"))

    def _failover(self) -> None:
        self.switching = True
        self.note(f"failover of {CELL} to {SECONDARY} begins")
        self._wait(self.s.rto.control_switch_s)
        for t, event in self.controller.failover(CELL, SECONDARY):
            self.timeline.append((round(t - _START, 3), event))
        self.ab.disconnect()  # on AWS: remove the failed region's replica; what it did not ship is its tail
        self._take_over(self.b)
        self.ba.start("LATEST")
        self.ba.disconnect()
        self.ba_running = True
        self.at(self.truth() + self.s.rto.reroute_s, self._reroute, SECONDARY)
        self.switching = False

    def _take_over(self, region: _Region) -> None:
        """The new region's lease starts; it resolves what it finds in flight and the scheme's report."""
        self._renew(region)
        self.note(f"{region.name} lease starts at epoch {region.guard.epoch}")
        stored = {p.uetr: p for p in region.store.payments()}
        if region is self.b:
            self._measure_rpo(stored)
        for uetr, p in stored.items():
            if p.status == "ACCP" and uetr in self.payments:
                self._resolve(region, self.payments[uetr], "replicated hold")
        self._scheme_report(region, stored)

    def _scheme_report(self, region: _Region, stored: dict[str, StoredPayment] | None = None) -> None:
        if stored is None:
            stored = {p.uetr: p for p in region.store.payments()}
        for record in self.scheme.accepted(self.truth()):
            p = stored.get(record.payment.uetr)
            if p is None or p.status == "ACCP":
                self._resolve(region, record.payment, "scheme report")

    def _measure_rpo(self, in_b: dict[str, StoredPayment]) -> None:
        """Acknowledged in the primary, not in the secondary's tables when it took over; and the lag window."""
        lost_acks = [u for u in self.acked_by[PRIMARY]
                     if u not in in_b or in_b[u].status not in ("ACSP", "ACSC", "RJCT")]
        self.rpo_payments = len(lost_acks)
        backlog = self.ab.backlog()
        last_a = max((t for t, r, _ in self.writes if r == PRIMARY), default=self.truth())
        self.rpo_seconds = round(max(0.0, last_a - backlog[0].committed_at), 3) if backlog else 0.0
        self.note(f"RPO: {self.rpo_payments} acknowledged payments not replicated; window {self.rpo_seconds} s")

    def _reroute(self, region: str) -> None:
        self.routed = region
        self.note(f"senders re-routed to {region} (DNS TTL {self.s.rto.reroute_s:g} s)")

    def _recover(self) -> None:
        self.a.recover()
        self.probes_blocked = False
        self.controls.unreachable_from.discard(PRIMARY)
        self.note(f"{PRIMARY} is back")
        self.at(self.truth() + 10.0, self._failback)

    def _failback(self) -> None:
        """Reconcile the tail by UETR, resync the old region, wait for zero backlog, fence, switch."""
        self.switching = True
        try:  # asked too early, the controller refuses: replication to the old region lags, its tail is open
            self.controller.failback(CELL, PRIMARY, backlog=len(self.ba.backlog()), tail_reconciled=False)
        except FailbackNotReadyError:
            self.note(f"failback refused: replication backlog {len(self.ba.backlog())} records, tail not reconciled")
        tail = self.ab.take_tail(self.truth())
        uetrs = sorted({r.keys["pk"]["S"][4:] for r in tail
                        if r.table == self.tables.payments and r.keys["pk"]["S"].startswith("PAY#")})
        self.tail_payments = len(uetrs)
        self.note(f"failback: {len(tail)} tail records ({len(uetrs)} payments) reconciled by UETR in {SECONDARY}")
        for uetr in uetrs:
            if uetr in self.payments:
                self._resolve(self.b, self.payments[uetr], "failback tail")
        self._wait(1.0)
        writes = resync(self.b.ddb, self.a.ddb, self.tables.replicated,
                        key_names={self.tables.settlement: ("pk", "sk")}, echoes=self.ab.source_echoes)
        self.ba.discard_backlog()
        self.ba.reconnect()
        self.ab.reconnect()
        self.note(f"{PRIMARY} resynchronised from {SECONDARY} ({writes} writes)")
        while True:
            try:
                events = self.controller.failback(CELL, PRIMARY, backlog=len(self.ba.backlog()), tail_reconciled=True)
                break
            except FailbackNotReadyError:
                self.note(f"failback refused: replication backlog {len(self.ba.backlog())}")
                self._wait(self.s.pump_s)
        for t, event in events:
            self.timeline.append((round(t - _START, 3), event))
        while self.ba.backlog():  # what the secondary wrote during the fence interval reaches the primary first
            self._wait(self.s.pump_s)
        self._take_over(self.a)
        self.ba.disconnect()
        self.ba_running = False
        self.quorum = HealthQuorum(self.s.rto.health)
        self.at(self.truth() + self.s.rto.reroute_s, self._reroute, PRIMARY)
        self.switching = False

    # -- run and verify ------------------------------------------------------------------------------------
    def run(self, *, failure: Callable[[], None], fail_at_s: float, recover_after_s: float,
            traffic_s: float, extra: Sequence[tuple[float, Callable[[], None]]] = ()) -> DrillResult:
        started = time.perf_counter()
        gap = traffic_s / self.s.payments
        for n in range(self.s.payments):
            self.at(_START + n * gap + self.rng.random() * gap * 0.5, self._arrive, n)
        for fn in (self._tick_lease, self._tick_pump, self._tick_probe, self._tick_cycle):
            self.at(_START + 0.5, fn)  # type: ignore[arg-type]
        self.at(_START + fail_at_s, failure)
        self.at(_START + fail_at_s + recover_after_s, self._recover)
        for when, fn in extra:
            self.at(_START + when, fn)
        horizon = _START + max(traffic_s, fail_at_s + recover_after_s) + 600.0
        while self.truth() < horizon:
            self.run_until(self.truth() + 30.0)
            back = self.controls.active(CELL)[0] == PRIMARY and self.failed_at is not None
            if back and self.truth() > _START + fail_at_s + recover_after_s and len(self.answers) == len(self.payments) \
                    and not self.a.pending and not self.switching and self.routed == PRIMARY:
                break
        # end of day: the scheme's report, then every cycle closes
        self._scheme_report(self.a)
        self.run_until(self.truth() + 40.0)  # longer than any scheme answer (15 s) a resolution may wait for
        self.finished = True
        self.truth.advance(60.0)
        self._renew(self.a)
        self._close_cycles(self.a, grace=0.0, current_too=True)
        result = self._verify()
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    def _verify(self) -> DrillResult:
        a = self.a
        store = PaymentStore(a.admin, self.tables.payments, self.tables.ledger.ledger)
        book = SettlementBook(a.admin, self.tables.settlement)
        ledger = Ledger(a.admin, self.tables.ledger, clock=a.clock)
        stored = {p.uetr: p for p in store.payments()}
        cycles = sorted({item["pk"]["S"] for item in scan_all(a.admin, self.tables.settlement)})
        report = reconcile(store=store, book=book, ledger=ledger, cycles=cycles, admin_dynamodb=a.admin,
                           payments=stored)
        settled = {c for c in cycles if book.state(c) == "SETTLED"}
        lost: list[str] = []
        doubled = list(report.doubled)
        mismatches = [m for m in report.mismatches if m not in report.doubled and m not in report.non_final]
        mismatches += self.answer_conflicts
        for uetr in self.payments:
            p = stored.get(uetr)
            record = self.scheme.records.get(uetr)
            accepted = record is not None and record.accepted
            if p is None:
                lost.append(f"{uetr}: no record in the surviving region")
                continue
            status = effective_status(p, settled)
            if accepted and status != "ACSC":
                lost.append(f"{uetr}: the scheme accepted it, the surviving region has it {status}")
            if not accepted and status in ("ACSP", "ACSC"):
                doubled.append(f"{uetr}: booked {status} but the scheme never accepted it")
            answer = self.answers.get(uetr)
            if answer is not None and answer[0] != ("ACSP" if status in ("ACSP", "ACSC") else status):
                mismatches.append(f"{uetr}: the sender was told {answer[0]}, the record says {status}")
        non_final = list(report.non_final) + [f"{u}: the sender never got an answer"
                                              for u in self.payments if u not in self.answers]
        replays = [replay_cycle(c, book=book, ledger=ledger, payments=stored.get) for c in cycles]
        exposure: Counter[str] = Counter()
        for _, ccy, amount in self.exposures:
            exposure[ccy] += amount
        acknowledged = sum(1 for u in self.answers if u in self.payments)
        return DrillResult(
            name=self.name, payments=len(self.payments), acknowledged=acknowledged, rpo_payments=self.rpo_payments,
            rpo_seconds=self.rpo_seconds, rto_modelled_seconds=self.s.rto.seconds, rto_inputs=self.s.rto.inputs(),
            rto_observed_seconds=round((self.first_answer_after_failover or self.truth()) - (self.failed_at or _START), 3),
            lost=lost, doubled=list(dict.fromkeys(doubled)), non_final=non_final, mismatches=mismatches,
            replayed_cycles=len(replays), replay_mismatches=[m for r in replays for m in r.mismatches],
            ledger_sums=dict(report.currency_totals), recovery_exposures=len(self.exposures),
            recovery_exposure_minor=dict(exposure), fenced_writes=self.fenced_writes,
            split_brain=split_brain(self.writes), states_at_failure=dict(self.states_at_failure),
            resolved_by_rule=dict(self.resolved), tail_payments=self.tail_payments, cancelled=self.cancelled,
            lag_alarm_at=self.lag_alarm_at, scheme_duplicates_refused=self.scheme.duplicates_refused,
            timeline=sorted(self.timeline, key=lambda event: event[0]))


def split_brain(writes: Sequence[tuple[float, str, int]]) -> list[str]:
    """Writes at an older epoch after a write at a newer one (two epochs writing in the same interval).

    Examples:
        >>> split_brain([(1.0, "a", 1), (2.0, "b", 2), (3.0, "a", 1)])
        ['a wrote at epoch 1 at 3.000, after b wrote at epoch 2']
    """
    problems: list[str] = []
    newest: tuple[int, str] | None = None
    for when, region, epoch in sorted(writes, key=lambda w: w[0]):
        if newest is not None and epoch < newest[0]:
            problems.append(f"{region} wrote at epoch {epoch} at {when - (_START if when > _START else 0):.3f}, "
                            f"after {newest[1]} wrote at epoch {newest[0]}")
        if newest is None or epoch > newest[0]:
            newest = (epoch, region)
    return problems


# -- the four drills ---------------------------------------------------------------------------------------
def _traffic_s(settings: DrillSettings) -> float:
    return settings.payments / settings.rate_per_s


def _fail_moment(settings: DrillSettings, name: str, traffic_s: float) -> float:
    fraction = settings.fail_at if settings.fail_at is not None else random.Random(f"fail:{name}:{settings.seed}").uniform(0.3, 0.7)
    return max(2.0, fraction * traffic_s)


def region_outage(env: Any, settings: DrillSettings = DrillSettings()) -> DrillResult:
    """The primary fails (every call raises EndpointConnectionError) while replication lags: detection by a
    quorum of vantage points, failover, resubmission, resolution by the in-flight rule, later failback.

    Examples:
        >>> with open_environment("moto", region=PRIMARY) as env:  # doctest: +SKIP
        ...     region_outage(env, DrillSettings(payments=100)).ok
        True
    """
    drill = _Drill(env, "region_outage", settings)
    traffic = _traffic_s(settings)
    fail = _fail_moment(settings, "region_outage", traffic)
    return drill.run(failure=drill._fail_outage, fail_at_s=fail, recover_after_s=settings.outage_s, traffic_s=traffic)


def partition(env: Any, settings: DrillSettings = DrillSettings()) -> DrillResult:
    """The regions cannot reach each other and the primary cannot reach the control plane: its lease lapses,
    its writes are refused (FencedOutError, counted), the controller fails over; no split brain.

    With ``primary_reaches_control=True`` the primary keeps its lease until the controller turns it OFF
    (a false failover, e.g. probes cut off from a healthy region): the fence interval alone prevents a
    split brain then.
    """
    drill = _Drill(env, "partition", settings)
    traffic = _traffic_s(settings)
    fail = _fail_moment(settings, "partition", traffic)
    return drill.run(failure=drill._fail_partition, fail_at_s=fail, recover_after_s=settings.outage_s,
                     traffic_s=traffic)


def paused_replication(env: Any, settings: DrillSettings = DrillSettings()) -> DrillResult:
    """Replication paused for ``pause_s`` while traffic flows: the lag (RPO) grows, the lag alarm fires, and
    the primary fails during the pause; the failover still ends with nothing lost or doubled."""
    drill = _Drill(env, "paused_replication", settings)
    traffic = _traffic_s(settings)
    pause_at = 0.15 * traffic
    fail = max(pause_at + settings.lag_alarm_s + 5.0, _fail_moment(settings, "paused_replication", traffic))

    def pause() -> None:
        drill.ab.pause()
        drill.note(f"replication {PRIMARY} -> {SECONDARY} paused")

    return drill.run(failure=drill._fail_outage, fail_at_s=fail, recover_after_s=settings.outage_s,
                     traffic_s=max(traffic, fail + 5.0), extra=[(pause_at, pause)])


def failback(env: Any, settings: DrillSettings = DrillSettings()) -> DrillResult:
    """After a failover, traffic runs in the secondary; the primary returns: wait for zero backlog,
    reconcile its tail, fence, switch back; traffic continues in the primary and is checked again."""
    drill = _Drill(env, "failback", settings)
    fail = 0.2 * _traffic_s(settings)
    recover = settings.outage_s
    traffic = fail + recover + 120.0  # arrivals continue through the failover and after the failback
    slower = replace(settings, rate_per_s=settings.payments / traffic)
    drill.s = slower
    return drill.run(failure=drill._fail_outage, fail_at_s=fail, recover_after_s=recover, traffic_s=traffic)


#: The drills by CLI name.
DRILLS: dict[str, Callable[[Any, DrillSettings], DrillResult]] = {
    "region-outage": region_outage, "partition": partition, "paused-replication": paused_replication,
    "failback": failback,
}


def run_all(settings: DrillSettings = DrillSettings(), names: Sequence[str] = tuple(DRILLS)) -> list[DrillResult]:
    """Run drills, each in a fresh in-process moto (regions isolated backends).

    Examples:
        >>> [r.ok for r in run_all(DrillSettings(payments=50))]  # doctest: +SKIP
        [True, True, True, True]
    """
    from fasterpay.aws import open_environment
    from simulations import moto_speedups

    enable_streams_on_moto()
    results = []
    for name in names:
        with open_environment("moto", region=PRIMARY) as env:
            moto_speedups.install_on_moto(env)
            results.append(DRILLS[name](env, settings))
    return results


#: Short series names for the article's table (one column per drill).
_SERIES = {"region_outage": "outage", "partition": "partition", "paused_replication": "paused", "failback": "failback"}


def figures(results: Sequence[DrillResult]) -> list[Figure]:
    """Metrics rows per drill: RPO (payments: counted on moto; seconds: the emulated lag), RTO (modelled),
    lost and doubled (counted on moto), each feeding its KPI."""
    rows: list[Figure] = []
    for r in results:
        rows += [
            Figure.of("rpo_payments", "RPO: acknowledged, not replicated", r.rpo_payments, "payments",
                      "counted", r.payments, places=0, kpi="rpo_payments", series=_SERIES.get(r.name, r.name)),
            Figure.of("rpo_seconds", "RPO: replication lag at the failure", r.rpo_seconds, "s",
                      "modelled", r.payments, places=1, kpi="rpo_seconds", series=_SERIES.get(r.name, r.name)),
            Figure.of("rto_seconds", "RTO: detect + switch + fence + re-route",
                      r.rto_modelled_seconds, "s", "modelled", r.payments, places=0, kpi="rto_seconds", series=_SERIES.get(r.name, r.name)),
            Figure.of("lost", "Payments lost", len(r.lost), "payments", "counted", r.payments, places=0,
                      kpi="drill_lost", series=_SERIES.get(r.name, r.name)),
            Figure.of("doubled", "Payments doubled", len(r.doubled), "payments", "counted", r.payments,
                      places=0, kpi="drill_doubled", series=_SERIES.get(r.name, r.name)),
            Figure.of("tail_reconciled", "Tail reconciled at failback", r.tail_payments,
                      "payments", "counted", r.payments, places=0, series=_SERIES.get(r.name, r.name)),
            Figure.of("fenced_writes", "Writes the fence refused", r.fenced_writes, "writes", "counted",
                      r.payments, places=0, series=_SERIES.get(r.name, r.name)),
        ]
    return rows
