"""The notebook's benchmark helpers, at a small size: what they count is what the page reports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.ledger import Ledger, Transfer, create_ledger_tables
from fasterpay.metrics import percentile
from simulations.ledger_bench import (
    KeyWriteCounter,
    benchmark_duplicates,
    benchmark_hot_account,
    moto_transaction_ms_by_table_size,
)
from simulations.powertools_compare import compare_crash_after_effect, compare_units, powertools_version


def test_duplicates_never_double_post_and_retries_cost_one_write_unit(env: AwsEnvironment) -> None:
    clean = benchmark_duplicates(env, series="clean", duplicate_rate=0.0, payments=30, seed=1, rotate_every=15)
    retried = benchmark_duplicates(env, series="retried", duplicate_rate=1.0, payments=30, seed=1, rotate_every=15)
    assert clean.generations == 2 and clean.submissions == 30 and retried.submissions == 60
    assert clean.double_posts_per_10k == retried.double_posts_per_10k == 0
    assert clean.write_units_per_payment == 18  # claim 1 + transaction 10 + outbox delete 1 + consumer 6
    assert retried.write_units_per_payment == 19  # each retry: one failed conditional put
    assert clean.cost_per_10k() == clean.cost_per_10k("posting") + clean.cost_per_10k("delivery")
    assert percentile(retried.retry_ms, 50) < percentile(retried.first_ms, 50)  # a replay is one call
    assert not env.client("dynamodb").list_tables()["TableNames"]  # every generation's tables were dropped


def test_the_control_posts_every_retry(env: AwsEnvironment) -> None:
    control = benchmark_duplicates(env, series="control", duplicate_rate=1.0, payments=20, seed=1,
                                   idempotent=False)
    assert control.posted == 40 and control.double_posts_per_10k == 10_000
    with pytest.raises(ValueError):
        benchmark_duplicates(env, series="bad", duplicate_rate=1.5, payments=1, seed=1)


def test_key_counter_counts_two_units_per_transaction_item(env: AwsEnvironment) -> None:
    counter = KeyWriteCounter()
    dynamodb = env.client("dynamodb")
    tables = create_ledger_tables(dynamodb, None, "keys")
    ledger = Ledger(counter.attach(env.client("dynamodb")), tables)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    counter.units.clear()
    ledger.transfer(Transfer("t1", "settlement", "alice", 5, "GBP"))
    assert counter.units[(tables.ledger, "BAL#alice#0")] == 2
    assert counter.units[(tables.ledger, "TRANSFER#t1")] == 2
    assert sum(counter.units.values()) == 8


def test_sharding_lowers_the_hottest_key_until_the_outbox_is_hottest(env: AwsEnvironment) -> None:
    single = benchmark_hot_account(env, shards=1, transfers=60, seed=3)
    sharded = benchmark_hot_account(env, shards=16, transfers=60, seed=3, outbox_shards=2)
    assert single.hottest_key == "ledger/BAL#merchant#0" and single.hottest_units_per_transfer == 2
    assert single.modelled_ceiling_per_second == Decimal(500)
    assert sharded.hottest_key.startswith("ledger-outbox/OUTBOX#")  # two outbox shards: now the bottleneck
    assert sum(sharded.account_key_units) == 2 * 60 and max(sharded.account_key_units) < 2 * 60
    assert sharded.modelled_ceiling_per_second > single.modelled_ceiling_per_second


def test_moto_artefact_rows(env: AwsEnvironment) -> None:
    rows = moto_transaction_ms_by_table_size(env, sizes=[0, 300], transactions=5)
    assert [size for size, _ in rows] == [0, 300] and all(ms > 0 for _, ms in rows)


def test_powertools_runs_beside_our_store_at_the_same_unit_costs(env: AwsEnvironment) -> None:
    assert powertools_version().startswith("3.")
    rows = {(r.tool, r.case): r for r in compare_units(env, calls=3)}
    for tool in ("Powertools (payload validation on)", "fasterpay.idempotency"):
        assert rows[(tool, "first call")].write_units == 2 and rows[(tool, "retry, same payload")].write_units == 1
    validated = rows[("Powertools (payload validation on)", "same key, other payload")]
    assert "IdempotencyValidationError" in validated.outcome
    assert rows[("Powertools (default config)", "same key, other payload")].outcome == "returned {'posted': 5}"
    assert "IdempotencyKeyReuseError" in rows[("fasterpay.idempotency", "same key, other payload")].outcome


def test_a_crash_after_the_effect_posts_twice_only_when_the_record_is_apart(env: AwsEnvironment) -> None:
    assert compare_crash_after_effect(env) == {
        "Powertools (record apart from the effect)": 2,
        "fasterpay (completion inside the transaction)": 1,
    }
