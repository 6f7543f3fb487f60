"""The outbox relay to SQS FIFO and the deduplicating consumer: effects once, whatever crashes."""

from __future__ import annotations

import json

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.ledger import (
    CONSUMER_STEPS,
    RELAY_STEPS,
    CrashPlan,
    DeduplicatingConsumer,
    Ledger,
    LedgerTables,
    OutboxEvent,
    OutboxRelay,
    SimulatedCrash,
    Transfer,
    create_ledger_tables,
    read_projection,
    statement_projection,
)
from fasterpay.metering import ApiCallMeter

PAYMENTS = 7


@pytest.fixture
def tables(env: AwsEnvironment) -> LedgerTables:
    return create_ledger_tables(env.client("dynamodb"), env.client("sqs"), "outbox-test")


@pytest.fixture
def ledger(env: AwsEnvironment, tables: LedgerTables) -> Ledger:
    ledger = Ledger(env.client("dynamodb"), tables, outbox_shards=3)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    ledger.open_account("bob", "GBP")
    ledger.transfer(Transfer("pay-0", "settlement", "alice", 5_000, "GBP"))
    for n in range(1, PAYMENTS):  # two message groups: settlement and alice
        ledger.transfer(Transfer(f"pay-{n}", "settlement" if n % 2 else "alice", "bob", 100 + n, "GBP"))
    return ledger


def relay_for(env: AwsEnvironment, tables: LedgerTables, **kwargs: object) -> OutboxRelay:
    return OutboxRelay(env.client("dynamodb"), env.client("sqs"), outbox_table=tables.outbox,
                       queue_url=tables.queue_url, shards=3, **kwargs)  # type: ignore[arg-type]


def consumer_for(env: AwsEnvironment, tables: LedgerTables, **kwargs: object) -> DeduplicatingConsumer:
    return DeduplicatingConsumer(env.client("dynamodb"), env.client("sqs"), queue_url=tables.queue_url,
                                 table=tables.consumer, name="statements",
                                 apply=statement_projection(tables.consumer), visibility_timeout=0,
                                 **kwargs)  # type: ignore[arg-type]


def projected_total(env: AwsEnvironment, tables: LedgerTables) -> tuple[int, int]:
    rows = [read_projection(env.client("dynamodb"), tables.consumer, a) for a in ("settlement", "alice", "bob")]
    return sum(r["in_count"] for r in rows), sum(r["in_minor"] for r in rows)


def expected_total(ledger: Ledger) -> tuple[int, int]:
    journal = list(ledger.journal())
    return len(journal), sum(t.amount_minor for t in journal)


def test_relay_sends_every_event_once_in_order_per_group(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables
) -> None:
    relay = relay_for(env, tables)
    assert relay.pending() == PAYMENTS
    report = relay.drain()
    assert (report.sent, report.deleted, report.failed) == (PAYMENTS, PAYMENTS, 0) and relay.pending() == 0
    sqs = env.client("sqs")
    seen: list[dict] = []
    while messages := sqs.receive_message(QueueUrl=tables.queue_url, MaxNumberOfMessages=10,
                                          AttributeNames=["MessageGroupId"]).get("Messages", []):
        for message in messages:
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=tables.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(e["transfer_id"] for e in seen) == sorted(t.transfer_id for t in ledger.journal())
    for group in {e["debit_account"] for e in seen}:
        posted = [e["posted_at"] for e in seen if e["debit_account"] == group]
        assert posted == sorted(posted)  # FIFO within a message group


def test_consumer_applies_each_event_once(env: AwsEnvironment, ledger: Ledger, tables: LedgerTables) -> None:
    relay_for(env, tables).drain()
    report = consumer_for(env, tables).drain()
    assert (report.applied, report.duplicates) == (PAYMENTS, 0)
    assert projected_total(env, tables) == expected_total(ledger)


def test_redelivered_event_is_acknowledged_without_a_second_effect(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables
) -> None:
    consumer = consumer_for(env, tables)
    event = OutboxEvent.transfer_posted(next(iter(ledger.journal())))
    assert consumer.handle(event) is True
    assert consumer.handle(event) is False
    account = event.data()["credit_account"]
    assert read_projection(env.client("dynamodb"), tables.consumer, account)["in_count"] == 1


@pytest.mark.parametrize("step", RELAY_STEPS)
def test_relay_crash_at_every_step_boundary_still_delivers_each_effect_once(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables, step: str
) -> None:
    with pytest.raises(SimulatedCrash):
        relay_for(env, tables, crash=CrashPlan(step)).relay_once()
    relay_for(env, tables).drain()  # the relay restarts
    report = consumer_for(env, tables).drain()
    assert report.applied == PAYMENTS
    assert projected_total(env, tables) == expected_total(ledger)


def test_resend_after_the_consumer_deleted_the_first_copy_is_caught_by_the_consumer(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables
) -> None:
    """SQS FIFO drops a resend within 5 minutes on AWS; moto forgets the id once the first copy is
    deleted, so here the consumer's own markers must catch it. Either way, the effect happens once."""
    with pytest.raises(SimulatedCrash):
        relay_for(env, tables, crash=CrashPlan("sent")).relay_once()
    consumer = consumer_for(env, tables)
    first = consumer.drain()
    relay_for(env, tables).drain()  # the restarted relay sends the same page again
    second = consumer.drain()
    assert first.applied + second.applied == PAYMENTS
    assert second.duplicates >= 1
    assert projected_total(env, tables) == expected_total(ledger)


def test_fifo_drops_a_resend_while_the_first_copy_is_queued(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables
) -> None:
    with pytest.raises(SimulatedCrash):
        relay_for(env, tables, crash=CrashPlan("sent")).relay_once()
    relay_for(env, tables).drain()
    report = consumer_for(env, tables).drain()
    assert (report.received, report.duplicates) == (PAYMENTS, 0)


@pytest.mark.parametrize("step", CONSUMER_STEPS)
def test_consumer_crash_at_every_step_boundary_applies_each_effect_once(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables, step: str
) -> None:
    relay_for(env, tables).drain()
    with pytest.raises(SimulatedCrash):
        consumer_for(env, tables, crash=CrashPlan(step)).poll_once()
    consumer_for(env, tables).drain()  # the consumer restarts; unacknowledged messages come back
    assert projected_total(env, tables) == expected_total(ledger)


def test_relay_costs_per_event(env: AwsEnvironment, ledger: Ledger, tables: LedgerTables) -> None:
    meter = ApiCallMeter()
    relay = OutboxRelay(meter.attach(env.client("dynamodb")), meter.attach(env.client("sqs")),
                        outbox_table=tables.outbox, queue_url=tables.queue_url, shards=3)
    relay.drain()
    calls = meter.snapshot()
    assert calls.count(operation="SendMessageBatch") <= 3  # one batch per non-empty shard page
    assert calls.write_units == PAYMENTS  # one delete per event


def test_relay_page_size_is_bounded_by_the_sqs_batch_limit(env: AwsEnvironment, tables: LedgerTables) -> None:
    with pytest.raises(ValueError):
        relay_for(env, tables, page_size=11)


def test_marker_expiry_is_checked_on_write(env: AwsEnvironment, tables: LedgerTables) -> None:
    from fasterpay.idempotency import ManualClock

    clock = ManualClock()
    consumer = consumer_for(env, tables, clock=clock, retention_seconds=60)
    event = OutboxEvent("TransferPosted:x", "TransferPosted", "a",
                        json.dumps({"debit_account": "a", "credit_account": "b", "amount_minor": 1}))
    assert consumer.handle(event) and not consumer.handle(event)
    clock.advance(61)  # past retention: moto never deletes, DynamoDB deletes late; the write still treats it as gone
    assert consumer.handle(event)


def test_tables_without_a_queue(env: AwsEnvironment) -> None:
    tables = create_ledger_tables(env.client("dynamodb"), None, "no-queue")
    assert tables.queue_url == "" and tables.ledger == "no-queue-ledger"
