"""Check the dated price table against the AWS Price List API, and report any drift.

The guide prices metered calls with :class:`fasterpay.pricing.PriceTable`, looked up by hand on its
``as_of`` date. Prices change; :func:`price_drift` asks the Price List Query API (``boto3`` client
``pricing``, served from us-east-1) for the current on-demand price of each field and reports those
that differ. It needs an AWS account: moto does not emulate the Price List API, so the tests check the
parsing against a stubbed answer and skip the live check, saying so.

A field is looked up by service code and usage type (region-prefixed, e.g. ``EUW2-WriteRequestUnits``);
the first price tier (``beginRange`` 0) is compared. A usage type the API does not answer is reported as
``unmatched``, never as a price: the check says what it could not see.

Examples:
    >>> pricing = boto3.client("pricing", region_name="us-east-1")  # doctest: +SKIP
    >>> for drift in price_drift(pricing, PRICES_EU_WEST_2):  # doctest: +SKIP
    ...     print(drift)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..pricing import PriceTable

__all__ = ["LOOKUPS", "REGION_PREFIX", "Drift", "PriceLookup", "live_price", "price_drift"]

#: The usage-type prefix of each region the guide prices (us-east-1 usage types carry none).
REGION_PREFIX: Mapping[str, str] = {"us-east-1": "", "eu-west-2": "EUW2-"}


@dataclass(frozen=True)
class PriceLookup:
    """Where a price-table field is found: service code, usage type (without region prefix), unit scale.

    ``per`` converts the API's price per unit into the table's unit (1,000,000 for "per million").
    """

    service_code: str
    usage_type: str
    per: int = 1


LOOKUPS: Mapping[str, PriceLookup] = {
    "dynamodb_write_unit_per_million": PriceLookup("AmazonDynamoDB", "WriteRequestUnits", 1_000_000),
    "dynamodb_read_unit_per_million": PriceLookup("AmazonDynamoDB", "ReadRequestUnits", 1_000_000),
    "kms_requests_per_10k": PriceLookup("awskms", "KMS-Requests", 10_000),
    "kms_key_month": PriceLookup("awskms", "KMS-Keys"),
    "sqs_standard_per_million": PriceLookup("AWSQueueService", "Requests-Tier1", 1_000_000),
    "sqs_fifo_per_million": PriceLookup("AWSQueueService", "Requests-FIFO-Tier1", 1_000_000),
    "lambda_requests_per_million": PriceLookup("AWSLambda", "Request", 1_000_000),
    "lambda_x86_per_gb_second": PriceLookup("AWSLambda", "Lambda-GB-Second"),
    "lambda_arm64_per_gb_second": PriceLookup("AWSLambda", "Lambda-GB-Second-ARM"),
    "s3_put_per_1000": PriceLookup("AmazonS3", "Requests-Tier1", 1_000),
    "s3_get_per_1000": PriceLookup("AmazonS3", "Requests-Tier2", 1_000),
    "logs_ingestion_per_gb": PriceLookup("AmazonCloudWatch", "DataProcessing-Bytes"),
    "kinesis_put_units_per_million": PriceLookup("AmazonKinesis", "PutRequestPayloadUnits", 1_000_000),
    "kinesis_shard_hour": PriceLookup("AmazonKinesis", "Storage-ShardHour"),
    "cloudwatch_custom_metric_month": PriceLookup("AmazonCloudWatch", "CW:MetricMonitorUsage"),
}
"""The fields the check looks up (``kms_asymmetric_requests_per_10k`` has no single usage type: not checked)."""


@dataclass(frozen=True)
class Drift:
    """One field whose live price differs from the table's (``live`` is None when unmatched)."""

    field: str
    table: Decimal
    live: Decimal | None
    usage_type: str

    def __str__(self) -> str:
        if self.live is None:
            return f"{self.field}: unmatched (no price for usage type {self.usage_type}): check it by hand"
        return f"{self.field}: table {self.table}, Price List API {self.live} ({self.usage_type})"


def _first_tier_usd(product: Mapping[str, Any]) -> Decimal | None:
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            if str(dimension.get("beginRange", "0")) in ("0", "0.0"):
                usd = (dimension.get("pricePerUnit") or {}).get("USD")
                if usd is not None:
                    return Decimal(str(usd))
    return None


def _products(pricing: Any, service_code: str, filters: list[dict[str, str]]) -> Iterator[Mapping[str, Any]]:
    token: str | None = None
    while True:
        request: dict[str, Any] = {"ServiceCode": service_code, "Filters": filters, "FormatVersion": "aws_v1",
                                   "MaxResults": 100}
        if token:
            request["NextToken"] = token
        page = pricing.get_products(**request)
        for text in page.get("PriceList") or ():
            yield json.loads(text) if isinstance(text, str) else text
        token = page.get("NextToken")
        if not token:
            return


def live_price(pricing: Any, field_name: str, region: str) -> tuple[Decimal | None, str]:
    """The Price List API's first-tier on-demand price of ``field_name`` in ``region``, in the table's unit.

    Returns ``(price, usage_type)``; the price is None when no product answers for that usage type.
    """
    if region not in REGION_PREFIX:
        raise ValueError(f"region {region!r} has no usage-type prefix here: add it to REGION_PREFIX")
    lookup = LOOKUPS[field_name]
    usage_type = REGION_PREFIX[region] + lookup.usage_type
    filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
               {"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage_type}]
    for product in _products(pricing, lookup.service_code, filters):
        price = _first_tier_usd(product)
        if price is not None:
            return price * lookup.per, usage_type
    return None, usage_type


def price_drift(pricing: Any, table: PriceTable, *, tolerance: Decimal = Decimal(0)) -> list[Drift]:
    """Every looked-up field whose live price differs from ``table`` by more than ``tolerance`` (relative).

    An empty list means the table matches the Price List API today for every field it could look up.
    """
    drifts = []
    for name in LOOKUPS:
        expected = getattr(table, name)
        live, usage_type = live_price(pricing, name, table.region)
        if live is None:
            drifts.append(Drift(name, expected, None, usage_type))
        elif abs(live - expected) > tolerance * expected:
            drifts.append(Drift(name, expected, live, usage_type))
    return drifts
