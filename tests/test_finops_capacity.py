"""The capacity model: which AWS quota binds first, at which rate, and what gets past it."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

import pytest

from fasterpay.finops.capacity import (
    PROVENANCES,
    QUOTAS,
    SCOPES,
    SERVICES,
    CallProfile,
    CapacityModelError,
    capacity_plan,
    capacity_table,
    first_binding,
    markdown_table,
    quotas_for,
)
from fasterpay.metering import CallKey, MeterSnapshot

# 3 KMS requests, 0.1 Lambda seconds, 1 write unit a payment: at 10,000/s in eu-west-2 KMS is at 150 %,
# Lambda, API Gateway at 100 %.
UNCACHED = CallProfile(kms_requests_per_payment=3, lambda_seconds_per_payment=0.1, write_units_per_payment=1)


def checks_by_key(profile: CallProfile, rate: float, region: str = "eu-west-2") -> dict[str, object]:
    return {check.quota.key: check for check in capacity_plan(profile, rate, region=region)}


def test_utilisation_is_demand_over_the_limit_and_binds_above_the_headroom() -> None:
    checks = checks_by_key(UNCACHED, 1_000)
    kms = checks["kms-symmetric"]
    assert kms.demand == 3_000 and kms.limit == 20_000
    assert kms.utilisation == pytest.approx(0.15)
    assert not kms.binds and not kms.throttled
    assert "binds near 5,333 payments/s" in kms.plan  # 20,000 * 0.8 / 3
    lam = checks_by_key(UNCACHED, 9_000)["lambda-concurrency"]
    assert lam.utilisation == pytest.approx(0.9) and lam.binds and not lam.throttled


def test_exactly_at_the_headroom_does_not_bind_and_needs_one_cell() -> None:
    # 8,000 requests/s is exactly 80 % of API Gateway's 10,000: float arithmetic would give 1.0000000000000002
    api = checks_by_key(CallProfile(), 8_000)["apigateway-throttle"]
    assert not api.binds and api.needed == 1
    over = checks_by_key(CallProfile(), 8_001)["apigateway-throttle"]
    assert over.binds and over.needed == 2
    # 10,000/s * 0.07 s is 700.0000000000001 in floats: 70 % of Lambda's 1,000, exactly the headroom
    lam = checks_by_key(CallProfile(lambda_seconds_per_payment=0.07), 10_000)["lambda-concurrency"]
    assert lam.demand == pytest.approx(700)
    lam = capacity_plan(CallProfile(lambda_seconds_per_payment=0.07), 10_000, headroom=0.7)
    lam = next(c for c in lam if c.quota.key == "lambda-concurrency")
    assert not lam.binds and lam.needed == 1


def test_kms_binds_first_at_10k_without_caching_and_not_with_it() -> None:
    top = first_binding(UNCACHED, 10_000, region="eu-west-2")
    assert top is not None and top.quota.key == "kms-symmetric"
    assert top.utilisation == pytest.approx(1.5) and top.throttled
    assert top.needed == 2  # ceil(30,000 / 16,000)
    assert "from 30,000/s to 10/s" in top.plan  # 1,000 environments * 3 keys / 300 s
    cached = replace(UNCACHED, kms_cache_seconds=300)
    checks = checks_by_key(cached, 10_000)
    assert checks["kms-symmetric"].demand == pytest.approx(10)
    assert not checks["kms-symmetric"].binds
    assert first_binding(cached, 10_000, region="eu-west-2").quota.service != "kms"
    # us-east-1's higher KMS quota (100,000/s) does not bind at 10,000/s even uncached
    assert first_binding(UNCACHED, 10_000, region="us-east-1").quota.service != "kms"


def test_the_kms_cache_never_costs_more_than_no_cache() -> None:
    # 10 payments/s on long handlers: more environments than payments per cache period
    profile = CallProfile(kms_requests_per_payment=1, lambda_seconds_per_payment=60, kms_cache_seconds=1)
    assert checks_by_key(profile, 10)["kms-symmetric"].demand == 10


def test_a_hot_account_binds_the_partition_at_a_low_rate_and_sharding_count_is_right() -> None:
    hot = CallProfile(write_units_per_payment=4, hottest_key_share=0.5)
    top = first_binding(hot, 500)
    assert top is not None and top.quota.key == "dynamodb-partition-write"
    assert top.demand == 1_000 and top.utilisation == 1.0
    assert top.needed == 2  # ceil(1,000 / 800)
    assert "2 balance items" in top.plan
    at_10k = checks_by_key(hot, 10_000)["dynamodb-partition-write"]
    assert at_10k.needed == math.ceil(20_000 / 800) == 25
    assert first_binding(replace(hot, hottest_key_share=0.0), 500) is None


def test_lambda_concurrency_is_rate_times_duration() -> None:
    lam = checks_by_key(CallProfile(lambda_seconds_per_payment=0.25), 2_000)["lambda-concurrency"]
    assert lam.demand == 500 and lam.utilisation == 0.5
    at_100k = checks_by_key(CallProfile(lambda_seconds_per_payment=0.25), 100_000)["lambda-concurrency"]
    assert at_100k.demand == 25_000 and at_100k.needed == 32  # ceil(25,000 / 800)
    assert "25,000 concurrent executions" not in at_100k.plan and "31,250" in at_100k.plan  # 25,000 / 0.8
    ramp = checks_by_key(CallProfile(lambda_seconds_per_payment=0.25, busiest_function_share=0.5),
                         100_000)["lambda-scaling"]
    assert ramp.demand == 12_500 and ramp.needed == 16 and "160 s" in ramp.plan


def test_api_gateway_at_100k_needs_at_least_ten_cells_or_an_increase() -> None:
    api = checks_by_key(CallProfile(), 100_000)["apigateway-throttle"]
    assert api.binds and api.needed >= 10 and api.needed == 13
    assert "13 cells" in api.plan and "125,000 requests/s" in api.plan


def test_fifo_queues_message_groups_and_batching() -> None:
    fifo = CallProfile(sqs_messages_per_payment=2, sqs_queue="fifo", message_groups=4,
                       lambda_seconds_per_payment=0.5)
    checks = checks_by_key(fifo, 100)
    assert checks["sqs-fifo-queue"].demand == 200 and not checks["sqs-fifo-queue"].binds
    # 100/s * 0.5 s = 50 messages in flight over 4 groups: 12.5 per group, one allowed
    group = checks["sqs-message-group"]
    assert group.demand == 12.5 and group.binds and group.needed == 63  # ceil(50 / 0.8)
    batched = checks_by_key(replace(fifo, sqs_batch_size=10), 1_000)["sqs-fifo-queue"]
    assert batched.demand == 200
    high = checks_by_key(replace(fifo, sqs_queue="fifo-high-throughput"), 10_000, region="us-east-1")
    assert "sqs-fifo-queue" not in high and high["sqs-fifo-high-throughput"].limit == 70_000
    assert checks_by_key(replace(fifo, sqs_queue="fifo-high-throughput"), 10_000)[
        "sqs-fifo-high-throughput"].limit == 4_500
    assert "sqs-fifo-queue" not in checks_by_key(replace(fifo, sqs_queue="standard", message_groups=0), 100)


def test_plan_is_sorted_by_utilisation_and_skips_untouched_quotas() -> None:
    plan = capacity_plan(UNCACHED, 10_000)
    assert [c.utilisation for c in plan] == sorted((c.utilisation for c in plan), reverse=True)
    keys = {c.quota.key for c in plan}
    assert "kinesis-shard-records" not in keys and "dynamodb-account-write" not in keys
    provisioned = checks_by_key(replace(UNCACHED, dynamodb_mode="provisioned"), 10_000)
    assert provisioned["dynamodb-account-write"].limit == 80_000


def test_capacity_table_and_markdown() -> None:
    rows = capacity_table(UNCACHED)
    assert [row.rate_per_s for row in rows] == [100, 1_000, 10_000, 100_000]
    assert rows[0].binding is None and rows[2].binding.quota.key == "kms-symmetric"
    text = markdown_table(rows)
    assert text.count("\n") == 5 and "| 10,000 | kms Cryptographic operations (symmetric)" in text


@pytest.mark.parametrize(("call", "message"), [
    (lambda: capacity_plan(UNCACHED, 0), "above zero"),
    (lambda: capacity_plan(UNCACHED, -5), "above zero"),
    (lambda: capacity_plan(UNCACHED, float("nan")), "number of payments"),
    (lambda: capacity_plan(UNCACHED, True), "number of payments"),
    (lambda: capacity_plan(UNCACHED, 100, region="mars-1"), "use one of"),
    (lambda: capacity_plan(UNCACHED, 100, headroom=1.5), "headroom"),
    (lambda: capacity_table(UNCACHED, ()), "rates is empty"),
    (lambda: CallProfile(kms_requests_per_payment=-1), "zero or more"),
    (lambda: CallProfile(calls_per_payment={("kms", "Decrypt"): -2}), "zero or more"),
    (lambda: CallProfile(hottest_key_share=1.5), "share between 0 and 1"),
    (lambda: CallProfile(sqs_queue="fifo"), "message_groups of at least 1"),
    (lambda: CallProfile(sqs_queue="kafka"), "sqs_queue must be one of"),
    (lambda: CallProfile(sqs_batch_size=11), "from 1 to 10"),
    (lambda: quotas_for("eu-west-9"), "add the region"),
])
def test_bad_input_raises_a_value_error_that_says_what_to_do(call, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert isinstance(info.value, CapacityModelError)


def test_every_quota_is_sourced_dated_and_scoped() -> None:
    assert set(QUOTAS) == {"eu-west-2", "us-east-1"}
    for region, quotas in QUOTAS.items():
        assert len(quotas) >= 14
        for key, quota in quotas.items():
            assert quota.key == key and quota.region == region
            assert quota.source_url.startswith("https://docs.aws.amazon.com/")
            assert quota.checked == "2026-12-02"
            assert quota.provenance in PROVENANCES
            assert quota.service in SERVICES and quota.scope in SCOPES
            assert quota.limit > 0 and quota.unit
    # the region-specific figures differ, the rest do not
    eu, us = QUOTAS["eu-west-2"], QUOTAS["us-east-1"]
    assert (eu["kms-symmetric"].limit, us["kms-symmetric"].limit) == (20_000, 100_000)
    assert (eu["sqs-fifo-high-throughput"].limit, us["sqs-fifo-high-throughput"].limit) == (4_500, 70_000)
    assert eu["dynamodb-partition-write"].limit == us["dynamodb-partition-write"].limit == 1_000
    assert eu["dynamodb-partition-read"].limit == 3_000 and eu["dynamodb-table-write"].limit == 40_000
    assert eu["sqs-fifo-queue"].limit == 300 and eu["lambda-concurrency"].limit == 1_000
    assert eu["apigateway-throttle"].limit == 10_000 and eu["kinesis-shard-records"].limit == 1_000


def test_from_snapshot_divides_by_payments_and_splits_kms() -> None:
    region = "eu-west-2"
    snapshot = MeterSnapshot(
        calls={CallKey("kms", "GenerateDataKey", region): 4, CallKey("kms", "Decrypt", region): 8,
               CallKey("kms", "Sign", region): 4, CallKey("dynamodb", "TransactWriteItems", region): 4,
               CallKey("sqs", "SendMessageBatch", region): 2, CallKey("sqs", "SendMessage", "us-east-1"): 1,
               CallKey("kinesis", "PutRecord", region): 4},
        write_units=Decimal("16"), read_units=Decimal("2.5"),
        write_units_by_table={"ledger": Decimal(12), "outbox": Decimal(4)})
    profile = CallProfile.from_snapshot(snapshot, 4, lambda_seconds=0.2, hottest_key_share=0.25,
                                        sqs_batch_size=10, sqs_queue="fifo", message_groups=8)
    assert profile.kms_requests_per_payment == 3.0
    assert profile.kms_asymmetric_requests_per_payment == 1.0
    assert profile.write_units_per_payment == 4.0 and profile.read_units_per_payment == 0.625
    assert profile.sqs_messages_per_payment == 5.25  # (2 batches * 10 + 1) / 4
    assert profile.kinesis_records_per_payment == 1.0
    assert profile.busiest_table_share == 0.75
    assert profile.lambda_seconds_per_payment == 0.2 and profile.api_requests_per_payment == 1.0
    assert profile.calls_per_payment[("kms", "Decrypt")] == 2.0
    assert checks_by_key(profile, 1_000)["kms-ecc"].utilisation == pytest.approx(1_000 / 300)
    with pytest.raises(CapacityModelError, match="payments must be"):
        CallProfile.from_snapshot(snapshot, 0, lambda_seconds=0.2)


def test_chart_has_one_line_per_service_and_the_quota_lines() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulations.capacity_model import calls_per_second_chart

    profile = replace(UNCACHED, kinesis_records_per_payment=1)
    fig = calls_per_second_chart(profile, rates=[100, 1_000, 10_000, 100_000], region="eu-west-2")
    try:
        ax = fig.axes[0]
        gids = [line.get_gid() or "" for line in ax.lines]
        services = sorted(g for g in gids if g.startswith("service:"))
        assert services == ["service:API Gateway", "service:DynamoDB", "service:KMS", "service:Kinesis",
                            "service:Lambda"]
        quotas = sorted(g for g in gids if g.startswith("quota:"))
        assert quotas == ["quota:apigateway-throttle", "quota:dynamodb-table-write", "quota:kinesis-shard-records",
                          "quota:kms-symmetric", "quota:lambda-concurrency"]
        labels = {t.get_gid(): t.get_text() for t in ax.texts}
        assert labels["label:kms-symmetric"] == "KMS symmetric: 20,000 per region"
        assert labels["label:kinesis-shard-records"] == "Kinesis shard: 1,000 per shard"
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert tuple(fig.get_size_inches()) == (6.8, 3.6) and fig.dpi == 150
        # labels at the same limit (Kinesis and Lambda at 1,000) are stacked: one above the other
        offsets = {t.get_gid(): t.xyann[1] for t in ax.texts}
        assert abs(offsets["label:kinesis-shard-records"] - offsets["label:lambda-concurrency"]) >= 9
    finally:
        plt.close(fig)


def test_quota_labels_are_stacked_at_least_a_line_apart() -> None:
    from simulations.capacity_model import _label_offsets

    limits = [1_000, 1_000, 1_000, 10_000, 20_000, 40_000]
    offsets = _label_offsets(limits, 1, 1e6, axes_points=180)  # 30 points per decade
    positions = [30 * math.log10(limit) + offset for limit, offset in zip(limits, offsets)]
    assert all(b - a >= 9 - 1e-9 for a, b in zip(positions, positions[1:]))
    assert offsets[0] == 0 and all(offset >= 0 for offset in offsets)
    assert offsets[3] == 0  # 10,000 is a decade (30 points) above 1,000 + 2 lines: untouched


def test_figures_are_publishable() -> None:
    from simulations.capacity_model import EXAMPLE_PROFILE, figures

    figs = figures(EXAMPLE_PROFILE)
    util = {f.series: f.value for f in figs if f.key == "capacity_binding_utilisation"}
    assert util == {"100/s": "0.02", "1k/s": "0.15", "10k/s": "1.50", "100k/s": "15.00"}
    first = {f.key: int(f.value) for f in figs if f.key.startswith("capacity_first_binding_rate")}
    assert first["capacity_first_binding_rate"] == 5_333  # KMS: 20,000 * 0.8 / 3
    assert first["capacity_first_binding_rate_cached"] > first["capacity_first_binding_rate"]
    needed = {f.key.removeprefix("capacity_needed_at_top_rate_"): int(f.value) for f in figs
              if f.key.startswith("capacity_needed_at_top_rate_")}
    assert needed["apigateway-throttle"] == 13 and needed["sqs-message-group"] == 15_000
