"""Cost per payment by pattern and component: the split adds up, the pricing is exact, bad input is refused;
the opt-in Price List check parses AWS's answer and reports drift (live only with an account)."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber

from fasterpay.finops.price_check import LOOKUPS, Drift, live_price, price_drift
from fasterpay.finops.costs import (
    DEFAULT_RULES,
    PATTERNS,
    AllocationRule,
    PatternUsage,
    UnknownPatternError,
    spread_fixed,
    split_by_pattern,
    unit_cost,
)
from fasterpay.metering import CallKey, MeterSnapshot
from fasterpay.pricing import PRICES_EU_WEST_2, PRICES_US_EAST_1, cost_breakdown

R = "eu-west-2"


def _run() -> MeterSnapshot:
    """A run as the FinOps bench meters it: every pattern's tables and services."""
    return MeterSnapshot(
        calls={CallKey("dynamodb", "TransactWriteItems", R): 40, CallKey("dynamodb", "UpdateItem", R): 30,
               CallKey("kms", "GenerateMac", R): 4, CallKey("kms", "Sign", R): 6, CallKey("s3", "PutObject", R): 6,
               CallKey("sqs", "SendMessageBatch", R): 12, CallKey("sqs", "ReceiveMessage", R): 15,
               CallKey("kinesis", "PutRecords", R): 3, CallKey("sts", "GetCallerIdentity", R): 1},
        write_units=Decimal(900), read_units=Decimal("75.5"), sqs_requests=27, kinesis_put_units=120,
        write_units_by_table={"fp-s00000-vault": Decimal(100), "fp-s00000-payments": Decimal(500),
                              "fp-s00000-ledger": Decimal(250), "fp-s00000-settlement": Decimal(50)},
        read_units_by_table={"fp-s00000-payments": Decimal("50.5"), "fp-s00000-ledger": Decimal(25)},
    )


def _sum(parts: dict[str, MeterSnapshot]) -> MeterSnapshot:
    total = MeterSnapshot()
    for part in parts.values():
        total = total + part
    return total


def test_the_split_by_pattern_adds_up_to_the_whole_run() -> None:
    run = _run()
    parts = split_by_pattern(run)
    assert set(parts) == {"vault", "ledger", "pipeline", "audit", "agents"}
    whole = _sum(parts)
    assert whole.calls == run.calls and whole.write_units == run.write_units and whole.read_units == run.read_units
    assert whole.sqs_requests == run.sqs_requests and whole.kinesis_put_units == run.kinesis_put_units
    assert parts["vault"].write_units == 100 and parts["vault"].count(service="kms") == 4
    assert parts["audit"].count(service="kms", operation="Sign") == 6 and parts["audit"].count(service="s3") == 6
    assert parts["ledger"].write_units == 300  # ledger and settlement tables
    assert parts["agents"].kinesis_put_units == 120 and parts["pipeline"].sqs_requests == 27


def test_priced_by_pattern_the_parts_cost_exactly_what_the_whole_run_costs() -> None:
    run = _run()
    usage = {name: PatternUsage(part) for name, part in split_by_pattern(run).items()}
    for prices in (PRICES_EU_WEST_2, PRICES_US_EAST_1):
        cost = unit_cost(usage, payments=10, prices=prices)
        whole = cost_breakdown(run, prices=prices)
        assert cost.total == whole.total * 1000  # per 10k of 10 payments, exact
        assert sum(cost.by_pattern.values()) == cost.total == sum(cost.by_component.values())
        assert sum(cost.cells.values()) == cost.total
        assert cost.region == prices.region and cost.prices_as_of == prices.as_of
    assert cost.cells[("audit", "kms")] == Decimal(6) * Decimal("0.15") / 10_000 * 1000  # asymmetric Sign rate


def test_unmetered_inputs_and_extra_costs_land_in_their_pattern() -> None:
    usage = {"pipeline": PatternUsage(MeterSnapshot(), lambda_invocations=1_000, lambda_gb_seconds=Decimal(50)),
             "observability": PatternUsage(MeterSnapshot(), log_bytes=2**30),
             "agents": PatternUsage(MeterSnapshot(), extra={"bedrock": Decimal("0.25")})}
    cost = unit_cost(usage, payments=10_000, prices=PRICES_EU_WEST_2, lambda_architecture="arm64")
    assert cost.by_component["logs"] == Decimal("0.5985") == cost.by_pattern["observability"]
    assert cost.by_component["bedrock"] == Decimal("0.25") == cost.by_pattern["agents"]
    assert cost.by_component["lambda duration"] == Decimal(50) * PRICES_EU_WEST_2.lambda_arm64_per_gb_second


def test_fixed_monthly_costs_spread_over_the_months_payments() -> None:
    assert spread_fixed({"kinesis shard-hours": Decimal("21.9")}, payments_per_month=21_900_000) == {
        "kinesis shard-hours": Decimal("0.01")}
    with pytest.raises(ValueError, match="positive whole number"):
        spread_fixed({"kms key-months": Decimal(1)}, payments_per_month=0)


def test_unknown_patterns_and_ambiguous_rules_are_refused() -> None:
    with pytest.raises(UnknownPatternError, match="not one of"):
        AllocationRule("billing", service="sqs")
    with pytest.raises(ValueError, match="either table_suffixes"):
        AllocationRule("vault", service="kms", table_suffixes=("-vault",))
    with pytest.raises(UnknownPatternError, match="not among"):
        unit_cost({"treasury": PatternUsage(MeterSnapshot())}, payments=1)
    with pytest.raises(ValueError, match="positive whole number"):
        unit_cost({"vault": PatternUsage(MeterSnapshot())}, payments=0)
    with pytest.raises(TypeError, match="never float"):
        unit_cost({"agents": PatternUsage(MeterSnapshot(), extra={"bedrock": 0.1})}, payments=1)  # type: ignore[dict-item]


def test_the_first_matching_rule_wins_and_every_default_rule_names_a_pattern() -> None:
    snapshot = MeterSnapshot(calls={CallKey("kms", "Sign", R): 1, CallKey("kms", "Decrypt", R): 1})
    parts = split_by_pattern(snapshot)
    assert parts["audit"].by_operation() == {"kms:Sign": 1} and parts["vault"].by_operation() == {"kms:Decrypt": 1}
    assert {rule.pattern for rule in DEFAULT_RULES} <= set(PATTERNS)


# -- the Price List API check ------------------------------------------------------------------------------
def _product(usd: str) -> str:
    return json.dumps({"product": {"attributes": {}}, "terms": {"OnDemand": {"X.Y": {"priceDimensions": {
        "X.Y.Z": {"beginRange": "0", "endRange": "Inf", "unit": "Requests", "pricePerUnit": {"USD": usd}}}}}}})


@pytest.fixture
def pricing(env: Any) -> Any:
    return env.client("pricing", region="us-east-1")


def test_the_check_reads_the_first_tier_and_converts_it_to_the_tables_unit(pricing: Any) -> None:
    with Stubber(pricing) as stub:
        stub.add_response("get_products", {"PriceList": [_product("0.0000006250000")], "FormatVersion": "aws_v1"},
                          {"ServiceCode": "AmazonDynamoDB", "FormatVersion": "aws_v1", "MaxResults": 100,
                           "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-2"},
                                       {"Type": "TERM_MATCH", "Field": "usagetype", "Value": "EUW2-WriteRequestUnits"}]})
        price, usage_type = live_price(pricing, "dynamodb_write_unit_per_million", "eu-west-2")
    assert price == Decimal("0.625") and usage_type == "EUW2-WriteRequestUnits"


def test_drift_and_unmatched_usage_types_are_reported_never_guessed(pricing: Any) -> None:
    answers = {"kms_requests_per_10k": _product("0.000004")}  # $0.04 per 10k: drift from $0.03
    with Stubber(pricing) as stub:
        for name, lookup in LOOKUPS.items():
            page = [answers[name]] if name in answers else (
                [] if name == "kinesis_shard_hour" else [_product(str(getattr(PRICES_US_EAST_1, name) / lookup.per))])
            stub.add_response("get_products", {"PriceList": page, "FormatVersion": "aws_v1"})
        drifts = price_drift(pricing, PRICES_US_EAST_1)
    assert [d.field for d in drifts] == ["kms_requests_per_10k", "kinesis_shard_hour"]
    kms, shard = drifts
    assert kms.live == Decimal("0.04") and kms.table == Decimal("0.03")
    assert shard.live is None and "unmatched" in str(shard)
    assert isinstance(kms, Drift) and "Price List API 0.04" in str(kms)


def test_an_unknown_region_is_refused(pricing: Any) -> None:
    with pytest.raises(ValueError, match="REGION_PREFIX"):
        live_price(pricing, "kms_requests_per_10k", "ap-southeast-9")


@pytest.mark.skipif(os.environ.get("FASTERPAY_BACKEND") != "aws",
                    reason="needs an AWS account: moto does not emulate the Price List API "
                           "(run with FASTERPAY_BACKEND=aws FASTERPAY_ALLOW_REAL_AWS=1 to check for drift)")
def test_the_price_tables_match_the_price_list_api_today() -> None:  # pragma: no cover - needs an account
    import boto3

    client = boto3.client("pricing", region_name="us-east-1")
    for table in (PRICES_US_EAST_1, PRICES_EU_WEST_2):
        drifts = [d for d in price_drift(client, table, tolerance=Decimal("0.001")) if d.live is not None]
        assert not drifts, "\n".join(map(str, drifts))


@pytest.mark.parametrize("module", ["costs", "guards", "price_check", "capacity", "autoscaling"])
def test_the_finops_modules_examples_run(module: str) -> None:
    import doctest
    import importlib

    imported = importlib.import_module(f"fasterpay.finops.{module}")
    result = doctest.testmod(imported, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or module == "price_check"
