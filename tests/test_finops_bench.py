"""The FinOps bench: one metered run of every pattern, its request tally and the levers built from it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fasterpay.aws import open_environment
from fasterpay.metering import MeterSnapshot
from fasterpay.pricing import PRICES_EU_WEST_2
from simulations.finops_bench import (
    LAMBDA_PLATFORM_LINES,
    CostRun,
    RequestTally,
    fixed_costs_per_10k,
    levers,
    monthly_payments,
    run_payment_costs,
)
from simulations.pipeline_bench import RunSettings, RunSummary, run_pipeline

pytestmark = pytest.mark.xdist_group("finops-bench")


@pytest.fixture(scope="module")
def measured() -> tuple[CostRun, RunSummary]:
    with open_environment("moto") as env:
        run = run_payment_costs(env, payments=30, seed=5, agent_cases=4)
        unbatched = run_pipeline(env, RunSettings(payments=20, seed=5, batch_size=1), name_prefix="fin1")
    return run, unbatched


def test_every_pattern_is_metered_and_the_parts_add_up(measured: tuple[CostRun, RunSummary]) -> None:
    run, _ = measured
    assert run.summary.ok and run.payments == 30
    whole = run.summary.snapshot + run.summary.notify_snapshot + run.audit + run.stream
    parts = MeterSnapshot()
    for usage in run.usage.values():
        parts = parts + usage.snapshot
    assert parts.calls == whole.calls and parts.write_units == whole.write_units
    assert {"vault", "ledger", "pipeline", "audit", "observability"} <= set(run.usage)
    assert run.audit.count(service="kms", operation="Sign") >= 1 and run.audit.count(service="s3") >= 1
    assert run.stream.kinesis_put_units == run.status_events > run.payments  # a record per status change
    cost = run.unit_cost(PRICES_EU_WEST_2)
    assert cost.total == sum(cost.by_pattern.values()) > 0
    assert cost.by_pattern["observability"] == cost.by_component["logs"] > 0


def test_the_agents_cost_follows_the_payments_sent_to_them(measured: tuple[CostRun, RunSummary]) -> None:
    run, _ = measured
    if run.exceptions:
        expected = run.agent_cost_per_exception * run.exceptions * 10_000 / run.payments
        assert run.unit_cost(PRICES_EU_WEST_2).by_component["bedrock"] == expected
    else:  # pragma: no cover - the seed's traffic refuses some payments for review
        assert "bedrock" not in run.unit_cost(PRICES_EU_WEST_2).by_component


def test_log_bytes_are_the_telemetry_plus_lambdas_own_lines(measured: tuple[CostRun, RunSummary]) -> None:
    run, _ = measured
    per_invocation = sum(len(line.format(id="0" * 36).encode()) for line in LAMBDA_PLATFORM_LINES)
    assert run.platform_log_bytes == run.summary.lambda_invocations * per_invocation
    assert run.log_bytes > run.platform_log_bytes


def test_each_lever_costs_more_without_it(measured: tuple[CostRun, RunSummary]) -> None:
    run, unbatched = measured
    found = {lever.name: lever for lever in levers(run, unbatched, PRICES_EU_WEST_2,
                                                   kms_per_payment_uncached=Decimal(4))}
    assert set(found) == {"data-key caching", "SQS batching", "fewer hops", "conditional writes", "log volume"}
    for lever in found.values():
        assert lever.without > lever.with_lever, lever
    # with batches of one, SQS requests and invocations per payment rise: measured, not assumed
    assert unbatched.lambda_invocations / unbatched.payments > run.summary.lambda_invocations / run.payments
    agents = run.unit_cost(PRICES_EU_WEST_2).by_pattern.get("agents", Decimal(0))
    assert abs(found["log volume"].with_lever - (run.unit_cost(PRICES_EU_WEST_2).total - agents)) < Decimal("1e-20")


def test_the_tally_sizes_bodies_and_separates_transactional_units() -> None:
    with open_environment("moto") as env:
        tally = RequestTally()
        sqs, ddb = tally(env.client("sqs")), tally(env.client("dynamodb"))
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "x" * 100},
                                                      {"Id": "2", "MessageBody": "é" * 10}])
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        ddb.put_item(TableName="t", Item={"pk": {"S": "hot"}})
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "hot"}}}},
                                                {"Put": {"TableName": "t", "Item": {"pk": {"S": "cold"}}}}])
    assert tally.body_bytes == 120 and tally.messages == 2
    assert tally.single_write_units == 1 and tally.transactional_write_units == 4
    assert tally.hottest_key_share == pytest.approx(2 / 3)


def test_fixed_costs_are_spread_over_a_stated_month() -> None:
    month = monthly_payments(bank_share=0.05)
    fixed = fixed_costs_per_10k(PRICES_EU_WEST_2, payments_per_month=month)
    assert set(fixed) == {"kms key-months", "custom metrics", "kinesis shard-hours"}
    assert fixed_costs_per_10k(PRICES_EU_WEST_2, payments_per_month=month * 2)["kms key-months"] * 2 == \
        fixed["kms key-months"]
