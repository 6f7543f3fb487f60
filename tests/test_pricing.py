"""Tests for fasterpay.pricing: exact Decimal costs from metered calls."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter, CallKey, MeterSnapshot
from fasterpay.pricing import (
    DEFAULT_PRICES,
    PriceTable,
    cost_of,
    per_10k,
    s3_request_class,
)

REGION = "eu-west-2"


def _calls(**counts: int) -> dict[CallKey, int]:
    """``dynamodb__PutItem=3`` -> {CallKey("dynamodb", "PutItem", REGION): 3}."""
    return {CallKey(*name.split("__"), REGION): n for name, n in counts.items()}




def test_price_table_is_dated_and_sourced() -> None:
    assert DEFAULT_PRICES.as_of == "2025-11" and DEFAULT_PRICES.region == "us-east-1"
    assert DEFAULT_PRICES.dynamodb_write_unit_per_million == Decimal("0.625")
    assert DEFAULT_PRICES.dynamodb_read_unit_per_million == Decimal("0.125")
    assert DEFAULT_PRICES.kms_requests_per_10k == Decimal("0.03")
    assert DEFAULT_PRICES.sqs_fifo_per_million == Decimal("0.50")
    assert all(url.startswith("https://aws.amazon.com/") for url in DEFAULT_PRICES.source_urls)


@pytest.mark.parametrize("bad", [0.03, 3, "0.03"])
def test_price_table_rejects_prices_that_are_not_decimals(bad: object) -> None:
    with pytest.raises(TypeError, match="never float"):
        PriceTable(kms_requests_per_10k=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")])
def test_price_table_rejects_negative_or_non_finite_prices(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        PriceTable(s3_get_per_1000=bad)


def test_known_counts_give_the_exact_cost() -> None:
    snapshot = MeterSnapshot(
        calls=_calls(kms__Decrypt=10_000, kms__GenerateDataKey=5_000, dynamodb__PutItem=1,
                     sqs__SendMessageBatch=1_000_000, s3__PutObject=1_000, s3__GetObject=1_000,
                     s3__ListObjectsV2=1_000, s3__DeleteObject=7, lambda__Invoke=1_000_000,
                     lambda__CreateFunction=3, sts__AssumeRole=12, iam__CreateRole=2),
        write_units=Decimal(1_000_000),
        read_units=Decimal("2000000.5"),
    )
    cost = cost_of(snapshot)

    assert dict(cost.by_service) == {
        "dynamodb": Decimal("0.625") + Decimal("0.2500000625"),
        "iam": Decimal(0),
        "kms": Decimal("0.045"),
        "lambda": Decimal("0.20"),
        "s3": Decimal("0.0104"),
        "sqs": Decimal("0.40"),
        "sts": Decimal(0),
    }
    assert cost.total == Decimal("1.5304000625")
    assert cost.unpriced == frozenset()
    assert all(isinstance(value, Decimal) for value in cost.by_service.values())


def test_fifo_queues_use_the_fifo_price() -> None:
    snapshot = MeterSnapshot(calls=_calls(sqs__SendMessage=2_000_000))
    assert cost_of(snapshot).total == Decimal("0.80")
    assert cost_of(snapshot, fifo_queues=True).total == Decimal("1.00")


def test_a_custom_price_table_is_used() -> None:
    snapshot = MeterSnapshot(calls=_calls(kms__Encrypt=20_000))
    prices = PriceTable(kms_requests_per_10k=Decimal("0.05"))
    assert cost_of(snapshot, prices).total == Decimal("0.10")


def test_services_without_a_price_are_reported_not_guessed() -> None:
    cost = cost_of(MeterSnapshot(calls=_calls(kinesis__PutRecord=5, kms__Sign=10_000)))
    assert cost.unpriced == frozenset({"kinesis"})
    assert cost.total == Decimal("0.03")


def test_empty_snapshot_costs_nothing() -> None:
    cost = cost_of(MeterSnapshot())
    assert (cost.total, dict(cost.by_service)) == (Decimal(0), {})


@pytest.mark.parametrize(
    ("operation", "kind"),
    [("PutObject", "put"), ("CopyObject", "put"), ("ListObjectsV2", "put"),
     ("CreateMultipartUpload", "put"), ("UploadPart", "put"), ("CompleteMultipartUpload", "put"),
     ("GetObject", "get"), ("HeadObject", "get"), ("SelectObjectContent", "get"),
     ("DeleteObject", "free"), ("DeleteObjects", "free"), ("AbortMultipartUpload", "free")],
)
def test_s3_request_classes(operation: str, kind: str) -> None:
    assert s3_request_class(operation) == kind


def test_metered_moto_calls_are_priced(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    meter.attach_session(env.session)
    kms = env.client("kms")
    dynamodb = env.client("dynamodb")
    dynamodb.create_table(
        TableName="postings", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "EndToEndId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "EndToEndId", "AttributeType": "S"}],
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    start = meter.snapshot()
    for n in range(4):
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"4111111111111111")["CiphertextBlob"]
        dynamodb.put_item(TableName="postings",
                          Item={"EndToEndId": {"S": f"E2E-{n}"}, "Token": {"B": blob}})
    cost = cost_of(meter.snapshot() - start)

    assert cost.by_service["kms"] == 4 * Decimal("0.03") / 10_000
    assert cost.by_service["dynamodb"] == 4 * Decimal("0.625") / 1_000_000
    assert per_10k(cost.total, 4) == Decimal("0.03") + Decimal("0.00625")


def test_per_10k_is_exact() -> None:
    assert per_10k(Decimal("0.0042"), 2_000) == Decimal("0.021")
    assert per_10k(Decimal("1"), 3) == Decimal(10_000) / 3


@pytest.mark.parametrize("operations", [0, -5])
def test_per_10k_of_no_operations_is_an_error(operations: int) -> None:
    with pytest.raises(ValueError, match="at least one operation"):
        per_10k(Decimal("1.00"), operations)


@pytest.mark.parametrize(
    ("cost", "operations"), [(0.5, 10), (Decimal("1"), 2.5), (Decimal("1"), True)]
)
def test_per_10k_rejects_floats_and_non_integers(cost: object, operations: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        per_10k(cost, operations)  # type: ignore[arg-type]
