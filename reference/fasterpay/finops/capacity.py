"""Which AWS quota binds first as a payment system grows from 100 to 100,000 payments a second.

A payment costs each AWS service a fixed number of calls, units or seconds (a :class:`CallProfile`, best
measured with :mod:`fasterpay.metering`). At a target rate ``r`` payments per second, each service sees
``r`` times that demand, and each of its quotas (:class:`ServiceQuota`) caps the demand *on what the quota
is scoped to*: the region, one table, one partition key, one queue, one message group, one function, one
shard. :func:`capacity_plan` sets the two side by side, quota by quota, and says for each one what gets
past it; :func:`first_binding` is the one that bites first; :func:`capacity_table` does it for 100, 1,000,
10,000 and 100,000 payments a second.

**The rule.** A quota *binds* when the demand on it is above ``headroom`` (default 0.8) times its limit:
80 % is where you act, not 100 %, because payments arrive in bursts and AWS throttles on the second, not
on the average. The count of cells, shards, groups or accounts needed is
``ceil(demand / (limit * headroom))``, computed exactly (``fractions.Fraction`` of the inputs as written),
so a demand of exactly 80 % of one quota needs one cell, not two.

**What demand means, quota by quota.**

* KMS, *Cryptographic operations (symmetric) request rate*: a regional quota shared by Encrypt, Decrypt,
  GenerateDataKey, GenerateMac, VerifyMac, ... of every caller in the account. Uncached, a payment that
  makes ``n`` of them costs ``r * n`` requests per second. With a data-key / HMAC-key cache of ``T``
  seconds in each Lambda execution environment (``kms_cache_seconds``), each environment asks once per
  key per ``T``: ``ceil(r * lambda_seconds) * n / T``, whichever is smaller. The Lambda environments are
  the cache holders, so the cached rate still grows with the rate, but by a factor ``lambda_seconds / T``
  (for example 0.1 s / 300 s) instead of one.
* KMS, *Cryptographic operations (ECC) request rate*: asymmetric ``Sign`` and ``Verify`` (an audit
  signature per payment), which caching cannot help; the plan is to sign a batch root instead.
* DynamoDB, per partition: one partition key takes at most 1,000 write and 3,000 read units a second,
  whatever the table's capacity. ``hottest_key_share`` is the share of a payment's units that lands on
  the hottest key (a settlement account, a hot merchant); 0 means spread over many keys. The plan is to
  shard that account's balance over several items (the ledger article's sharded balances).
* DynamoDB, per table (on-demand: 40,000 read and 40,000 write request units a second by default,
  adjustable) on the busiest table (``busiest_table_share`` of the units); in provisioned mode also the
  account-level quota, which AWS applies to provisioned tables only.
* SQS: standard queues take a nearly unlimited number of calls, so they are not checked. A FIFO queue
  takes 300 calls a second per action (SendMessage, ReceiveMessage, DeleteMessage) without high
  throughput mode; batching 10 messages a call makes that 3,000 messages. High throughput mode raises the
  per-action ceiling to a regional figure (:data:`QUOTAS`). Within one message group a FIFO queue hands
  out one message at a time, in order: by Little's law a group holds ``r / groups * hold`` messages in
  flight on average, and that must stay below one.
* Lambda: concurrent executions are ``r * lambda_seconds`` (Little's law), against a regional quota of
  1,000 (adjustable to tens of thousands). A function also scales by at most 1,000 execution environments
  every 10 seconds: a step from idle to ``r`` needs that many 10-second steps, or provisioned concurrency.
* API Gateway: 10,000 requests a second per account and region (burst 5,000), adjustable.
* Kinesis Data Streams: a shard takes 1,000 records or 1 MB a second of writes.

**The quota table, as looked up on 2026-12-02** (:data:`QUOTAS`, per region; each quota carries its
``source_url`` and ``provenance``, in the convention of :data:`fasterpay.pricing.PRICE_PROVENANCE`):
``"aws page"`` when the figure was read on a stored AWS documentation page, ``"secondary"`` when it was not
(the comment at each such figure says where it came from). Quotas are defaults: your account's may be
higher (ask Service Quotas) or, for a new account, lower.

Examples:
    >>> profile = CallProfile(kms_requests_per_payment=3, lambda_seconds_per_payment=0.12,
    ...                       write_units_per_payment=3)
    >>> top = first_binding(profile, 10_000, region="eu-west-2")
    >>> top.quota.name, round(top.utilisation, 2)
    ('Cryptographic operations (symmetric) request rate', 1.5)
    >>> top.needed  # accounts (or a quota of 37,500/s) to keep KMS below 80 %
    2
    >>> first_binding(replace(profile, kms_cache_seconds=300), 10_000, region="eu-west-2").quota.key
    'lambda-concurrency'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..metering import MeterSnapshot

__all__ = [
    "CHECKED",
    "DEFAULT_HEADROOM",
    "KMS_ASYMMETRIC_OPERATIONS",
    "KMS_SYMMETRIC_OPERATIONS",
    "PROVENANCES",
    "QUOTAS",
    "REGIONS",
    "SCOPES",
    "SERVICES",
    "SQS_QUEUES",
    "TARGET_RATES",
    "CallProfile",
    "CapacityModelError",
    "CapacityRow",
    "LimitCheck",
    "ServiceQuota",
    "capacity_plan",
    "capacity_table",
    "first_binding",
    "markdown_table",
    "quotas_for",
]

CHECKED = "2026-12-02"
"""The date every figure in :data:`QUOTAS` was looked up."""
DEFAULT_HEADROOM = 0.8
"""A quota binds above this share of its limit."""
TARGET_RATES = (100, 1_000, 10_000, 100_000)
"""Payments per second that :func:`capacity_table` looks at by default."""
PROVENANCES = ("aws page", "secondary")
SERVICES = ("kms", "dynamodb", "sqs", "lambda", "apigateway", "kinesis")
SCOPES = ("region", "account", "table", "partition", "queue", "message group", "function", "shard")
SQS_QUEUES = ("standard", "fifo", "fifo-high-throughput")
DYNAMODB_MODES = ("on-demand", "provisioned")
KMS_SYMMETRIC_OPERATIONS = frozenset({
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
    "GenerateRandom", "ReEncrypt", "VerifyMac",
})
"""The operations that share the *Cryptographic operations (symmetric) request rate* quota."""
KMS_ASYMMETRIC_OPERATIONS = frozenset({"Sign", "Verify", "GetPublicKey"})
"""Operations counted against the asymmetric (here: ECC) request rate quota."""
_SUGGESTED_KMS_CACHE_SECONDS = 300
_HTTPS = "https://"


class CapacityModelError(ValueError):
    """A capacity question that cannot be answered as asked (a rate that is not positive, an unknown
    region, a negative demand, ...); the message says what to pass instead."""


@dataclass(frozen=True)
class ServiceQuota:
    """One AWS quota: its name as AWS gives it, its default ``limit`` in ``unit``, and what it is per.

    ``limit`` is per second unless ``unit`` says otherwise (Lambda concurrency is a count). ``scope``
    is what one limit covers (``"partition"``: each partition key; ``"region"``: the account in the
    region). ``provenance`` is ``"aws page"`` or ``"secondary"`` (see the module docstring).

    Examples:
        >>> quota = quotas_for("eu-west-2")["apigateway-throttle"]
        >>> quota.limit, quota.scope, quota.adjustable
        (10000, 'region', True)
    """

    key: str
    service: str
    name: str
    limit: float
    unit: str
    scope: str
    adjustable: bool
    source_url: str
    provenance: str
    checked: str = CHECKED
    region: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise CapacityModelError(f"{self.key}: service must be one of {SERVICES}, got {self.service!r}")
        if self.scope not in SCOPES:
            raise CapacityModelError(f"{self.key}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.provenance not in PROVENANCES:
            raise CapacityModelError(
                f"{self.key}: provenance must be one of {PROVENANCES}, got {self.provenance!r}")
        if not self.source_url.startswith(_HTTPS):
            raise CapacityModelError(f"{self.key}: source_url must be an https:// address, got "
                                     f"{self.source_url!r}")
        if not (isinstance(self.limit, int | float) and math.isfinite(self.limit) and self.limit > 0):
            raise CapacityModelError(f"{self.key}: limit must be a positive finite number, got {self.limit!r}")


# --- the quotas, per region --------------------------------------------------------------------------

_KMS_QUOTAS_URL = "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html"
_DDB_HOT_URL = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html"
_DDB_TABLE_URL = ("https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                  "on-demand-capacity-mode-max-throughput.html")
_DDB_LIMITS_URL = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
_SQS_QUOTAS_URL = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"
_SQS_GROUP_URL = ("https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
                  "using-messagegroupid-property.html")
_LAMBDA_LIMITS_URL = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
_LAMBDA_SCALING_URL = "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"
_APIGW_URL = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
_KINESIS_URL = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"


def _common_quotas() -> list[ServiceQuota]:
    """Quotas with the same default in every region this module covers."""
    return [
        # "300 (shared) for elliptic curve (ECC) KMS keys", read on the stored KMS request quotas page.
        ServiceQuota("kms-ecc", "kms", "Cryptographic operations (ECC) request rate", 300, "requests/s",
                     "region", True, _KMS_QUOTAS_URL, "aws page",
                     note="Sign and Verify with ECC keys; RSA keys have their own quota of 500/s."),
        # "each individual partition is limited to 1000 write units per second and 3000 read units per
        # second": the DynamoDB warm-throughput page (read on its stored Spanish translation).
        ServiceQuota("dynamodb-partition-write", "dynamodb", "Partition write throughput", 1_000,
                     "WCU/s per partition", "partition", False, _DDB_HOT_URL, "aws page"),
        ServiceQuota("dynamodb-partition-read", "dynamodb", "Partition read throughput", 3_000,
                     "RCU/s per partition", "partition", False, _DDB_HOT_URL, "aws page"),
        # "your on-demand throughput rate is bounded by 40,000 table-level read and write throughput AWS
        # service quota": the DynamoDB on-demand maximum throughput page.
        ServiceQuota("dynamodb-table-write", "dynamodb", "Table-level write throughput limit", 40_000,
                     "WRU/s per table", "table", True, _DDB_TABLE_URL, "aws page"),
        ServiceQuota("dynamodb-table-read", "dynamodb", "Table-level read throughput limit", 40_000,
                     "RRU/s per table", "table", True, _DDB_TABLE_URL, "aws page"),
        # The global DynamoDB quotas page says the account-level quotas apply to provisioned tables only,
        # but its stored excerpt does not show the figure; 80,000 was read on the docs.amazonaws.cn copy of
        # the same guide (China Regions), hence "secondary".
        ServiceQuota("dynamodb-account-write", "dynamodb", "Account-level write throughput limit", 80_000,
                     "WCU/s provisioned", "account", True, _DDB_LIMITS_URL, "secondary",
                     note="Provisioned capacity mode only."),
        ServiceQuota("dynamodb-account-read", "dynamodb", "Account-level read throughput limit", 80_000,
                     "RCU/s provisioned", "account", True, _DDB_LIMITS_URL, "secondary",
                     note="Provisioned capacity mode only."),
        # "300 transactions per second, per API action", "up to 3,000 messages per second" with batches
        # of 10: the SQS message quotas page.
        ServiceQuota("sqs-fifo-queue", "sqs", "FIFO queue transactions per API action", 300,
                     "calls/s per action", "queue", False, _SQS_QUOTAS_URL, "aws page",
                     note="Without high throughput mode; a batch of 10 messages is one call."),
        # "Messages within the same message group are always processed one at a time, in strict order".
        ServiceQuota("sqs-message-group", "sqs", "FIFO message group: one message in flight at a time", 1,
                     "messages in flight per group", "message group", False, _SQS_GROUP_URL, "aws page"),
        ServiceQuota("lambda-concurrency", "lambda", "Concurrent executions", 1_000, "concurrent executions",
                     "region", True, _LAMBDA_LIMITS_URL, "aws page",
                     note="Adjustable to tens of thousands; new accounts start lower."),
        # "1,000 execution environment instances every 10 seconds" per function (since November 2023).
        ServiceQuota("lambda-scaling", "lambda", "Concurrency scaling rate", 1_000,
                     "execution environments per 10 s", "function", False, _LAMBDA_SCALING_URL, "aws page"),
        # 10,000 RPS "using a maximum bucket capacity of 5,000 requests"; eu-west-2 and us-east-1 are not
        # among the Regions with the lower 2,500 RPS default.
        ServiceQuota("apigateway-throttle", "apigateway",
                     "Throttle quota per account, per Region across HTTP APIs, REST APIs, WebSocket APIs",
                     10_000, "requests/s", "region", True, _APIGW_URL, "aws page",
                     note="Burst 5,000 requests, set by AWS from the rate."),
        # "A shard supports 1 MB/s and 1000 records per second for writes".
        ServiceQuota("kinesis-shard-records", "kinesis", "Shard write throughput (records)", 1_000,
                     "records/s per shard", "shard", False, _KINESIS_URL, "aws page"),
        ServiceQuota("kinesis-shard-bytes", "kinesis", "Shard write throughput (bytes)", 1,
                     "MB/s per shard", "shard", False, _KINESIS_URL, "aws page",
                     note="MB taken as 10**6 bytes, the stricter reading."),
    ]


def _region_quotas(region: str, *, kms: ServiceQuota, sqs_high_throughput: ServiceQuota) -> Mapping[str, ServiceQuota]:
    quotas = [replace(q, region=region) for q in _common_quotas()]
    quotas += [replace(kms, region=region), replace(sqs_high_throughput, region=region)]
    return MappingProxyType({q.key: q for q in quotas})


QUOTAS: Mapping[str, Mapping[str, ServiceQuota]] = MappingProxyType({
    "eu-west-2": _region_quotas(
        "eu-west-2",
        # The KMS page lists Europe (London), eu-west-2, among the Regions at "20,000 (shared)" (read on
        # its stored Chinese translation at docs.amazonaws.cn); a public repository quoting the AWS
        # General Reference agrees (20,000 in eu-west-2).
        kms=ServiceQuota("kms-symmetric", "kms", "Cryptographic operations (symmetric) request rate",
                         20_000, "requests/s", "region", True, _KMS_QUOTAS_URL, "aws page"),
        # Not on a stored AWS page (the stored copy stops before London). A public repository quoting the
        # SQS message quotas page gives "Europe (London) and South America (São Paulo): Up to 4,500 TPS",
        # as did a third-party summary of AWS's October 2023 announcement.
        sqs_high_throughput=ServiceQuota(
            "sqs-fifo-high-throughput", "sqs", "FIFO high throughput mode transactions per API action",
            4_500, "calls/s per action", "queue", False, _SQS_QUOTAS_URL, "secondary",
            note="Per queue and API action, non-batched calls; the figure differs by region; adjustability "
                 "not stated on the page."),
    ),
    "us-east-1": _region_quotas(
        "us-east-1",
        # Not on a stored AWS page (the stored copies stop before the Region list). 100,000 in us-east-1,
        # us-west-2 and eu-west-1 per a public repository quoting the AWS General Reference KMS table,
        # and a published Cloud Custodian quota log shows 100,000 for an account.
        kms=ServiceQuota("kms-symmetric", "kms", "Cryptographic operations (symmetric) request rate",
                         100_000, "requests/s", "region", True, _KMS_QUOTAS_URL, "secondary"),
        # "US East (N. Virginia), US West (Oregon), and Europe (Ireland): Up to 70,000 transactions per
        # second (TPS)": the SQS message quotas page (read on a stored verbatim mirror of it).
        sqs_high_throughput=ServiceQuota(
            "sqs-fifo-high-throughput", "sqs", "FIFO high throughput mode transactions per API action",
            70_000, "calls/s per action", "queue", False, _SQS_QUOTAS_URL, "aws page",
            note="Per queue and API action, non-batched calls; the figure differs by region; adjustability "
                 "not stated on the page."),
    ),
})
"""Per region, per quota key: the :class:`ServiceQuota` defaults this model checks."""
REGIONS = tuple(QUOTAS)


def quotas_for(region: str) -> Mapping[str, ServiceQuota]:
    """The quotas of ``region``, by key.

    Raises:
        CapacityModelError: a region this module has no figures for.

    Examples:
        >>> quotas_for("us-east-1")["kms-symmetric"].limit
        100000
    """
    try:
        return QUOTAS[region]
    except (KeyError, TypeError):
        raise CapacityModelError(
            f"no quota figures for region {region!r}: use one of {REGIONS}, or add the region's "
            "figures to QUOTAS (KMS and SQS FIFO high throughput quotas differ by region)") from None


# --- demand per payment ------------------------------------------------------------------------------

def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CapacityModelError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise CapacityModelError(f"{name} must be zero or more (a demand per payment), got {value!r}")
    return value


def _share(name: str, value: float) -> float:
    _non_negative(name, value)
    if value > 1:
        raise CapacityModelError(f"{name} is a share between 0 and 1, got {value!r}")
    return value


@dataclass(frozen=True)
class CallProfile:
    """What one payment asks of each service, on average, and how the deployment spreads it.

    Per payment: ``calls_per_payment`` ((service, operation) to calls, for reference and the chart),
    DynamoDB write and read units, symmetric and asymmetric KMS requests, the summed duration of the
    Lambda handlers that run for it (``lambda_seconds_per_payment``), SQS messages sent, API Gateway
    requests, Kinesis records and bytes.

    How it spreads: ``hottest_key_share`` of the DynamoDB units land on one partition key (0: spread);
    ``busiest_table_share`` on the busiest table; ``busiest_function_share`` of the Lambda seconds in the
    busiest function. ``sqs_queue`` is ``"standard"``, ``"fifo"`` or ``"fifo-high-throughput"``, with
    ``message_groups`` FIFO groups in use and ``sqs_batch_size`` messages per call; ``message_hold_seconds``
    is how long a FIFO message stays in flight (0: the payment's Lambda seconds spread over its messages).
    ``kms_cache_seconds`` is the data-key / HMAC-key cache lifetime in each execution environment
    (0: no cache). ``dynamodb_mode`` is ``"on-demand"`` or ``"provisioned"``.

    Raises:
        CapacityModelError: a negative or non-finite demand, a share outside [0, 1], a FIFO queue
            without message groups, an unknown queue type or capacity mode.

    Examples:
        >>> CallProfile(kms_requests_per_payment=2).api_requests_per_payment
        1.0
        >>> CallProfile(write_units_per_payment=-1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.finops.capacity.CapacityModelError: write_units_per_payment must be zero or more ..., got -1
    """

    calls_per_payment: Mapping[tuple[str, str], float] = field(default_factory=dict)
    write_units_per_payment: float = 0.0
    read_units_per_payment: float = 0.0
    kms_requests_per_payment: float = 0.0
    lambda_seconds_per_payment: float = 0.0
    sqs_messages_per_payment: float = 0.0
    api_requests_per_payment: float = 1.0
    hottest_key_share: float = 0.0
    message_groups: int = 0
    kms_asymmetric_requests_per_payment: float = 0.0
    kinesis_records_per_payment: float = 0.0
    kinesis_bytes_per_payment: float = 0.0
    busiest_table_share: float = 1.0
    busiest_function_share: float = 1.0
    sqs_queue: str = "standard"
    sqs_batch_size: int = 1
    message_hold_seconds: float = 0.0
    kms_cache_seconds: float = 0.0
    dynamodb_mode: str = "on-demand"

    def __post_init__(self) -> None:
        calls: dict[tuple[str, str], float] = {}
        for key, value in dict(self.calls_per_payment).items():
            if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
                raise CapacityModelError(f"calls_per_payment keys are (service, operation), got {key!r}")
            calls[key] = float(_non_negative(f"calls_per_payment[{key!r}]", value))
        object.__setattr__(self, "calls_per_payment", MappingProxyType(calls))
        for name in ("write_units_per_payment", "read_units_per_payment", "kms_requests_per_payment",
                     "lambda_seconds_per_payment", "sqs_messages_per_payment", "api_requests_per_payment",
                     "kms_asymmetric_requests_per_payment", "kinesis_records_per_payment",
                     "kinesis_bytes_per_payment", "message_hold_seconds", "kms_cache_seconds"):
            object.__setattr__(self, name, float(_non_negative(name, getattr(self, name))))
        for name in ("hottest_key_share", "busiest_table_share", "busiest_function_share"):
            object.__setattr__(self, name, float(_share(name, getattr(self, name))))
        if self.sqs_queue not in SQS_QUEUES:
            raise CapacityModelError(f"sqs_queue must be one of {SQS_QUEUES}, got {self.sqs_queue!r}")
        if self.dynamodb_mode not in DYNAMODB_MODES:
            raise CapacityModelError(f"dynamodb_mode must be one of {DYNAMODB_MODES}, got {self.dynamodb_mode!r}")
        for name, low, high in (("message_groups", 0, None), ("sqs_batch_size", 1, 10)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                bounds = f"from {low} to {high}" if high else f"{low} or more"
                raise CapacityModelError(f"{name} must be a whole number {bounds}, got {value!r}")
        if self.sqs_queue != "standard" and self.message_groups < 1:
            raise CapacityModelError(
                f"a {self.sqs_queue} queue needs message_groups of at least 1 (how many FIFO message groups "
                "the payments use, for example one per debit account)")

    @classmethod
    def from_snapshot(cls, snapshot: MeterSnapshot, payments: int, *, lambda_seconds: float,
                      api_requests_per_payment: float = 1.0, hottest_key_share: float = 0.0,
                      message_groups: int = 0, sqs_queue: str = "standard", sqs_batch_size: int = 1,
                      kms_cache_seconds: float = 0.0, kinesis_bytes_per_payment: float = 0.0,
                      dynamodb_mode: str = "on-demand") -> CallProfile:
        """The profile of ``payments`` payments metered in ``snapshot`` (a :class:`~fasterpay.metering.MeterSnapshot`).

        The meter cannot see Lambda durations: pass ``lambda_seconds``, the summed handler seconds one
        payment takes. Calls and units are divided by ``payments``. KMS calls are split into symmetric
        (:data:`KMS_SYMMETRIC_OPERATIONS`) and asymmetric ones; SQS messages are SendMessage calls plus
        SendMessageBatch calls times ``sqs_batch_size``; Kinesis records are PutRecord plus PutRecords
        calls (one record each: pass a profile by hand if your batches are larger). The busiest table's
        share comes from the snapshot's write units per table.

        Raises:
            CapacityModelError: ``payments`` not a positive whole number, or a bad profile value.

        Examples:
            >>> from decimal import Decimal
            >>> from fasterpay.metering import CallKey, MeterSnapshot
            >>> snap = MeterSnapshot(calls={CallKey("kms", "GenerateMac", "eu-west-2"): 20,
            ...                             CallKey("dynamodb", "TransactWriteItems", "eu-west-2"): 10},
            ...                      write_units=Decimal(40))
            >>> p = CallProfile.from_snapshot(snap, 10, lambda_seconds=0.12)
            >>> p.kms_requests_per_payment, p.write_units_per_payment, p.calls_per_payment[("kms", "GenerateMac")]
            (2.0, 4.0, 2.0)
        """
        if isinstance(payments, bool) or not isinstance(payments, int) or payments < 1:
            raise CapacityModelError(
                f"payments must be the whole number of payments the snapshot metered (1 or more), got {payments!r}")
        calls: dict[tuple[str, str], int] = {}
        for key, n in snapshot.calls.items():
            calls[(key.service, key.operation)] = calls.get((key.service, key.operation), 0) + n

        def per_payment(total: float) -> float:
            return float(Fraction(total) / payments)

        def count(service: str, operations: Iterable[str]) -> int:
            return sum(calls.get((service, op), 0) for op in operations)

        by_table = [float(units) for units in snapshot.write_units_by_table.values()]
        busiest = max(by_table) / sum(by_table) if by_table and sum(by_table) > 0 else 1.0
        sqs_messages = count("sqs", ["SendMessage"]) + count("sqs", ["SendMessageBatch"]) * sqs_batch_size
        return cls(
            calls_per_payment={key: per_payment(n) for key, n in sorted(calls.items())},
            write_units_per_payment=per_payment(Fraction(str(snapshot.write_units))),
            read_units_per_payment=per_payment(Fraction(str(snapshot.read_units))),
            kms_requests_per_payment=per_payment(count("kms", KMS_SYMMETRIC_OPERATIONS)),
            kms_asymmetric_requests_per_payment=per_payment(count("kms", KMS_ASYMMETRIC_OPERATIONS)),
            lambda_seconds_per_payment=lambda_seconds,
            sqs_messages_per_payment=per_payment(sqs_messages),
            api_requests_per_payment=api_requests_per_payment,
            kinesis_records_per_payment=per_payment(count("kinesis", ["PutRecord", "PutRecords"])),
            kinesis_bytes_per_payment=kinesis_bytes_per_payment,
            hottest_key_share=hottest_key_share,
            busiest_table_share=busiest,
            message_groups=message_groups,
            sqs_queue=sqs_queue,
            sqs_batch_size=sqs_batch_size,
            kms_cache_seconds=kms_cache_seconds,
            dynamodb_mode=dynamodb_mode,
        )


# --- the checks ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LimitCheck:
    """One quota at one target rate: the demand on it, in its unit, and what to do.

    ``utilisation`` is demand / limit; ``binds`` is ``utilisation > headroom``; ``throttled`` is
    ``utilisation > 1`` (AWS would refuse calls). ``needed`` is how many of the quota's scope the demand
    needs to stay at or below the headroom, ``ceil(demand / (limit * headroom))``: accounts or cells for a
    regional quota, shards of the hot key for a partition, message groups, shards of a stream, 10-second
    steps of a Lambda ramp; ``needed_unit`` names them. ``plan`` is one sentence on what gets past the quota.
    """

    quota: ServiceQuota
    rate_per_s: float
    demand: float
    utilisation: float
    headroom: float
    binds: bool
    needed: int
    plan: str
    needed_unit: str = ""

    @property
    def limit(self) -> float:
        """The quota's limit, in ``quota.unit``."""
        return self.quota.limit

    @property
    def throttled(self) -> bool:
        """Demand above the limit itself: AWS throttles."""
        return self.utilisation > 1


def _exact(value: float) -> Fraction:
    """The number as written (``0.1`` is 1/10), so counts do not pick up binary rounding."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def _validate_rate(rate_per_s: float) -> Fraction:
    if isinstance(rate_per_s, bool) or not isinstance(rate_per_s, int | float) or not math.isfinite(rate_per_s):
        raise CapacityModelError(f"rate_per_s must be a number of payments per second, got {rate_per_s!r}")
    if rate_per_s <= 0:
        raise CapacityModelError(
            f"rate_per_s must be above zero (payments per second to plan for, such as 1_000), got {rate_per_s!r}")
    return _exact(rate_per_s)


def _validate_headroom(headroom: float) -> Fraction:
    if isinstance(headroom, bool) or not isinstance(headroom, int | float) or not 0 < headroom <= 1:
        raise CapacityModelError(
            f"headroom is the share of a quota you are prepared to use, above 0 and at most 1 "
            f"(0.8 is usual), got {headroom!r}")
    return _exact(headroom)


def _fmt(value: float | Fraction) -> str:
    number = float(value)
    return f"{number:,.0f}" if number >= 10 else f"{number:,.2g}"


def _demands(profile: CallProfile, rate: Fraction, quotas: Mapping[str, ServiceQuota]) -> dict[str, Fraction]:
    """Demand on each quota the profile touches, in the quota's unit, exactly."""
    p = profile
    x = _exact
    demands: dict[str, Fraction] = {}
    lambda_concurrency = rate * x(p.lambda_seconds_per_payment)
    kms_uncached = rate * x(p.kms_requests_per_payment)
    if p.kms_cache_seconds > 0 and kms_uncached > 0:
        holders = max(1, _ceil(lambda_concurrency))
        demands["kms-symmetric"] = min(kms_uncached, holders * x(p.kms_requests_per_payment) / x(p.kms_cache_seconds))
    else:
        demands["kms-symmetric"] = kms_uncached
    demands["kms-ecc"] = rate * x(p.kms_asymmetric_requests_per_payment)
    writes, reads = rate * x(p.write_units_per_payment), rate * x(p.read_units_per_payment)
    demands["dynamodb-partition-write"] = writes * x(p.hottest_key_share)
    demands["dynamodb-partition-read"] = reads * x(p.hottest_key_share)
    demands["dynamodb-table-write"] = writes * x(p.busiest_table_share)
    demands["dynamodb-table-read"] = reads * x(p.busiest_table_share)
    if p.dynamodb_mode == "provisioned":
        demands["dynamodb-account-write"], demands["dynamodb-account-read"] = writes, reads
    if p.sqs_queue != "standard":
        messages = rate * x(p.sqs_messages_per_payment)
        key = "sqs-fifo-queue" if p.sqs_queue == "fifo" else "sqs-fifo-high-throughput"
        demands[key] = messages / p.sqs_batch_size
        if p.message_hold_seconds > 0:
            in_flight = messages * x(p.message_hold_seconds)
        else:
            in_flight = lambda_concurrency if messages > 0 else Fraction(0)
        demands["sqs-message-group"] = in_flight / p.message_groups
    demands["lambda-concurrency"] = lambda_concurrency
    demands["lambda-scaling"] = lambda_concurrency * x(p.busiest_function_share)
    demands["apigateway-throttle"] = rate * x(p.api_requests_per_payment)
    demands["kinesis-shard-records"] = rate * x(p.kinesis_records_per_payment)
    demands["kinesis-shard-bytes"] = rate * x(p.kinesis_bytes_per_payment) / 1_000_000
    return {key: value for key, value in demands.items() if value > 0 and key in quotas}


_NEEDED_UNITS = {
    "kms-symmetric": "accounts", "kms-ecc": "accounts", "dynamodb-partition-write": "shards of the hot key",
    "dynamodb-partition-read": "shards of the hot key", "dynamodb-table-write": "tables",
    "dynamodb-table-read": "tables", "dynamodb-account-write": "accounts", "dynamodb-account-read": "accounts",
    "sqs-fifo-queue": "queues", "sqs-fifo-high-throughput": "queues", "sqs-message-group": "message groups",
    "lambda-concurrency": "cells (accounts)", "lambda-scaling": "10 s ramp steps",
    "apigateway-throttle": "cells (accounts)", "kinesis-shard-records": "shards", "kinesis-shard-bytes": "shards",
}


def _plan(quota: ServiceQuota, profile: CallProfile, rate: Fraction, demand: Fraction, needed: int,
          binds: bool, headroom: Fraction, quotas: Mapping[str, ServiceQuota]) -> str:
    """One sentence: what gets past ``quota`` at this rate (or the rate where it would start to bind)."""
    usable = _exact(quota.limit) * headroom
    if not binds:
        return f"no change: binds near {_fmt(rate * usable / demand)} payments/s"
    increase = _ceil(demand / headroom)
    ask = f"ask AWS for {increase:,} {quota.unit} (adjustable; allow days to weeks)"
    key = quota.key
    if key == "kms-symmetric":
        if profile.kms_cache_seconds == 0:
            cached = replace(profile, kms_cache_seconds=_SUGGESTED_KMS_CACHE_SECONDS)
            after = _demands(cached, rate, quotas).get(key, Fraction(0))
            return (f"cache data keys and HMAC keys for {_SUGGESTED_KMS_CACHE_SECONDS} s per execution "
                    f"environment: KMS requests fall from {_fmt(demand)}/s to {_fmt(after)}/s")
        return f"{ask}, or split the keys over {needed} accounts"
    if key == "kms-ecc":
        return f"sign a Merkle root per batch, not each payment (audit article), or {ask}"
    if key == "dynamodb-partition-write":
        return f"shard the hot account over {needed} balance items (ledger article: sharded balances)"
    if key == "dynamodb-partition-read":
        return (f"spread the hot key's reads over {needed} shards or a cache; eventually consistent "
                "reads cost half the units")
    if key in ("dynamodb-table-write", "dynamodb-table-read", "dynamodb-account-write", "dynamodb-account-read"):
        return f"{ask}, or split the data over {needed} tables (cells)"
    if key == "sqs-fifo-queue":
        batched = "" if profile.sqs_batch_size == 10 else "batch 10 messages a call, "
        return f"{batched}enable high throughput mode, or spread over {needed} queues"
    if key == "sqs-fifo-high-throughput":
        batched = "" if profile.sqs_batch_size == 10 else "batch 10 messages a call, or "
        return f"{batched}spread over {needed} queues (cells)"
    if key == "sqs-message-group":
        return f"use at least {needed} message groups (for example one per debit account)"
    if key == "lambda-concurrency":
        return f"{ask}, or run {needed} cells (accounts) of the stack in the region"
    if key == "lambda-scaling":
        return (f"ramp traffic over {needed * 10} s or more, or keep {_ceil(demand):,} environments warm "
                "with provisioned concurrency")
    if key == "apigateway-throttle":
        second = ", or a second region" if needed > 2 else ""
        return f"run {needed} cells (accounts) of the stack per region, or {ask}{second}"
    if key in ("kinesis-shard-records", "kinesis-shard-bytes"):
        return f"write to {needed} shards (on-demand mode adds them) with a partition key of many values"
    return f"{ask}"  # pragma: no cover - every quota key above has its plan


def capacity_plan(profile: CallProfile, rate_per_s: float, *, region: str = "eu-west-2",
                  headroom: float = DEFAULT_HEADROOM) -> list[LimitCheck]:
    """Every quota ``profile`` touches at ``rate_per_s`` payments a second, highest utilisation first.

    Equal utilisations are ordered by quota key. Quotas the profile does not touch (zero demand, a
    standard queue's FIFO limits, the account-level DynamoDB quotas of on-demand tables) are left out.

    Raises:
        CapacityModelError: a rate that is not above zero, an unknown region, a headroom outside (0, 1].

    Examples:
        >>> plan = capacity_plan(CallProfile(lambda_seconds_per_payment=0.2), 1_000)
        >>> [(c.quota.key, round(c.utilisation, 2), c.binds) for c in plan]
        [('lambda-concurrency', 0.2, False), ('lambda-scaling', 0.2, False), ('apigateway-throttle', 0.1, False)]

        Equal utilisations keep the order of their quota keys. At 10,000 payments a second:

        >>> plan = capacity_plan(CallProfile(lambda_seconds_per_payment=0.2), 10_000)
        >>> [(c.quota.key, c.needed) for c in plan if c.binds]
        [('lambda-concurrency', 3), ('lambda-scaling', 3), ('apigateway-throttle', 2)]
    """
    if not isinstance(profile, CallProfile):
        raise CapacityModelError(f"profile must be a CallProfile, got {type(profile).__name__}")
    rate = _validate_rate(rate_per_s)
    room = _validate_headroom(headroom)
    quotas = quotas_for(region)
    checks = []
    for key, demand in _demands(profile, rate, quotas).items():
        quota = quotas[key]
        utilisation = demand / _exact(quota.limit)
        binds = utilisation > room
        # for a message group the count is of groups in total, not a multiple of those in use
        total = demand * profile.message_groups if key == "sqs-message-group" else demand
        needed = _ceil(total / (_exact(quota.limit) * room))
        checks.append((utilisation, key, LimitCheck(
            quota=quota, rate_per_s=float(rate_per_s), demand=float(demand), utilisation=float(utilisation),
            headroom=float(headroom), binds=binds, needed=needed,
            plan=_plan(quota, profile, rate, demand, needed, binds, room, quotas),
            needed_unit=_NEEDED_UNITS.get(key, quota.scope))))
    checks.sort(key=lambda item: (-item[0], item[1]))
    return [check for _, _, check in checks]


def first_binding(profile: CallProfile, rate_per_s: float, *, region: str = "eu-west-2",
                  headroom: float = DEFAULT_HEADROOM) -> LimitCheck | None:
    """The quota with the highest utilisation if it binds at ``rate_per_s``, else None.

    Examples:
        >>> first_binding(CallProfile(), 100) is None
        True
        >>> first_binding(CallProfile(), 100_000).quota.key
        'apigateway-throttle'
    """
    for check in capacity_plan(profile, rate_per_s, region=region, headroom=headroom):
        return check if check.binds else None
    return None


@dataclass(frozen=True)
class CapacityRow:
    """One target rate of :func:`capacity_table`: every check, and the first that binds (if any)."""

    rate_per_s: float
    checks: tuple[LimitCheck, ...]
    binding: LimitCheck | None

    @property
    def top(self) -> LimitCheck | None:
        """The check with the highest utilisation, binding or not."""
        return self.checks[0] if self.checks else None


def capacity_table(profile: CallProfile, rates: Iterable[float] = TARGET_RATES, *, region: str = "eu-west-2",
                   headroom: float = DEFAULT_HEADROOM) -> list[CapacityRow]:
    """:func:`capacity_plan` at each rate, for the article's table (see :func:`markdown_table`).

    Examples:
        >>> rows = capacity_table(CallProfile(lambda_seconds_per_payment=0.2))
        >>> [(row.rate_per_s, row.binding.quota.key if row.binding else None) for row in rows]
        [(100, None), (1000, None), (10000, 'lambda-concurrency'), (100000, 'lambda-concurrency')]
    """
    rows = []
    for rate in rates:
        checks = tuple(capacity_plan(profile, rate, region=region, headroom=headroom))
        binding = checks[0] if checks and checks[0].binds else None
        rows.append(CapacityRow(rate_per_s=rate, checks=checks, binding=binding))
    if not rows:
        raise CapacityModelError("rates is empty: pass payments per second to plan for, such as (100, 1_000)")
    return rows


def markdown_table(rows: Iterable[CapacityRow]) -> str:
    """A Markdown table: per rate, the first quota to bind (or the nearest), its use and the plan.

    Examples:
        >>> print(markdown_table(capacity_table(CallProfile(), (100,))))
        | Payments/s | First quota to bind | Scope | Use | Plan |
        | ---: | --- | --- | ---: | --- |
        | 100 | none (nearest: apigateway Throttle quota per account, per Region across HTTP APIs, REST APIs, WebSocket APIs) | region | 1% | no change: binds near 8,000 payments/s |
    """
    lines = ["| Payments/s | First quota to bind | Scope | Use | Plan |", "| ---: | --- | --- | ---: | --- |"]
    for row in rows:
        check = row.binding or row.top
        if check is None:
            lines.append(f"| {row.rate_per_s:,.0f} | none | | | |")
            continue
        name = f"{check.quota.service} {check.quota.name}"
        if row.binding is None:
            name = f"none (nearest: {name})"
        lines.append(f"| {row.rate_per_s:,.0f} | {name} | {check.quota.scope} | {check.utilisation:.0%} "
                     f"| {check.plan} |")
    return "\n".join(lines)
