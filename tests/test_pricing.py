"""Tests for fasterpay.pricing: exact Decimal costs from metered calls, by component and region."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal, localcontext
from typing import Any

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter, CallKey, MeterSnapshot
from fasterpay.pricing import (
    BYTES_PER_GB,
    COMPONENTS,
    DEFAULT_PRICES,
    PRICE_PROVENANCE,
    PRICE_TABLES,
    PRICES_EU_WEST_2,
    PRICES_US_EAST_1,
    PriceTable,
    cost_breakdown,
    cost_of,
    fixed_monthly_costs,
    per_10k,
    s3_request_class,
)

REGION = "eu-west-2"


def _calls(**counts: int) -> dict[CallKey, int]:
    """``dynamodb__PutItem=3`` -> {CallKey("dynamodb", "PutItem", REGION): 3}."""
    return {CallKey(*name.split("__"), REGION): n for name, n in counts.items()}


_PRICE_FIELDS = [f.name for f in fields(PriceTable) if f.name not in ("as_of", "region", "source_urls")]


def test_price_table_is_dated_and_sourced() -> None:
    assert DEFAULT_PRICES is PRICES_US_EAST_1 and PRICE_TABLES["us-east-1"] is PRICES_US_EAST_1
    assert DEFAULT_PRICES.as_of == "2026-11-30" and DEFAULT_PRICES.region == "us-east-1"
    assert DEFAULT_PRICES.dynamodb_write_unit_per_million == Decimal("0.625")
    assert DEFAULT_PRICES.dynamodb_read_unit_per_million == Decimal("0.125")
    assert DEFAULT_PRICES.kms_requests_per_10k == Decimal("0.03")
    assert DEFAULT_PRICES.sqs_fifo_per_million == Decimal("0.50")
    assert all(url.startswith("https://aws.amazon.com/") for url in DEFAULT_PRICES.source_urls)


def test_london_table_is_dated_and_sourced() -> None:
    assert PRICE_TABLES["eu-west-2"] is PRICES_EU_WEST_2
    assert (PRICES_EU_WEST_2.as_of, PRICES_EU_WEST_2.region) == ("2026-11-30", "eu-west-2")
    assert all(url.startswith("https://") for url in PRICES_EU_WEST_2.source_urls)
    assert PRICES_EU_WEST_2.logs_ingestion_per_gb == Decimal("0.5985")
    assert PRICES_EU_WEST_2.s3_put_per_1000 == Decimal("0.0053")


@pytest.mark.parametrize("region", sorted(PRICE_TABLES))
def test_every_price_says_how_far_it_was_checked(region: str) -> None:
    notes = PRICE_PROVENANCE[region]
    assert sorted(notes) == sorted(_PRICE_FIELDS)
    assert all(note in ("aws page", "secondary") or note.startswith("substitute: ")
               for note in notes.values())


def test_london_figures_borrowed_from_another_region_are_labelled() -> None:
    notes = PRICE_PROVENANCE["eu-west-2"]
    borrowed = {name for name, note in notes.items() if note.startswith("substitute")}
    assert borrowed == {"dynamodb_write_unit_per_million", "dynamodb_read_unit_per_million",
                        "kms_asymmetric_requests_per_10k", "kinesis_put_units_per_million", "kinesis_shard_hour",
                        "cloudwatch_custom_metric_month"}
    for name in borrowed:
        assert getattr(PRICES_EU_WEST_2, name) == getattr(PRICES_US_EAST_1, name)


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
    cost = cost_of(MeterSnapshot(calls=_calls(sns__Publish=5, kms__Encrypt=10_000)))
    assert cost.unpriced == frozenset({"sns"})
    assert cost.total == Decimal("0.03")


def test_kinesis_is_priced_by_put_payload_unit_and_its_shards_are_a_fixed_cost() -> None:
    snapshot = MeterSnapshot(calls=_calls(kinesis__PutRecords=2), kinesis_put_units=2_000_000)
    cost = cost_of(snapshot, PRICES_EU_WEST_2)
    assert cost.by_component["kinesis"] == cost.by_service["kinesis"] == Decimal("0.028")
    assert cost.unpriced == frozenset()
    fixed = fixed_monthly_costs(PRICES_US_EAST_1, kms_keys=2, custom_metrics=100, kinesis_shards=4)
    assert fixed == {"kms key-months": Decimal(2), "custom metrics": Decimal("30"),
                     "kinesis shard-hours": Decimal("43.8")}  # 4 shards x 730 h x $0.015
    with pytest.raises(ValueError, match="must not be negative"):
        fixed_monthly_costs(kinesis_shards=-1)
    with pytest.raises(TypeError, match="whole number"):
        fixed_monthly_costs(custom_metrics=1.5)  # type: ignore[arg-type]


def test_metered_log_calls_without_their_bytes_are_unpriced() -> None:
    snapshot = MeterSnapshot(calls=_calls(logs__PutLogEvents=3))
    assert cost_of(snapshot).unpriced == frozenset({"logs"})
    priced = cost_breakdown(snapshot, log_bytes=BYTES_PER_GB)
    assert priced.unpriced == frozenset() and priced.by_service == {"logs": Decimal("0.50")}


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


# Cost by component, in both regions.
_EVERYTHING = MeterSnapshot(
    calls=_calls(dynamodb__PutItem=1, kms__Decrypt=10_000, kms__Sign=10_000,
                 sqs__SendMessage=500_000, s3__PutObject=1_000, s3__GetObject=10_000),
    write_units=Decimal(1_000_000),
    read_units=Decimal(2_000_000),
    sqs_requests=1_000_000,
    kinesis_put_units=1_000_000,
)
_INPUTS: dict[str, Any] = {
    "lambda_invocations": 1_000_000, "lambda_gb_seconds": Decimal(1_000_000), "log_bytes": BYTES_PER_GB,
}


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        (PRICES_US_EAST_1, {
            "dynamodb writes": "0.625", "dynamodb reads": "0.25", "kms": "0.18", "sqs": "0.40",
            "lambda requests": "0.20", "lambda duration": "16.6667", "logs": "0.50", "s3": "0.009",
            "kinesis": "0.014",
        }),
        (PRICES_EU_WEST_2, {
            "dynamodb writes": "0.625", "dynamodb reads": "0.25", "kms": "0.18", "sqs": "0.40",
            "lambda requests": "0.20", "lambda duration": "16.6667", "logs": "0.5985", "s3": "0.0095",
            "kinesis": "0.014",
        }),
    ],
    ids=["us-east-1", "eu-west-2"],
)
def test_each_component_has_its_exact_cost(prices: PriceTable, expected: dict[str, str]) -> None:
    cost = cost_breakdown(_EVERYTHING, prices=prices, **_INPUTS)

    assert tuple(cost.by_component) == COMPONENTS
    assert dict(cost.by_component) == {name: Decimal(value) for name, value in expected.items()}
    assert cost.total == sum((Decimal(value) for value in expected.values()), Decimal(0))
    assert cost.total == sum(cost.by_service.values(), Decimal(0))
    assert cost.by_service["lambda"] == Decimal("16.8667")
    assert cost.prices is prices and cost.unpriced == frozenset()


@pytest.mark.parametrize(("prices", "arm64"), [(PRICES_US_EAST_1, "13.3334"), (PRICES_EU_WEST_2, "13.3334")])
def test_arm64_duration_has_its_own_rate(prices: PriceTable, arm64: str) -> None:
    cost = cost_breakdown(MeterSnapshot(), prices=prices, lambda_gb_seconds=Decimal(1_000_000),
                          lambda_architecture="arm64")
    assert cost.by_component["lambda duration"] == Decimal(arm64)


def test_an_ecc_signature_costs_five_symmetric_requests() -> None:
    sign = cost_of(MeterSnapshot(calls=_calls(kms__Sign=10_000, kms__GetPublicKey=10_000)))
    encrypt = cost_of(MeterSnapshot(calls=_calls(kms__Encrypt=10_000)))
    assert sign.by_component["kms"] == 2 * Decimal("0.15") == 10 * encrypt.by_component["kms"]
    rsa_2048 = PriceTable(kms_asymmetric_requests_per_10k=Decimal("0.03"))
    assert cost_of(MeterSnapshot(calls=_calls(kms__Sign=10_000)), rsa_2048).total == Decimal("0.03")


def test_sqs_is_priced_per_64_kb_chunk_not_per_call() -> None:
    # Two 100 KB SendMessage calls: 2 chunks each, as the meter records them.
    chunked = MeterSnapshot(calls=_calls(sqs__SendMessage=2), sqs_requests=4)
    assert cost_of(chunked).by_service["sqs"] == 4 * Decimal("0.40") / 1_000_000
    assert cost_of(chunked, fifo_queues=True).total == 4 * Decimal("0.50") / 1_000_000
    # A hand-made snapshot without the chunk count: one request per call, as before.
    assert cost_of(MeterSnapshot(calls=_calls(sqs__SendMessage=2))).total == 2 * Decimal("0.40") / 1_000_000


def test_local_lambda_invocations_add_to_metered_invokes() -> None:
    snapshot = MeterSnapshot(calls=_calls(lambda__Invoke=400_000, lambda__CreateFunction=2))
    cost = cost_breakdown(snapshot, lambda_invocations=600_000)
    assert cost.by_component["lambda requests"] == Decimal("0.20")


def test_extra_costs_are_components_and_in_the_total() -> None:
    key_months = {"kms key-months": Decimal("2") / 30}
    cost = cost_breakdown(MeterSnapshot(calls=_calls(kms__Encrypt=10_000)), extra=key_months)
    assert cost.by_component["kms key-months"] == Decimal(2) / 30
    assert cost.by_service["kms key-months"] == Decimal(2) / 30
    assert cost.total == Decimal("0.03") + Decimal(2) / 30


def test_nothing_costs_nothing_in_every_component() -> None:
    cost = cost_breakdown(MeterSnapshot())
    assert dict(cost.by_component) == dict.fromkeys(COMPONENTS, Decimal(0))
    assert (cost.total, dict(cost.by_service)) == (Decimal(0), {})


def test_cost_of_is_the_breakdown_without_unmetered_inputs() -> None:
    assert cost_of(_EVERYTHING, PRICES_EU_WEST_2) == cost_breakdown(_EVERYTHING, prices=PRICES_EU_WEST_2)


def test_the_arithmetic_is_exact() -> None:
    cost = cost_breakdown(MeterSnapshot(), prices=PRICES_EU_WEST_2, log_bytes=1,
                          lambda_gb_seconds=Decimal(1) / 3)
    assert cost.by_component["logs"] * BYTES_PER_GB == Decimal("0.5985")
    with localcontext() as wide:
        wide.prec = 60
        exact = (Decimal(1) / 3).quantize(Decimal("1E-28")) * Decimal("0.0000166667")
    assert cost.by_component["lambda duration"] == exact  # 39 digits, none rounded away


@pytest.mark.parametrize(
    "inputs",
    [{"lambda_gb_seconds": 0.5}, {"log_bytes": 1024.0}, {"lambda_invocations": 10.0},
     {"extra": {"kms key-months": 0.1}}, {"extra": {"kms key-months": 1}}, {"log_bytes": True}],
)
def test_floats_are_refused(inputs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        cost_breakdown(MeterSnapshot(), **inputs)


@pytest.mark.parametrize(
    "inputs",
    [{"lambda_gb_seconds": Decimal("-1")}, {"log_bytes": -1}, {"lambda_invocations": -1},
     {"extra": {"refund": Decimal("-0.01")}}, {"lambda_gb_seconds": Decimal("NaN")},
     {"lambda_architecture": "graviton"}, {"extra": {"kms": Decimal("1")}},
     {"extra": {"lambda duration": Decimal("1")}}],
)
def test_impossible_inputs_are_refused(inputs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cost_breakdown(MeterSnapshot(), **inputs)


def test_metered_sqs_payloads_are_priced_per_chunk(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    meter.attach_session(env.session)
    sqs = env.client("sqs")
    queue = sqs.create_queue(QueueName="payments")["QueueUrl"]
    start = meter.snapshot()
    sqs.send_message(QueueUrl=queue, MessageBody="x" * 100_000)  # two 64 KB chunks
    calls = meter.snapshot() - start

    assert (calls.count(service="sqs"), calls.sqs_requests) == (1, 2)
    assert cost_of(calls, PRICES_EU_WEST_2).by_service == {"sqs": 2 * Decimal("0.40") / 1_000_000}


# -- Amazon Bedrock tokens -----------------------------------------------------------------------------
def test_bedrock_token_prices_are_dated_sourced_and_labelled() -> None:
    from fasterpay.pricing import BEDROCK_TOKEN_PRICES

    micro = BEDROCK_TOKEN_PRICES[("amazon.nova-micro-v1:0", "us-east-1")]
    assert (micro.input_per_million, micro.output_per_million) == (Decimal("0.035"), Decimal("0.14"))
    assert micro.as_of == "2026-12-01" and micro.provenance == "secondary"
    london = BEDROCK_TOKEN_PRICES[("amazon.nova-micro-v1:0", "eu-west-2")]
    assert london.provenance.startswith("substitute: ")
    assert all(url.startswith("https://") for url in micro.source_urls)


def test_bedrock_usage_is_priced_exactly() -> None:
    from fasterpay.pricing import bedrock_usage_cost

    usage = {"inputTokens": 1_000_000, "outputTokens": 1_000_000}
    assert bedrock_usage_cost(usage, model_id="amazon.nova-micro-v1:0") == Decimal("0.175")
    assert bedrock_usage_cost({"inputTokens": 0, "outputTokens": 0}, model_id="amazon.nova-micro-v1:0",
                              guardrail_text_units=1000) == Decimal("0.25")
    assert bedrock_usage_cost({}, model_id="amazon.nova-micro-v1:0", guardrail_text_units=1000,
                              guardrail_sensitive_info=False) == Decimal("0.15")
    with pytest.raises(KeyError, match="no token price"):
        bedrock_usage_cost(usage, model_id="anthropic.unknown", region="eu-west-2")
    with pytest.raises(TypeError):
        bedrock_usage_cost({"inputTokens": 1.5}, model_id="amazon.nova-micro-v1:0")  # type: ignore[dict-item]


def test_bedrock_token_price_refuses_floats() -> None:
    from fasterpay.pricing import BedrockTokenPrice

    with pytest.raises(TypeError, match="never float"):
        BedrockTokenPrice("m", "r", "2026-12-01", 0.035, Decimal("0.14"), (), "secondary")  # type: ignore[arg-type]
