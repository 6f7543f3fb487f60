"""Cost of metered AWS calls from dated public price tables, in exact ``Decimal`` USD.

:func:`cost_breakdown` prices a :class:`~fasterpay.metering.MeterSnapshot` by component:
DynamoDB writes and reads (request units computed from item sizes by the meter), KMS requests
(asymmetric signing at its own rate), SQS requests (one per 64 KB chunk), Lambda requests and
duration, CloudWatch Logs ingestion, S3 requests and Kinesis Data Streams PUT payload units, plus any
fixed costs the caller adds (key-months, custom-metric months, Kinesis shard-hours: see
:func:`fixed_monthly_costs`).
:func:`cost_of` is the same without the inputs the meter cannot see (Lambda duration, log bytes).
Storage, data transfer, KMS key-months, custom-metric months and free tiers are left out.

**The price tables, as looked up on 2026-11-30.** Every figure is an on-demand list price in USD.
``PRICE_PROVENANCE`` says, per table and field, how far each one was checked:

* ``"aws page"``: read on a stored AWS page: the KMS key-month ($1, aws.amazon.com/kms/pricing)
  and the Lambda request price ($0.20 per million, docs.aws.amazon.com whitepaper "How AWS
  Pricing Works", which gives duration only rounded, $0.00001667 per GB-second). The stored text
  of the DynamoDB on-demand, KMS and Lambda pricing pages has the rules (request units, what a
  key costs) but not the request price tables, which those pages render with scripts; no stored
  copy of the SQS, S3 or CloudWatch pricing pages was found. The SQS 64 KB rule and the EMF
  billing note below come from third-party guides and the CloudWatch user guide respectively.
* ``"secondary"``: not on a stored AWS page, but given by third-party guides dated 2025-2026
  (us-east-1) or by public repositories that quote the AWS Price List API offer files
  (``pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<service>/current/<region>/index.json``),
  read by them between 2026-09-05 and 2026-10-06. For eu-west-2 two such repositories agree on
  Lambda, SQS and S3; KMS and CloudWatch Logs ($0.5985 per GB) come from one of them only.
  KMS asymmetric requests ("asymmetric requests except RSA 2048", which covers ECC_NIST_P256
  ``Sign``) are $0.15 per 10,000, five times the symmetric rate, in the Price List API quotes for
  us-east-1, eu-central-1 and ap-southeast-2; one guide says $0.03 for ECC, which we believe wrong.
* ``"substitute"``: no figure for this region was found; another region's figure is used and
  labelled as such. eu-west-2 DynamoDB on-demand prices were not found anywhere in the stored
  material, so ``PRICES_EU_WEST_2`` carries the us-east-1 figures, which London may not match;
  likewise its KMS asymmetric rate, found for three other regions but not for London.

Kinesis Data Streams is priced in provisioned mode: PUT payload units (25 KB chunks, the rule is on
the AWS page) and shard-hours; the figures ($0.014 per million units, $0.015 per shard-hour in
us-east-1) are "secondary" (several third-party cost guides agree); eu-west-2 carries them as
"substitute". CloudWatch custom metrics are $0.30 per metric-month for the first 10,000 metrics
("secondary"), a fixed cost.

Log volume is priced per GB of 2**30 bytes (:data:`BYTES_PER_GB`), our assumption of AWS's
billing GB, not checked on a stored page. CloudWatch embedded metric format (EMF) metrics are
log events: their bytes are billed as log ingestion (pass them in ``log_bytes``), and each metric
they create is also billed as a custom metric per month, a fixed cost for ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, Inexact, localcontext
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .metering import MeterSnapshot

__all__ = [
    "BEDROCK_TOKEN_PRICES",
    "BYTES_PER_GB",
    "COMPONENTS",
    "BedrockTokenPrice",
    "DEFAULT_PRICES",
    "FREE_SERVICES",
    "KMS_ASYMMETRIC_OPERATIONS",
    "PRICES_EU_WEST_2",
    "PRICES_US_EAST_1",
    "PRICE_PROVENANCE",
    "PRICE_TABLES",
    "CostBreakdown",
    "PriceTable",
    "bedrock_usage_cost",
    "check_prices",
    "cost_breakdown",
    "cost_of",
    "fixed_monthly_costs",
    "per_10k",
    "s3_request_class",
]

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
BYTES_PER_GB = 2**30
"""Bytes in the GB that log ingestion is priced per (an assumption: see the module docstring)."""
FREE_SERVICES = frozenset({"sts", "iam", "cloudformation"})
KMS_ASYMMETRIC_OPERATIONS = frozenset({"Sign", "Verify", "GetPublicKey"})
"""KMS operations that only asymmetric keys serve, priced at ``kms_asymmetric_requests_per_10k``.

That rate is for keys other than RSA 2048 (such as ECC_NIST_P256); for RSA 2048 keys pass a
table whose asymmetric rate equals the symmetric one. Encrypt and Decrypt with an asymmetric key,
and GenerateDataKeyPair (priced apart on the KMS page), are priced as symmetric requests.
"""
COMPONENTS = (
    "dynamodb writes",
    "dynamodb reads",
    "kms",
    "sqs",
    "lambda requests",
    "lambda duration",
    "logs",
    "s3",
    "kinesis",
)
"""The components of :attr:`CostBreakdown.by_component`, in order; ``extra`` adds more."""
_COMPONENT_SERVICE = {
    "dynamodb writes": "dynamodb",
    "dynamodb reads": "dynamodb",
    "kms": "kms",
    "sqs": "sqs",
    "lambda requests": "lambda",
    "lambda duration": "lambda",
    "logs": "logs",
    "s3": "s3",
    "kinesis": "kinesis",
}
_ARCHITECTURES = ("x86_64", "arm64")
# S3 bills PUT, COPY, POST and LIST at one rate; GET and all others at another; DELETE and
# CANCEL (abort multipart upload) are free.
_S3_PUT_CLASS_PREFIXES = ("Put", "Copy", "List", "Create", "Upload", "Complete", "Restore", "Post")
_S3_FREE_PREFIXES = ("Delete", "Abort")
_LABELS = ("as_of", "region", "source_urls")


def check_prices(prices: Mapping[str, object], *, example: str) -> None:
    """Refuse any price that is not a finite, non-negative ``Decimal``: money is never float.

    ``example`` shows the caller's own unit in the message (``Decimal('0.625')``).

    Examples:
        >>> check_prices({"kms_key_month": 1.0}, example="1")
        Traceback (most recent call last):
        ...
        TypeError: kms_key_month must be a Decimal, e.g. Decimal('1'): money is never float.
    """
    for name, value in prices.items():
        if not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, e.g. Decimal('{example}'): money is never float.")
        if not value.is_finite() or value < 0:
            raise ValueError(f"{name} must be a finite, non-negative Decimal, got {value}.")


@dataclass(frozen=True)
class PriceTable:
    """Public on-demand prices in USD for one region, as looked up on ``as_of``.

    The defaults are the us-east-1 prices (:data:`PRICES_US_EAST_1`).
    """

    as_of: str = "2026-11-30"
    region: str = "us-east-1"
    source_urls: tuple[str, ...] = (
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/sqs/pricing/",
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/s3/pricing/",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "https://aws.amazon.com/kinesis/data-streams/pricing/",
    )
    dynamodb_write_unit_per_million: Decimal = Decimal("0.625")
    dynamodb_read_unit_per_million: Decimal = Decimal("0.125")
    kms_requests_per_10k: Decimal = Decimal("0.03")
    kms_key_month: Decimal = Decimal("1")
    sqs_standard_per_million: Decimal = Decimal("0.40")
    sqs_fifo_per_million: Decimal = Decimal("0.50")
    lambda_requests_per_million: Decimal = Decimal("0.20")
    s3_put_per_1000: Decimal = Decimal("0.005")
    s3_get_per_1000: Decimal = Decimal("0.0004")
    kms_asymmetric_requests_per_10k: Decimal = Decimal("0.15")
    lambda_x86_per_gb_second: Decimal = Decimal("0.0000166667")
    lambda_arm64_per_gb_second: Decimal = Decimal("0.0000133334")
    logs_ingestion_per_gb: Decimal = Decimal("0.50")
    kinesis_put_units_per_million: Decimal = Decimal("0.014")
    kinesis_shard_hour: Decimal = Decimal("0.015")
    cloudwatch_custom_metric_month: Decimal = Decimal("0.30")

    def __post_init__(self) -> None:
        check_prices({name: value for name, value in vars(self).items() if name not in _LABELS},
                     example="0.625")


PRICES_US_EAST_1 = PriceTable()
DEFAULT_PRICES = PRICES_US_EAST_1
PRICES_EU_WEST_2 = PriceTable(
    region="eu-west-2",
    source_urls=(
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/sqs/pricing/",
        "https://aws.amazon.com/s3/pricing/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "https://aws.amazon.com/kinesis/data-streams/pricing/",
        # Quoted by public repositories for the figures marked "secondary"; not read by us.
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AWSLambda/current/eu-west-2/index.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AWSQueueService/current/eu-west-2/index.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonS3/current/eu-west-2/index.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/awskms/current/eu-west-2/index.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonCloudWatch/current/eu-west-2/index.json",
    ),
    # No eu-west-2 figure found: the us-east-1 figures, labelled "substitute" in PRICE_PROVENANCE.
    dynamodb_write_unit_per_million=Decimal("0.625"),
    dynamodb_read_unit_per_million=Decimal("0.125"),
    kms_requests_per_10k=Decimal("0.03"),
    kms_key_month=Decimal("1"),
    sqs_standard_per_million=Decimal("0.40"),
    sqs_fifo_per_million=Decimal("0.50"),
    lambda_requests_per_million=Decimal("0.20"),
    s3_put_per_1000=Decimal("0.0053"),
    s3_get_per_1000=Decimal("0.00042"),
    # Not found for eu-west-2; the same $0.15 in us-east-1, eu-central-1 and ap-southeast-2.
    kms_asymmetric_requests_per_10k=Decimal("0.15"),
    lambda_x86_per_gb_second=Decimal("0.0000166667"),
    lambda_arm64_per_gb_second=Decimal("0.0000133334"),
    logs_ingestion_per_gb=Decimal("0.5985"),
    # Not found for eu-west-2: the us-east-1 figures.
    kinesis_put_units_per_million=Decimal("0.014"),
    kinesis_shard_hour=Decimal("0.015"),
    cloudwatch_custom_metric_month=Decimal("0.30"),
)
PRICE_TABLES: Mapping[str, PriceTable] = MappingProxyType(
    {"us-east-1": PRICES_US_EAST_1, "eu-west-2": PRICES_EU_WEST_2}
)

_SECONDARY = "secondary"
PRICE_PROVENANCE: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "us-east-1": MappingProxyType({
        "dynamodb_write_unit_per_million": _SECONDARY,
        "dynamodb_read_unit_per_million": _SECONDARY,
        "kms_requests_per_10k": _SECONDARY,
        "kms_key_month": "aws page",
        "sqs_standard_per_million": _SECONDARY,
        "sqs_fifo_per_million": _SECONDARY,
        "lambda_requests_per_million": "aws page",
        "s3_put_per_1000": _SECONDARY,
        "s3_get_per_1000": _SECONDARY,
        "kms_asymmetric_requests_per_10k": _SECONDARY,
        "lambda_x86_per_gb_second": _SECONDARY,
        "lambda_arm64_per_gb_second": _SECONDARY,
        "logs_ingestion_per_gb": _SECONDARY,
        "kinesis_put_units_per_million": _SECONDARY,
        "kinesis_shard_hour": _SECONDARY,
        "cloudwatch_custom_metric_month": _SECONDARY,
    }),
    "eu-west-2": MappingProxyType({
        "dynamodb_write_unit_per_million": "substitute: us-east-1 figure",
        "dynamodb_read_unit_per_million": "substitute: us-east-1 figure",
        "kms_requests_per_10k": _SECONDARY,
        "kms_key_month": _SECONDARY,
        "sqs_standard_per_million": _SECONDARY,
        "sqs_fifo_per_million": _SECONDARY,
        "lambda_requests_per_million": _SECONDARY,
        "s3_put_per_1000": _SECONDARY,
        "s3_get_per_1000": _SECONDARY,
        "kms_asymmetric_requests_per_10k": "substitute: us-east-1 figure",
        "lambda_x86_per_gb_second": _SECONDARY,
        "lambda_arm64_per_gb_second": _SECONDARY,
        "logs_ingestion_per_gb": _SECONDARY,
        "kinesis_put_units_per_million": "substitute: us-east-1 figure",
        "kinesis_shard_hour": "substitute: us-east-1 figure",
        "cloudwatch_custom_metric_month": "substitute: us-east-1 figure",
    }),
})
"""Per region and price field: ``"aws page"``, ``"secondary"`` or ``"substitute: ..."``."""


@dataclass(frozen=True)
class CostBreakdown:
    """USD per service, per component and in total; ``unpriced`` names services with no price.

    ``by_component`` has every name in :data:`COMPONENTS` (zero when unused) and each ``extra``;
    ``by_service`` has the services that were metered or given inputs, the free ones at zero.
    Both sum to ``total``.
    """

    by_service: Mapping[str, Decimal]
    total: Decimal
    unpriced: frozenset[str] = frozenset()
    prices: PriceTable = field(default=DEFAULT_PRICES, repr=False)
    by_component: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_service", MappingProxyType(dict(self.by_service)))
        object.__setattr__(self, "by_component", MappingProxyType(dict(self.by_component)))


def s3_request_class(operation: str) -> str:
    """``"put"``, ``"get"`` or ``"free"``: the S3 request price class of an operation.

    Examples:
        >>> s3_request_class("ListObjectsV2"), s3_request_class("HeadObject")
        ('put', 'get')
    """
    if operation.startswith(_S3_FREE_PREFIXES):
        return "free"
    if operation.startswith(_S3_PUT_CLASS_PREFIXES):
        return "put"
    return "get"


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number (int), not {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}.")
    return value


def _money(name: str, value: object, *, ints: bool = False) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, not float: money is never float.")
    if ints and isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, e.g. Decimal('0.25'), not {type(value).__name__}.")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative Decimal, got {value}.")
    return value


def cost_breakdown(
    snapshot: MeterSnapshot,
    *,
    prices: PriceTable = DEFAULT_PRICES,
    lambda_invocations: int = 0,
    lambda_gb_seconds: Decimal = _ZERO,
    lambda_architecture: str = "x86_64",
    log_bytes: int = 0,
    fifo_queues: bool = False,
    extra: Mapping[str, Decimal] = MappingProxyType({}),
) -> CostBreakdown:
    """Cost of the metered calls plus what the meter cannot see, by component, exactly.

    * ``dynamodb writes`` / ``dynamodb reads``: the snapshot's request units;
    * ``kms``: one request per call, :data:`KMS_ASYMMETRIC_OPERATIONS` at the asymmetric rate;
    * ``sqs``: the snapshot's billable requests (one per 64 KB chunk), at least one per call,
      at the FIFO rate if ``fifo_queues``;
    * ``lambda requests``: metered ``lambda:Invoke`` calls plus ``lambda_invocations``, the
      invocations the meter did not see (the local runner calls handlers as functions);
    * ``lambda duration``: ``lambda_gb_seconds`` at the ``lambda_architecture`` rate
      (``"x86_64"`` or ``"arm64"``);
    * ``logs``: ``log_bytes`` of CloudWatch Logs ingestion (EMF metrics included), per
      :data:`BYTES_PER_GB`;
    * ``s3``: requests by :func:`s3_request_class`;
    * ``kinesis``: the snapshot's PUT payload units (shard-hours are fixed: pass them in ``extra``);
    * each ``extra`` name, as given (e.g. key-months spread over the run).

    Floats are refused with ``TypeError``; the arithmetic is exact (an ``Inexact`` signal would
    raise rather than round).

    Examples:
        >>> from fasterpay.metering import MeterSnapshot
        >>> cost = cost_breakdown(MeterSnapshot(), prices=PRICES_EU_WEST_2,
        ...                       lambda_invocations=10_000, lambda_gb_seconds=Decimal(1250),
        ...                       log_bytes=BYTES_PER_GB)
        >>> cost.by_component["lambda duration"], cost.by_component["logs"], cost.total
        (Decimal('0.0208333750'), Decimal('0.5985'), Decimal('0.6213333750'))
    """
    invocations = _whole("lambda_invocations", lambda_invocations)
    gb_seconds = _money("lambda_gb_seconds", lambda_gb_seconds, ints=True)
    logged = _whole("log_bytes", log_bytes)
    if lambda_architecture not in _ARCHITECTURES:
        raise ValueError(f"lambda_architecture must be one of {_ARCHITECTURES}, "
                         f"got {lambda_architecture!r}.")
    extras = {str(name): _money(f"extra[{name!r}]", value) for name, value in extra.items()}

    services = {key.service for key in snapshot.calls}
    with localcontext() as exact:
        exact.prec = 100
        exact.traps[Inexact] = True
        kms_asymmetric = sum(
            n for key, n in snapshot.calls.items()
            if key.service == "kms" and key.operation in KMS_ASYMMETRIC_OPERATIONS
        )
        kms_symmetric = snapshot.count(service="kms") - kms_asymmetric
        put = get = 0
        for key, n in snapshot.calls.items():
            if key.service == "s3":
                kind = s3_request_class(key.operation)
                put += n if kind == "put" else 0
                get += n if kind == "get" else 0
        sqs_rate = prices.sqs_fifo_per_million if fifo_queues else prices.sqs_standard_per_million
        duration_rate = (prices.lambda_x86_per_gb_second if lambda_architecture == "x86_64"
                         else prices.lambda_arm64_per_gb_second)
        invokes = snapshot.count(service="lambda", operation="Invoke") + invocations
        components = {
            "dynamodb writes": snapshot.write_units * prices.dynamodb_write_unit_per_million
            / _MILLION,
            "dynamodb reads": snapshot.read_units * prices.dynamodb_read_unit_per_million
            / _MILLION,
            "kms": (kms_symmetric * prices.kms_requests_per_10k
                    + kms_asymmetric * prices.kms_asymmetric_requests_per_10k) / 10_000,
            "sqs": max(snapshot.sqs_requests, snapshot.count(service="sqs")) * sqs_rate
            / _MILLION,
            "lambda requests": invokes * prices.lambda_requests_per_million / _MILLION,
            "lambda duration": gb_seconds * duration_rate,
            "logs": logged * prices.logs_ingestion_per_gb / BYTES_PER_GB,
            "s3": (put * prices.s3_put_per_1000 + get * prices.s3_get_per_1000) / 1000,
            "kinesis": snapshot.kinesis_put_units * prices.kinesis_put_units_per_million / _MILLION,
        }
        components = {name: amount if amount else _ZERO for name, amount in components.items()}
        clash = set(extras) & (set(components) | services | set(_COMPONENT_SERVICE.values()))
        if clash:
            raise ValueError(f"extra names {sorted(clash)} are taken by components or services: "
                             f"choose other names, e.g. 'kms key-months'.")
        shown = set(services)
        if snapshot.write_units or snapshot.read_units:
            shown.add("dynamodb")
        if snapshot.sqs_requests:
            shown.add("sqs")
        if snapshot.kinesis_put_units:
            shown.add("kinesis")
        if invocations or gb_seconds:
            shown.add("lambda")
        if logged:
            shown.add("logs")
        else:
            shown.discard("logs")  # metered CloudWatch Logs calls without their bytes: unpriced
        by_service: dict[str, Decimal] = {}
        for component, amount in components.items():
            service = _COMPONENT_SERVICE[component]
            if service in shown:
                by_service[service] = by_service.get(service, _ZERO) + amount
        for service in services & FREE_SERVICES:
            by_service[service] = _ZERO
        by_service.update(extras)
        by_component = {**components, **extras}
        total = sum(by_component.values(), _ZERO)
    return CostBreakdown(
        by_service=dict(sorted(by_service.items())),
        total=total,
        unpriced=frozenset(services - set(by_service)),
        prices=prices,
        by_component=by_component,
    )


def cost_of(
    snapshot: MeterSnapshot, prices: PriceTable = DEFAULT_PRICES, *, fifo_queues: bool = False
) -> CostBreakdown:
    """Request cost of the metered calls: :func:`cost_breakdown` with no unmetered inputs.

    Lambda is priced by metered ``Invoke`` calls only (control-plane calls are free; duration
    needs :func:`cost_breakdown`); STS, IAM and CloudFormation are free.

    Examples:
        >>> cost = cost_of(meter.snapshot())  # doctest: +SKIP
        >>> cost.by_service["kms"], cost.total  # doctest: +SKIP
        (Decimal('0.000009'), Decimal('0.0000215'))
    """
    return cost_breakdown(snapshot, prices=prices, fifo_queues=fifo_queues)


_HOURS_PER_MONTH = Decimal(730)  # AWS's pricing examples use 730 hours a month


def fixed_monthly_costs(prices: PriceTable = DEFAULT_PRICES, *, kms_keys: int = 0, custom_metrics: int = 0,
                        kinesis_shards: int = 0) -> dict[str, Decimal]:
    """What a deployment pays per month whatever its volume: KMS key-months, custom metrics, shard-hours.

    Divide by the month's payments to spread them per payment (``extra`` of :func:`cost_breakdown`).
    A month is 730 hours, as in AWS's pricing examples; custom metrics are priced at the first tier.

    Examples:
        >>> fixed_monthly_costs(PRICES_US_EAST_1, kms_keys=3, custom_metrics=10, kinesis_shards=2)
        {'kms key-months': Decimal('3'), 'custom metrics': Decimal('3.00'), 'kinesis shard-hours': Decimal('21.900')}
    """
    counts = {name: _whole(name, value) for name, value in
              (("kms_keys", kms_keys), ("custom_metrics", custom_metrics), ("kinesis_shards", kinesis_shards))}
    return {
        "kms key-months": counts["kms_keys"] * prices.kms_key_month,
        "custom metrics": counts["custom_metrics"] * prices.cloudwatch_custom_metric_month,
        "kinesis shard-hours": counts["kinesis_shards"] * prices.kinesis_shard_hour * _HOURS_PER_MONTH,
    }


def per_10k(cost: Decimal, operations: int) -> Decimal:
    """Cost per 10,000 operations (e.g. payments), exactly.

    Examples:
        >>> per_10k(Decimal("0.0042"), 2_000)
        Decimal('0.0210')
    """
    if not isinstance(cost, Decimal):
        raise TypeError(f"cost must be a Decimal, not {type(cost).__name__}: money is never float.")
    if isinstance(operations, bool) or not isinstance(operations, int) or operations <= 0:
        raise ValueError(
            f"operations must be a positive whole number, got {operations!r}: "
            f"measure at least one operation before pricing it per 10k."
        )
    return cost * 10_000 / operations



# -- Amazon Bedrock on-demand tokens ---------------------------------------------------------------------
@dataclass(frozen=True)
class BedrockTokenPrice:
    """On-demand USD per million input and output tokens of one model in one region, dated and sourced.

    ``provenance`` is ``"aws page"``, ``"secondary"`` or ``"substitute: ..."`` as in :data:`PRICE_PROVENANCE`.
    Guardrail policies are billed per 1,000 text units (a text unit is up to 1,000 characters) per policy
    evaluated, on top of the tokens.
    """

    model_id: str
    region: str
    as_of: str
    input_per_million: Decimal
    output_per_million: Decimal
    source_urls: tuple[str, ...]
    provenance: str
    guardrail_content_per_1000_text_units: Decimal = Decimal("0.15")
    guardrail_sensitive_info_per_1000_text_units: Decimal = Decimal("0.10")

    def __post_init__(self) -> None:
        names = ("input_per_million", "output_per_million", "guardrail_content_per_1000_text_units",
                 "guardrail_sensitive_info_per_1000_text_units")
        check_prices({name: getattr(self, name) for name in names}, example="0.035")


_NOVA_MICRO_SOURCES = (
    "https://aws.amazon.com/bedrock/pricing/",
    # The AWS Price List API offer file, as quoted (read 2026-09-01) by
    # https://raw.githubusercontent.com/api-evangelist/amazon-nova/refs/heads/main/plans/amazon-nova-plans-pricing.yml
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonBedrock/current/us-east-1/index.json",
    # the same $0.035 / $0.14 per million in Helicone's cost table (packages/cost/models/authors/amazon/endpoints.ts)
    "https://github.com/Helicone/helicone",
    # guardrail text-unit prices ($0.15 content filters incl. prompt attack, $0.10 sensitive information)
    "https://hivebook.wiki/wiki/aws-bedrock-guardrails-content-filters-pii-masking-grounding-checks-for-fms",
)
BEDROCK_TOKEN_PRICES: Mapping[tuple[str, str], BedrockTokenPrice] = MappingProxyType({
    ("amazon.nova-micro-v1:0", "us-east-1"): BedrockTokenPrice(
        model_id="amazon.nova-micro-v1:0", region="us-east-1", as_of="2026-12-01",
        input_per_million=Decimal("0.035"), output_per_million=Decimal("0.14"),
        source_urls=_NOVA_MICRO_SOURCES, provenance=_SECONDARY),
    # No eu-west-2 figure was found in the stored material (the AWS page renders its tables with scripts).
    ("amazon.nova-micro-v1:0", "eu-west-2"): BedrockTokenPrice(
        model_id="amazon.nova-micro-v1:0", region="eu-west-2", as_of="2026-12-01",
        input_per_million=Decimal("0.035"), output_per_million=Decimal("0.14"),
        source_urls=_NOVA_MICRO_SOURCES, provenance="substitute: us-east-1 figure"),
})
"""Bedrock on-demand token prices by (model id, region), looked up on 2026-12-01."""


def bedrock_usage_cost(
    usage: Mapping[str, int],
    *,
    model_id: str,
    region: str = "eu-west-2",
    guardrail_text_units: int = 0,
    guardrail_sensitive_info: bool = True,
    guardrail_content_filters: bool = True,
    prices: Mapping[tuple[str, str], BedrockTokenPrice] = BEDROCK_TOKEN_PRICES,
) -> Decimal:
    """USD of one Converse call from its ``usage`` (``inputTokens``, ``outputTokens``), exactly.

    ``guardrail_text_units`` are the text units the guardrail evaluated (input prompt characters / 1,000,
    rounded up, per evaluation), priced per enabled policy.

    Examples:
        >>> bedrock_usage_cost({"inputTokens": 1000, "outputTokens": 50}, model_id="amazon.nova-micro-v1:0")
        Decimal('0.000042')
        >>> bedrock_usage_cost({"inputTokens": 1000, "outputTokens": 50}, model_id="amazon.nova-micro-v1:0",
        ...                    guardrail_text_units=4)
        Decimal('0.001042')
    """
    try:
        price = prices[(model_id, region)]
    except KeyError:
        raise KeyError(f"no token price for {model_id!r} in {region!r}: add a dated BedrockTokenPrice") from None
    tokens_in = _whole("usage.inputTokens", usage.get("inputTokens", 0))
    tokens_out = _whole("usage.outputTokens", usage.get("outputTokens", 0))
    units = _whole("guardrail_text_units", guardrail_text_units)
    with localcontext() as exact:
        exact.prec = 100
        exact.traps[Inexact] = True
        tokens = (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / _MILLION
        per_unit = ((price.guardrail_content_per_1000_text_units if guardrail_content_filters else _ZERO)
                    + (price.guardrail_sensitive_info_per_1000_text_units if guardrail_sensitive_info else _ZERO))
        return tokens + units * per_unit / 1000
