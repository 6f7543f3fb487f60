"""Cost of metered AWS calls from a dated public price table, in exact ``Decimal`` USD.

Only request charges that follow from API calls are priced: storage, data transfer, Lambda
duration, KMS key-months and free tiers are left out (``PriceTable.kms_key_month`` is there for
callers that add fixed costs themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fasterpay.metering import MeterSnapshot

__all__ = [
    "DEFAULT_PRICES",
    "FREE_SERVICES",
    "CostBreakdown",
    "PriceTable",
    "cost_of",
    "per_10k",
    "s3_request_class",
]

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
FREE_SERVICES = frozenset({"sts", "iam", "cloudformation"})
# S3 bills PUT, COPY, POST and LIST at one rate; GET and all others at another; DELETE and
# CANCEL (abort multipart upload) are free.
_S3_PUT_CLASS_PREFIXES = ("Put", "Copy", "List", "Create", "Upload", "Complete", "Restore", "Post")
_S3_FREE_PREFIXES = ("Delete", "Abort")


@dataclass(frozen=True)
class PriceTable:
    """Public on-demand prices in USD (us-east-1), as of ``as_of``."""

    as_of: str = "2025-11"
    region: str = "us-east-1"
    source_urls: tuple[str, ...] = (
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/sqs/pricing/",
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/s3/pricing/",
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

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name in ("as_of", "region", "source_urls"):
                continue
            if not isinstance(value, Decimal):
                raise TypeError(
                    f"{name} must be a Decimal, e.g. Decimal('0.625'): money is never float."
                )
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative Decimal, got {value}.")


DEFAULT_PRICES = PriceTable()


@dataclass(frozen=True)
class CostBreakdown:
    """USD per service and in total; ``unpriced`` names metered services with no price here."""

    by_service: Mapping[str, Decimal]
    total: Decimal
    unpriced: frozenset[str] = frozenset()
    prices: PriceTable = field(default=DEFAULT_PRICES, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_service", MappingProxyType(dict(self.by_service)))


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


def cost_of(
    snapshot: MeterSnapshot, prices: PriceTable = DEFAULT_PRICES, *, fifo_queues: bool = False
) -> CostBreakdown:
    """Request cost of the metered calls.

    DynamoDB from the meter's unit estimates; every KMS call is one request; every SQS call is
    one request (a batch of up to 10 messages is one request; payloads over 64 KB, billed as
    several, are not seen); S3 by request class; Lambda ``Invoke`` calls only (control-plane
    calls are free; duration is not priced); STS, IAM and CloudFormation are free.

    Examples:
        >>> cost = cost_of(meter.snapshot())  # doctest: +SKIP
        >>> cost.by_service["kms"], cost.total  # doctest: +SKIP
        (Decimal('0.000009'), Decimal('0.0000215'))
    """
    by_service: dict[str, Decimal] = {}
    services = {key.service for key in snapshot.calls}
    if "dynamodb" in services or snapshot.write_units or snapshot.read_units:
        by_service["dynamodb"] = (
            snapshot.write_units * prices.dynamodb_write_unit_per_million
            + snapshot.read_units * prices.dynamodb_read_unit_per_million
        ) / _MILLION
    if "kms" in services:
        by_service["kms"] = snapshot.count(service="kms") * prices.kms_requests_per_10k / 10_000
    if "sqs" in services:
        rate = prices.sqs_fifo_per_million if fifo_queues else prices.sqs_standard_per_million
        by_service["sqs"] = snapshot.count(service="sqs") * rate / _MILLION
    if "lambda" in services:
        invokes = snapshot.count(service="lambda", operation="Invoke")
        by_service["lambda"] = invokes * prices.lambda_requests_per_million / _MILLION
    if "s3" in services:
        put = get = 0
        for key, n in snapshot.calls.items():
            if key.service == "s3":
                kind = s3_request_class(key.operation)
                put += n if kind == "put" else 0
                get += n if kind == "get" else 0
        by_service["s3"] = (put * prices.s3_put_per_1000 + get * prices.s3_get_per_1000) / 1000
    for service in services & FREE_SERVICES:
        by_service[service] = _ZERO
    unpriced = frozenset(services - set(by_service))
    return CostBreakdown(
        by_service=dict(sorted(by_service.items())),
        total=sum(by_service.values(), _ZERO),
        unpriced=unpriced,
        prices=prices,
    )


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
