"""The payment pipeline's bench, chaos run and honest floor (``python -m simulations bench|chaos|replay``).

A run deploys the vault and pipeline stacks to moto, generates seeded pacs.008 traffic, submits it to the
accept queue as a channel would, and lets :class:`~fasterpay.pipeline.LocalRunner` drive the same
handlers Lambda would, wired by the same composition root (:func:`fasterpay.pipeline.bootstrap`). The
sender reads its answers from the answers queue; settlement cycles close as the virtual clock moves on.

**Streaming, with bounded memory.** The run goes in *table sets* of ``set_size`` payments: each set gets
fresh payments, settlement, ledger and vault tables; when it is done (every queue idle, every cycle
settled) it is reconciled, its counts are added to the run's totals, and its tables are deleted. moto's
``TransactWriteItems`` copies the tables of its backend on every call, so without this the mock, not the
pipeline, would set the pace, and memory would grow with the run. On AWS one set of tables serves for
ever; nothing in the handlers knows about sets.

**Faults.** Throttles, 5xx, timeouts before the request and lost responses after it committed are
injected per HTTP attempt into the pipeline's clients (:mod:`fasterpay.faults`), KMS included; the SDK's
own retries are off, so every fault reaches the handlers, whose retry is SQS redelivery. Crashes are
injected at every named step (:data:`CRASH_POINTS`) through the pipeline's telemetry port, the settlement
job's step hook, and the ledger's outbox relay and consumer.
"""

from __future__ import annotations

import gc
import json
import random
import resource
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fasterpay.aws import AwsEnvironment, Backend
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, FaultPlan, FaultRates, LatencyDistribution
from fasterpay.iso20022 import build_pacs008, parse_pacs008
from fasterpay.ledger import (
    DeduplicatingConsumer,
    Ledger,
    OutboxRelay,
    SimulatedCrash,
    Transfer,
    create_ledger_tables,
    statement_projection,
)
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.metrics import percentile
from fasterpay.pipeline import (
    STEP_NAMES,
    Answer,
    Clients,
    FanOut,
    LocalRunner,
    PipelineConfig,
    PipelineContext,
    PaymentStore,
    SettlementBook,
    bootstrap,
    close_cycle,
    customer_account,
    dead_letters,
    inflight_account,
    load_sanctions_list,
    make_handlers,
    reconcile,
    redrive,
    replay_cycle,
    settled_account,
    submission_body,
    to_minor_units,
)
from fasterpay.pipeline.screening import screening_form
from fasterpay.pipeline.stack import PipelineResources, deploy_pipeline
from fasterpay.vault import BatchIncompleteError
from fasterpay.vault.stack import VaultResources, deploy_vault
from simulations import moto_speedups
from simulations.generator import GeneratedMessage, GeneratorSettings, generate_messages
from simulations.scheme import SimulatedSchemeGateway, VirtualClock

__all__ = [
    "CRASH_POINTS",
    "HOP_MODEL",
    "PipelineHarness",
    "RunSettings",
    "RunSummary",
    "CrashInjector",
    "merge_summaries",
    "run_floor",
    "run_pipeline",
    "run_pipeline_parallel",
]

TENANT = "bank-a"
#: The longest wait between the runners' idle checks. The waits pass in simulated SQS time, so long steps cost
#: nothing, and a message whose receive was lost comes back after its 180 s visibility timeout in a few checks.
SIMULATED_MAX_WAIT = 30.0
#: On moto, each set's vault table lives in a region backend of its own: moto's TransactWriteItems deep-copies
#: every table of its region on each call, so the vault's records would slow the ledger's transactions.
VAULT_REGION_ON_MOTO = "eu-west-1"
_CURRENCIES = ("GBP", "EUR")
_SCHEME_RAILS = ("uk_fps", "sepa_inst")

#: Every crash point a chaos run arms: the handlers' steps, the settlement job's, the ledger outbox
#: relay's and consumer's (settlement and funding events), and the sender's answer consumer.
CRASH_POINTS = (
    *STEP_NAMES,
    "close.closing", "close.reported", "close.transferred", "close.settled", "ledger.posted",
    "relay.read", "relay.sent", "relay.deleted",
    "consumer.received", "consumer.applied", "consumer.acknowledged",
    "answers.received", "answers.applied",
)

#: Hops the latency model adds beside the metered AWS calls (modelled assumptions, stated on the page):
#: the SQS event source mapping's delivery to a warm function, a warm Lambda invoke, a cold start and its
#: share of invocations, and the sender's receive of its answer.
HOP_MODEL: dict[str, LatencyDistribution] = {
    "sqs_delivery": LatencyDistribution(10, 40),   # long-poll delivery to the event source mapping
    "lambda_invoke": LatencyDistribution(3, 12),   # the mapping invoking a warm function
    "cold_start": LatencyDistribution(400, 900),  # Python + boto3 + the pipeline's cold start
}
COLD_START_SHARE = 0.002  #: modelled share of invocations that land on a new execution environment


@dataclass(frozen=True)
class RunSettings:
    """What to run: size, seed, traffic mix and faults (all rates are probabilities, 0 to 1)."""

    payments: int
    seed: int = 7
    set_size: int = 200
    cycle_size: int = 25
    batch_size: int = 10
    invalid_rate: float = 0.05
    duplicate_rate: float = 0.02
    sanctioned_rate: float = 0.01
    underfunded_rate: float = 0.02
    gateway_timeout_rate: float = 0.01
    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    kms_fault_rate: float = 0.0
    crash_rate: float = 0.0
    min_crashes_per_point: int = 0
    poison_messages: int = 0
    concurrency: int = 10  #: modelled concurrency of a batch's per-payment writes (the template's setting)
    #: modelled share of invocations on a new execution environment (0: provisioned concurrency on the path)
    cold_start_share: float = COLD_START_SHARE
    #: Sleep each AWS call's modelled latency in wall time (``FaultInjector(sleep=True)``) instead of only adding it
    #: to virtual time; an injected timeout then sleeps the client's read timeout. The scheme's answer times stay virtual.
    real_sleep: bool = False

    @property
    def chaotic(self) -> bool:
        """True when any fault or crash is injected."""
        return any((self.throttle_rate, self.server_error_rate, self.timeout_rate, self.lost_response_rate,
                    self.kms_fault_rate, self.crash_rate, self.min_crashes_per_point))


class CrashInjector:
    """The chaos run's telemetry: crashes the process at named steps, and times each step's AWS calls.

    A step crashes with probability ``rate`` at each visit; with ``minimum`` it also crashes at every third
    visit of a point until that point has crashed ``minimum`` times, so every point is exercised whatever
    the rate. Visits and crashes are counted per point.
    """

    def __init__(self, *, rate: float, minimum: int, seed: int, injector: FaultInjector | None) -> None:
        self.rate = rate
        self.minimum = minimum
        self._rng = random.Random(seed ^ 0x5EED)
        self.visits: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()
        self._injector = injector
        self.spans: list[tuple[str, tuple[str, ...], float]] = []  # (step, uetrs, modelled seconds)
        self.recording = True

    def step(self, name: str) -> None:
        """Count the visit; crash if the dice (or the minimum) say so."""
        self.visits[name] += 1
        forced = self.crashes[name] < self.minimum and self.visits[name] % 3 == 0
        if forced or (self.rate and self._rng.random() < self.rate):
            self.crashes[name] += 1
            raise SimulatedCrash(name)

    def status(self, answer: Answer) -> None:
        """Statuses are reconciled from the tables, not from telemetry."""

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        """Crashes need no names."""

    def ledger_hook(self, prefix: str) -> Callable[[str], None]:
        """The ledger relay's or consumer's crash hook, under this injector's counts."""
        return lambda step: self.step(f"{prefix}.{step}")

    @contextmanager
    def span(self, name: str, uetrs: Sequence[str]) -> Iterator[None]:
        """Time the AWS calls inside the step (modelled), for the latency model."""
        if self._injector is None or not self.recording:
            yield None
            return
        with self._injector.span() as opened:
            yield None
        self.spans.append((name, tuple(uetrs), opened.modelled_seconds))


class _AnswerReader:
    """The sender: reads answers, deduplicates on (uetr, status), remembers the final one per transaction."""

    def __init__(self, crash: CrashInjector) -> None:
        self.crash = crash
        self.final: dict[str, str] = {}  # key (uetr, or submission#index for refusals) -> status:reason
        self.conflicts: list[str] = []
        self.duplicates = 0
        self.received = 0

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        self.crash.step("answers.received")
        for record in event.get("Records", []):
            self.received += 1
            answer = Answer.from_json(record["body"])
            key = answer.uetr or f"{answer.submission_id}#{answer.end_to_end_id}"
            if answer.reason in ("DU01", "DU03", "DU04"):
                key = f"dup:{answer.submission_id}:{answer.end_to_end_id}"
            value = f"{answer.status}:{answer.reason or ''}"
            if key in self.final:
                if self.final[key] == value:
                    self.duplicates += 1
                else:
                    self.conflicts.append(f"{key}: {self.final[key]} then {value}")
            else:
                self.final[key] = value
        self.crash.step("answers.applied")
        return {"batchItemFailures": []}


@dataclass
class _Totals:
    payments: int = 0
    valid: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    non_final: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    ledger_sum: Counter[str] = field(default_factory=Counter)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    redriven: int = 0
    reordered: int = 0  # valid payments refused DU04 because their EndToEndId copy arrived first
    answers_duplicated: int = 0
    answer_conflicts: list[str] = field(default_factory=list)
    scheme_timeouts: int = 0  # payments the scheme did not answer in time (each UETR once)
    expected_mismatch: list[str] = field(default_factory=list)
    replay_mismatches: int = 0
    cycles: int = 0
    latency_ingest_to_acsp: list[float] = field(default_factory=list)
    latency_authorise: list[float] = field(default_factory=list)
    latency_scheme: list[float] = field(default_factory=list)
    handler_seconds: float = 0.0
    peak_set_tps: float = 0.0  # the busiest table set: its payments over its own handler time
    scheme_wait_seconds: float = 0.0
    invocations: Counter[str] = field(default_factory=Counter)
    log_bytes: int = 0
    hop_components: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class RunSummary:
    """What a run found and measured (see :meth:`as_json` for the published keys)."""

    settings: RunSettings
    payments: int
    valid: int
    lost: int
    doubled: int
    non_final: int
    reconciliation_mismatches: int
    mismatch_examples: tuple[str, ...]
    statuses: dict[str, int]
    reasons: dict[str, int]
    ledger_sum_by_currency: dict[str, int]
    dead_letters: tuple[dict[str, Any], ...]
    redriven: int
    answers_duplicated: int
    answer_conflicts: tuple[str, ...]
    snapshot: MeterSnapshot
    calls_by_operation: dict[str, int]
    api_calls_per_payment: float
    kms_requests_per_10k: float
    kms_cold_start_requests: int
    write_units_per_payment: float
    read_units_per_payment: float
    lambda_invocations: int
    lambda_gb_seconds: Decimal
    log_bytes: int
    crash_points_hit: dict[str, int]
    crash_point_visits: dict[str, int]
    injected: dict[str, int]
    latency_ms: dict[str, dict[str, float]]
    latency_samples: dict[str, list[float]]
    peak_rss_mb: float
    seconds: float
    seconds_in_handlers: float
    cycles: int
    replay_mismatches: int
    peak_set_tps: float = 0.0
    #: the ledger's event relay and consumer (outbox, SQS FIFO, processed marks): metered apart from ``snapshot``
    notify_snapshot: MeterSnapshot = field(default_factory=MeterSnapshot)
    #: payments the simulated scheme did not answer within the rail's time limit (each UETR once); every one
    #: must end RJCT with the rail's timeout reason (AB06 or AB05), else it is counted as a mismatch
    scheme_timeouts: int = 0
    #: the modelled latency of every AWS attempt the run's code made (slept in wall time with ``real_sleep``)
    modelled_aws_seconds: float = 0.0
    #: faults injected into KMS attempts (throttles and 5xx), cold starts included
    kms_faults: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled or left non-final, every ledger sums to zero, no mismatch."""
        return (not self.lost and not self.doubled and not self.non_final and not self.reconciliation_mismatches
                and all(v == 0 for v in self.ledger_sum_by_currency.values()) and not self.answer_conflicts)


# -- the harness ----------------------------------------------------------------------------------------
SET_UP_ATTEMPTS = 10
#: Attempt records the harness's fault injector keeps (the last ones): enough for a test to look back over a
#: set, bounded so that a long run's memory does not grow with it.
INJECTOR_HISTORY = 20_000


def _set_up(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an idempotent set-up step of the bench, retrying the faults the plan injects into it.

    The bench's own set-up (the bank's onboarding) shares the faulted vault with the pipeline, so a
    KMS or DynamoDB fault can land in it, for instance on the token key's ``GenerateMac`` when a key
    period rolls over. The pipeline's handlers retry by SQS redelivery; set-up has no queue, so it
    retries here. Only idempotent calls go through this: deriving a deterministic token, and
    tokenising deterministically (a record already written is found, not written twice).
    """
    for _ in range(SET_UP_ATTEMPTS - 1):
        try:
            return call(*args, **kwargs)
        except (ClientError, BotoCoreError, BatchIncompleteError):
            continue
    return call(*args, **kwargs)  # the last attempt's fault reaches the caller


class PipelineHarness:
    """Stacks, clients, one pipeline context, and a fresh table set on demand."""

    def __init__(self, env: AwsEnvironment, settings: RunSettings, *, name_prefix: str,
                 telemetry: Any = None, fault_seed: int | None = None,
                 tap: Callable[[Any], Any] | None = None) -> None:
        self.env = env
        self.telemetry = telemetry
        self.settings = settings
        self.prefix = name_prefix
        on_moto = env.backend is not Backend.AWS
        self.sqs_waited = 0.0  # seconds the runners waited for in-flight messages (simulated on moto)
        # moto in process, or its threaded server in this process: same answers, no whole-table copy per
        # transaction, SQS on a movable clock
        moto_speedups.install_on_moto(env)
        self.vault_res: VaultResources = deploy_vault(env.client("cloudformation"), env.client("kms"),
                                                      name_prefix=name_prefix, on_moto=on_moto)
        self.res: PipelineResources = deploy_pipeline(env.client("cloudformation"), name_prefix=name_prefix,
                                                      on_moto=on_moto, parameters={"DeployFunctions": "false"})
        self.meter = ApiCallMeter()
        self.ledger_redriven = 0  # ledger events brought back from the ledger's DLQ
        kms_plan = FaultRates(server_error_rate=settings.kms_fault_rate / 2, throttle_rate=settings.kms_fault_rate / 2)
        fault_seed = settings.seed if fault_seed is None else fault_seed
        self.injector = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=fault_seed, history=INJECTOR_HISTORY,
                                      sleep=settings.real_sleep, plan=FaultPlan(
            throttle_rate=settings.throttle_rate, server_error_rate=settings.server_error_rate,
            timeout_rate=settings.timeout_rate, lost_response_rate=settings.lost_response_rate,
            services=frozenset({"dynamodb", "sqs"}), per_service={"kms": kms_plan}))
        self.crash = CrashInjector(rate=settings.crash_rate, minimum=settings.min_crashes_per_point,
                                   seed=fault_seed, injector=self.injector)
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        self.client = lambda service, region=None: env.client(service, region=region, config=config)
        # ``tap`` sees every client the handlers, the sender and the ledger relay use (e.g. to size their requests)
        self.tap = tap or (lambda made: made)
        self.instrument = lambda made: self.injector.attach(self.meter.attach(self.tap(made)))
        self.vault_region = env.region if env.backend is Backend.AWS else VAULT_REGION_ON_MOTO
        self.clients = Clients(sqs=self.instrument(self.client("sqs")), dynamodb=self.instrument(self.client("dynamodb")),
                               kms=self.instrument(self.client("kms")),
                               extra={"vault_dynamodb": self.instrument(self.client("dynamodb", self.vault_region))})
        self.admin_ddb = env.client("dynamodb")
        self.admin_vault_ddb = env.client("dynamodb", region=self.vault_region)
        self.admin_sqs = env.client("sqs")
        self.clock = VirtualClock()
        self.gateway = SimulatedSchemeGateway(seed=fault_seed, timeout_rate=settings.gateway_timeout_rate)
        self.cycle_no = 1
        self.sets = 0
        self.notify_meter = ApiCallMeter()  # the ledger's event relay and consumer: reported apart
        self.config = self._config(self._table_names(0))
        self.crash.recording = False
        self.ctx: PipelineContext = self._bootstrap_with_retries()
        self.crash.recording = True
        self.kms_cold_start = self.meter.count(service="kms")
        self.runner = LocalRunner(self.clients.sqs, {q: self.res.queues[q] for q in ("accept", "clear")},
                                  make_handlers(self.ctx), region=env.region, batch_size=settings.batch_size,
                                  on_crash=lambda *a: None, control=self.admin_sqs, sleep=self._wait,
                                  max_wait=SIMULATED_MAX_WAIT)
        self.reader = _AnswerReader(self.crash)
        self.answers = LocalRunner(self.clients.sqs, {"answers": self.res.queues["answers"]},
                                   {"answers": self.reader}, region=env.region, batch_size=10, control=self.admin_sqs,
                                   sleep=self._wait, max_wait=SIMULATED_MAX_WAIT)
        self.channel = self.meter.attach(self.tap(env.client("sqs")))  # the sender's channel: metered, not faulted

    def _wait(self, seconds: float) -> None:
        """The runners' wait for in-flight messages: SQS's clock moves on in process, real time otherwise."""
        self.sqs_waited += seconds
        if moto_speedups.installed():
            moto_speedups.advance_sqs_clock(seconds)
        else:
            time.sleep(seconds)

    def _table_names(self, n: int) -> dict[str, str]:
        base = f"{self.prefix}-s{n:05d}"
        return {"payments": f"{base}-payments", "settlement": f"{base}-settlement", "ledger": base,
                "vault": f"{base}-vault"}

    def _config(self, names: Mapping[str, str]) -> PipelineConfig:
        return PipelineConfig(
            payments_table=names["payments"], settlement_table=names["settlement"], ledger_table=f"{names['ledger']}-ledger",
            ledger_outbox_table=f"{names['ledger']}-ledger-outbox", vault_table=names["vault"],
            vault_audit_table=self.vault_res.audit_table, vault_key=self.vault_res.vault_key_arn,
            mac_key=self.vault_res.token_mac_key_arn, accept_queue_url=self.res.queues["accept"],
            clear_queue_url=self.res.queues["clear"], answers_queue_url=self.res.queues["answers"], tenant=TENANT)

    def _create_tables(self, names: Mapping[str, str]) -> Any:
        for table, sort_key, ddb in ((names["payments"], False, self.admin_ddb), (names["settlement"], True, self.admin_ddb),
                                     (names["vault"], False, self.admin_vault_ddb)):
            attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
            schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
            if sort_key:
                attributes.append({"AttributeName": "sk", "AttributeType": "S"})
                schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                             KeySchema=schema)
        return create_ledger_tables(self.admin_ddb, self.admin_sqs, names["ledger"], queue=True)

    def _bootstrap_with_retries(self) -> PipelineContext:
        self.ledger_tables = self._create_tables(self._table_names(0))
        for _ in range(50):  # a cold start under injected KMS faults is retried, as Lambda would
            try:
                telemetry = self.crash if self.telemetry is None else FanOut(self.telemetry, self.crash)
                return bootstrap(self.config, clients=self.clients, gateway=self.gateway, telemetry=telemetry,
                                 clock=self.clock, cycle=lambda: f"C{self.cycle_no:06d}")
            except Exception:  # noqa: BLE001 - injected faults
                continue
        raise RuntimeError("the pipeline could not start (KMS faults on every attempt)")

    def new_set(self) -> None:
        """Fresh tables for the next table set; the context keeps its clients and caches (a warm function)."""
        self.sets += 1
        names = self._table_names(self.sets)
        self.ledger_tables = self._create_tables(names)
        self.config = self._config(names)
        self.ctx.store = PaymentStore(self.clients.dynamodb, self.config.payments_table, self.config.ledger_table)
        self.ctx.book = SettlementBook(self.clients.dynamodb, self.config.settlement_table)
        self.ctx.vault.table_name = self.config.vault_table

    def drop_set(self) -> None:
        """Delete the finished set's tables (and the ledger's event queues) so memory stays flat."""
        self.admin_vault_ddb.delete_table(TableName=self.config.vault_table)
        for table in (self.config.payments_table, self.config.settlement_table,
                      self.ledger_tables.ledger, self.ledger_tables.outbox, self.ledger_tables.idempotency,
                      self.ledger_tables.consumer):
            self.admin_ddb.delete_table(TableName=table)
        for url in (self.ledger_tables.queue_url, self.ledger_tables.dead_letter_queue_url):
            if url:
                self.admin_sqs.delete_queue(QueueUrl=url)
        if self.env.backend is not Backend.AWS:
            moto_speedups.forget_tracked_instances()  # moto's dashboard list would grow with every item
            moto_speedups.forget_deleted_receipts()  # and its SQS queues would keep every receipt handle

    # -- per set: accounts and traffic -------------------------------------------------------------
    def ledger(self, dynamodb: Any) -> Ledger:
        return Ledger(dynamodb, self.ledger_tables, clock=self.clock)

    def open_house_accounts(self) -> None:
        admin = self.ledger(self.admin_ddb)
        for currency in _CURRENCIES:
            admin.open_account(f"funding:{currency}", currency, allow_negative=True)
            for rail in (*_SCHEME_RAILS, "internal"):
                admin.open_account(inflight_account(rail, currency), currency, allow_negative=True)
                admin.open_account(settled_account(rail, currency), currency)

    def onboard(self, messages: Sequence[GeneratedMessage], rng: random.Random) -> None:
        """Open and fund the debtors (and internal creditors), with their vault subjects: a bank's state.

        Setup, not the pattern: the accounts, their opening balances and the funding journal entries are
        written as the ledger would write them, in bulk and without transactions (moto's transactions
        copy every table of the region; thousands of setup transactions would cost more than the run).
        """
        vault = self.ctx.vault
        rules = self.ctx.routing
        requests: list[tuple[str, str, str]] = []
        opened: dict[str, str] = {}
        funded: dict[str, int] = defaultdict(int)
        journal: list[dict[str, Any]] = []
        posted_at = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
        for message in messages:
            if message.case not in ("valid", "sanctioned"):
                continue
            tx = parse_pacs008(message.xml).transactions[0]
            sides = [(tx.debtor_account, tx.debtor, True)]
            agent = tx.creditor_agent.bic or f"GBDSC:{tx.creditor_agent.member_id}"
            if rules.our_bank.reaches(agent):
                sides.append((tx.creditor_account, tx.creditor, False))
            for account, party, fund in sides:
                value, cls = (account.iban, "iban") if account.iban else (account.other_id, "account_number")
                token = _set_up(vault.deterministic_token, str(value), cls, tenant=TENANT)
                subject = f"cust:{token}"
                requests += [(str(value), cls, subject), (screening_form(party.name), "name", subject)]
                account_id = customer_account(token)
                opened.setdefault(account_id, tx.currency)
                if fund:
                    amount = to_minor_units(tx.amount, 2)
                    amount = max(1, amount // 2 if rng.random() < self.settings.underfunded_rate else amount * 2)
                    transfer_id = f"fund:{message.end_to_end_id}"[:64]
                    funded[account_id] += amount
                    funded[f"funding:{tx.currency}"] -= amount
                    journal.append({
                        "pk": {"S": f"TRANSFER#{transfer_id}"}, "transfer_id": {"S": transfer_id},
                        "debit_account": {"S": f"funding:{tx.currency}"}, "credit_account": {"S": account_id},
                        "amount_minor": {"N": str(amount)}, "currency": {"S": tx.currency},
                        "posted_at": {"S": posted_at}, "event_id": {"S": f"TransferPosted:{transfer_id}"},
                        "debit_shard": {"N": "0"}, "credit_shard": {"N": "0"}, "reference": {"S": "onboarding"},
                        "fingerprint": {"S": "onboarding"}})
        items = list(journal)
        for account_id, currency in opened.items():
            items.append({"pk": {"S": f"ACCT#{account_id}"}, "currency": {"S": currency}, "shards": {"N": "1"},
                          "allow_negative": {"BOOL": False}, "opened_at": {"S": posted_at}})
            items.append({"pk": {"S": f"BAL#{account_id}#0"}, "account": {"S": account_id}, "currency": {"S": currency},
                          "balance": {"N": str(funded.get(account_id, 0))}, "postings": {"N": "0"}})
        for start in range(0, len(items), 25):
            self.admin_ddb.batch_write_item(RequestItems={self.ledger_tables.ledger: [
                {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        for account_id, amount in funded.items():
            if account_id.startswith("funding:"):
                self.admin_ddb.update_item(TableName=self.ledger_tables.ledger, Key={"pk": {"S": f"BAL#{account_id}#0"}},
                                           UpdateExpression="SET balance = balance + :a",
                                           ExpressionAttributeValues={":a": {"N": str(amount)}})
        saved = vault._ddb  # noqa: SLF001 - onboarding is the bank's own, unmetered
        vault._ddb = self.admin_vault_ddb  # noqa: SLF001
        try:
            _set_up(vault.tokenize_batch, requests, tenant=TENANT, deterministic=True)
        finally:
            vault._ddb = saved  # noqa: SLF001

    def submit(self, messages: Sequence[GeneratedMessage]) -> None:
        """The channel sends the messages to the accept queue, ten per call."""
        url = self.res.queues["accept"]
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            self.channel.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": submission_body(m.xml, submission_id(m))} for n, m in enumerate(chunk)])

    def settle(self, cycle: str) -> int:
        """Close a cycle with the settlement job (metered, faulted, crashable); rerun until it is done."""
        if getattr(self, "_settler_tables", None) is not self.ledger_tables:  # one warm settlement job per set
            self._settler_tables = self.ledger_tables
            self._settler = Ledger(self.clients.dynamodb, self.ledger_tables, clock=self.clock,
                                   crash=self.crash.ledger_hook("ledger"))
        ledger = self._settler
        for attempt in range(1, 200):
            try:
                close_cycle(cycle, book=self.ctx.book, ledger=ledger, at=self.clock(), step=self.crash.step)
                return attempt
            except (SimulatedCrash, Exception):  # noqa: BLE001 - a scheduled job: the next run resumes
                continue
        raise RuntimeError(f"cycle {cycle} did not close in 200 runs")

    def relay_ledger_events(self) -> None:
        """The ledger's outbox relay and deduplicating consumer, with their crash points armed."""
        ddb = self.injector.attach(self.notify_meter.attach(self.tap(self.client("dynamodb"))))
        sqs = self.injector.attach(self.notify_meter.attach(self.tap(self.client("sqs"))))
        relay = OutboxRelay(ddb, sqs, outbox_table=self.ledger_tables.outbox, queue_url=self.ledger_tables.queue_url,
                            crash=self.crash.ledger_hook("relay"))
        consumer = DeduplicatingConsumer(ddb, sqs, queue_url=self.ledger_tables.queue_url,
                                         table=self.ledger_tables.consumer, name="statements",
                                         apply=statement_projection(self.ledger_tables.consumer), clock=self.clock,
                                         crash=self.crash.ledger_hook("consumer"), visibility_timeout=0)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        for _ in range(2_000):
            try:
                relay.drain()
                if relay.pending() == 0:
                    consumer.drain()
                    attrs = self.admin_sqs.get_queue_attributes(QueueUrl=self.ledger_tables.queue_url,
                                                                AttributeNames=names)["Attributes"]
                    if not any(int(attrs[n]) for n in names):
                        # An event received too often (crashes, faults) sits in the ledger's DLQ: the
                        # operator's redrive (the runbook's command) brings it back; it is never dropped.
                        dlq = self.ledger_tables.dead_letter_queue_url
                        moved = redrive(self.admin_sqs, dlq, self.ledger_tables.queue_url) if dlq else 0
                        self.ledger_redriven += moved
                        if not moved:
                            return
            except (SimulatedCrash, Exception):  # noqa: BLE001 - the next run resumes
                continue
        raise RuntimeError("ledger events did not drain")


def submission_id(message: GeneratedMessage) -> str:
    """The channel's id for one submitted message (a resent copy is a new submission).

    Examples:
        >>> submission_id(generate_messages(GeneratorSettings(count=1, seed=3))[0])
        'sub-1-MSG-S3-0000001'
    """
    return f"sub-{message.sequence}-{message.msg_id}"


def _with_sanctioned_names(messages: list[GeneratedMessage], rate: float, rng: random.Random) -> list[GeneratedMessage]:
    names = load_sanctions_list()
    valid = [m for m in messages if m.case == "valid"]
    chosen = {m.sequence for m in rng.sample(valid, min(len(valid), round(len(messages) * rate)))}
    out: list[GeneratedMessage] = []
    for m in messages:
        if m.sequence in chosen:
            parsed = parse_pacs008(m.xml)
            tx = parsed.transactions[0]
            tx = replace(tx, creditor=replace(tx.creditor, name=rng.choice(names).lower()))  # case differs: still a hit
            m = replace(m, xml=build_pacs008(replace(parsed, transactions=(tx,))), case="sanctioned")
        out.append(m)
    return out


def _messages(settings: RunSettings, start: int, count: int) -> list[GeneratedMessage]:
    """One table set's traffic: a fresh seeded batch per set (duplicates refer to the same set)."""
    messages = generate_messages(GeneratorSettings(count=count, seed=settings.seed * 100_003 + start,
                                                   invalid_rate=settings.invalid_rate,
                                                   duplicate_rate=settings.duplicate_rate))
    return _with_sanctioned_names(messages, settings.sanctioned_rate, random.Random(settings.seed + start))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the run ------------------------------------------------------------------------------------------------
def run_pipeline(env: AwsEnvironment, settings: RunSettings, *, name_prefix: str = "fp",
                 progress: Callable[[int, int], None] | None = None, telemetry: Any = None,
                 first: int = 0, fault_seed: int | None = None, tap: Callable[[Any], Any] | None = None,
                 after_settle: Callable[[PipelineHarness, list[str]], None] | None = None) -> RunSummary:
    """Drive ``settings.payments`` messages through the pipeline, set by set; reconcile each set.

    ``first`` is the index of the first message: a set's traffic depends only on the seed and its first
    index, so a run split across processes (:func:`run_pipeline_parallel`) submits the same payments.
    ``fault_seed`` seeds the faults, crashes and scheme answers (default: the seed). ``tap`` is applied to
    every client the run's code uses (handlers, sender, ledger relay), before the meter: a hook to size requests.
    ``after_settle(harness, cycles)`` runs once per table set after its cycles are closed and before the set is
    reconciled (a drill's hook: damage a settlement report, find it, repair it).

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     summary = run_pipeline(env, RunSettings(payments=1000, seed=7))
        >>> summary.ok  # doctest: +SKIP
        True
    """
    started = time.perf_counter()
    h = PipelineHarness(env, settings, name_prefix=name_prefix, telemetry=telemetry, fault_seed=fault_seed, tap=tap)
    totals = _Totals()
    before = h.meter.snapshot()
    notify_before = h.notify_meter.snapshot()
    done = 0
    poison_left = settings.poison_messages
    while done < settings.payments:
        count = min(settings.set_size, settings.payments - done)
        if done:
            h.new_set()
        messages = _messages(settings, first + done, count)
        handler_seconds_before = totals.handler_seconds
        h.open_house_accounts()
        h.onboard(messages, random.Random(settings.seed + first + done))  # a set's funding: its own seed
        cycles: list[str] = []
        for start in range(0, len(messages), settings.cycle_size):
            chunk = messages[start:start + settings.cycle_size]
            cycle = f"C{h.cycle_no:06d}"
            cycles.append(cycle)
            h.submit(chunk)
            if poison_left:
                h.admin_sqs.send_message(QueueUrl=h.res.queues["accept"], MessageBody="not json: poison")
                h.admin_sqs.send_message(QueueUrl=h.res.queues["clear"], MessageBody='{"uetr": 1}')
                poison_left -= 1
            _drive(h, totals)
            h.cycle_no += 1  # the next chunk clears into the next cycle; a late redelivery keeps its own
            h.clock.advance(1.0)
        _drive(h, totals)  # everything answered before the cycles of the set close
        set_seconds = totals.handler_seconds - handler_seconds_before
        totals.peak_set_tps = max(totals.peak_set_tps, count / set_seconds if set_seconds else 0.0)
        for cycle in cycles:
            h.settle(cycle)
            h.relay_ledger_events()  # the settlement transfers' events, relayed and consumed cycle by cycle
        if after_settle is not None:
            after_settle(h, cycles)
        _account_set(h, messages, cycles, totals)
        h.drop_set()
        done += count
        gc.collect()
        if progress is not None:
            progress(done, settings.payments)
    snapshot = h.meter.snapshot() - before
    summary = _summary(h, settings, totals, snapshot, time.perf_counter() - started)
    return replace(summary, notify_snapshot=h.notify_meter.snapshot() - notify_before)


def _drive(h: PipelineHarness, totals: _Totals) -> None:
    """Run the handlers and the sender until everything is idle; redrive real payments from the DLQs."""
    for _ in range(20):
        calls_before = len(h.crash.spans)
        began = time.perf_counter()
        h.runner.run_until_idle()
        h.answers.run_until_idle()
        totals.handler_seconds += time.perf_counter() - began
        _latency(h, totals, calls_before)
        totals.latency_scheme.extend(1000 * s for s in h.gateway.answers)
        totals.scheme_wait_seconds += sum(h.gateway.batch_waits)
        h.gateway.answers.clear()
        h.gateway.batch_waits.clear()
        if not _redrive_payments(h, totals):
            return
    raise RuntimeError("dead letters keep coming back after 20 redrives")


def _redrive_payments(h: PipelineHarness, totals: _Totals) -> int:
    """Redrive dead letters that are readable payments (failed by injected faults); keep poison for a person."""
    moved = 0
    for queue in ("accept", "clear", "answers"):
        def readable(body: str, queue: str = queue) -> str | None:
            try:
                data = json.loads(body)
            except ValueError:
                return None
            if not isinstance(data, dict):
                return None
            ok = {"accept": "submission_id" in data and "xml" in data, "clear": isinstance(data.get("uetr"), str),
                  "answers": "status" in data}[queue]
            return body if ok else None
        moved += redrive(h.admin_sqs, h.res.dead_letter_queues[queue], h.res.queues[queue], transform=readable)
    totals.redriven += moved
    return moved


def _latency(h: PipelineHarness, totals: _Totals, first_span: int) -> None:
    """Build each payment's modelled path from the spans of this drive (see :data:`HOP_MODEL`).

    A handler invocation's spans form one group: batch-level steps (ingest, route, vault, scheme, settle)
    and per-payment writes (authorise, clear). The per-payment writes of a batch, and the vault records
    beside them, run ``concurrency`` at a time (the template's setting), so a batch's write block takes
    the slowest of each wave; every payment of the batch waits for the whole block before the batch's send.
    """
    rng = random.Random(len(totals.latency_ingest_to_acsp) + h.settings.seed)
    spans = h.crash.spans[first_span:]
    del h.crash.spans[:]
    concurrency = max(1, h.settings.concurrency)
    groups: list[dict[str, Any]] = []
    for name, uetrs, seconds in spans:
        current = groups[-1] if groups else None
        if name == "ingest":
            current = {"kind": "accept", "batch": {}, "own": []}
            groups.append(current)
        elif name == "scheme" or (name == "clear" and (current is None or current["kind"] != "clear"
                                                       or "settle" in current["batch"])):
            current = {"kind": "clear", "batch": {}, "own": []}
            groups.append(current)
        if current is None:
            continue
        if name in ("authorise", "clear"):
            current["own"].append((uetrs[0], seconds))
        else:
            current["batch"][name] = current["batch"].get(name, 0.0) + seconds
    per: dict[str, dict[str, float]] = defaultdict(dict)
    for group in groups:
        own = group["own"]
        batch = group["batch"]
        if group["kind"] == "accept":
            block = max(batch.get("vault", 0.0), _waves([s for _, s in own], concurrency) if own else 0.0)
            for uetr, _ in own:
                per[uetr].setdefault("ingest", batch.get("ingest", 0.0) + batch.get("route", 0.0))
                per[uetr].setdefault("accept_block", block)
        else:
            block = _waves([s for _, s in own], concurrency) if own else 0.0
            for uetr, _ in own:
                per[uetr].setdefault("clear_block", block)
    send = DEFAULT_LATENCY_MODEL.for_call("sqs", "SendMessageBatch")

    def hop() -> float:
        seconds = HOP_MODEL["sqs_delivery"].sample(rng) + HOP_MODEL["lambda_invoke"].sample(rng)
        if rng.random() < h.settings.cold_start_share:  # drawn either way: the same seed, the same other draws
            seconds += HOP_MODEL["cold_start"].sample(rng)
        return seconds

    for parts in per.values():
        if "accept_block" not in parts:
            continue
        connection_in = send.sample(rng)
        hop_accept = hop()
        authorise = hop_accept + parts["ingest"] + parts["accept_block"]
        totals.latency_authorise.append(1000 * authorise)
        if "clear_block" not in parts:
            continue
        forward = send.sample(rng)
        hop_clear = hop()
        answer = send.sample(rng)
        path = connection_in + authorise + forward + hop_clear + parts["clear_block"] + answer
        totals.latency_ingest_to_acsp.append(1000 * path)
        for key, value in (("connection in", connection_in), ("SQS hops and invokes", hop_accept + hop_clear),
                           ("ingest (parse, validate, tokenise)", parts["ingest"]),
                           ("holds and vault records (batch)", parts["accept_block"]),
                           ("forward to clearing", forward), ("clearing decisions (batch)", parts["clear_block"]),
                           ("answer to the sender", answer)):
            totals.hop_components[key].append(1000 * value)


def _waves(seconds: list[float], concurrency: int) -> float:
    """Time of per-payment writes run ``concurrency`` at a time: the sum over waves of each wave's slowest."""
    return sum(max(seconds[i:i + concurrency]) for i in range(0, len(seconds), concurrency))


def _account_set(h: PipelineHarness, messages: Sequence[GeneratedMessage], cycles: list[str], totals: _Totals) -> None:
    """Reconcile the set and check every submission's outcome from the sender's side."""
    store = PaymentStore(h.admin_ddb, h.config.payments_table, h.config.ledger_table)
    book = SettlementBook(h.admin_ddb, h.config.settlement_table)
    ledger = h.ledger(h.admin_ddb)
    stored = {p.uetr: p for p in store.payments()}  # read once: reconcile, the replay and the sender's check share it
    report = reconcile(store=store, book=book, ledger=ledger, cycles=cycles, admin_dynamodb=h.admin_ddb,
                       payments=stored)
    totals.payments += len(messages)
    totals.cycles += len(cycles)
    totals.mismatches.extend(report.mismatches)
    for cycle in cycles:  # settlement replay: entries -> positions, against the report, the ledger, the records
        replayed = replay_cycle(cycle, book=book, ledger=ledger, payments=stored.get)
        totals.replay_mismatches += len(replayed.mismatches)
        totals.mismatches.extend(f"replay {problem}" for problem in replayed.mismatches)
    totals.non_final.extend(report.non_final)
    totals.doubled.extend(report.doubled)
    totals.statuses.update(report.statuses)
    totals.reasons.update(report.reasons)
    for currency, total in report.currency_totals.items():
        totals.ledger_sum[currency] += total
    refusals = list(store.ingest_rejections())
    refused_with: dict[str, set[str]] = {}  # submission -> the reasons it was refused with
    for r in refusals:
        totals.reasons.update(r["reasons"])
        refused_with.setdefault(r["key"].rsplit("#", 1)[0], set()).update(r["reasons"])
    recorded_subs = {p.submission_id for p in stored.values()}
    stored_e2e = {p.end_to_end_id: p for p in stored.values()}
    for m in messages:
        sub = submission_id(m)
        if sub not in refused_with and sub not in recorded_subs:
            totals.lost.append(f"{sub}: {m.case} message neither recorded as a payment nor refused")
            continue
        if m.case in ("valid", "sanctioned"):
            totals.valid += 1
            tx = parse_pacs008(m.xml).transactions[0]
            winner = stored_e2e.get(tx.end_to_end_id)
            if (tx.uetr not in stored and "DU04" in refused_with.get(sub, ()) and winner is not None
                    and h.reader.final.get(winner.uetr) is not None):
                # A later copy reusing this EndToEndId arrived first (this one was redelivered after a crash):
                # the copy is the payment and this one its duplicate. One of the pair is paid, never both.
                totals.reordered += 1
            elif tx.uetr not in stored:
                totals.lost.append(f"{sub}: valid payment {tx.uetr} has no record")
            elif h.reader.final.get(tx.uetr) is None:
                totals.lost.append(f"{sub}: {tx.uetr} never answered")
    # ledger statements (the consumer's effect) equal the journal: each event applied exactly once
    from fasterpay.ledger import read_projection

    journal = [t for t in ledger.journal() if not t.transfer_id.startswith("fund:")]  # onboarding has no events
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in journal:
        expected[t.debit_account][1] += 1
        expected[t.credit_account][0] += 1
    for account, (ins, outs) in expected.items():
        got = read_projection(h.admin_ddb, h.ledger_tables.consumer, account)
        if got["in_count"] != ins or got["out_count"] != outs:
            detail = f"statement {account}: in {got['in_count']}/{ins}, out {got['out_count']}/{outs}"
            (totals.doubled if got["in_count"] > ins or got["out_count"] > outs else totals.lost).append(detail)
            totals.mismatches.append(f"statement {account} differs from the journal")
    for uetr in sorted(h.gateway.timed_out):  # every payment the scheme left unanswered is resolved, RJCT AB05/AB06
        totals.scheme_timeouts += 1
        p = stored.get(uetr)
        if p is None or p.status != "RJCT" or p.reason not in ("AB05", "AB06"):
            found = "missing" if p is None else f"{p.status} {p.reason or ''}".strip()
            totals.mismatches.append(f"{uetr}: the scheme timed out but its record is {found}")
    h.gateway.timed_out.clear()
    totals.answers_duplicated += h.reader.duplicates
    totals.answer_conflicts.extend(h.reader.conflicts)
    h.reader.final.clear()
    h.reader.conflicts.clear()
    h.reader.duplicates = 0
    for queue in ("accept", "clear", "answers"):
        for letter in dead_letters(h.admin_sqs, h.res.dead_letter_queues[queue], stage=queue,
                                   reason_of=lambda q, mid: store.failure(q, mid)):
            totals.dead_letters.append({"queue": queue, "body": letter.body[:60], "reason": letter.reason or "unknown"})
        _drain(h.admin_sqs, h.res.dead_letter_queues[queue])


def _cpu_seconds_per_payment(h: PipelineHarness, samples: int = 20) -> float:
    """Our code's CPU time per payment, measured on this machine without AWS or moto: parse and validate a
    pacs.008, compute its four tokens, screen and route it (the work a handler does between its calls)."""
    from fasterpay.iso20022 import Pacs008Validator

    messages = [m for m in generate_messages(GeneratorSettings(count=samples, seed=h.settings.seed)) if m.case == "valid"]
    validator = Pacs008Validator()
    started = time.process_time()
    for m in messages:
        tx = validator.validate(m.xml).transactions[0].transaction
        for acct in (tx.debtor_account, tx.creditor_account):
            value, cls = (acct.iban, "iban") if acct.iban else (acct.other_id, "account_number")
            h.ctx.vault.deterministic_token(str(value), cls, tenant=TENANT)
        for party in (tx.debtor, tx.creditor):
            h.ctx.vault.deterministic_token(screening_form(party.name), "name", tenant=TENANT)
        for party in (tx.debtor, tx.creditor):
            h.ctx.screen.matcher.match(party.name)  # skeleton and fuzzy screening of the clear name
    return (time.process_time() - started) / max(1, len(messages))


def _drain(sqs: Any, url: str) -> None:
    """Delete every message of a queue (PurgeQueue is allowed once a minute)."""
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not got:
            return
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])


def _summary(h: PipelineHarness, settings: RunSettings, totals: _Totals, snapshot: MeterSnapshot, seconds: float) -> RunSummary:
    n = max(totals.payments, 1)
    invocations = sum(h.runner.report.batches.values()) + sum(h.answers.report.batches.values())
    # Lambda duration: the modelled AWS waits of the handlers' calls plus our code's CPU time per payment
    # (measured without AWS or moto: parse, validate, tokenise), at 0.5 GB (accept 512 MB, an upper bound
    # for clear's 256 MB), and the clear function's wait on the scheme at 0.25 GB. Wall time on moto is
    # not used: it is mostly the mock's.
    busy = h.injector.modelled_seconds + totals.payments * _cpu_seconds_per_payment(h)
    gb_seconds = Decimal(str(round(busy * 0.5 + totals.scheme_wait_seconds * 0.25, 6)))
    kms_calls = snapshot.count(service="kms")
    samples = {"ingest_to_acsp": totals.latency_ingest_to_acsp, "authorise": totals.latency_authorise,
               "scheme_answer": totals.latency_scheme,
               **{f"hop: {key}": values for key, values in totals.hop_components.items()}}
    latency = {key: _pcts(values) for key, values in samples.items()}
    return RunSummary(
        settings=settings, payments=totals.payments, valid=totals.valid, lost=len(totals.lost),
        doubled=len(totals.doubled), non_final=len(totals.non_final),
        reconciliation_mismatches=len(totals.mismatches), mismatch_examples=tuple((totals.lost + totals.mismatches)[:20]),
        statuses=dict(sorted(totals.statuses.items())), reasons=dict(sorted(totals.reasons.items())),
        ledger_sum_by_currency=dict(sorted(totals.ledger_sum.items())), dead_letters=tuple(totals.dead_letters),
        redriven=totals.redriven + h.ledger_redriven, answers_duplicated=totals.answers_duplicated,
        answer_conflicts=tuple(totals.answer_conflicts), snapshot=snapshot, calls_by_operation=snapshot.by_operation(),
        api_calls_per_payment=snapshot.count() / n,
        kms_requests_per_10k=kms_calls * 10_000 / n, kms_cold_start_requests=h.kms_cold_start,
        write_units_per_payment=float(snapshot.write_units) / n, read_units_per_payment=float(snapshot.read_units) / n,
        lambda_invocations=invocations, lambda_gb_seconds=gb_seconds, log_bytes=totals.log_bytes,
        crash_points_hit=dict(sorted(h.crash.crashes.items())), crash_point_visits=dict(sorted(h.crash.visits.items())),
        injected=dict(h.injector.injected), latency_ms=latency,
        latency_samples={key: values[:_SAMPLES_KEPT] for key, values in samples.items()},
        peak_rss_mb=_peak_rss_mb(), seconds=seconds,
        seconds_in_handlers=totals.handler_seconds, cycles=totals.cycles, replay_mismatches=totals.replay_mismatches,
        peak_set_tps=totals.peak_set_tps, scheme_timeouts=totals.scheme_timeouts,
        modelled_aws_seconds=h.injector.modelled_seconds, kms_faults=h.injector.injected_by_service["kms"],
    )


_SAMPLES_KEPT = 250_000  #: modelled latencies kept per measure (a 100k run keeps them all)


def merge_summaries(parts: Sequence[RunSummary], *, settings: RunSettings, seconds: float) -> RunSummary:
    """One summary for a run split across processes: counts add up, percentiles come from the samples
    of every part together, peak RSS is the largest process's."""
    def add(name: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for part in parts:
            total.update(getattr(part, name))
        return dict(sorted(total.items()))

    snapshot = parts[0].snapshot
    for part in parts[1:]:
        snapshot = snapshot + part.snapshot
    n = max(sum(p.payments for p in parts), 1)
    samples: dict[str, list[float]] = defaultdict(list)
    for part in parts:
        for key, values in part.latency_samples.items():
            samples[key].extend(values)
    return RunSummary(
        settings=settings, payments=sum(p.payments for p in parts), valid=sum(p.valid for p in parts),
        lost=sum(p.lost for p in parts), doubled=sum(p.doubled for p in parts),
        non_final=sum(p.non_final for p in parts),
        reconciliation_mismatches=sum(p.reconciliation_mismatches for p in parts),
        mismatch_examples=tuple(e for p in parts for e in p.mismatch_examples)[:20],
        statuses=add("statuses"), reasons=add("reasons"), ledger_sum_by_currency=add("ledger_sum_by_currency"),
        dead_letters=tuple(d for p in parts for d in p.dead_letters), redriven=sum(p.redriven for p in parts),
        answers_duplicated=sum(p.answers_duplicated for p in parts),
        answer_conflicts=tuple(c for p in parts for c in p.answer_conflicts), snapshot=snapshot,
        calls_by_operation=snapshot.by_operation(), api_calls_per_payment=snapshot.count() / n,
        kms_requests_per_10k=snapshot.count(service="kms") * 10_000 / n,
        kms_cold_start_requests=sum(p.kms_cold_start_requests for p in parts),
        write_units_per_payment=float(snapshot.write_units) / n, read_units_per_payment=float(snapshot.read_units) / n,
        lambda_invocations=sum(p.lambda_invocations for p in parts),
        lambda_gb_seconds=sum((p.lambda_gb_seconds for p in parts), Decimal(0)),
        log_bytes=sum(p.log_bytes for p in parts), crash_points_hit=add("crash_points_hit"),
        crash_point_visits=add("crash_point_visits"), injected=add("injected"),
        latency_ms={key: _pcts(values) for key, values in samples.items()}, latency_samples=dict(samples),
        peak_rss_mb=max(p.peak_rss_mb for p in parts), seconds=seconds,
        seconds_in_handlers=sum(p.seconds_in_handlers for p in parts), cycles=sum(p.cycles for p in parts),
        peak_set_tps=max(p.peak_set_tps for p in parts),
        replay_mismatches=sum(p.replay_mismatches for p in parts),
        notify_snapshot=sum((p.notify_snapshot for p in parts[1:]), parts[0].notify_snapshot),
        scheme_timeouts=sum(p.scheme_timeouts for p in parts),
        modelled_aws_seconds=sum(p.modelled_aws_seconds for p in parts),
        kms_faults=sum(p.kms_faults for p in parts),
    )


def _run_part(settings: RunSettings, first: int, fault_seed: int) -> RunSummary:
    from fasterpay.aws import open_environment

    with open_environment() as env:
        return run_pipeline(env, settings, first=first, fault_seed=fault_seed)


def run_pipeline_parallel(settings: RunSettings, *, workers: int,
                          progress: Callable[[int, int], None] | None = None) -> RunSummary:
    """The same run split into ``workers`` processes, each with its own moto and a share of the table sets.

    Part k submits the payments a single process would have submitted in its share (the traffic depends
    only on the seed and the set's first index); its faults, crashes and scheme answers are seeded with
    ``seed + 7919 * k``, so part 0 matches a single run's first share. Only the poison messages are sent
    by part 0 alone.

    Examples:
        >>> summary = run_pipeline_parallel(RunSettings(payments=100_000, seed=7, crash_rate=0.02), workers=2)  # doctest: +SKIP
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    started = time.perf_counter()
    sets = -(-settings.payments // settings.set_size)
    per_worker = -(-sets // max(1, min(workers, sets)))
    shares = [(k * per_worker * settings.set_size,
               min(settings.payments, (k + 1) * per_worker * settings.set_size)) for k in range(workers)]
    shares = [(a, b) for a, b in shares if b > a]
    parts: list[RunSummary] = []
    with ProcessPoolExecutor(max_workers=len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_part, replace(settings, payments=b - a,
                                                  poison_messages=settings.poison_messages if k == 0 else 0),
                               a, settings.seed + 7919 * k) for k, (a, b) in enumerate(shares)]
        for future in as_completed(futures):
            parts.append(future.result())
            if progress is not None:
                progress(sum(p.payments for p in parts), settings.payments)
    return merge_summaries(parts, settings=settings, seconds=time.perf_counter() - started)


def _pcts(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "n": float(len(values))}


# -- the honest floor ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FloorResult:
    """The fewest calls the guarantees need, made with plain boto3 in the same run."""

    payments: int
    snapshot: MeterSnapshot
    wall_seconds: float

    @property
    def api_calls_per_payment(self) -> float:
        return self.snapshot.count() / self.payments


def run_floor(env: AwsEnvironment, *, payments: int, set_size: int = 200, name_prefix: str = "floor",
              body_bytes: int = 1_500) -> FloorResult:
    """Per payment: arrive on a queue (batched), one conditional transaction that records the payment and
    debits its account (durable once, posted once, atomically), and one answer (batched).

    That is the least any design with these guarantees can do: a queue to take the payment in
    durably, one write that is both record and posting, one answer. Tables rotate like the bench's.

    Examples:
        >>> floor = run_floor(env, payments=1000)  # doctest: +SKIP
        >>> round(floor.api_calls_per_payment, 1)  # doctest: +SKIP
        1.5
    """
    meter = ApiCallMeter()
    ddb, sqs = meter.attach(env.client("dynamodb")), meter.attach(env.client("sqs"))
    admin = env.client("dynamodb")
    inbox = env.client("sqs").create_queue(QueueName=f"{name_prefix}-in")["QueueUrl"]
    answers = env.client("sqs").create_queue(QueueName=f"{name_prefix}-answers")["QueueUrl"]
    body = "x" * body_bytes
    took = 0.0
    done = 0
    number = 0
    while done < payments:
        count = min(set_size, payments - done)
        number += 1
        table = f"{name_prefix}-{number}"
        admin.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        for account in range(20):
            admin.put_item(TableName=table, Item={"pk": {"S": f"BAL#{account}"}, "balance": {"N": str(10**12)}})
        began = time.perf_counter()
        for start in range(0, count, 10):
            chunk = range(start, min(start + 10, count))
            sqs.send_message_batch(QueueUrl=inbox, Entries=[{"Id": str(i), "MessageBody": body} for i in chunk])
        while True:
            got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            for m in got:
                done += 1
                ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": {"pk": {"S": f"PAY#{done}"}, "v": {"S": body[:400]}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Update": {"TableName": table, "Key": {"pk": {"S": f"BAL#{done % 20}"}},
                                "UpdateExpression": "SET balance = balance - :a",
                                "ConditionExpression": "balance >= :a",
                                "ExpressionAttributeValues": {":a": {"N": "100"}}}},
                ])
            sqs.send_message_batch(QueueUrl=answers, Entries=[
                {"Id": str(n), "MessageBody": body[:200]} for n, _ in enumerate(got)])
            sqs.delete_message_batch(QueueUrl=inbox, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
        took += time.perf_counter() - began
        admin.delete_table(TableName=table)
        _drain(env.client("sqs"), answers)
    return FloorResult(payments, meter.snapshot(), took)
