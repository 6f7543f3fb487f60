"""The FinOps article's measurements: cost per payment by pattern and component, and what each lever is worth.

:func:`run_payment_costs` drives seeded payments through the whole guide on moto, metered:

* the **pipeline** bench (:func:`simulations.pipeline_bench.run_pipeline`): ingest, authorise (the vault's
  deterministic tokens, the ledger's hold), route, clear, settle, with the ledger's event relay and consumer;
* its **telemetry** (:class:`fasterpay.observability.PipelineTelemetry`): JSON log lines and EMF documents,
  counted in bytes, plus Lambda's own START/END/REPORT lines per invocation (sized from their documented
  format);
* the **audit trail** of every status change, into S3 with a KMS-signed checkpoint per handler batch;
* the **status stream** for the agents: one Kinesis record per audited status change, written by
  :class:`fasterpay.agents.stream.StatusEventPublisher`;
* the **exception agent** (Bedrock) for the payments refused for a reason an operator reviews, at the cost
  per exception that the agent evaluation measures with the stand-in model's token counts
  (:func:`simulations.agent_eval.run_agent_eval`).

The same run sizes every request it makes (a client ``tap``): the bytes of every SQS message body, and the
DynamoDB write units of transactional and of single-item writes. :func:`levers` turns those into the five
levers of the article, each as cost per 10k payments with the lever and without it; the SQS-batching lever
runs the pipeline again with batches of one.

Every figure is metered calls × a dated price table (:mod:`fasterpay.pricing`); nothing is typed in. Fixed
monthly costs (KMS key-months, custom metrics, Kinesis shards) are spread over a stated monthly volume.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fasterpay.audit import AuditTrail, KmsCheckpointSigner, S3AuditStore
from fasterpay.audit.stack import deploy_audit
from fasterpay.aws import AwsEnvironment, Backend
from fasterpay.finops.costs import PatternUsage, UnitCost, spread_fixed, split_by_pattern, unit_cost
from fasterpay.metering import ApiCallMeter, MeterSnapshot, dynamodb_units
from fasterpay.pricing import BYTES_PER_GB, PriceTable, cost_breakdown, fixed_monthly_costs, per_10k

from .load_shapes import fps_daily
from .observability_sim import captured_telemetry
from .pipeline_bench import RunSettings, RunSummary, run_pipeline

__all__ = [
    "LAMBDA_PLATFORM_LINES",
    "REVIEWED_REASONS",
    "CostRun",
    "Lever",
    "RequestTally",
    "fixed_costs_per_10k",
    "levers",
    "monthly_payments",
    "run_payment_costs",
    "uncached_kms_per_payment",
]

#: Lambda's own log lines per invocation, in their documented format (Lambda developer guide, "Using
#: CloudWatch Logs with Lambda"): they are ingested and billed like any other line.
LAMBDA_PLATFORM_LINES = (
    "START RequestId: {id} Version: $LATEST\n",
    "END RequestId: {id}\n",
    "REPORT RequestId: {id}\tDuration: 41.27 ms\tBilled Duration: 42 ms\tMemory Size: 512 MB\t"
    "Max Memory Used: 96 MB\t\n",
)
#: Refusal reasons an operator (or the exception agent of the queue-agents article) reviews: a sanctions
#: hit, a fraud rule, no rail for the payment, an unknown creditor account. Funds, format and scheme
#: time-out refusals are answered by rules alone.
REVIEWED_REASONS = frozenset({"RR04", "FR01", "AB08", "AC01"})
#: Resources that bill per month whatever the volume, for the guide's stacks: KMS keys (vault data key,
#: token MAC key, audit signing key, agent prompt key), the EMF custom metrics (3 per stage, 6 stages),
#: and the status stream's shards.
KMS_KEYS = 4
CUSTOM_METRICS = 18
KINESIS_SHARDS = 2
_ZERO = Decimal(0)


def _platform_bytes(invocations: int) -> int:
    request_id = str(uuid.UUID(int=0))
    return invocations * sum(len(line.format(id=request_id).encode()) for line in LAMBDA_PLATFORM_LINES)


class RequestTally:
    """A client tap that sizes requests before they are sent: SQS message bodies, DynamoDB write units.

    Registered on ``before-parameter-build``, so it sees each call once, as the code made it (retries are
    the SDK's and are not requests of ours).
    """

    def __init__(self) -> None:
        self.body_bytes = 0
        self.messages = 0
        self.transactional_write_units = _ZERO
        self.single_write_units = _ZERO
        self.items_by_key: Counter[tuple[str, str]] = Counter()  # (table, partition key) -> items written

    @property
    def hottest_key_share(self) -> float:
        """The share of written items that went to the most written partition key (a hot account)."""
        total = sum(self.items_by_key.values())
        return max(self.items_by_key.values()) / total if total else 0.0

    def __call__(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.sqs", self._sqs, unique_id=f"tally-sqs-{id(self)}")
        client.meta.events.register("before-parameter-build.dynamodb", self._dynamodb,
                                    unique_id=f"tally-ddb-{id(self)}")
        return client

    def _sqs(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        entries = params.get("Entries") if model.name == "SendMessageBatch" else (
            [params] if model.name == "SendMessage" else [])
        for entry in entries or ():
            self.body_bytes += len(str(entry.get("MessageBody", "")).encode("utf-8"))
            self.messages += 1

    def _dynamodb(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            self.transactional_write_units += dynamodb_units(model.name, params)[0]
            for item in params.get("TransactItems") or ():
                for kind, request in item.items():
                    if kind != "ConditionCheck":
                        self._key(request.get("TableName", ""), request.get("Item") or request.get("Key") or {})
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
            self.single_write_units += dynamodb_units(model.name, params)[0]
            if model.name == "BatchWriteItem":
                for table, requests in (params.get("RequestItems") or {}).items():
                    for request in requests:
                        body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
                        self._key(table, body or {})
            else:
                self._key(params.get("TableName", ""), params.get("Item") or params.get("Key") or {})

    def _key(self, table: str, item: Mapping[str, Any]) -> None:
        key = item.get("pk") or next(iter(item.values()), {"S": ""})
        self.items_by_key[(table, str(next(iter(key.values()), "")) if isinstance(key, Mapping) else str(key))] += 1


@dataclass(frozen=True)
class CostRun:
    """One metered run of payments through every pattern (see the module docstring)."""

    payments: int
    seed: int
    summary: RunSummary
    audit: MeterSnapshot
    stream: MeterSnapshot
    log_bytes: int  #: telemetry lines and EMF documents plus Lambda's platform lines
    platform_log_bytes: int
    tally_body_bytes: int
    tally_messages: int
    transactional_write_units: Decimal
    single_write_units: Decimal
    hottest_key_share: float
    status_events: int
    exceptions: int
    agent_cost_per_exception: Decimal
    agent_cases: int
    usage: Mapping[str, PatternUsage] = field(repr=False)

    def unit_cost(self, prices: PriceTable) -> UnitCost:
        """USD per 10k payments by pattern and component, from ``prices``."""
        return unit_cost(self.usage, payments=self.payments, prices=prices)


def _agent_cost_per_exception(cases: int, seed: int, region: str) -> Decimal:
    from .agent_eval import run_agent_eval  # imports the agents package: only when asked

    report = run_agent_eval(cases=cases, seed=seed, region=region)
    return report.cost_per_10k_exceptions_usd / 10_000


def _publish_status_events(env: AwsEnvironment, count: int, seed: int) -> MeterSnapshot:
    from fasterpay.agents.stream import StatusEventPublisher

    from .stream_bench import generate_status_events

    kinesis = env.client("kinesis")
    name = "finops-status"
    kinesis.create_stream(StreamName=name, ShardCount=KINESIS_SHARDS)
    meter = ApiCallMeter()
    meter.attach(kinesis)
    events = generate_status_events(count, max(1, count // 6), random.Random(seed))
    StatusEventPublisher(kinesis, name, sleep=lambda s: None).publish(events)
    return meter.snapshot()


def run_payment_costs(env: AwsEnvironment, *, payments: int, seed: int, batch_size: int = 10,
                      agent_cases: int = 20, region: str = "eu-west-2", name_prefix: str = "fin") -> CostRun:
    """Run ``payments`` seeded payments through every pattern on ``env``, metered; see the module docstring.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     run = run_payment_costs(env, payments=200, seed=7)
        >>> run.unit_cost(PRICES_EU_WEST_2).total  # doctest: +SKIP
    """
    on_moto = env.backend is not Backend.AWS
    audit_res = deploy_audit(env.client("cloudformation"), env.client("kms"), env.client("s3"),
                             name_prefix=f"{name_prefix}-audit", retention_days=1, on_moto=on_moto)
    audit_meter = ApiCallMeter()
    s3 = audit_meter.attach(env.client("s3"))
    kms = audit_meter.attach(env.client("kms"))
    trail = AuditTrail(store=S3AuditStore(s3, audit_res.bucket, prefix="payments/"),
                       signer=KmsCheckpointSigner(kms, audit_res.signing_key_arn), origin="bank/payments",
                       batch_size=None)
    capture = captured_telemetry(trail)
    tally = RequestTally()
    summary = run_pipeline(env, RunSettings(payments=payments, seed=seed, batch_size=batch_size),
                           name_prefix=name_prefix, telemetry=capture.telemetry, tap=tally)
    capture.telemetry.flush()
    trail.close()
    audit = audit_meter.snapshot()
    status_events = trail.size
    stream = _publish_status_events(env, status_events, seed)
    reviewed = sum(n for reason, n in summary.reasons.items() if reason in REVIEWED_REASONS)
    per_exception = _agent_cost_per_exception(agent_cases, seed, region) if reviewed else _ZERO
    platform = _platform_bytes(summary.lambda_invocations)
    log_bytes = capture.telemetry.logged_bytes + platform
    parts = split_by_pattern(summary.snapshot + summary.notify_snapshot + audit + stream)
    usage: dict[str, PatternUsage] = {name: PatternUsage(part) for name, part in parts.items()}
    usage["pipeline"] = PatternUsage(parts.get("pipeline", MeterSnapshot()),
                                     lambda_invocations=summary.lambda_invocations,
                                     lambda_gb_seconds=summary.lambda_gb_seconds)
    usage["observability"] = PatternUsage(parts.get("observability", MeterSnapshot()), log_bytes=log_bytes)
    if reviewed:
        agents = parts.get("agents", MeterSnapshot())
        usage["agents"] = PatternUsage(agents, extra={"bedrock": per_exception * reviewed})
    return CostRun(payments=summary.payments, seed=seed, summary=summary, audit=audit, stream=stream,
                   log_bytes=log_bytes, platform_log_bytes=platform, tally_body_bytes=tally.body_bytes,
                   tally_messages=tally.messages, transactional_write_units=tally.transactional_write_units,
                   single_write_units=tally.single_write_units,
                   hottest_key_share=tally.hottest_key_share, status_events=status_events, exceptions=reviewed,
                   agent_cost_per_exception=per_exception, agent_cases=agent_cases if reviewed else 0, usage=usage)


def uncached_kms_per_payment(env: AwsEnvironment, *, payments: int, seed: int) -> Decimal:
    """KMS requests per payment when every deterministic token calls GenerateMac (no token-key cache),
    metered by the vault bench on its own vault stack."""
    from fasterpay.vault.stack import deploy_vault

    from .vault_bench import PAYMENT_SERIES, benchmark_payments

    resources = deploy_vault(env.client("cloudformation"), env.client("kms"), name_prefix="finops-nocache",
                             on_moto=env.backend is not Backend.AWS)
    stats = benchmark_payments(env, resources, series=PAYMENT_SERIES[0], payments=payments, seed=seed,
                               checked=min(5, payments))
    return Decimal(stats.kms_requests) / payments


def monthly_payments(bank_share: float = 0.05) -> int:
    """Payments a month for a bank with ``bank_share`` of UK Faster Payments (the load-shape day × 30)."""
    return round(fps_daily(bank_share=bank_share).expected_total * 30)


def fixed_costs_per_10k(prices: PriceTable, *, payments_per_month: int) -> dict[str, Decimal]:
    """The stacks' fixed monthly costs (:data:`KMS_KEYS`, :data:`CUSTOM_METRICS`, :data:`KINESIS_SHARDS`) per 10k."""
    monthly = fixed_monthly_costs(prices, kms_keys=KMS_KEYS, custom_metrics=CUSTOM_METRICS,
                                  kinesis_shards=KINESIS_SHARDS)
    return spread_fixed(monthly, payments_per_month=payments_per_month)


@dataclass(frozen=True)
class Lever:
    """One cost lever: USD per 10k payments with it and without it, and how the difference was obtained."""

    name: str
    with_lever: Decimal
    without: Decimal
    how: str

    @property
    def saving(self) -> Decimal:
        return self.without - self.with_lever


def _hop_cost(cost: UnitCost) -> Decimal:
    """What one queue hop of the measured pipeline costs per 10k payments: its SQS requests and Lambda
    requests and duration, divided by the pipeline's queues (accept, clear, answers)."""
    cells = cost.cells
    hop = sum((cells.get(("pipeline", c), _ZERO) for c in ("sqs", "lambda requests", "lambda duration")), _ZERO)
    return hop / 3


def levers(run: CostRun, unbatched: RunSummary, prices: PriceTable, *, kms_per_payment_uncached: Decimal,
           extra_hops: int = 2, exclude: tuple[str, ...] = ("agents",)) -> list[Lever]:
    """The five levers of the article, from one :class:`CostRun` and a run with batches of one.

    * **data-key caching**: KMS requests per payment with the cache (metered) and without it
      (``kms_per_payment_uncached``: one GenerateMac per tokenised field, measured by the vault bench);
    * **SQS batching**: the pipeline's SQS and Lambda cost at batch size 10 against ``unbatched``;
    * **fewer hops**: the folded pipeline against ``extra_hops`` more queue hops (a stage per step), each
      costing what a measured hop costs;
    * **conditional writes**: single-item conditional writes where no atomicity is needed, against every
      write in a transaction (twice the units);
    * **log volume**: structured lines per status and EMF per invocation, against also dumping every
      event a handler receives (the bodies the run sent).

    The totals leave out the ``exclude`` patterns (by default the exception agent, whose cost follows the
    share of payments that become exceptions, not any of these levers).
    """
    base = run.unit_cost(prices)
    total = sum((usd for pattern, usd in base.by_pattern.items() if pattern not in exclude), _ZERO)
    n = run.payments
    # the vault's KMS requests replaced by one GenerateMac per field; the audit trail's signing stays
    kms_without = total - base.cells.get(("vault", "kms"), _ZERO) + kms_per_payment_uncached * prices.kms_requests_per_10k
    batched_cost = _batching_cost(run.summary, prices)
    unbatched_cost = _batching_cost(unbatched, prices)
    hop = _hop_cost(base)
    write_rate = prices.dynamodb_write_unit_per_million / 1_000_000
    doubled = per_10k(run.single_write_units * write_rate, n)
    verbose = per_10k(Decimal(run.tally_body_bytes) * prices.logs_ingestion_per_gb / BYTES_PER_GB, n)
    return [
        Lever("data-key caching", total, kms_without,
              "KMS requests per payment: metered with the token-key cache, one GenerateMac per field without"),
        Lever("SQS batching", total, total - batched_cost + unbatched_cost,
              "the pipeline run again with batches of one message: SQS requests and Lambda invocations metered"),
        Lever("fewer hops", total, total + extra_hops * hop,
              f"{extra_hops} more queue hops (a stage per step), each at the measured cost of one hop"),
        Lever("conditional writes", total, total + doubled,
              "single-item writes metered; as one-item transactions they bill twice the write units"),
        Lever("log volume", total, total + verbose,
              "also logging every event a handler receives: the bytes of every message body sent"),
    ]


def _batching_cost(summary: RunSummary, prices: PriceTable) -> Decimal:
    """SQS requests plus Lambda requests and duration of a pipeline run, per 10k payments."""
    cost = cost_breakdown(summary.snapshot, prices=prices, lambda_invocations=summary.lambda_invocations,
                          lambda_gb_seconds=summary.lambda_gb_seconds, lambda_architecture="arm64")
    part = sum((cost.by_component[c] for c in ("sqs", "lambda requests", "lambda duration")), _ZERO)
    return per_10k(part, max(summary.payments, 1))

