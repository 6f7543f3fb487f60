"""Benchmark, chaos and floor helpers for the notebook and ``python -m simulations bench|replay|chaos``.

A run generates seeded pacs.008 traffic (valid, invalid, duplicates, a few sanctioned names), submits it to
the ingest queue in cycles and lets :class:`~.runner.LocalRunner` drive the same handlers Lambda would.
Each settlement cycle gets fresh ledger tables: moto's ``TransactWriteItems`` copies the whole table per
call and slows sharply as it grows, which would otherwise masquerade as pipeline throughput.

The floor makes the same AWS calls, as counted by the meter, directly with boto3 and nothing around them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from botocore.config import Config

from fasterpay.aws import AwsEnvironment, Backend
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, FaultPlan, LatencyModel
from fasterpay.iso20022 import build_pacs008, parse_pacs008
from fasterpay.iso20022.generator import GeneratedMessage, GeneratorSettings, generate_messages
from fasterpay.ledger import Ledger, SimulatedCrash, Transfer, create_ledger_tables
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.pricing import cost_of, per_10k
from fasterpay.vault import VaultPolicy
from fasterpay.vault.stack import deploy_vault, vault_as_role

from .gateway import SimulatedSchemeGateway
from .model import customer_account, to_minor_units
from .reconcile import ReconciliationReport, reconcile
from .routing import default_routing_rules
from .runner import LocalRunner, dead_letters, redrive
from .screening import SanctionsScreen, load_sanctions_list
from .settlement import SettlementBook, SettlementReport, close_cycle, replay_cycle, settled_account, settlement_account
from .stack import PipelineResources, deploy_pipeline
from .stages import STAGES, PipelineContext, make_handlers, submission_body
from .store import StatusStore

__all__ = ["BenchResult", "CrashEvery", "FloorResult", "PipelineHarness", "SLO_AUTHORISE_MS", "SLO_CRITICAL_PATH_MS",
           "build_harness", "chaos_plan", "submission_id", "figures", "percentile", "run_bench", "run_chaos", "run_floor"]

#: The guide's SLOs: p99 of the critical path (ingest to clearing decision, our code and AWS calls) and of
#: authorisation, in milliseconds.
SLO_CRITICAL_PATH_MS = 300
SLO_AUTHORISE_MS = 150

TENANT = "bank-a"
_LEDGER_REGIONS = ("eu-west-1", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "us-east-1",
                   "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ap-southeast-1", "ap-southeast-2",
                   "ap-northeast-1", "ap-northeast-2", "ap-south-1", "me-south-1", "af-south-1", "ap-east-1")
_SCHEMES = {"uk_fps": "GBP", "sepa_inst": "EUR"}


def submission_id(message: GeneratedMessage) -> str:
    """The channel's id for one submitted message (a resent copy is a new submission).

    Examples:
        >>> submission_id(generate_messages(GeneratorSettings(count=1, seed=3))[0])
        'sub-1-MSG-S3-0000001'
    """
    return f"sub-{message.sequence}-{message.msg_id}"


class CrashEvery:
    """Crash the stage (as if its Lambda died) every ``n``-th time a step is reached.

    Examples:
        >>> crash = CrashEvery({"held": 2})
        >>> crash("held")
        >>> try: crash("held")
        ... except SimulatedCrash as c: print(c.step)
        held
    """

    def __init__(self, every: dict[str, int]) -> None:
        self.every = dict(every)
        self.seen: Counter[str] = Counter()
        self.crashes = 0

    def __call__(self, step: str) -> None:
        self.seen[step] += 1
        n = self.every.get(step)
        if n and self.seen[step] % n == 0:
            self.crashes += 1
            raise SimulatedCrash(step)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``.

    Examples:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.0
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class PipelineHarness:
    """The deployed pipeline with its context, runner, meter and fault injector."""

    env: AwsEnvironment
    resources: PipelineResources
    ctx: PipelineContext
    runner: LocalRunner
    meter: ApiCallMeter
    injector: FaultInjector
    admin_dynamodb: Any
    admin_vault: Any
    instrument: Callable[[Any], Any]
    admin_ledger_clients: list[Any] = field(default_factory=list)
    client: Callable[..., Any] = field(default=None, repr=False)  # type: ignore[assignment]
    ledgers: list[Ledger] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)
    reports: list[SettlementReport] = field(default_factory=list)
    cycle_seconds: list[float] = field(default_factory=list)
    cycle_payments: list[int] = field(default_factory=list)

    def start_cycle(self, cycle: str) -> Ledger:
        """Open a settlement cycle on fresh ledger tables (rotation: see the module docstring).

        On moto each cycle's ledger also lives in a region backend of its own: moto's transactions copy
        every table of their backend, so the growing payments and vault tables would slow them too.
        """
        region = self.env.region
        if self.env.backend is not Backend.AWS:
            region = _LEDGER_REGIONS[len(self.cycles) % len(_LEDGER_REGIONS)]
        admin = self.env.client("dynamodb", region=region)
        self.admin_ledger_clients.append(admin)
        tables = create_ledger_tables(admin, None, f"{self.resources.payments_table}-{cycle.lower()}", queue=False)
        setup = Ledger(admin, tables)
        for scheme, currency in _SCHEMES.items():
            setup.open_account(f"funding:{currency}", currency, allow_negative=True)
            setup.open_account(f"suspense:{scheme}:{currency}", currency)
            setup.open_account(settlement_account(scheme, currency), currency)
            setup.open_account(settled_account(scheme, currency), currency)
        ledger = Ledger(self.instrument(self.client("dynamodb", region)), tables, clock=self.ctx.clock)
        self.ctx.ledger = ledger
        self.ctx.cycle = lambda: cycle
        self.ledgers.append(ledger)
        self.cycles.append(cycle)
        return ledger

    def onboard(self, messages: list[GeneratedMessage], *, underfunded_rate: float, rng: random.Random) -> int:
        """Open and fund the debtors' accounts (and internal creditors'), unmetered; returns accounts opened."""
        admin_ledger = Ledger(self.admin_ledger_clients[-1], self.ctx.ledger.tables)
        rules = self.ctx.routing
        opened = 0
        for message in messages:
            if message.case != "valid":
                continue
            tx = parse_pacs008(message.xml).transactions[0]
            exponent = 2
            for account, fund, agent in ((tx.debtor_account, True, None), (tx.creditor_account, False, tx.creditor_agent)):
                if account is None or (agent is not None and not rules.our_bank.reaches(
                        agent.bic or f"GBDSC:{agent.member_id}")):
                    continue
                value, cls = (account.iban, "iban") if account.iban else (account.other_id, "account_number")
                token = self.admin_vault.tokenize(value, cls, tenant=TENANT, subject="onboarding", deterministic=True)
                account_id = customer_account(token)
                try:
                    admin_ledger.open_account(account_id, tx.currency)
                    opened += 1
                except Exception:  # noqa: BLE001 - opened for an earlier message of this cycle
                    pass
                if fund:
                    amount = to_minor_units(tx.amount, exponent)
                    funded = amount // 2 if rng.random() < underfunded_rate else amount * 2
                    admin_ledger.transfer(Transfer(f"fund:{message.end_to_end_id}"[:64], f"funding:{tx.currency}", account_id,
                                                   max(1, funded), tx.currency))
        return opened

    def submit(self, messages: list[GeneratedMessage]) -> None:
        """Send the messages to the ingest queue, ten per ``SendMessageBatch`` (the channel's job)."""
        url = self.resources.queues["ingest"]
        channel = self.meter.attach(self.env.client("sqs"))  # metered, not faulted: the channel retries
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            channel.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": submission_body(m.xml, submission_id(m))} for n, m in enumerate(chunk)])

    def close(self, cycle: str) -> SettlementReport:
        """Close the cycle (metered: it is pipeline work)."""
        for attempt in range(10):  # a scheduled job: retried until done (it is exactly-once)
            try:
                report = close_cycle(cycle, book=self.ctx.book, ledger=self.ctx.ledger, statuses=self.ctx.statuses,
                                     at=self.ctx.clock())
                break
            except Exception:  # noqa: BLE001 - injected faults; the next attempt resumes
                if attempt == 9:
                    raise
        self.reports.append(report)
        return report

    def reconcile(self) -> ReconciliationReport:
        """Reconcile statuses, every cycle's ledger and the settlement reports."""
        return reconcile(statuses=StatusStore(self.admin_dynamodb, self.resources.payments_table),
                         ledgers=[(client, Ledger(client, ledger.tables))
                                  for client, ledger in zip(self.admin_ledger_clients, self.ledgers, strict=True)],
                         book=SettlementBook(self.admin_dynamodb, self.resources.settlement_table),
                         cycles=self.cycles)

    def replay(self) -> list[Any]:
        """Replay every cycle's settlement from its history."""
        book = SettlementBook(self.admin_dynamodb, self.resources.settlement_table)
        return [replay_cycle(cycle, book=book, ledger=Ledger(client, ledger.tables))
                for cycle, client, ledger in zip(self.cycles, self.admin_ledger_clients, self.ledgers, strict=True)]


def build_harness(env: AwsEnvironment, *, seed: int, name_prefix: str = "fasterpay", batch_size: int = 10,
                  latency: LatencyModel = DEFAULT_LATENCY_MODEL, plan: FaultPlan = FaultPlan(),
                  gateway: SimulatedSchemeGateway | None = None, crash: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.time, max_receive_count: int = 3,
                  sdk_retries: bool = True) -> PipelineHarness:
    """Deploy vault and pipeline stacks and wire the pipeline with metered, fault-injected clients.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     harness = build_harness(env, seed=7)
    """
    on_moto = env.backend is not Backend.AWS
    vault_res = deploy_vault(env.client("cloudformation"), env.client("kms"), name_prefix=name_prefix, on_moto=on_moto)
    resources = deploy_pipeline(env.client("cloudformation"), name_prefix=name_prefix, on_moto=on_moto,
                                max_receive_count=max_receive_count)
    meter = ApiCallMeter()
    injector = FaultInjector(latency=latency, plan=plan, seed=seed)
    # Without SDK retries every injected fault reaches the pipeline, whose own retry is redelivery; this
    # also keeps botocore's back-off from sleeping in a run that must take no real time.
    config = None if sdk_retries else Config(retries={"total_max_attempts": 1, "mode": "standard"})

    def client(service: str, region: str | None = None) -> Any:
        return env.client(service, region=region, config=config)

    def instrument(made: Any) -> Any:
        return injector.attach(meter.attach(made))

    policy = VaultPolicy.of(grants=[], erasers=[])
    vault = vault_as_role(env, vault_res, None, policy=policy, instrument=instrument)
    if not sdk_retries:
        vault._kms, vault._ddb = instrument(client("kms")), instrument(client("dynamodb"))  # noqa: SLF001
        vault.data_keys._kms = vault._kms  # noqa: SLF001
    admin_vault = vault_as_role(env, vault_res, None, policy=policy)
    sqs, dynamodb = instrument(client("sqs")), instrument(client("dynamodb"))
    admin_dynamodb = env.client("dynamodb")
    screen = SanctionsScreen.from_names(admin_vault, load_sanctions_list(), tenant=TENANT)
    ctx = PipelineContext(
        sqs=sqs, dynamodb=dynamodb, vault=vault, ledger=None,  # type: ignore[arg-type] - set per cycle
        statuses=StatusStore(dynamodb, resources.payments_table),
        book=SettlementBook(dynamodb, resources.settlement_table), queues=resources.queues,
        routing=default_routing_rules(), screen=screen, gateway=gateway or SimulatedSchemeGateway(seed=seed),
        clock=clock, tenant=TENANT, observer=injector, hop_rng=random.Random(seed),
    )
    if crash is not None:
        ctx.crash = crash
    runner = LocalRunner(sqs, resources.queues, make_handlers(ctx), region=env.region, batch_size=batch_size,
                         on_crash=StatusStore(admin_dynamodb, resources.payments_table).record_failure)
    harness = PipelineHarness(env, resources, ctx, runner, meter, injector, admin_dynamodb, admin_vault,
                              lambda made: instrument(made))
    harness.client = client  # type: ignore[attr-defined]
    return harness


def _with_sanctioned_names(messages: list[GeneratedMessage], rate: float, rng: random.Random) -> tuple[list[GeneratedMessage], set[int]]:
    names = load_sanctions_list()
    valid = [m for m in messages if m.case == "valid"]
    chosen = set(m.sequence for m in rng.sample(valid, min(len(valid), round(len(messages) * rate))))
    out: list[GeneratedMessage] = []
    for m in messages:
        if m.sequence in chosen:
            parsed = parse_pacs008(m.xml)
            tx = parsed.transactions[0]
            tx = replace(tx, creditor=replace(tx.creditor, name=rng.choice(names).lower()))  # case differs: still a hit
            m = replace(m, xml=build_pacs008(replace(parsed, transactions=(tx,))))
        out.append(m)
    return out, chosen


@dataclass(frozen=True)
class BenchResult:
    """Figures of one bench run (wall times measured on moto; latencies also modelled)."""

    messages: int
    valid: int
    batch_size: int
    wall_seconds: float
    tps_sustained: float
    tps_peak: float
    measured_ms: dict[str, float]
    modelled_ms: dict[str, float]
    authorise_modelled_p99_ms: float
    statuses: dict[str, int]
    reasons: dict[str, int]
    error_rate: float
    reconciliation: ReconciliationReport
    replay_matches: bool
    snapshot: MeterSnapshot
    api_calls_per_payment: float
    cost_per_10k: Decimal
    calls_by_operation: dict[str, int]
    dead_letters: list[Any]
    redriven: int
    crashes: int
    injected: dict[str, int]
    expected_mismatches: list[str]
    modelled_samples: list[float] = field(default_factory=list, repr=False)
    measured_samples: list[float] = field(default_factory=list, repr=False)
    authorise_samples: list[float] = field(default_factory=list, repr=False)

    @property
    def lost_or_doubled(self) -> int:
        """Payments lost (no final status) or doubled (a posting twice), from reconciliation."""
        return sum(1 for m in self.reconciliation.mismatches if "still" in m or "more than once" in m)


def run_bench(env: AwsEnvironment, *, payments: int, seed: int, cycle_size: int = 50, batch_size: int = 10,
              invalid_rate: float = 0.05, duplicate_rate: float = 0.02, sanctioned_rate: float = 0.01,
              underfunded_rate: float = 0.02, plan: FaultPlan = FaultPlan(),
              latency: LatencyModel = DEFAULT_LATENCY_MODEL, gateway_timeout_rate: float = 0.0,
              crash: Callable[[str], None] | None = None, poison_messages: int = 0, name_prefix: str = "fasterpay",
              sdk_retries: bool = True, progress: Callable[[int, int], None] | None = None) -> BenchResult:
    """Drive ``payments`` messages through the pipeline in settlement cycles of ``cycle_size``.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     result = run_bench(env, payments=300, seed=7)
        >>> result.reconciliation.mismatches  # doctest: +SKIP
        ()
    """
    rng = random.Random(seed)
    messages = generate_messages(GeneratorSettings(count=payments, seed=seed, invalid_rate=invalid_rate,
                                                   duplicate_rate=duplicate_rate))
    messages, sanctioned = _with_sanctioned_names(messages, sanctioned_rate, rng)
    gateway = SimulatedSchemeGateway(seed=seed, timeout_rate=gateway_timeout_rate)
    harness = build_harness(env, seed=seed, name_prefix=name_prefix, batch_size=batch_size, latency=latency,
                            plan=plan, gateway=gateway, crash=crash, sdk_retries=sdk_retries)
    runner, meter = harness.runner, harness.meter
    before = meter.snapshot()
    wall = 0.0
    done = 0
    poison_left = poison_messages
    total_redriven = 0
    for number, start in enumerate(range(0, len(messages), cycle_size), start=1):
        chunk = messages[start:start + cycle_size]
        harness.start_cycle(f"C{number:04d}")
        harness.onboard(chunk, underfunded_rate=underfunded_rate, rng=rng)
        began = time.perf_counter()
        harness.submit(chunk)
        if poison_left:
            poisoner = env.client("sqs")
            poisoner.send_message(QueueUrl=harness.resources.queues["ingest"], MessageBody="not json: poison")
            poisoner.send_message(QueueUrl=harness.resources.queues["authorise"], MessageBody='{"uetr": 1}')
            poison_left -= 1
        runner.run_until_idle()
        took = time.perf_counter() - began
        harness.cycle_seconds.append(took)
        harness.cycle_payments.append(len(chunk))
        wall += took
        # dead letters: poison stays for the operator; legitimate payments are redriven after the outage
        for _ in range(10):  # until only poison is left in the dead-letter queues
            redriven = _redrive_payments(harness)
            total_redriven += redriven
            if not redriven:
                break
            runner.run_until_idle()
        harness.close(f"C{number:04d}")
        done += len(chunk)
        if progress is not None:
            progress(done, len(messages))
    snapshot = meter.snapshot() - before
    operator = env.client("sqs")
    failures = StatusStore(harness.admin_dynamodb, harness.resources.payments_table)
    letters = [letter for stage in STAGES for letter in dead_letters(
        operator, harness.resources.dead_letter_queues[stage], stage=stage, reason_of=failures.failure)]
    recon = harness.reconcile()
    replays = harness.replay()
    return _result(harness, messages, sanctioned, wall, snapshot, recon, all(r.matches for r in replays), letters,
                   batch_size, crash, total_redriven)


def _redrive_payments(harness: PipelineHarness) -> int:
    """Redrive dead letters that are readable payments (failed by an outage); keep poison for a person."""
    from .model import Payment, PoisonMessageError

    def readable(stage: str) -> Callable[[str], str | None]:
        def check(body: str) -> str | None:
            try:
                if stage == "ingest":
                    import json
                    envelope = json.loads(body)
                    return body if isinstance(envelope, dict) and "submission_id" in envelope else None
                Payment.from_json(body)
                return body
            except (PoisonMessageError, ValueError):
                return None
        return check

    operator = harness.env.client("sqs")  # an operator's session: neither metered nor faulted
    return sum(redrive(operator, harness.resources.dead_letter_queues[stage], harness.resources.queues[stage],
                       transform=readable(stage)) for stage in STAGES)


def _result(harness: PipelineHarness, messages: list[GeneratedMessage], sanctioned: set[int], wall: float,
            snapshot: MeterSnapshot, recon: ReconciliationReport, replay_ok: bool, letters: list[Any],
            batch_size: int, crash: Any, redriven: int) -> BenchResult:
    ctx = harness.ctx
    statuses = StatusStore(harness.admin_dynamodb, harness.resources.payments_table)
    by_uetr = {s.uetr: s for s in statuses.payments()}
    reasons = Counter(s.reason for s in by_uetr.values() if s.status == "RJCT")
    for rejected in statuses.rejected_at_ingest():
        reasons.update(rejected["reasons"])
    valid = [m for m in messages if m.case == "valid"]
    settled = sum(1 for s in by_uetr.values() if s.status == "ACSC")
    error_rate = 1 - settled / len(valid) if valid else 0.0
    measured, modelled, authorise = [], [], []
    for uetr, stages in ctx.timings.items():
        if uetr not in by_uetr or by_uetr[uetr].status != "ACSC":
            continue
        path = ("ingest", "authorise", "route", "clear", "authorise_hop", "route_hop", "clear_hop")
        modelled.append(1000 * sum(stages.get(k, 0.0) for k in path))
        authorise.append(1000 * stages.get("authorise", 0.0))
        measured.append(1000 * sum(stages.get(f"{k}_wall", 0.0) for k in ("ingest", "authorise", "route", "clear")))
    n_messages = len(messages)
    cost = cost_of(snapshot).total
    peak = max((p / s for p, s in zip(harness.cycle_payments, harness.cycle_seconds, strict=True) if s > 0), default=0.0)
    expected = []
    for m in messages:
        if m.sequence in sanctioned:
            expected.append("RR04")
    return BenchResult(
        messages=n_messages, valid=len(valid), batch_size=batch_size, wall_seconds=wall,
        tps_sustained=n_messages / wall if wall else 0.0, tps_peak=peak,
        measured_ms={q: percentile(measured, v) for q, v in (("p50", 50), ("p95", 95), ("p99", 99))},
        modelled_ms={q: percentile(modelled, v) for q, v in (("p50", 50), ("p95", 95), ("p99", 99))},
        authorise_modelled_p99_ms=percentile(authorise, 99),
        statuses=dict(Counter(s.status for s in by_uetr.values())), reasons=dict(reasons),
        error_rate=error_rate, reconciliation=recon, replay_matches=replay_ok, snapshot=snapshot,
        api_calls_per_payment=snapshot.count() / n_messages, cost_per_10k=per_10k(cost, n_messages),
        calls_by_operation=snapshot.by_operation(), dead_letters=letters,
        redriven=redriven, crashes=getattr(crash, "crashes", 0), injected=dict(harness.injector.injected),
        expected_mismatches=expected, modelled_samples=modelled, measured_samples=measured,
        authorise_samples=authorise,
    )


@dataclass(frozen=True)
class FloorResult:
    """The same AWS calls made directly with boto3: wall time and cost."""

    calls: int
    wall_seconds: float
    snapshot: MeterSnapshot
    cost: Decimal


def run_floor(env: AwsEnvironment, calls_by_operation: dict[str, int], *, rotate_every: int = 100,
              name_prefix: str = "floor") -> FloorResult:
    """Make the counted calls (``"service.Operation": n``) directly with boto3 on small tables; time them.

    Examples:
        >>> floor = run_floor(env, {"dynamodb:PutItem": 10, "sqs:SendMessageBatch": 2})  # doctest: +SKIP
    """
    meter = ApiCallMeter()
    ddb, sqs, kms = (meter.attach(env.client(s)) for s in ("dynamodb", "sqs", "kms"))
    # transactions in a region backend of their own, as the pipeline's ledger (see PipelineHarness.start_cycle)
    tx_region = env.region if env.backend is Backend.AWS else "sa-east-1"
    ddb_tx = meter.attach(env.client("dynamodb", region=tx_region))
    admin = env.client("dynamodb")
    admin_tx = env.client("dynamodb", region=tx_region)
    mac_key = env.client("kms").create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    data_key = env.client("kms").create_key()["KeyMetadata"]["KeyId"]
    tables = {"n": 0}

    def new_table(client: Any = admin) -> str:
        tables["n"] += 1
        name = f"{name_prefix}-{tables['n']}"
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                 {"AttributeName": "sk", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
        for key in ("a", "b"):
            client.put_item(TableName=name, Item={"pk": {"S": key}, "sk": {"S": "0"}, "balance": {"N": "0"}})
        return name

    queue = env.client("sqs").create_queue(QueueName=f"{name_prefix}-queue")["QueueUrl"]
    table = new_table()
    tx_table = new_table(admin_tx)
    transactions = 0
    body = "x" * 700  # about a tokenised payment's JSON
    handles: list[str] = []
    counter = 0

    def key() -> dict[str, Any]:
        nonlocal counter
        counter += 1
        return {"pk": {"S": f"k{counter}"}, "sk": {"S": "0"}}

    def transact() -> None:
        nonlocal tx_table, transactions
        transactions += 1
        if transactions % rotate_every == 0:
            tx_table = new_table(admin_tx)
        table = tx_table
        ddb_tx.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "0"}},
                        "UpdateExpression": "SET balance = balance - :a", "ExpressionAttributeValues": {":a": {"N": "1"}}}},
            {"Update": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "0"}},
                        "UpdateExpression": "SET balance = balance + :a", "ExpressionAttributeValues": {":a": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {**key(), "v": {"S": body[:200]}}, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table, "Item": {**key(), "v": {"S": body[:200]}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])

    def receive() -> None:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        handles.extend(m["ReceiptHandle"] for m in got)

    def delete_batch() -> None:
        chunk = [handles.pop() for _ in range(min(10, len(handles)))]
        if chunk:
            sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)])
        else:
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])

    makers: dict[str, Callable[[], Any]] = {
        "dynamodb:PutItem": lambda: ddb.put_item(TableName=table, Item={**key(), "v": {"S": body}},
                                                 ConditionExpression="attribute_not_exists(pk)"),
        "dynamodb:GetItem": lambda: ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "0"}}, ConsistentRead=True),
        "dynamodb:UpdateItem": lambda: ddb.update_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "0"}},
                                                       UpdateExpression="SET s = :s", ExpressionAttributeValues={":s": {"S": "ACSP"}}),
        "dynamodb:TransactWriteItems": transact,
        "dynamodb:Query": lambda: ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                                            ExpressionAttributeValues={":p": {"S": "a"}}),
        "dynamodb:BatchGetItem": lambda: ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": "a"}, "sk": {"S": "0"}}]}}),
        "kms:GenerateMac": lambda: kms.generate_mac(KeyId=mac_key, Message=b"name", MacAlgorithm="HMAC_SHA_256"),
        "kms:GenerateDataKey": lambda: kms.generate_data_key(KeyId=data_key, KeySpec="AES_256"),
        "sqs:SendMessageBatch": lambda: sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(n), "MessageBody": body} for n in range(10)]),
        "sqs:SendMessage": lambda: sqs.send_message(QueueUrl=queue, MessageBody=body),
        "sqs:ReceiveMessage": receive,
        "sqs:DeleteMessageBatch": delete_batch,
        "sqs:ChangeMessageVisibilityBatch": lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]),
        "sqs:GetQueueAttributes": lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]),
    }
    # each operation spread evenly over the run, as in the pipeline: the queue stays short (moto's SQS
    # slows with queue length, which would otherwise be charged to the floor)
    timeline: list[tuple[float, int, str]] = []
    for rank, (op, n) in enumerate(sorted(calls_by_operation.items())):
        if op in makers:  # control-plane and scan calls are outside the payment path
            timeline.extend(((i + 0.5) / n, rank, op) for i in range(n))
    timeline.sort()
    started = time.perf_counter()
    for _, _, op in timeline:
        makers[op]()
    took = time.perf_counter() - started
    snapshot = meter.snapshot()
    return FloorResult(snapshot.count(), took, snapshot, cost_of(snapshot).total)


def chaos_plan() -> tuple[FaultPlan, LatencyModel]:
    """The chaos run's faults: 3 % throttling and 1 % timeouts on DynamoDB and SQS, and a slower latency model.

    Examples:
        >>> plan, latency = chaos_plan()
        >>> plan.throttle_rate
        0.03
    """
    from fasterpay.faults import LatencyDistribution

    slow = LatencyModel(default=LatencyDistribution(20, 120),
                        per_service={s: LatencyDistribution(d.p50_ms * 2, d.p99_ms * 4)
                                     for s, d in DEFAULT_LATENCY_MODEL.per_service.items()},
                        source="the default model with p50 doubled and p99 quadrupled (chaos)")
    return FaultPlan(throttle_rate=0.03, timeout_rate=0.01, services=frozenset({"dynamodb", "sqs"})), slow


def run_chaos(env: AwsEnvironment, *, payments: int, seed: int, name_prefix: str = "chaos",
              progress: Callable[[int, int], None] | None = None) -> BenchResult:
    """The bench under throttling, timeouts, injected latency, stage crashes, scheme timeouts and poison.

    Ends with nothing lost or doubled: check ``result.lost_or_doubled == 0`` and an empty reconciliation.

    Examples:
        >>> result = run_chaos(env, payments=100, seed=3)  # doctest: +SKIP
        >>> result.lost_or_doubled, result.reconciliation.mismatches  # doctest: +SKIP
        (0, ())
    """
    plan, latency = chaos_plan()
    crash = CrashEvery({"ingested": 53, "held": 47, "decided": 43, "cleared": 41})
    return run_bench(env, payments=payments, seed=seed, plan=plan, latency=latency, gateway_timeout_rate=0.05,
                     crash=crash, poison_messages=1, name_prefix=name_prefix, sdk_retries=False, progress=progress)


def figures(result: BenchResult, floor: FloorResult, *, unbatched: BenchResult | None = None,
            chaos: BenchResult | None = None) -> list[Any]:
    """The article's figures from one run (bench, floor, and optionally unbatched and chaos runs).

    Examples:
        >>> write_metrics("payment-pipeline", figures(result, floor), seed=7, backend="moto")  # doctest: +SKIP
    """
    from fasterpay.metrics import Figure

    n = result.messages
    floor_tps = n / floor.wall_seconds if floor.wall_seconds else 0.0
    out = [
        Figure.of("tps_sustained", "Sustained throughput", result.tps_sustained, "payments/s", "measured on moto", n,
                  places=1, kpi="tps_sustained", series="pipeline"),
        Figure.of("tps_sustained", "Sustained throughput", floor_tps, "payments/s", "measured on moto", n,
                  places=1, series="floor (same calls, plain boto3)"),
        Figure.of("tps_peak", "Peak throughput (best settlement cycle)", result.tps_peak, "payments/s",
                  "measured on moto", n, places=1, kpi="tps_peak"),
        Figure.of("overhead_ratio", "Pipeline wall time / floor wall time", result.wall_seconds / floor.wall_seconds,
                  "x", "measured on moto", n, places=2),
        Figure.of("latency_p50", "End-to-end latency p50 (critical path)", result.modelled_ms["p50"], "ms", "modelled",
                  result.valid, places=0, kpi="latency_p50"),
        Figure.of("latency_p95", "End-to-end latency p95 (critical path)", result.modelled_ms["p95"], "ms", "modelled",
                  result.valid, places=0, kpi="latency_p95"),
        Figure.of("latency_p99", "End-to-end latency p99 (critical path)", result.modelled_ms["p99"], "ms", "modelled",
                  result.valid, places=0, kpi="latency_p99"),
        Figure.of("handler_time_p50", "Handler time per payment p50 (critical path, no queue waits)",
                  result.measured_ms["p50"], "ms", "measured on moto", result.valid, places=0),
        Figure.of("handler_time_p95", "Handler time per payment p95 (critical path, no queue waits)",
                  result.measured_ms["p95"], "ms", "measured on moto", result.valid, places=0),
        Figure.of("handler_time_p99", "Handler time per payment p99 (critical path, no queue waits)",
                  result.measured_ms["p99"], "ms", "measured on moto", result.valid, places=0),
        Figure.of("slo_critical_path_p99", "SLO: critical path p99", SLO_CRITICAL_PATH_MS, "ms", "computed", 1, places=0),
        Figure.of("authorise_p99", "Authorisation latency p99", result.authorise_modelled_p99_ms, "ms", "modelled",
                  result.valid, places=0),
        Figure.of("slo_authorise_p99", "SLO: authorisation p99", SLO_AUTHORISE_MS, "ms", "computed", 1, places=0),
        Figure.of("error_rate", "Valid payments not settled (rejected by rules, scheme or timeout)",
                  100 * result.error_rate, "%", "counted", result.valid, places=2, kpi="error_rate"),
        Figure.of("recon_mismatches_per_10k", "Reconciliation mismatches per 10k payments",
                  result.reconciliation.mismatches_per_10k, "per 10k", "counted", result.reconciliation.payments,
                  places=1, kpi="recon_mismatches_per_10k"),
        Figure.of("api_calls_per_payment", "AWS API calls per payment (the pipeline batches up to 10 messages)",
                  result.api_calls_per_payment, "calls", "counted", n, places=1, series="pipeline"),
        Figure.of("cost_per_10k_tx", "Request cost per 10k payments", result.cost_per_10k, "USD", "computed", n,
                  places=4, kpi="cost_per_10k_tx", series="pipeline"),
        Figure.of("cost_per_10k_tx", "Request cost per 10k payments", per_10k(floor.cost, n), "USD", "computed", n,
                  places=4, series="floor (same calls, plain boto3)"),
    ]
    if unbatched is not None:
        out += [
            Figure.of("api_calls_per_payment", "AWS API calls per payment (the pipeline batches up to 10 messages)",
                      unbatched.api_calls_per_payment, "calls",
                      "counted", unbatched.messages, places=1, series="one message per call"),
            Figure.of("cost_per_10k_tx", "Request cost per 10k payments", unbatched.cost_per_10k, "USD", "computed",
                      unbatched.messages, places=4, series="one message per call"),
        ]
    if chaos is not None:
        out += [
            Figure.of("chaos_lost_or_doubled", "Chaos run: payments lost or doubled", chaos.lost_or_doubled, "payments",
                      "counted", chaos.messages, places=0),
            Figure.of("chaos_mismatches", "Chaos run: reconciliation mismatches", len(chaos.reconciliation.mismatches),
                      "mismatches", "counted", chaos.messages, places=0),
            Figure.of("chaos_faults", "Chaos run: faults injected (throttles, timeouts, crashes)",
                      sum(chaos.injected.values()) + chaos.crashes, "faults", "counted", chaos.messages, places=0),
        ]
    return out
