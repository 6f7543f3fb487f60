"""Cost per payment by component and by pattern, from metered calls and a dated price table.

A payment touches several patterns: the vault tokenises its fields, the ledger books it, the pipeline
moves it through queues and functions, the audit trail records its status changes, observability logs
it, and the exception agent reads the few that need a decision. :func:`split_by_pattern` divides one
:class:`~fasterpay.metering.MeterSnapshot` among the patterns by rules (DynamoDB request units by table,
other services by operation); :func:`unit_cost` prices each part with
:func:`fasterpay.pricing.cost_breakdown` and reports USD per 10,000 payments, exactly, by pattern and by
component. :func:`spread_fixed` turns monthly fixed costs (key-months, shard-hours, custom metrics) into
USD per 10k payments at a stated monthly volume.

DynamoDB call *counts* cannot be split by table (one transaction can write the tables of several
patterns), so they stay with the pattern named by ``dynamodb_calls_to``; DynamoDB bills request units,
which are split by table, so the cost is allocated exactly.

:func:`unit_cost_metric` is the datum a daily FinOps job publishes to CloudWatch (cost per 10k payments),
so that cost per transaction is tracked, and alarmed on, like any other SLO.

Examples:
    >>> from decimal import Decimal
    >>> from fasterpay.metering import CallKey, MeterSnapshot
    >>> snapshot = MeterSnapshot(calls={CallKey("kms", "GenerateMac", "eu-west-2"): 2,
    ...                                 CallKey("sqs", "SendMessageBatch", "eu-west-2"): 10},
    ...                          write_units=Decimal(30), sqs_requests=10,
    ...                          write_units_by_table={"fp-vault": Decimal(10), "fp-ledger": Decimal(20)})
    >>> parts = split_by_pattern(snapshot, DEFAULT_RULES)
    >>> sorted(parts), parts["vault"].write_units, parts["pipeline"].sqs_requests
    (['ledger', 'pipeline', 'vault'], Decimal('10'), 10)
    >>> usage = {name: PatternUsage(part) for name, part in parts.items()}
    >>> cost = unit_cost(usage, payments=100)
    >>> cost.by_pattern["ledger"], cost.total == sum(cost.by_pattern.values())
    (Decimal('0.0012500'), True)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..metering import MeterSnapshot
from ..pricing import DEFAULT_PRICES, PriceTable, cost_breakdown, per_10k

__all__ = [
    "DEFAULT_RULES",
    "PATTERNS",
    "AllocationRule",
    "PatternUsage",
    "UnitCost",
    "UnknownPatternError",
    "spread_fixed",
    "split_by_pattern",
    "unit_cost",
    "unit_cost_metric",
]

PATTERNS = ("vault", "ledger", "pipeline", "audit", "observability", "agents")
"""The guide's patterns, in the order the article shows them."""
_ZERO = Decimal(0)


class UnknownPatternError(ValueError):
    """A rule or a usage names a pattern the report does not know: use one of :data:`PATTERNS`."""


@dataclass(frozen=True)
class AllocationRule:
    """Which pattern pays for a table's request units, or for a service's calls (all or some operations).

    A rule with ``table_suffixes`` matches DynamoDB tables whose name ends with one of them; a rule with
    ``service`` matches that service's calls, only ``operations`` if given. The first matching rule wins.
    """

    pattern: str
    service: str | None = None
    operations: frozenset[str] = frozenset()
    table_suffixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise UnknownPatternError(f"pattern {self.pattern!r} is not one of {PATTERNS}")
        if (self.service is None) == (not self.table_suffixes):
            raise ValueError("give a rule either table_suffixes (DynamoDB units) or a service (calls), not both")


#: How the guide's stacks divide: vault and ledger tables, KMS signing for the audit trail, queues for the
#: pipeline, Kinesis and Bedrock for the agents. Calls no rule names go to ``default`` (the pipeline).
DEFAULT_RULES: tuple[AllocationRule, ...] = (
    AllocationRule("vault", table_suffixes=("-vault", "-vault-audit", "-tokens")),
    AllocationRule("ledger", table_suffixes=("-ledger", "-ledger-outbox", "-settlement", "-ledger-processed")),
    AllocationRule("pipeline", table_suffixes=("-payments",)),
    AllocationRule("agents", table_suffixes=("-leases", "-processed", "-prompts")),
    AllocationRule("audit", service="kms", operations=frozenset({"Sign", "GetPublicKey"})),
    AllocationRule("vault", service="kms"),
    AllocationRule("audit", service="s3"),
    AllocationRule("agents", service="kinesis"),
    AllocationRule("agents", service="bedrock-runtime"),
    AllocationRule("observability", service="logs"),
    AllocationRule("observability", service="cloudwatch"),
    AllocationRule("pipeline", service="sqs"),
    AllocationRule("pipeline", service="lambda"),
)


def _table_pattern(table: str, rules: Sequence[AllocationRule]) -> str | None:
    for rule in rules:
        if rule.table_suffixes and table.endswith(rule.table_suffixes):
            return rule.pattern
    return None


def _call_pattern(service: str, operation: str, rules: Sequence[AllocationRule]) -> str | None:
    for rule in rules:
        if rule.service == service and (not rule.operations or operation in rule.operations):
            return rule.pattern
    return None


def split_by_pattern(snapshot: MeterSnapshot, rules: Sequence[AllocationRule] = DEFAULT_RULES, *,
                     default: str = "pipeline", dynamodb_calls_to: str = "pipeline") -> dict[str, MeterSnapshot]:
    """One snapshot per pattern that used anything; their sum is ``snapshot`` (calls, units, requests).

    DynamoDB request units go by table (a table no rule names goes to ``default``), DynamoDB call counts to
    ``dynamodb_calls_to``, SQS requests and Kinesis payload units with their service's calls.

    Examples:
        >>> split_by_pattern(MeterSnapshot())
        {}
    """
    for name in (default, dynamodb_calls_to):
        if name not in PATTERNS:
            raise UnknownPatternError(f"pattern {name!r} is not one of {PATTERNS}")
    calls: dict[str, Counter[Any]] = {}
    attempts: dict[str, Counter[Any]] = {}
    errors: dict[str, Counter[Any]] = {}
    writes: dict[str, Counter[str]] = {}
    reads: dict[str, Counter[str]] = {}
    for key, n in snapshot.calls.items():
        owner = dynamodb_calls_to if key.service == "dynamodb" else (
            _call_pattern(key.service, key.operation, rules) or default)
        calls.setdefault(owner, Counter())[key] += n
        if snapshot.attempts.get(key):
            attempts.setdefault(owner, Counter())[key] += snapshot.attempts[key]
    for (key, code), n in snapshot.errors.items():
        owner = dynamodb_calls_to if key.service == "dynamodb" else (
            _call_pattern(key.service, key.operation, rules) or default)
        errors.setdefault(owner, Counter())[(key, code)] += n
    for table, units in snapshot.write_units_by_table.items():
        writes.setdefault(_table_pattern(table, rules) or default, Counter())[table] += units
    for table, units in snapshot.read_units_by_table.items():
        reads.setdefault(_table_pattern(table, rules) or default, Counter())[table] += units
    sqs_owner = _call_pattern("sqs", "SendMessageBatch", rules) or default
    kinesis_owner = _call_pattern("kinesis", "PutRecords", rules) or default
    owners = set(calls) | set(writes) | set(reads)
    if snapshot.sqs_requests:
        owners.add(sqs_owner)
    if snapshot.kinesis_put_units:
        owners.add(kinesis_owner)
    # Units not attributed to a table (a snapshot built by hand) stay with the default pattern.
    loose_writes = snapshot.write_units - sum(snapshot.write_units_by_table.values(), _ZERO)
    loose_reads = snapshot.read_units - sum(snapshot.read_units_by_table.values(), _ZERO)
    if loose_writes or loose_reads:
        owners.add(default)
    parts = {}
    for owner in sorted(owners, key=PATTERNS.index):
        owner_writes = writes.get(owner, Counter())
        owner_reads = reads.get(owner, Counter())
        parts[owner] = MeterSnapshot(
            calls=dict(calls.get(owner, {})), attempts=dict(attempts.get(owner, {})),
            errors=dict(errors.get(owner, {})),
            write_units=sum(owner_writes.values(), _ZERO) + (loose_writes if owner == default else _ZERO),
            read_units=sum(owner_reads.values(), _ZERO) + (loose_reads if owner == default else _ZERO),
            sqs_requests=snapshot.sqs_requests if owner == sqs_owner else 0,
            write_units_by_table=dict(owner_writes), read_units_by_table=dict(owner_reads),
            kinesis_put_units=snapshot.kinesis_put_units if owner == kinesis_owner else 0,
        )
    return parts


@dataclass(frozen=True)
class PatternUsage:
    """What one pattern used: its metered calls plus what the meter cannot see.

    ``extra`` carries costs priced elsewhere, in USD for the whole run (for example ``"bedrock"``: the
    model's tokens from :func:`fasterpay.pricing.bedrock_usage_cost`).
    """

    snapshot: MeterSnapshot
    lambda_invocations: int = 0
    lambda_gb_seconds: Decimal = _ZERO
    log_bytes: int = 0
    fifo_queues: bool = False
    extra: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitCost:
    """USD per 10,000 payments, by pattern, by component and by both, from one price table.

    ``by_component`` and ``by_pattern`` each sum to ``total``; ``cells`` holds every non-zero
    (pattern, component) amount.
    """

    payments: int
    region: str
    prices_as_of: str
    total: Decimal
    by_pattern: Mapping[str, Decimal]
    by_component: Mapping[str, Decimal]
    cells: Mapping[tuple[str, str], Decimal]

    def __post_init__(self) -> None:
        for name in ("by_pattern", "by_component", "cells"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


def unit_cost(usage: Mapping[str, PatternUsage], *, payments: int, prices: PriceTable = DEFAULT_PRICES,
              lambda_architecture: str = "arm64") -> UnitCost:
    """Price each pattern's usage and express it per 10,000 of the run's ``payments``, exactly.

    Raises:
        UnknownPatternError: a usage is keyed by a name not in :data:`PATTERNS`.
        ValueError: ``payments`` is not a positive whole number.
    """
    unknown = set(usage) - set(PATTERNS)
    if unknown:
        raise UnknownPatternError(f"patterns {sorted(unknown)} are not among {PATTERNS}")
    by_pattern: dict[str, Decimal] = {}
    by_component: dict[str, Decimal] = {}
    cells: dict[tuple[str, str], Decimal] = {}
    for pattern in sorted(usage, key=PATTERNS.index):
        u = usage[pattern]
        cost = cost_breakdown(u.snapshot, prices=prices, lambda_invocations=u.lambda_invocations,
                              lambda_gb_seconds=u.lambda_gb_seconds, lambda_architecture=lambda_architecture,
                              log_bytes=u.log_bytes, fifo_queues=u.fifo_queues, extra=u.extra)
        by_pattern[pattern] = per_10k(cost.total, payments)
        for component, amount in cost.by_component.items():
            share = per_10k(amount, payments)
            by_component[component] = by_component.get(component, _ZERO) + share
            if amount:
                cells[(pattern, component)] = share
    return UnitCost(payments=payments, region=prices.region, prices_as_of=prices.as_of,
                    total=sum(by_pattern.values(), _ZERO), by_pattern=by_pattern, by_component=by_component,
                    cells=cells)


def spread_fixed(monthly: Mapping[str, Decimal], *, payments_per_month: int) -> dict[str, Decimal]:
    """Monthly fixed costs as USD per 10,000 payments at ``payments_per_month``.

    Examples:
        >>> spread_fixed({"kms key-months": Decimal(3)}, payments_per_month=1_000_000)
        {'kms key-months': Decimal('0.03')}
    """
    return {name: per_10k(amount, payments_per_month) for name, amount in monthly.items()}


def unit_cost_metric(cost_per_10k: Decimal, *, stage: str, pattern: str = "all") -> dict[str, Any]:
    """The ``MetricData`` entry a daily FinOps job publishes: USD per 10k payments, by stage and pattern.

    CloudWatch stores doubles, so the exact Decimal becomes a float only here, at the edge, rounded to
    six places (a millionth of a dollar per 10k payments).

    Examples:
        >>> unit_cost_metric(Decimal("0.0931"), stage="prod")["Value"]
        0.0931
        >>> cloudwatch.put_metric_data(Namespace="FasterPay/FinOps",  # doctest: +SKIP
        ...                            MetricData=[unit_cost_metric(cost.total, stage="prod")])
    """
    if not isinstance(cost_per_10k, Decimal) or not cost_per_10k.is_finite() or cost_per_10k < 0:
        raise ValueError(f"cost_per_10k must be a finite, non-negative Decimal, got {cost_per_10k!r}")
    if pattern != "all" and pattern not in PATTERNS:
        raise UnknownPatternError(f"pattern {pattern!r} is not 'all' or one of {PATTERNS}")
    return {"MetricName": "CostPer10kPayments", "Unit": "None",
            "Dimensions": [{"Name": "Stage", "Value": stage}, {"Name": "Pattern", "Value": pattern}],
            "Value": float(round(cost_per_10k, 6))}
