"""Status events on Kinesis: ordered publishing, KCL-style leases, exactly-once effects, replay; and moto's limits."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from fasterpay.agents.stream import (
    CRASH_POINTS,
    SHARD_END,
    TRIM_HORIZON,
    InvalidStatusEventError,
    LeaseLostError,
    LeaseTable,
    PublishFailedError,
    StatusEvent,
    StatusEventPublisher,
    StreamConsumer,
    create_lease_table,
    create_processed_table,
    list_shards,
    records_behind,
)
from fasterpay.ledger.model import SimulatedCrash
from simulations import moto_speedups
from simulations.stream_bench import (
    PartialFailureKinesis,
    account_token,
    aws_like_resharding,
    generate_status_events,
    history_effect,
    read_histories,
    run_stream_drill,
)

STREAM = "status"
FAILOVER_MS = 10_000
UETR = "6f1c3e1a-0d2b-4c3e-9a4b-1f2e3d4c5b6a"
TOKEN = "dtk_iban_" + "a" * 32


@pytest.fixture
def speedups() -> Iterator[None]:
    """moto's TransactWriteItems copies whole tables; the speedups snapshot only the items touched."""
    was = moto_speedups.installed()
    moto_speedups.install()
    yield
    if not was:
        moto_speedups.uninstall()
        moto_speedups.install_caches()  # as tests/conftest.py left them


class Setup:
    """A stream, a lease table, a processed table and an effects table, and a clock in epoch ms."""

    def __init__(self, env: Any, shards: int = 1) -> None:
        self.kinesis = env.client("kinesis")
        self.dynamodb = env.client("dynamodb")
        self.kinesis.create_stream(StreamName=STREAM, ShardCount=shards)
        self.leases = LeaseTable(self.dynamodb, create_lease_table(self.dynamodb, "leases"))
        self.processed = create_processed_table(self.dynamodb, "processed")
        self.effects = create_processed_table(self.dynamodb, "effects")
        self.apply = history_effect(self.effects)
        self.now = 0
        self.publisher = StatusEventPublisher(self.kinesis, STREAM, sleep=lambda _: None)

    def worker(self, worker_id: str, **kwargs: Any) -> StreamConsumer:
        return StreamConsumer(self.kinesis, self.dynamodb, stream_name=STREAM, lease_table=self.leases,
                              worker_id=worker_id, apply=self.apply, processed_table=self.processed,
                              failover_ms=FAILOVER_MS, clock=lambda: self.now, **kwargs)

    def histories(self) -> dict[str, list[str]]:
        return read_histories(self.dynamodb, self.effects)

    def records(self, shard_id: str) -> list[dict[str, Any]]:
        iterator = self.kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard_id,
                                                   ShardIteratorType=TRIM_HORIZON)["ShardIterator"]
        return list(self.kinesis.get_records(ShardIterator=iterator)["Records"])


def expected_order(events: list[StatusEvent]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    for event in events:
        order.setdefault(event.account, []).append(event.event_id)
    return order


# StatusEvent.
def test_status_event_round_trips_through_json() -> None:
    event = StatusEvent(UETR, "E2E-1", "RJCT", TOKEN, 1250, "GBP", 1_767_225_600_000, reason="AM04")
    assert event.event_id == f"{UETR}:RJCT"
    assert StatusEvent.from_json(event.to_json().encode()) == event


@pytest.mark.parametrize("change", [
    {"account": "GB82WEST12345698765432"},  # an IBAN, not a token
    {"account": "12345678"},
    {"amount_minor": 12.5},
    {"amount_minor": True},
    {"status": "DONE"},
    {"currency": "gbp"},
    {"uetr": "not-a-uuid"},
    {"reason": "insufficient funds"},
])
def test_status_event_refuses_malformed_fields(change: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"uetr": UETR, "end_to_end_id": "E2E-1", "status": "ACSC", "account": TOKEN,
                              "amount_minor": 1250, "currency": "GBP", "at": 0, **change}
    with pytest.raises(InvalidStatusEventError):
        StatusEvent(**fields)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"uetr": "x"}', b"\xff\xfe",
                                  StatusEvent(UETR, "E", "ACSC", TOKEN, 1, "GBP", 0).to_json().replace(
                                      ":ACSC", ":ACTC")])
def test_from_json_raises_a_clear_error(body: str | bytes) -> None:
    with pytest.raises(InvalidStatusEventError):
        StatusEvent.from_json(body)


# Publishing.
def test_partition_key_is_the_account_token_and_one_account_is_on_one_shard(env: Any) -> None:
    setup = Setup(env, shards=4)
    events = generate_status_events(120, 10, random.Random(1))
    report = setup.publisher.publish(events)
    assert report.published == 120
    seen: dict[str, set[str]] = {}
    by_id = {event.event_id: event for event in events}
    for shard in list_shards(setup.kinesis, STREAM):
        for record in setup.records(shard["ShardId"]):
            event = StatusEvent.from_json(record["Data"])
            assert record["PartitionKey"] == event.account == by_id[event.event_id].account
            seen.setdefault(event.account, set()).add(shard["ShardId"])
    assert all(len(shards) == 1 for shards in seen.values())
    assert len({shard for shards in seen.values() for shard in shards}) > 1


def test_partial_failures_are_retried_without_reordering_an_account(env: Any) -> None:
    setup = Setup(env)
    events = generate_status_events(60, 3, random.Random(2))
    first_of = {}
    for event in events:
        first_of.setdefault(event.account, event.event_id)
    attempts: dict[str, int] = {}

    def fail(_: int, record: dict[str, Any]) -> bool:  # each account's first event fails twice
        event_id = StatusEvent.from_json(record["Data"]).event_id
        attempts[event_id] = attempts.get(event_id, 0) + 1
        return event_id in first_of.values() and attempts[event_id] <= 2

    flaky = PartialFailureKinesis(setup.kinesis, fail=fail)
    report = StatusEventPublisher(flaky, STREAM, sleep=lambda _: None).publish(events)
    assert (report.published, report.retried_records) == (60, 6)
    written = [StatusEvent.from_json(r["Data"]) for r in setup.records("shardId-000000000000")]
    assert expected_order(written) == expected_order(events)


def test_records_that_keep_failing_are_reported_in_order_and_nothing_later_is_written(env: Any) -> None:
    setup = Setup(env)
    events = generate_status_events(40, 4, random.Random(3))
    bad = events[0].account
    flaky = PartialFailureKinesis(setup.kinesis, fail=lambda _, r: r["PartitionKey"] == bad)
    sleeps: list[float] = []
    with pytest.raises(PublishFailedError) as caught:
        StatusEventPublisher(flaky, STREAM, max_attempts=3, sleep=sleeps.append).publish(events)
    assert [e.event_id for e in caught.value.unsent] == expected_order(events)[bad]
    assert caught.value.sent == 40 - len(caught.value.unsent)
    assert sleeps == sorted(sleeps) and len(sleeps) == 2  # bounded, growing back-off
    written = {StatusEvent.from_json(r["Data"]).account for r in setup.records("shardId-000000000000")}
    assert bad not in written


# Leases.
def test_a_worker_whose_lease_was_taken_cannot_checkpoint(env: Any) -> None:
    setup = Setup(env)
    lease = setup.leases.ensure("shardId-000000000000")
    held_by_a = setup.leases.take(lease, "worker-a")
    held_by_b = setup.leases.take(held_by_a, "worker-b")
    assert held_by_b.owner_switches_since_checkpoint == 2
    with pytest.raises(LeaseLostError):
        setup.leases.checkpoint(held_by_a, "5")
    with pytest.raises(LeaseLostError):
        setup.leases.renew(held_by_a)
    assert setup.leases.checkpoint(held_by_b, "5").checkpoint == "5"
    stored = setup.leases.get("shardId-000000000000")
    assert stored is not None and (stored.owner, stored.checkpoint, stored.owner_switches_since_checkpoint) == (
        "worker-b", "5", 0)


def test_a_lease_is_taken_over_only_after_the_failover_time(env: Any) -> None:
    setup = Setup(env, shards=2)
    setup.publisher.publish(generate_status_events(20, 4, random.Random(4)))
    a, b = setup.worker("worker-a"), setup.worker("worker-b")
    assert a.poll_once().read == 20
    held_by_a = setup.leases.list()
    assert b.poll_once().takeovers == 0  # b first sees a's leases now
    setup.now += FAILOVER_MS - 1
    assert b.poll_once().takeovers == 0
    a.poll_once()  # a renews: the counters move, b's wait starts again
    setup.now += FAILOVER_MS - 1
    assert b.poll_once().takeovers == 0
    setup.now += FAILOVER_MS
    assert b.poll_once().takeovers == 2
    assert {lease.owner for lease in setup.leases.list()} == {"worker-b"}
    assert a.poll_once().read == 0  # a sees b's fresh leases and leaves them
    for stale in held_by_a:
        with pytest.raises(LeaseLostError):
            setup.leases.checkpoint(stale, "1")


# Resharding.
def test_moto_routes_records_to_the_closed_parent_after_a_split(env: Any) -> None:
    """The moto behaviour the drill patches: children stay empty, the closed parent keeps receiving."""
    setup = Setup(env)
    setup.kinesis.split_shard(StreamName=STREAM, ShardToSplit="shardId-000000000000",
                              NewStartingHashKey=str(2**127))
    setup.publisher.publish(generate_status_events(10, 4, random.Random(5)))
    shards = {s["ShardId"]: s for s in list_shards(setup.kinesis, STREAM)}
    assert shards["shardId-000000000001"]["ParentShardId"] == "shardId-000000000000"
    assert "EndingSequenceNumber" in shards["shardId-000000000000"]["SequenceNumberRange"]
    assert len(setup.records("shardId-000000000000")) == 10
    assert setup.records("shardId-000000000001") == setup.records("shardId-000000000002") == []


def test_per_account_order_holds_across_a_split_parent_first(env: Any) -> None:
    with aws_like_resharding():
        setup = Setup(env)
        events = generate_status_events(120, 6, random.Random(6))
        setup.publisher.publish(events[:60])
        setup.kinesis.split_shard(StreamName=STREAM, ShardToSplit="shardId-000000000000",
                                  NewStartingHashKey=str(2**127))
        setup.publisher.publish(events[60:])
        shards = {s["ShardId"]: s for s in list_shards(setup.kinesis, STREAM)}
        assert len(setup.records("shardId-000000000000")) == 60  # resharding moved nothing
        assert len(setup.records("shardId-000000000001")) + len(setup.records("shardId-000000000002")) == 60
        assert shards["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
        worker = setup.worker("worker-a", max_records=7)
        first = worker.poll_once()
        assert first.read == 7  # only the parent: the children wait for its SHARD_END
        total = worker.drain()
        assert setup.leases.get("shardId-000000000000").checkpoint == SHARD_END  # type: ignore[union-attr]
        assert first.applied + total.applied == 120
    assert setup.histories() == expected_order(events)


# Exactly once through crashes.
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_each_point_is_resumed_by_another_worker_and_applies_each_event_once(
        env: Any, point: str) -> None:
    setup = Setup(env, shards=2)
    events = generate_status_events(80, 5, random.Random(7))
    setup.publisher.publish(events)
    crashes = {"n": 0}

    def crash(at: str) -> None:
        if at == point and crashes["n"] < 3:
            crashes["n"] += 1
            raise SimulatedCrash(at)

    n = 0
    while True:
        n += 1
        worker = setup.worker(f"worker-{n}", checkpoint_every=4, crash=crash)
        try:
            worker.poll_once()  # the dead worker's leases are not expired yet: it takes none of them
            setup.now += FAILOVER_MS
            worker.drain()
            break
        except SimulatedCrash:
            continue
    assert crashes["n"] == 3
    assert setup.histories() == expected_order(events)


@pytest.mark.volume
def test_drill_at_volume_hits_every_crash_point_many_times(env: Any, speedups: None) -> None:
    result = run_stream_drill(env.client("kinesis"), env.client("dynamodb"), events=1_000, seed=12)
    assert (result.lost, result.doubled, result.order_violations, result.poison) == (0, 0, 0, 0)
    assert result.effects_applied == result.events_published == 1_000
    assert min(result.crashes_by_point.get(point, 0) for point in CRASH_POINTS) >= 10
    assert result.shards_after_split == result.shards_before_split + 2
    assert result.lease_takeovers > 0 and result.takeovers_refused_before_failover > 0
    assert result.duplicates_absorbed == result.redelivered_after_crash > 0
    assert result.aws_calls["kinesis:PutRecords"] <= result.publish_calls  # an all-failed call never reaches moto


# Replay and poison.
def test_replay_from_sequence_or_timestamp_applies_nothing_twice_and_keeps_checkpoints(env: Any) -> None:
    setup = Setup(env, shards=2)
    events = generate_status_events(40, 4, random.Random(8))
    start = datetime.now(timezone.utc)
    setup.publisher.publish(events)
    worker = setup.worker("worker-a")
    assert worker.drain().applied == 40
    before = setup.leases.list()
    firsts = {s: setup.records(s)[0]["SequenceNumber"] for s in ("shardId-000000000000", "shardId-000000000001")}
    by_sequence = worker.replay(from_sequence=firsts)
    by_time = worker.replay(from_timestamp=start)
    assert (by_sequence.read, by_sequence.applied, by_sequence.duplicates) == (40, 0, 40)
    assert (by_time.read, by_time.applied, by_time.duplicates) == (40, 0, 40)
    assert [(l.shard_id, l.checkpoint) for l in setup.leases.list()] == [(l.shard_id, l.checkpoint) for l in before]
    assert setup.histories() == expected_order(events)
    rewound = worker.rewind_checkpoint("shardId-000000000000", TRIM_HORIZON)
    assert rewound.checkpoint == TRIM_HORIZON
    again = worker.drain()
    assert again.applied == 0 and again.duplicates > 0


def test_moto_at_timestamp_reads_from_the_first_record_at_or_after_it(env: Any) -> None:
    setup = Setup(env)
    events = generate_status_events(10, 2, random.Random(9))
    setup.publisher.publish(events[:4])
    time.sleep(0.02)
    middle = datetime.now(timezone.utc)
    time.sleep(0.02)
    setup.publisher.publish(events[4:])
    report = setup.worker("worker-a").replay(from_timestamp=middle)
    assert report.read == 6


def test_moto_reports_millis_behind_latest_and_never_ends_a_closed_shard_iterator(env: Any) -> None:
    setup = Setup(env)
    setup.publisher.publish(generate_status_events(5, 1, random.Random(10)))
    setup.kinesis.split_shard(StreamName=STREAM, ShardToSplit="shardId-000000000000",
                              NewStartingHashKey=str(2**127))
    iterator = setup.kinesis.get_shard_iterator(StreamName=STREAM, ShardId="shardId-000000000000",
                                                ShardIteratorType=TRIM_HORIZON)["ShardIterator"]
    first = setup.kinesis.get_records(ShardIterator=iterator)
    assert "MillisBehindLatest" in first and len(first["Records"]) == 5
    last = setup.kinesis.get_records(ShardIterator=first["NextShardIterator"])
    assert last["Records"] == [] and last["NextShardIterator"]  # AWS would omit it at SHARD_END


def test_a_malformed_record_is_set_aside_and_does_not_block_its_shard(env: Any) -> None:
    setup = Setup(env)
    events = generate_status_events(6, 2, random.Random(11))
    setup.publisher.publish(events[:3])
    setup.kinesis.put_record(StreamName=STREAM, Data=b"{not json", PartitionKey=events[0].account)
    setup.kinesis.put_record(StreamName=STREAM, PartitionKey=events[0].account,
                             Data=events[0].to_json().replace(events[0].account, "GB82WEST12345698765432").encode())
    setup.publisher.publish(events[3:])
    report = setup.worker("worker-a").drain()
    assert (report.applied, len(report.poison)) == (6, 2)
    assert {p.sequence_number for p in report.poison} == {"4", "5"}
    assert setup.leases.get("shardId-000000000000").checkpoint == "8"  # type: ignore[union-attr]
    stored = setup.dynamodb.get_item(TableName="processed", Key={"pk": {"S": "POISON#shardId-000000000000#4"}})
    assert "error" in stored["Item"]
    assert setup.histories() == expected_order(events)
    assert account_token(random.Random(0)).startswith("dtk_iban_")


def test_markers_expire_after_the_retention_and_a_shorter_retention_is_refused(env: Any) -> None:
    setup = Setup(env)
    setup.now = 1_764_590_400_000
    setup.publisher.publish(generate_status_events(3, 1, random.Random(3)))
    assert setup.worker("worker-a", marker_retention_s=8 * 86_400).drain().applied == 3
    ttl = setup.dynamodb.describe_time_to_live(TableName=setup.processed)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    markers = [i for i in setup.dynamodb.scan(TableName=setup.processed)["Items"] if i["pk"]["S"].startswith("EVENT#")]
    assert len(markers) == 3
    assert {int(i["expires_at"]["N"]) for i in markers} == {setup.now // 1000 + 8 * 86_400}
    with pytest.raises(ValueError, match="retention"):
        setup.worker("worker-b", marker_retention_s=3_600)


def test_records_behind_counts_what_the_checkpoints_have_not_reached_and_agrees_with_the_acknowledgements(env: Any) -> None:
    """The lag measurement read from the stream, and the drill's count from PutRecords' acknowledgements."""
    setup = Setup(env, shards=2)
    flaky = PartialFailureKinesis(setup.kinesis, rate=0.0)
    StatusEventPublisher(flaky, STREAM, sleep=lambda _: None).publish(generate_status_events(30, 6, random.Random(4)))
    worker = setup.worker("worker-a", checkpoint_every=1, max_records=4)
    worker.sync_shards()
    assert sum(records_behind(setup.kinesis, STREAM, setup.leases.list()).values()) == flaky.behind(setup.leases.list()) == 30
    worker.poll_once()  # at most four records per shard
    behind = records_behind(setup.kinesis, STREAM, setup.leases.list())
    assert sum(behind.values()) == flaky.behind(setup.leases.list()) == 30 - 8
    worker.drain()
    assert sum(records_behind(setup.kinesis, STREAM, setup.leases.list()).values()) == flaky.behind(setup.leases.list()) == 0
